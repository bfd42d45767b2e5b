"""Read raw CSV / JSON-lines input into one typed Arrow table, keeping every record.

Why not the engines' own CSV readers: DuckDB and Spark each drop or null malformed records in their own
way, which would make the two engines disagree and lose data silently. Here every record, good or bad,
becomes exactly one row: typed columns for what parsed, `_parse_error` naming the problem (never the
record text) and `_raw_record` keeping the original text of rows that did not parse, so nothing is lost.
Parsing is vectorised with pyarrow; only malformed records go through Python.

Record boundaries are decided before pyarrow sees the bytes (`dq.records`): pyarrow would follow an
unterminated quote into the following lines, so such a line is cut out and quarantined on its own, and
every row carries `_line`, the physical line it starts on. Each file is also counted by `dq.recount`,
which the pipeline checks the rows against.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import re
from collections import deque
from collections.abc import Callable, Generator, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from dq_platform.dq.records import DEFAULT_MAX_RECORD_LINES, ByteIndex, Records, csv_records, jsonl_records
from dq_platform.dq.recount import count_records
from dq_platform.dq.schema import (
    ARROW_TYPES,
    CONTRACT_SCHEMA,
    LINE,
    PARSE_ERROR,
    RAW_RECORD,
    RECORD,
    ROW_ID,
    SOURCE,
    RecordSchema,
)
from dq_platform.storage import is_s3_uri, open_storage, split_s3_uri

CSV_SUFFIXES = (".csv",)
JSONL_SUFFIXES = (".jsonl", ".ndjson", ".json")
_NUMBER_RE = r"^\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*$"
UNTERMINATED = "malformed CSV record: unterminated quoted field"
_NOT_BLANK = re.compile(rb"\S")  # a byte other than ASCII whitespace


class InputError(Exception):
    """An input location cannot be read at all (missing file, unknown format); names the location."""


# hashlib, numpy's scans and pyarrow's kernels release the GIL: each file is hashed on its own thread while
# it is parsed, a window is scanned while the one before is parsed and the one before that is assembled
# (typed, its columns two at a time)
_HASHER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="dq-input-sha256")
_SCANNER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="dq-scan")
_ASSEMBLER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="dq-window")
_TYPERS = ThreadPoolExecutor(max_workers=2, thread_name_prefix="dq-typing")
_WINDOWS_IN_FLIGHT = 2  # windows parsed and not yet assembled, at most (each holds its string columns)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# CSV is parsed in windows of about this many bytes: the input is never held whole, only the table it
# becomes (at 5M rows the bytes are ~1.9 GB, as much again as the table). Below 32 MiB on purpose: glibc
# serves larger blocks with fresh mmap'd pages each time (its dynamic mmap threshold stops at 32 MiB),
# and faulting those in doubled the cost of every window's read (0.15 -> 0.09 s per 1M rows)
WINDOW_BYTES = 24 << 20


@dataclass
class InputFile:
    """One input: its bytes (an S3 object, a test's data) or a local file read window by window."""

    name: str  # file name recorded in `_source`
    fmt: str  # csv | jsonl
    data: bytes | None = None
    path: Path | None = None
    # sha256 of the bytes: hashed from creation on (`data`), or range by range as `ranges` reads them
    digest: Future[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.data is None and self.path is None:
            raise ValueError("an input file needs its data or its path")
        if self.data is not None:
            self.digest = _HASHER.submit(_sha256, self.data)

    def read_all(self) -> bytes:
        """The whole input at once (JSON lines are parsed whole), hashed as `ranges` hashes any range."""
        if self.data is not None:
            return self.data
        with self.ranges() as source:
            return source.read(0, source.size)

    @contextmanager
    def ranges(self) -> Iterator[_Ranges]:
        """The bytes read by range (`_Ranges.read`); a file's hash is complete once the block ends."""
        if self.data is not None:
            data = self.data
            yield _Ranges(len(data), lambda start, n: data[start : start + n])
            return
        assert self.path is not None
        try:
            handle = self.path.open("rb")
        except OSError as exc:
            raise InputError(f"{self.path}: input could not be read ({exc.strerror})") from exc
        hasher = hashlib.sha256()

        def read(start: int, n: int) -> bytes:
            handle.seek(start)
            return handle.read(n)

        with handle:
            yield _Ranges(os.fstat(handle.fileno()).st_size, read, hasher)
        self.digest = _HASHER.submit(hasher.hexdigest)


class _Ranges:
    """Byte ranges of one input, read from where the last window's records end (so no window is joined
    to the lines carried over from the one before: ~0.12 s of copies per 1M rows); `hasher`: each byte
    hashed once and in order, on the hashing thread, the first time a range reaches it."""

    def __init__(self, size: int, read: Callable[[int, int], bytes], hasher: Any = None) -> None:
        self.size = size
        self._read, self._hasher, self._hashed = read, hasher, 0

    def read(self, start: int, n: int) -> bytes:
        """Up to `n` bytes from `start`, which is never past the end of an earlier range."""
        data = self._read(start, n)
        if self._hasher is not None and start + len(data) > self._hashed:
            _HASHER.submit(self._hasher.update, memoryview(data)[self._hashed - start :])
            self._hashed = start + len(data)
        return data


@dataclass(frozen=True)
class ReadFile:
    """What a parsed input keeps of a file: its name and content hash, not its bytes (released once
    parsed: at 5M rows they are ~1.9 GB)."""

    name: str
    digest: Future[str] = field(repr=False, compare=False)

    @property
    def sha256(self) -> str:
        """The content hash that names a run's outputs."""
        return self.digest.result()


@dataclass
class ParsedInput:
    table: pa.Table
    source_columns: list[str]
    files: list[ReadFile] = field(default_factory=list)
    counts: list[FileCount] = field(default_factory=list)
    max_record_lines: int = DEFAULT_MAX_RECORD_LINES

    @property
    def content_sha256(self) -> str:
        """Hash of the input names and bytes: the basis of deterministic run ids and file names."""
        digest = hashlib.sha256()
        for f in self.files:
            digest.update(f.name.encode() + b"\0" + f.sha256.encode() + b"\0")
        return digest.hexdigest()

    @property
    def records_counted(self) -> int:
        """Records in the input by the independent count, to check the rows read against."""
        return sum(c.records_counted for c in self.counts)


def _format_of(name: str) -> str:
    lower = name.lower()
    if lower.endswith(CSV_SUFFIXES):
        return "csv"
    if lower.endswith(JSONL_SUFFIXES):
        return "jsonl"
    raise InputError(f"{name}: unknown input format (expected {', '.join(CSV_SUFFIXES + JSONL_SUFFIXES)})")


def load_input_files(locations: Sequence[str | Path]) -> list[InputFile]:
    """Local files/folders or s3:// objects/prefixes, expanded in a stable (sorted) order."""
    files: list[InputFile] = []
    for loc in locations:
        text = str(loc)
        if is_s3_uri(text):
            bucket, key = split_s3_uri(text)
            if key and not key.endswith("/"):
                parent, _, base = key.rpartition("/")
                store = open_storage(f"s3://{bucket}/{parent}")
                files.append(InputFile(base, _format_of(base), store.read_bytes(base)))
                continue
            store = open_storage(text)
            for k in store.list():
                if k.lower().endswith(CSV_SUFFIXES + JSONL_SUFFIXES):
                    files.append(InputFile(PurePosixPath(k).name, _format_of(k), store.read_bytes(k)))
            continue
        path = Path(text)
        if path.is_dir():
            found = sorted(
                p for p in path.rglob("*") if p.is_file() and p.name.lower().endswith(CSV_SUFFIXES + JSONL_SUFFIXES)
            )
            files.extend(InputFile(p.name, _format_of(p.name), path=p) for p in found)
        elif path.is_file():
            files.append(InputFile(path.name, _format_of(path.name), path=path))
        else:
            raise InputError(f"{path}: input not found")
    return files


# ---- per-format raw reading: every column as strings, plus structurally broken records ------------


@dataclass
class _Raw:
    columns: list[str]
    strings: pa.Table  # the structurally good records, all string columns
    good_records: Any  # record numbers of the good rows (1-based, numpy array)
    good_lines: Any  # physical line numbers where the good rows start (1-based, numpy array)
    bad: list[tuple[int, int, str, str]]  # (record number, line number, reason, raw text)
    row_errors: list[str | None] | None = None  # type errors found while reading (JSON)
    raw_lines: list[str | None] | None = None  # original text for good rows (JSON), for error rows
    has_header: bool = True  # CSV: a required column missing from the header is a per-row error
    source: ByteIndex | None = None  # CSV: the input, for the original text of rows with type errors
    spans: tuple[Any, Any] | None = None  # CSV: (first line, last line) of each good row, 0-based
    counted: int = 0  # records in the input by the independent count (`dq.recount`)


def _empty_raw() -> _Raw:
    none = np.zeros(0, dtype=np.int64)
    return _Raw([], pa.table({}), none, none, [])


def _decode(data: bytes, bom: bool = True) -> tuple[bytes, bool]:
    """UTF-8 bytes without BOM (`bom`: at the start of a file); invalid sequences replaced (and flagged)
    rather than failing the file."""
    text, _, _, replaced = _decode_window(data, len(data), bom)
    return text, replaced


def _decode_window(raw: bytes, size: int, bom: bool) -> tuple[bytes, int, int, bool]:
    """(text, its length, the BOM's length, replaced) of the first `size` bytes of `raw`: UTF-8 without
    the BOM (`bom`: at the start of a file), invalid sequences replaced (and flagged) rather than failing
    the file. The text is `raw` itself, never a copy, unless a BOM or a replacement changes it.

    Replacement never touches ASCII bytes, so line ends, quotes and delimiters stay where they were."""
    skip = 3 if bom and size >= 3 and raw.startswith(b"\xef\xbb\xbf") else 0
    valid = raw.isascii() or _valid_utf8(raw, skip, size)  # isascii: the common case, ~10x faster
    if valid and not skip:
        return raw, size, 0, False
    if valid:
        text = raw[skip:size]
        return text, len(text), skip, False
    text = raw[skip:size].decode("utf-8", errors="replace").encode("utf-8")
    return text, len(text), skip, True


def _valid_utf8(data: bytes, start: int, end: int) -> bool:
    """Arrow's UTF-8 check over the bytes `start:end` in place (a Python decode would build a str as
    large as the input, or up to four times larger)."""
    offsets = pa.py_buffer(np.array([0, end - start], dtype=np.int64))
    text = pa.Array.from_buffers(pa.large_string(), 1, [None, offsets, pa.py_buffer(data).slice(start, end - start)])
    try:
        text.validate(full=True)
    except pa.ArrowInvalid:
        return False
    return True


def _csv_header(line: bytes) -> list[str]:
    try:
        header = [h.strip() for h in next(csv.reader([line.decode("utf-8")]), [])]
    except csv.Error as exc:
        raise InputError(f"CSV header could not be parsed: {exc}") from exc
    dupes = sorted({h for h in header if header.count(h) > 1})
    if dupes or not header or any(not h for h in header):
        raise InputError(f"CSV header has duplicate or empty column names: {dupes or ['<empty>']}")
    return header


class _Pieces(io.RawIOBase):
    """Byte ranges of the input read as one stream: pyarrow parses them without a joined second copy."""

    def __init__(self, pieces: list[memoryview]) -> None:
        super().__init__()
        self._pieces, self._k, self._offset = pieces, 0, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        out = memoryview(buffer).cast("B")
        n = 0
        while n < len(out) and self._k < len(self._pieces):
            piece = self._pieces[self._k]
            take = min(len(out) - n, len(piece) - self._offset)
            out[n : n + take] = piece[self._offset : self._offset + take]
            n += take
            self._offset += take
            if self._offset == len(piece):
                self._k, self._offset = self._k + 1, 0
        return n


def _bulk(idx: ByteIndex, recs: Records, header: bool) -> Any:
    """The records pyarrow parses: the input after its header, less the malformed lines (which pyarrow
    would read as the start of a value running into the next lines). Never a copy of the input: a
    zero-copy slice when nothing is cut, else the ranges between the cuts read as one stream."""
    cut = recs.first[recs.unterminated].tolist()
    first = 1 if header else 0
    if not cut:
        start = int(idx.starts[first]) if idx.n_lines > first else idx.size
        return pa.BufferReader(pa.py_buffer(idx.data).slice(start, idx.size - start))
    whole = memoryview(idx.data)[: idx.size]
    pieces: list[memoryview] = []
    pos = int(idx.starts[first])
    for line in cut:
        pieces.append(whole[pos : int(idx.starts[line])])
        pos = int(idx.starts[line + 1]) if line + 1 < idx.n_lines else idx.size
    pieces.append(whole[pos:])
    return _Pieces([p for p in pieces if len(p)])


def _pyarrow_csv(
    bulk: Any, width: int, multiline: bool, threads: bool = True
) -> tuple[pa.Table, list[tuple[Any, str, str]]]:
    """Parse well-bounded records; rows with the wrong number of fields come back as (number, reason,
    text) (`number`: the row's position, 1-based, only when read without threads)."""
    bad: list[tuple[Any, str, str]] = []

    def on_invalid(row: Any) -> str:
        reason = f"malformed CSV record: expected {row.expected_columns} fields, found {row.actual_columns}"
        bad.append((row.number, reason, row.text))
        return "skip"

    names = [f"c{i}" for i in range(width)]
    try:
        table = pacsv.read_csv(
            bulk,
            read_options=pacsv.ReadOptions(use_threads=threads, block_size=1 << 24, column_names=names),
            parse_options=pacsv.ParseOptions(newlines_in_values=multiline, invalid_row_handler=on_invalid),
            # only an empty field is NULL, as in the one-by-one fallback and Spark's CSV reader: pyarrow's
            # default null spellings would turn the text "NA", "null" or "N/A" (and "nan") into NULL
            convert_options=pacsv.ConvertOptions(
                column_types=dict.fromkeys(names, pa.string()), strings_can_be_null=True, null_values=[""]
            ),
        )
    except pa.ArrowInvalid as exc:
        raise InputError(f"CSV could not be parsed: {exc}") from exc
    return table, bad


def _match_bad_rows(idx: ByteIndex, first: np.ndarray, last: np.ndarray, texts: list[str]) -> list[int] | None:
    """Positions (into `first`/`last`) of the records whose text pyarrow reported, in report order; None
    if a text is not found exactly as often as reported. Only records of the right length are compared."""
    starts, ends = idx.starts[first], idx.ends[last]
    lengths = ends - starts
    wanted: dict[str, int] = {}
    for text in texts:
        wanted[text] = wanted.get(text, 0) + 1
    found: dict[str, list[int]] = {}
    for text, count in wanted.items():
        needle = text.encode("utf-8")
        hits = [
            int(k) for k in np.flatnonzero(lengths == len(needle)) if idx.data[int(starts[k]) : int(ends[k])] == needle
        ]
        if len(hits) != count:
            return None
        found[text] = hits
    return [found[text].pop(0) for text in texts]


def _parse_one_by_one(
    idx: ByteIndex, first: np.ndarray, last: np.ndarray, width: int
) -> tuple[pa.Table, list[int], list[str]]:
    """Fallback when pyarrow's rows do not match the record boundaries: each record parsed on its own
    (Python's csv module), so every record is still exactly one row. Returns the table of good rows,
    positions of the bad ones and their reasons."""
    good: list[list[str]] = []
    bad_pos: list[int] = []
    reasons: list[str] = []
    for k, (a, b) in enumerate(zip(first.tolist(), last.tolist(), strict=True)):
        text = idx.text(a, b).decode("utf-8")
        try:
            rows = list(csv.reader(io.StringIO(text, newline="")))
        except csv.Error as exc:
            bad_pos.append(k)
            reasons.append(f"malformed CSV record: {exc}")
            continue
        if len(rows) == 1 and len(rows[0]) == width:
            good.append(rows[0])
        else:
            bad_pos.append(k)
            found = len(rows[0]) if len(rows) == 1 else 0
            reasons.append(f"malformed CSV record: expected {width} fields, found {found}")
    columns = {f"c{i}": pa.array([r[i] if r[i] != "" else None for r in good], pa.string()) for i in range(width)}
    return pa.table(columns), bad_pos, reasons


@dataclass(frozen=True)
class _Window:
    """Where one window of a CSV file starts: after `records` records and `lines` physical lines; the
    first window starts with the header line."""

    records: int = 0
    lines: int = 0

    @property
    def header(self) -> bool:
        return self.lines == 0


@dataclass(frozen=True)
class _Scanned:
    """One window of a CSV file with its records decided and counted, ready for pyarrow to parse."""

    idx: ByteIndex
    recs: Records
    header: list[str]
    win: _Window
    bad_utf8: bool
    counted: int  # records in the window by the independent count (`dq.recount`)


def _csv_tables(f: InputFile, schema: RecordSchema, max_lines: int) -> tuple[list[pa.Table], list[str], int]:
    """A CSV file's rows as one table per window of about `WINDOW_BYTES`, its header and its records
    counted independently.

    Three stages overlap, each on its own thread: the next window is scanned (`_scan_csv`: read, line
    ends, records, count) while this one is parsed by pyarrow, and the one before is typed
    (`_assemble`). Scanning was the read's serial part (~0.75 of 1.2 s per 1M rows, numpy and file
    reads that release the GIL), so it no longer waits for the parse (docs/dq.md, issue #16)."""
    tables: list[pa.Table] = []
    pending: deque[Future[pa.Table]] = deque()  # windows being assembled, in order
    header: list[str] = []
    counted = 0
    for scanned in _one_ahead(_scan_csv(f, max_lines)):
        header = scanned.header
        raw = _parse_window(scanned)
        pending.append(_ASSEMBLER.submit(_assemble, raw, f.name, schema, scanned.bad_utf8))
        if len(pending) >= _WINDOWS_IN_FLIGHT:
            tables.append(pending.popleft().result())
        counted += raw.counted
    tables.extend(p.result() for p in pending)
    return tables, header, counted


def _one_ahead(windows: Generator[_Scanned, None, None]) -> Iterator[_Scanned]:
    """`windows` scanned on the scanner thread, each next one while the caller parses the current.

    However the caller stops (the last window, or an error while parsing), the window being scanned is
    waited for and `windows` closed, so that its file is closed now, not whenever it is collected."""
    ahead = _SCANNER.submit(next, windows, None)
    try:
        while (scanned := ahead.result()) is not None:
            ahead = _SCANNER.submit(next, windows, None)
            yield scanned
    finally:
        wait([ahead])  # a generator cannot be closed while another thread runs it
        windows.close()


def _scan_csv(f: InputFile, max_lines: int) -> Generator[_Scanned, None, None]:
    """A CSV file's windows, each a byte range ending at a line end, cut after the last record whose
    first `max_lines` lines it holds: each record is decided from those lines alone (`dq.records`), so
    the records are the whole file's, and the next window is read from that record's end."""
    header: list[str] | None = None
    win, start, want = _Window(), 0, WINDOW_BYTES
    with f.ranges() as source:
        while start < source.size and (raw := source.read(start, want)):
            last = start + len(raw) >= source.size
            cut = len(raw) if last else raw.rfind(b"\n") + 1
            data, size, skip, bad_utf8 = _decode_window(raw, cut, bom=win.header)
            blank = header is None and _NOT_BLANK.search(data, 0, size) is None  # no header yet
            if not last and (not cut or blank):
                want *= 2  # no line end, or blank lines only: the same start, twice the bytes
                continue
            if blank:
                break
            idx = ByteIndex.build(data, size=size)
            columns = header if header is not None else _csv_header(idx.text(0))
            recs = csv_records(idx, len(columns), max_lines, win.header)
            lines = idx.n_lines
            if not last:
                kept = int(np.count_nonzero(recs.first + max_lines <= lines))
                if not kept:  # no record decidable yet: the same start, twice the bytes
                    want *= 2
                    continue
                lines = int(recs.last[kept - 1]) + 1
                idx, recs = idx.head(lines), Records(recs.first[:kept], recs.last[:kept], recs.unterminated[:kept])
            header = columns
            counted = count_records(idx, "csv", len(columns), max_lines, win.header)
            yield _Scanned(idx, recs, columns, win, bad_utf8, counted)
            if last:
                break
            start += _raw_length(raw, cut, skip, bad_utf8, idx, lines)
            win, want = _Window(win.records + len(recs), win.lines + lines), WINDOW_BYTES


def _raw_length(raw: bytes, cut: int, skip: int, replaced: bool, idx: ByteIndex, lines: int) -> int:
    """Bytes of `raw` that the window's first `lines` lines took (`idx`: those lines, decoded). Equal to
    their decoded length unless a BOM was dropped or invalid UTF-8 replaced; then the raw bytes' own line
    ends tell (replacement never touches ASCII bytes, so the lines are the same)."""
    if not replaced:
        return skip + idx.size
    lines_of_raw = ByteIndex.build(raw, quotes=False, size=cut)
    return int(lines_of_raw.starts[lines]) if lines < lines_of_raw.n_lines else cut


def _parse_window(scanned: _Scanned) -> _Raw:
    """One window's records as typed-to-be string columns, numbered from where the window starts."""
    idx, recs, header, win = scanned.idx, scanned.recs, scanned.header, scanned.win
    width = len(header)
    keep = ~recs.unterminated
    first, last = recs.first[keep], recs.last[keep]
    numbers = np.arange(1, len(recs) + 1, dtype=np.int64) + win.records
    kept_numbers = numbers[keep]
    multiline = bool((last > first).any())
    # pyarrow drops a byte order mark where its input starts: a record starting with U+FEFF is parsed apart
    bom_first = bool(len(first)) and idx.text(int(first[0])).startswith(b"\xef\xbb\xbf")
    if len(first) and not bom_first:
        table, bad = _pyarrow_csv(_bulk(idx, recs, win.header), width, multiline)
    else:  # header only, or nothing but malformed lines (pyarrow: "Empty CSV file")
        table, bad = pa.table({f"c{i}": pa.array([], pa.string()) for i in range(width)}), []
    positions: list[int] | None = None
    if table.num_rows + len(bad) == len(first) and not bom_first:
        positions = _match_bad_rows(idx, first, last, [b[2] for b in bad]) if bad else []
        if positions is None:  # the same text twice, reported differently: ask pyarrow for row numbers
            table, bad = _pyarrow_csv(_bulk(idx, recs, win.header), width, multiline, threads=False)
            if table.num_rows + len(bad) == len(first):
                positions = [int(b[0]) - 1 for b in bad]
    reasons = [b[1] for b in bad]
    if positions is None:  # pyarrow disagrees with the boundaries: never let it merge or split records
        table, positions, reasons = _parse_one_by_one(idx, first, last, width)
    bad_rows: list[tuple[int, int, str, str]] = [
        (
            int(kept_numbers[k]),
            int(first[k]) + 1 + win.lines,
            reason,
            idx.text(int(first[k]), int(last[k])).decode("utf-8"),
        )
        for k, reason in zip(positions, reasons, strict=True)
    ]
    for k in np.flatnonzero(recs.unterminated).tolist():
        line = int(recs.first[k])
        bad_rows.append((int(numbers[k]), line + 1 + win.lines, UNTERMINATED, idx.text(line).decode("utf-8")))
    bad_rows.sort()
    good = np.ones(len(first), dtype=bool)
    if positions:
        good[np.asarray(positions, dtype=np.int64)] = False
    return _Raw(
        header,
        table.rename_columns(header),
        kept_numbers[good],
        first[good] + 1 + win.lines,
        bad_rows,
        source=idx,
        spans=(first[good], last[good]),
        counted=scanned.counted,
    )


def _read_jsonl(data: bytes, schema: RecordSchema) -> _Raw:
    idx = ByteIndex.build(data, quotes=False)
    recs = jsonl_records(idx)
    counted = count_records(idx, "jsonl", 0, 1)
    columns: list[str] = []
    seen: set[str] = set()
    values: dict[str, list[str | None]] = {}
    good: list[int] = []
    good_lines: list[int] = []
    errors: list[str | None] = []
    raw_lines: list[str | None] = []
    bad: list[tuple[int, int, str, str]] = []
    n_good = 0
    for record, ln in enumerate(recs.first.tolist(), start=1):
        line = idx.text(ln).decode("utf-8")
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            bad.append((record, ln + 1, f"malformed JSON record: {exc.msg} at column {exc.colno}", line))
            continue
        if not isinstance(obj, dict):
            reason = f"malformed JSON record: expected an object, found {type(obj).__name__}"
            bad.append((record, ln + 1, reason, line))
            continue
        problems: list[str] = []
        for key, val in obj.items():
            if key not in seen:
                seen.add(key)
                columns.append(key)
                values[key] = [None] * n_good
            spec = schema.get(key)
            kind = spec.type if spec else "string"
            values[key].append(_json_value(key, val, kind, problems))
        for key in columns:
            if key not in obj:
                values[key].append(None)
        n_good += 1
        good.append(record)
        good_lines.append(ln + 1)
        errors.append("; ".join(problems) if problems else None)
        raw_lines.append(line)
    table = pa.table({c: pa.array(values[c], pa.string()) for c in columns})
    # JSON writers commonly omit null fields: a missing key is a NULL, not a malformed record
    return _Raw(
        columns,
        table,
        np.asarray(good, dtype=np.int64),
        np.asarray(good_lines, dtype=np.int64),
        bad,
        errors,
        raw_lines,
        has_header=False,
        counted=counted,
    )


def _json_value(key: str, val: Any, kind: str, problems: list[str]) -> str | None:
    if val is None:
        return None
    if isinstance(val, str):
        return val
    if kind == "double" and isinstance(val, int | float) and not isinstance(val, bool):
        return repr(val)
    if kind == "string" and key not in CONTRACT_SCHEMA.names:
        return json.dumps(val, sort_keys=True)  # extra columns keep their JSON text
    problems.append(f"{key}: expected {'a number' if kind == 'double' else 'a string'}")
    return None


# ---- typing and assembly ---------------------------------------------------------------------------


def _join_errors(a: pa.Array, b: pa.Array) -> pa.Array:
    if b.null_count == len(b):  # the common case: nothing to add
        return a
    if a.null_count == len(a):
        return b
    # (binary_join_element_wise with null_handling="skip" drops all-null rows in pyarrow 26)
    both = pc.binary_join_element_wise(a, b, "; ")
    return pc.if_else(pc.is_null(a), b, pc.if_else(pc.is_null(b), a, both))


def _dates(trimmed: pa.ChunkedArray, present: pa.ChunkedArray) -> tuple[pa.ChunkedArray, pa.ChunkedArray]:
    """(date32 values, ok) of strings written YYYY-MM-DD that name a real day.

    Arrow's cast accepts exactly that and is fast, but fails the whole column on one bad value; then
    strptime (which would roll 2024-02-30 over to March) is kept only where its date reads back as the
    written text, which also rules out every other shape."""
    values = pc.if_else(present, trimmed, pa.scalar(None, pa.string()))
    try:
        return pc.cast(values, pa.date32()), pc.is_valid(values)
    except (pa.ArrowInvalid, OverflowError):
        days = pc.cast(pc.strptime(values, format="%Y-%m-%d", unit="s", error_is_null=True), pa.date32())
        same = pc.and_(pc.equal(pc.utf8_length(values), 10), pc.equal(pc.cast(days, pa.string()), values))
        ok = pc.fill_null(same, False)
        return pc.if_else(ok, days, pa.scalar(None, pa.date32())), ok


def _doubles(trimmed: pa.ChunkedArray, present: pa.ChunkedArray) -> tuple[pa.ChunkedArray, pa.ChunkedArray]:
    """(float64 values, ok) of decimal numbers as `_NUMBER_RE` writes them.

    Arrow's cast takes exactly those as finite numbers and is fast (the regex took ~0.13 s per 1M rows),
    but it also takes nan/inf spellings and fails the whole column on one bad value: the regex decides
    only then (a number too large for a double, which the regex accepts, casts to inf either way)."""
    values = pc.if_else(present, trimmed, pa.scalar(None, pa.string()))
    try:
        typed = pc.cast(values, pa.float64())
    except pa.ArrowInvalid:
        typed = None
    if typed is not None and not pc.any(pc.or_(pc.is_nan(typed), pc.is_inf(typed))).as_py():
        return typed, pc.is_valid(values)
    ok = pc.match_substring_regex(trimmed, _NUMBER_RE)
    return pc.cast(pc.if_else(ok, trimmed, pa.scalar(None, pa.string())), pa.float64()), ok


def _type_column(name: str, arr: pa.Array, kind: str) -> tuple[pa.Array, pa.Array | None]:
    """Typed column + per-row error messages (null where fine); invalid values become null."""
    if kind == "string":
        return arr, None
    trimmed = pc.utf8_trim_whitespace(arr)
    present = pc.fill_null(pc.invert(pc.equal(trimmed, "")), True)
    if kind == "double":
        typed, ok = _doubles(trimmed, present)
        msg = f"{name}: not a number"
    elif kind == "date":
        typed, ok = _dates(trimmed, present)
        msg = f"{name}: not a date (YYYY-MM-DD)"
    elif kind == "bigint":
        ok = pc.match_substring_regex(trimmed, r"^[-+]?\d{1,18}$")
        msg = f"{name}: not an integer"
        typed = pc.cast(pc.if_else(ok, trimmed, pa.scalar(None, pa.string())), pa.int64())
    else:  # pragma: no cover - schema types are fixed
        raise ValueError(kind)
    bad = pc.and_(pc.and_(pc.is_valid(arr), present), pc.invert(pc.fill_null(ok, False)))
    typed = pc.if_else(present, typed, pa.scalar(None, typed.type))
    errors = pc.if_else(bad, pa.scalar(msg), pa.scalar(None, pa.string()))
    return typed, errors


def _assemble(raw: _Raw, name: str, schema: RecordSchema, had_bad_utf8: bool) -> pa.Table:
    n = raw.strings.num_rows
    errors = pa.array(raw.row_errors, pa.string()) if raw.row_errors is not None else pa.nulls(n, pa.string())
    missing = [c.name for c in schema.columns if c.required and c.name not in raw.columns]
    if missing and raw.has_header and (n or raw.bad):
        errors = _join_errors(errors, pa.repeat(pa.scalar(f"missing column: {', '.join(missing)}"), n))
    out: dict[str, pa.Array] = {}
    present = [c for c in schema.columns if c.name in raw.columns]
    typed_columns = _TYPERS.map(lambda c: _type_column(c.name, raw.strings.column(c.name), c.type), present)
    by_name = {c.name: result for c, result in zip(present, typed_columns, strict=True)}
    for col in schema.columns:
        if col.name in by_name:
            typed, errs = by_name[col.name]
            out[col.name] = typed
            if errs is not None:
                errors = _join_errors(errors, errs)
        else:
            out[col.name] = pa.nulls(n, ARROW_TYPES[col.type])
    extras = [c for c in raw.columns if schema.get(c) is None]
    for c in extras:
        out[c] = raw.strings.column(c)
    if had_bad_utf8 and n:
        flagged = pa.repeat(pa.scalar(False), n)
        for c in raw.columns:
            flagged = pc.or_(flagged, pc.fill_null(pc.match_substring(raw.strings.column(c), "\ufffd"), False))
        utf8_err = pc.if_else(flagged, pa.scalar("invalid UTF-8 bytes"), pa.scalar(None, pa.string()))
        errors = _join_errors(errors, utf8_err)
    raw_text = pa.nulls(n, pa.string())
    if n and pc.any(pc.is_valid(errors)).as_py():
        raw_text = _raw_text_for_errors(raw, errors)
    records = pa.array(np.asarray(raw.good_records, dtype=np.int64))
    lines = pa.array(np.asarray(raw.good_lines, dtype=np.int64))
    good = pa.table(
        {
            SOURCE: pa.repeat(pa.scalar(name), n),
            RECORD: records,
            LINE: lines,
            **out,
            PARSE_ERROR: errors,
            RAW_RECORD: raw_text,
        }
    )
    if not raw.bad:
        return good
    m = len(raw.bad)
    bad_cols: dict[str, pa.Array] = {
        SOURCE: pa.array([name] * m, pa.string()),
        RECORD: pa.array([b[0] for b in raw.bad], pa.int64()),
        LINE: pa.array([b[1] for b in raw.bad], pa.int64()),
    }
    for c, arr in out.items():
        bad_cols[c] = pa.nulls(m, arr.type)
    bad_cols[PARSE_ERROR] = pa.array([b[2] for b in raw.bad], pa.string())
    bad_cols[RAW_RECORD] = pa.array([b[3] for b in raw.bad], pa.string())
    return _in_record_order(good, pa.table(bad_cols, schema=good.schema))


_INTERLEAVE_MAX = 64  # malformed records a window's rows are sliced around; beyond, its rows are reordered


def _in_record_order(good: pa.Table, bad: pa.Table) -> pa.Table:
    """Good and malformed rows merged by record number, so that the whole table is in `_row_id` order and
    an engine writes both outputs without a sort (`Engine.keeps_input_order`). A few malformed records:
    zero-copy slices of the good rows around each; many: one `take` of the window."""
    good_at = good.column(RECORD).to_numpy()
    bad_at = bad.column(RECORD).to_numpy()
    if len(bad_at) > _INTERLEAVE_MAX:
        both = pa.concat_tables([good, bad])
        return both.take(np.argsort(np.concatenate([good_at, bad_at]), kind="stable"))
    order = np.argsort(bad_at, kind="stable")
    cuts = np.searchsorted(good_at, bad_at[order])
    pieces: list[pa.Table] = []
    start = 0
    for k, cut in zip(order.tolist(), cuts.tolist(), strict=True):
        pieces += [good.slice(start, cut - start), bad.slice(k, 1)]
        start = cut
    pieces.append(good.slice(start))
    return pa.concat_tables([p for p in pieces if p.num_rows])


def _raw_text_for_errors(raw: _Raw, errors: pa.Array) -> pa.Array:
    """Original text of rows with type errors (their bad values were nulled in the typed columns)."""
    idx = pc.indices_nonzero(pc.is_valid(errors)).to_numpy()
    texts: list[str | None] = [None] * len(errors)
    if raw.raw_lines is not None:
        for i in idx.tolist():
            texts[i] = raw.raw_lines[i]
    elif raw.source is not None and raw.spans is not None:
        first, last = raw.spans[0][idx].tolist(), raw.spans[1][idx].tolist()
        for i, a, b in zip(idx.tolist(), first, last, strict=True):
            texts[i] = raw.source.text(a, b).decode("utf-8")
    return pa.array(texts, pa.string())


@dataclass(frozen=True)
class FileCount:
    """One input's rows as read and its records as counted independently (`dq.recount`)."""

    name: str
    rows_read: int
    records_counted: int


def parse_files(
    files: Sequence[InputFile],
    schema: RecordSchema = CONTRACT_SCHEMA,
    max_record_lines: int = DEFAULT_MAX_RECORD_LINES,
) -> ParsedInput:
    """One table for all inputs, rows in input order, with a dense `_row_id` across files.

    `max_record_lines`: the most physical lines one CSV record may take (a quoted field with line ends
    in it); a quote that does not close a record within them makes its line a malformed record."""
    if max_record_lines < 1:
        raise InputError(f"max_record_lines must be at least 1, got {max_record_lines}")
    tables: list[pa.Table] = []
    source_columns: list[str] = []
    counts: list[FileCount] = []
    for f in files:
        if f.fmt == "csv":
            parts, columns, counted = _csv_tables(f, schema, max_record_lines)
        else:
            data, bad_utf8 = _decode(f.read_all())
            raw = _read_jsonl(data, schema)
            parts, columns, counted = [_assemble(raw, f.name, schema, bad_utf8)], raw.columns, raw.counted
        for c in columns:
            if c not in source_columns:
                source_columns.append(c)
        table = pa.concat_tables(parts) if parts else _assemble(_empty_raw(), f.name, schema, False)
        tables.append(table)
        counts.append(FileCount(f.name, table.num_rows, counted))
    if tables:
        table = pa.concat_tables(tables, promote_options="default")
    else:
        table = _assemble(_empty_raw(), "", schema, False)
    # row ids follow (file order, record number), and so do the rows physically (`_in_record_order`)
    ids = np.empty(table.num_rows, dtype=np.int64)
    offset = 0
    for t in tables:
        order = np.argsort(t.column(RECORD).to_numpy(), kind="stable")
        ids[offset + order] = np.arange(offset, offset + t.num_rows, dtype=np.int64)
        offset += t.num_rows
    table = table.add_column(0, ROW_ID, pa.array(ids))
    read = [ReadFile(f.name, f.digest) for f in files]
    return ParsedInput(table, source_columns, read, counts, max_record_lines)


def read_inputs(
    locations: Sequence[str | Path],
    schema: RecordSchema = CONTRACT_SCHEMA,
    max_record_lines: int = DEFAULT_MAX_RECORD_LINES,
) -> ParsedInput:
    files = load_input_files(locations)
    if not files:
        raise InputError(f"no .csv/.jsonl input found in {', '.join(str(x) for x in locations)}")
    return parse_files(files, schema, max_record_lines)
