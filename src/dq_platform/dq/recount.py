"""The independent record count every run checks its rows against (issue #19; docs/dq.md, "The record check").

Why a second count: a reader that loses records also counts what it kept, so `rows_in == processed +
quarantined` holds after a loss. This count comes from the bytes by another method than the reader's:
it shares only the positions of line ends and quotes (`records.ByteIndex`) and reads the quotes
globally, the way vectorised CSV splitters do (a line end is inside a quoted value when an odd number
of quotes precedes it), resynchronising with a regex lexer of its own, bounded to `max_record_lines`
lines, wherever a quote does not sit where a well-formed field puts one. Agreement with the reader is
checked on every run and by property tests on generated broken files.
"""

from __future__ import annotations

import re

import numpy as np

from dq_platform.dq.records import ByteIndex

_QUOTED = re.compile(rb'(?:[^"]++|"")*+')  # the inside of a quoted field: anything, "" for a quote
_UNQUOTED = re.compile(rb"[^,\r\n]*+")  # the rest of a field outside quotes (a quote there is text)
_SEPARATORS = b",\r\n"
_BLANK = re.compile(rb"[ \t]*")


def _record_lines(idx: ByteIndex, line: int, width: int, max_lines: int) -> int:
    """Physical lines taken by the CSV record starting at `line`: more than one only when a quoted
    field runs over line ends and closes, within `max_lines` lines, a record of exactly `width` fields
    whose closing quotes are each followed by a delimiter or a line end."""
    data = idx.data
    start, end = int(idx.starts[line]), int(idx.ends[line])
    if data[start : start + 1] != b'"' and data.find(b',"', start, end) < 0:
        return 1  # no quote starts a field here, so none opens a quoted value: its quotes are text
    last = min(line + max_lines, idx.n_lines) - 1
    limit = int(idx.ends[last])
    pos, fields, strict = start, 1, True
    while True:
        if pos < limit and data[pos] == 0x22:
            body = _QUOTED.match(data, pos + 1, limit)
            assert body is not None  # the pattern matches the empty string
            pos = body.end()
            if pos >= limit:
                return 1  # still open at the window's end: the line alone is a record
            pos += 1  # the closing quote
            if pos < limit and data[pos] not in _SEPARATORS:
                strict = False
        rest = _UNQUOTED.match(data, pos, limit)
        assert rest is not None
        pos = rest.end()
        if pos < limit and data[pos] == 0x2C:
            fields += 1
            pos += 1
            continue
        end_line = int(idx.ends.searchsorted(pos))
        lines = end_line - line + 1
        return lines if lines == 1 or (strict and fields == width) else 1


def count_csv(idx: ByteIndex, width: int, max_lines: int, header: bool = True) -> int:
    """Records after the header line (`header=False`: from the first line), from line ends and global
    quote parity."""
    n = idx.n_lines
    start = 1 if header else 0
    if n <= start:
        return 0
    nonempty = np.concatenate([[0], np.cumsum(idx.ends > idx.starts)])  # nonempty[i] = non-empty lines < i
    q = idx.quotes
    if not len(q):
        return int(nonempty[n] - nonempty[start])
    buf, size = idx.buf, len(idx.buf)
    before = buf[np.maximum(q - 1, 0)]
    after = buf[np.minimum(q + 1, size - 1)]
    at_line_start = (q == 0) | (before == 0x0A) | (before == 0x0D)
    at_line_end = (q + 1 == size) | (after == 0x0A) | (after == 0x0D)
    may_open = at_line_start | (before == 0x2C) | (before == 0x22)
    may_close = at_line_end | (after == 0x2C) | (after == 0x22)
    even = np.arange(len(q)) % 2 == 0
    # quotes out of place when counting from an even (0) or odd (1) number of quotes before them
    misplaced = (
        np.flatnonzero(np.where(even, ~may_open, ~may_close)),
        np.flatnonzero(np.where(even, ~may_close, ~may_open)),
    )
    per_line = np.bincount(np.searchsorted(idx.ends, q, side="left"), minlength=n)
    parity_at_end = np.cumsum(per_line) % 2  # of the quotes before each line end
    ends_open = (np.flatnonzero(parity_at_end == 1), np.flatnonzero(parity_at_end == 0))
    count, line = 0, start
    while line < n:  # each turn: plain one-line records up to the next resync point, then one lexed record
        base = int(q.searchsorted(idx.starts[line]))  # quotes before the line
        b = base % 2
        k = int(misplaced[b].searchsorted(base))
        stop = idx.line_of(int(q[misplaced[b][k]])) if k < len(misplaced[b]) else n
        j = int(ends_open[b].searchsorted(line))
        if j < len(ends_open[b]):
            stop = min(stop, int(ends_open[b][j]))
        count += int(nonempty[stop] - nonempty[line])
        if stop >= n:
            break
        count += 1
        line = stop + _record_lines(idx, stop, width, max_lines)
    return count


def count_jsonl(idx: ByteIndex) -> int:
    """Lines holding anything but spaces and tabs."""
    if not idx.n_lines:
        return 0
    empty = idx.ends == idx.starts
    lead = idx.buf[np.minimum(idx.starts, max(len(idx.buf) - 1, 0))]
    suspects = np.flatnonzero(~empty & ((lead == 0x20) | (lead == 0x09)))
    blank = sum(1 for i in suspects.tolist() if _BLANK.fullmatch(idx.data, int(idx.starts[i]), int(idx.ends[i])))
    return int(idx.n_lines - np.count_nonzero(empty) - blank)


def count_records(idx: ByteIndex, fmt: str, width: int, max_lines: int, header: bool = True) -> int:
    """Records in one input file (CSV: after its header line; `header=False`: a window of a file that
    starts at a record), counted from its bytes."""
    return count_csv(idx, width, max_lines, header) if fmt == "csv" else count_jsonl(idx)
