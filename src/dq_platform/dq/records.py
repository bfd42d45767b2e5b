"""What one input record is: physical lines, and the rare CSV record that a quoted field carries over
several lines (docs/dq.md, "What one record is").

Why lines first: a parser that follows an unterminated quote to the next quote moves every record
boundary after it, and the records in between vanish into one broken value (issue #19). Here a record is
one physical line unless a quoted field that opens on it closes, as a well-formed record of the header's
width, within `max_record_lines` lines; otherwise that line alone is a malformed record and the next
record starts on the next line, whatever the parser would have made of it.

Only line ends and quotes are located for the whole input (vectorised); lines are lexed one by one only
where their quotes are not plainly balanced, which well-formed data almost never needs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

LF, CR, QUOTE, COMMA = 10, 13, 34, 44
DEFAULT_MAX_RECORD_LINES = 100
_CHUNK = 1 << 22


def byte_positions(buf: np.ndarray, value: int) -> np.ndarray:
    """Offsets of every byte equal to `value`, found in cache-sized chunks (a whole-file mask costs
    more in page faults than the comparison itself)."""
    parts = [np.flatnonzero(buf[i : i + _CHUNK] == value) + i for i in range(0, len(buf), _CHUNK)]
    return np.concatenate(parts).astype(np.int64) if parts else np.zeros(0, dtype=np.int64)


@dataclass(frozen=True)
class ByteIndex:
    """Physical lines of a byte string and the positions of its double quotes.

    A line ends at b"\\n", b"\\r\\n" or a lone b"\\r" (as Hadoop's line reader under Spark splits them);
    `starts[i]:ends[i]` is line i without its terminator. Shared by the reader and the independent
    count (`dq.recount`): they agree on where bytes are, and interpret them separately."""

    data: bytes
    buf: np.ndarray
    starts: np.ndarray
    ends: np.ndarray
    quotes: np.ndarray

    @property
    def n_lines(self) -> int:
        return len(self.starts)

    @classmethod
    def build(cls, data: bytes, quotes: bool = True, size: int | None = None) -> ByteIndex:
        """The lines of `data`, or of its first `size` bytes alone (as `head` makes them: the bytes after
        are never read, so a window read with the start of the next line after it needs no copy)."""
        size = len(data) if size is None else size
        buf = np.frombuffer(data, dtype=np.uint8, count=size)
        lf = byte_positions(buf, LF)
        if data.find(b"\r", 0, size) < 0:
            ends, nexts = lf, lf + 1
        else:
            cr = byte_positions(buf, CR)
            crlf = np.zeros(len(cr), dtype=bool)
            inner = cr + 1 < size
            crlf[inner] = buf[cr[inner] + 1] == LF
            lf_alone = lf[(lf == 0) | (buf[np.maximum(lf - 1, 0)] != CR)]
            ends = np.concatenate([lf_alone, cr])
            nexts = np.concatenate([lf_alone + 1, cr + np.where(crlf, 2, 1)])
            order = np.argsort(ends, kind="stable")
            ends, nexts = ends[order], nexts[order]
        starts = np.concatenate([np.zeros(1, dtype=np.int64), nexts])
        if len(nexts) and nexts[-1] == size:  # the last line has its terminator: no empty line after it
            starts = starts[:-1]
        else:
            ends = np.concatenate([ends, np.array([size], dtype=np.int64)])
        if size == 0:
            starts = ends = np.zeros(0, dtype=np.int64)
        q = byte_positions(buf, QUOTE) if quotes else np.zeros(0, dtype=np.int64)
        return cls(data, buf, starts.astype(np.int64), ends.astype(np.int64), q)

    def head(self, lines: int) -> ByteIndex:
        """The first `lines` lines alone, as if the input ended after them (with their terminators).

        The bytes are shared, not copied (a 32 MB window each time): every read of `data` is bounded by
        the line ends, and `size` is where this index ends."""
        if lines >= self.n_lines:
            return self
        size = int(self.starts[lines])
        quotes = self.quotes[: int(self.quotes.searchsorted(size))]
        return ByteIndex(self.data, self.buf[:size], self.starts[:lines], self.ends[:lines], quotes)

    @property
    def size(self) -> int:
        """Bytes indexed: `len(data)` unless this is a `head`."""
        return len(self.buf)

    def line_of(self, pos: int) -> int:
        """The line holding byte `pos` (a position inside a line's text or at its end)."""
        return int(self.starts.searchsorted(pos, side="right")) - 1

    def text(self, first: int, last: int | None = None) -> bytes:
        """Lines `first`..`last` as they are in the input, without the last line's terminator."""
        return self.data[int(self.starts[first]) : int(self.ends[first if last is None else last])]


@dataclass(frozen=True)
class Records:
    """Records of one input in order, as line ranges (0-based line numbers into the `ByteIndex`).

    `unterminated[k]`: record k is one line whose quoted field never closes as a record (malformed)."""

    first: np.ndarray
    last: np.ndarray
    unterminated: np.ndarray

    def __len__(self) -> int:
        return len(self.first)


def _lex_csv(idx: ByteIndex, line: int, max_lines: int) -> tuple[int, int, bool, bool]:
    """Lex the CSV record that starts at `line` the way pyarrow's parser does (a quote opens a field only
    at its start, `""` inside quotes is a quote, text after a closing quote joins the field).

    Returns (last line, fields, strict, closed): `closed` False when a quoted field is still open at the
    end of line `line + max_lines - 1` or of the input; `strict` False when a closing quote is followed
    by anything but a delimiter or the line end."""
    data, ends = idx.data, idx.ends
    window_end = int(ends[min(line + max_lines, idx.n_lines) - 1])
    pos, cur = int(idx.starts[line]), line
    end = int(ends[cur])
    fields, strict = 1, True
    while True:
        if pos < end and data[pos] == QUOTE:
            pos += 1
            while True:
                q = data.find(b'"', pos, window_end)
                if q < 0:
                    return line, fields, strict, False
                if q >= end:
                    cur = idx.line_of(q)
                    end = int(ends[cur])
                if q + 1 < end and data[q + 1] == QUOTE:
                    pos = q + 2
                    continue
                pos = q + 1
                break
            if pos < end and data[pos] != COMMA:
                strict = False
        comma = data.find(b",", pos, end)
        if comma < 0:
            return cur, fields, strict, True
        fields += 1
        pos = comma + 1


def _plain_lines(idx: ByteIndex) -> np.ndarray:
    """Per line: True where its quotes alone show that it ends outside a quoted field.

    With quotes numbered from 0 on each line, a line whose even-numbered quotes each open a field (line
    start, after a delimiter or after a quote) and whose odd-numbered quotes each end one (before a
    delimiter, the line end or a quote) is lexed exactly as its quote count says: an even count ends
    outside quotes. So is a line with no quote at the start of a field (an inch mark, `ab"c`): no
    quoted field opens on it. Everything else is lexed one line at a time."""
    n = idx.n_lines
    plain = np.ones(n, dtype=bool)
    q = idx.quotes
    if not len(q):
        return plain
    buf, starts, ends = idx.buf, idx.starts, idx.ends
    line = np.searchsorted(starts, q, side="right") - 1
    counts = np.bincount(line, minlength=n)
    first_quote = np.cumsum(counts) - counts
    rank_even = (np.arange(len(q)) - first_quote[line]) % 2 == 0
    before = buf[np.maximum(q - 1, 0)]
    after = buf[np.minimum(q + 1, len(buf) - 1)]
    opens = (q == starts[line]) | (before == COMMA) | (before == QUOTE)
    closes = (q + 1 == ends[line]) | (after == COMMA) | (after == QUOTE)
    plain[line[np.where(rank_even, ~opens, ~closes)]] = False
    plain &= counts % 2 == 0
    # a line with no quote at the start of a field opens no quoted field: its quotes are all text
    field_start = (q == starts[line]) | (before == COMMA)
    plain |= np.bincount(line[field_start], minlength=n) == 0
    return plain


def csv_records(idx: ByteIndex, width: int, max_lines: int = DEFAULT_MAX_RECORD_LINES, header: bool = True) -> Records:
    """Records after the header (line 0; `header=False`: a window of the input that starts at a record):
    every non-empty line is one, except where a quoted field that opens on a line closes within
    `max_lines` lines as a strict record of `width` fields: then those lines are one record. A line whose
    quote does not close that way is one malformed record.

    Each record is decided from its own first `max_lines` lines, in order from the first: so a window
    that starts at a record start gives the same records as the whole input, up to its last
    `max_lines` lines (`readers` reads large files in such windows)."""
    n = idx.n_lines
    nonempty = idx.ends > idx.starts
    if header:
        nonempty[:1] = False
    lines = np.flatnonzero(nonempty).astype(np.int64)
    special = np.flatnonzero(~_plain_lines(idx) & nonempty)
    if not len(special):
        return Records(lines, lines.copy(), np.zeros(len(lines), dtype=bool))
    joined: dict[int, int] = {}  # first line -> last line of multi-line records
    bad: list[int] = []
    free = 1 if header else 0  # first line not yet inside a record
    for s in special.tolist():
        if s < free:
            continue
        last, fields, strict, closed = _lex_csv(idx, s, max_lines)
        if closed and (last == s or (strict and fields == width)):
            if last > s:
                joined[s] = last
            free = last + 1
        else:
            bad.append(s)
            free = s + 1
    if joined:
        inside = np.zeros(n, dtype=bool)
        for first, last in joined.items():
            inside[first + 1 : last + 1] = True
        lines = lines[~inside[lines]]
    last_of = lines.copy()
    if joined:
        firsts = np.fromiter(joined.keys(), dtype=np.int64, count=len(joined))
        last_of[np.searchsorted(lines, firsts)] = np.fromiter(joined.values(), dtype=np.int64, count=len(joined))
    unterminated = np.zeros(len(lines), dtype=bool)
    if bad:
        unterminated[np.searchsorted(lines, np.asarray(bad, dtype=np.int64))] = True
    return Records(lines, last_of, unterminated)


def jsonl_records(idx: ByteIndex) -> Records:
    """One record per line that holds anything but spaces and tabs (JSON lines are never joined)."""
    nonempty = idx.ends > idx.starts
    lines = np.flatnonzero(nonempty).astype(np.int64)
    lead = idx.buf[idx.starts[lines]] if len(lines) else np.zeros(0, dtype=np.uint8)
    maybe_blank = lines[(lead == 32) | (lead == 9)]
    if len(maybe_blank):
        blank = [ln for ln in maybe_blank.tolist() if not idx.text(ln).strip(b" \t")]
        if blank:
            lines = lines[~np.isin(lines, np.asarray(blank, dtype=np.int64))]
    return Records(lines, lines.copy(), np.zeros(len(lines), dtype=bool))
