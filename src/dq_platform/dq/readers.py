"""Read raw CSV / JSON-lines input into one typed Arrow table, keeping every record.

Why not the engines' own CSV readers: DuckDB and Spark each drop or null malformed records in their own
way, which would make the two engines disagree and lose data silently. Here every record, good or bad,
becomes exactly one row: typed columns for what parsed, `_parse_error` naming the problem (never the
record text) and `_raw_record` keeping the original text of rows that did not parse, so nothing is lost.
Parsing is vectorised with pyarrow; only malformed records go through Python.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from dq_platform.dq.schema import (
    ARROW_TYPES,
    CONTRACT_SCHEMA,
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
_DATE_RE = r"^\d{4}-\d{2}-\d{2}$"


class InputError(Exception):
    """An input location cannot be read at all (missing file, unknown format); names the location."""


@dataclass
class InputFile:
    name: str  # file name recorded in `_source`
    fmt: str  # csv | jsonl
    data: bytes

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


@dataclass
class ParsedInput:
    table: pa.Table
    source_columns: list[str]
    files: list[InputFile] = field(default_factory=list)

    @property
    def content_sha256(self) -> str:
        """Hash of the input names and bytes: the basis of deterministic run ids and file names."""
        digest = hashlib.sha256()
        for f in self.files:
            digest.update(f.name.encode() + b"\0" + f.sha256.encode() + b"\0")
        return digest.hexdigest()


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
            files.extend(InputFile(p.name, _format_of(p.name), p.read_bytes()) for p in found)
        elif path.is_file():
            files.append(InputFile(path.name, _format_of(path.name), path.read_bytes()))
        else:
            raise InputError(f"{path}: input not found")
    return files


# ---- per-format raw reading: every column as strings, plus structurally broken records ------------


@dataclass
class _Raw:
    columns: list[str]
    strings: pa.Table  # the structurally good records, all string columns
    good_records: Any  # record numbers of the good rows (list or numpy array)
    bad: list[tuple[int, str, str]]  # (record number, reason, raw text)
    row_errors: list[str | None] | None = None  # type errors found while reading (JSON)
    raw_lines: list[str | None] | None = None  # original text for good rows (JSON), for error rows
    has_header: bool = True  # CSV: a required column missing from the header is a per-row error


def _decode(data: bytes) -> tuple[bytes, bool]:
    """UTF-8 bytes without BOM; invalid sequences replaced (and flagged) rather than failing the file."""
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    if data.isascii():  # the common case, checked ~10x faster than a full decode
        return data, False
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("utf-8", errors="replace").encode("utf-8"), True
    return data, False


def _csv_header(data: bytes) -> list[str]:
    end = data.find(b"\n")
    first = (data if end < 0 else data[:end]).rstrip(b"\r").decode("utf-8")
    header = [h.strip() for h in next(csv.reader([first]))]
    dupes = sorted({h for h in header if header.count(h) > 1})
    if dupes or any(not h for h in header):
        raise InputError(f"CSV header has duplicate or empty column names: {dupes or ['<empty>']}")
    return header


def _pyarrow_csv(data: bytes, header: list[str], exact: bool) -> tuple[pa.Table, list[tuple[Any, str, str]]]:
    """`exact`: serial parse honouring quoted newlines, with record numbers; else parallel, line based."""
    bad: list[tuple[Any, str, str]] = []

    def on_invalid(row: Any) -> str:
        reason = f"malformed CSV record: expected {row.expected_columns} fields, found {row.actual_columns}"
        bad.append((row.number, reason, row.text))
        return "skip"

    try:
        table = pacsv.read_csv(
            io.BytesIO(data),
            read_options=pacsv.ReadOptions(use_threads=not exact, block_size=1 << 24),
            parse_options=pacsv.ParseOptions(newlines_in_values=exact, invalid_row_handler=on_invalid),
            convert_options=pacsv.ConvertOptions(
                column_types=dict.fromkeys(header, pa.string()), strings_can_be_null=True
            ),
        )
    except pa.ArrowInvalid as exc:
        raise InputError(f"CSV could not be parsed: {exc}") from exc
    return table.rename_columns(header), bad


def _newlines(buf: np.ndarray, chunk: int = 1 << 22) -> np.ndarray:
    """Offsets of every b"\n", in cache-sized chunks (one whole-file mask costs more in page faults)."""
    parts = [np.flatnonzero(buf[i : i + chunk] == 10) + i for i in range(0, len(buf), chunk)]
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)


def _line_numbers(data: bytes, bad: list[tuple[Any, str, str]], newlines: np.ndarray) -> list[int] | None:
    """Physical line numbers of one-line bad records, found by their text; None if ambiguous.

    `newlines`: offsets of every b"\n" in `data`. Only lines of the right length are compared, so this
    costs one vectorised pass, not a scan of the whole input per bad record."""
    starts = np.concatenate([np.zeros(1, dtype=np.int64), newlines.astype(np.int64) + 1])
    ends = np.concatenate([newlines.astype(np.int64), np.array([len(data)], dtype=np.int64)])
    lengths = ends - starts  # without the b"\n"; a b"\r" before it is allowed after the text
    wanted: dict[str, int] = {}
    for _, _, text in bad:
        wanted[text] = wanted.get(text, 0) + 1
    lines: dict[str, list[int]] = {}
    for text, count in wanted.items():
        needle = text.encode("utf-8")
        size = len(needle)
        found: list[int] = []
        for line in np.flatnonzero((lengths == size) | (lengths == size + 1)):
            start, end = int(starts[line]), int(ends[line])
            tail = data[start + size : end]
            if data[start : start + size] == needle and tail in (b"", b"\r"):
                found.append(int(line) + 1)
        if len(found) != count:
            return None
        lines[text] = found
    out: list[int] = []
    for _, _, text in bad:
        out.append(lines[text].pop(0))
    return out


def _read_csv(data: bytes) -> _Raw:
    if not data[:4096].strip() and not data.strip():
        return _Raw([], pa.table({}), [], [])
    header = _csv_header(data)
    # Fast path: parallel, one record per line. Any quoted newline shows up as invalid rows, and a bad
    # row with an odd number of quotes may be one: then re-read serially with full CSV semantics.
    table, bad = _pyarrow_csv(data, header, exact=False)
    numbers: list[int] | None = []
    if bad:
        buf = np.frombuffer(data, dtype=np.uint8)
        newlines = _newlines(buf)
        gaps = np.diff(newlines)
        has_blank = bool((gaps == 1).any() or ((gaps == 2) & (buf[newlines[:-1] + 1] == 13)).any())
        odd_quotes = any(t.count('"') % 2 for _, _, t in bad)
        n_lines = len(newlines) + (0 if data.endswith(b"\n") else 1)
        one_line_records = n_lines == 1 + table.num_rows + len(bad)  # else some value spans lines
        numbers = None if has_blank or odd_quotes or not one_line_records else _line_numbers(data, bad, newlines)
        if numbers is not None:
            numbers = [n - 1 for n in numbers]  # line 1 is the header
    if numbers is None:
        return _read_csv_exact(data, header)
    bad_rows = sorted((n, reason, raw) for n, (_, reason, raw) in zip(numbers, bad, strict=True))
    used = {b[0] for b in bad_rows}
    total = table.num_rows + len(bad_rows)
    records = np.arange(1, total + 1, dtype=np.int64)
    if used:
        records = records[~np.isin(records, np.fromiter(used, dtype=np.int64))]
        if len(records) < table.num_rows:  # numbering gaps (should not happen): keep ids unique anyway
            extra = np.arange(total + 1, total + 1 + table.num_rows - len(records), dtype=np.int64)
            records = np.concatenate([records, extra])
    return _Raw(header, table, records[: table.num_rows], bad_rows)


def _read_csv_exact(data: bytes, header: list[str]) -> _Raw:
    """Serial path for files with quoted newlines *and* broken records: Python's csv module reports
    exact record boundaries, so every record keeps its number and broken ones their original text."""
    lines = io.StringIO(data.decode("utf-8"), newline="").readlines()
    reader = csv.reader(iter(lines))
    next(reader, None)  # header
    prev = reader.line_num
    width = len(header)
    good: list[list[str]] = []
    numbers: list[int] = []
    bad: list[tuple[int, str, str]] = []
    record = 0
    try:
        for fields in reader:
            start, prev = prev, reader.line_num
            if not fields:
                continue  # blank line: not a record
            record += 1
            if len(fields) == width:
                good.append(fields)
                numbers.append(record)
            else:
                raw = "".join(lines[start:prev]).rstrip("\r\n")
                reason = f"malformed CSV record: expected {width} fields, found {len(fields)}"
                bad.append((record, reason, raw))
    except csv.Error as exc:  # e.g. a NUL byte: the rest of the file is one broken record
        record += 1
        bad.append((record, f"malformed CSV record: {exc}", "".join(lines[prev:]).rstrip("\r\n")))
    columns = {
        name: pa.array([row[i] if row[i] != "" else None for row in good], pa.string()) for i, name in enumerate(header)
    }
    return _Raw(header, pa.table(columns), np.asarray(numbers, dtype=np.int64), bad)


def _read_jsonl(text: str, schema: RecordSchema) -> _Raw:
    columns: list[str] = []
    seen: set[str] = set()
    values: dict[str, list[str | None]] = {}
    good: list[int] = []
    errors: list[str | None] = []
    raw_lines: list[str | None] = []
    bad: list[tuple[int, str, str]] = []
    n_good = 0
    for record, line in enumerate(_nonblank_lines(text), start=1):
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            bad.append((record, f"malformed JSON record: {exc.msg} at column {exc.colno}", line))
            continue
        if not isinstance(obj, dict):
            bad.append((record, f"malformed JSON record: expected an object, found {type(obj).__name__}", line))
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
        errors.append("; ".join(problems) if problems else None)
        raw_lines.append(line)
    table = pa.table({c: pa.array(values[c], pa.string()) for c in columns})
    # JSON writers commonly omit null fields: a missing key is a NULL, not a malformed record
    return _Raw(columns, table, good, bad, errors, raw_lines, has_header=False)


def _nonblank_lines(text: str) -> Iterable[str]:
    for line in text.splitlines():
        if line.strip():
            yield line


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


def _type_column(name: str, arr: pa.Array, kind: str) -> tuple[pa.Array, pa.Array | None]:
    """Typed column + per-row error messages (null where fine); invalid values become null."""
    if kind == "string":
        return arr, None
    trimmed = pc.utf8_trim_whitespace(arr)
    present = pc.fill_null(pc.invert(pc.equal(trimmed, "")), True)
    if kind == "double":
        ok = pc.match_substring_regex(trimmed, _NUMBER_RE)
        msg = f"{name}: not a number"
        typed = pc.cast(pc.if_else(ok, trimmed, pa.scalar(None, pa.string())), pa.float64())
    elif kind == "date":
        stamp = pc.strptime(trimmed, format="%Y-%m-%d", unit="s", error_is_null=True)
        shaped = pc.fill_null(pc.match_substring_regex(trimmed, _DATE_RE), False)
        # strptime rolls 2024-02-30 over to March: require the parsed day to be the written day
        day_text = pc.if_else(shaped, pc.utf8_slice_codeunits(trimmed, 8, 10), pa.scalar("0"))
        ok = pc.and_(shaped, pc.equal(pc.day(stamp), pc.cast(day_text, pa.int64())))
        msg = f"{name}: not a date (YYYY-MM-DD)"
        typed = pc.cast(pc.if_else(ok, stamp, pa.scalar(None, stamp.type)), pa.date32())
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
    for col in schema.columns:
        if col.name in raw.columns:
            arr = raw.strings.column(col.name)  # chunked: typed chunk by chunk, no copy
            typed, errs = _type_column(col.name, arr, col.type)
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
    good = pa.table(
        {SOURCE: pa.repeat(pa.scalar(name), n), RECORD: records, **out, PARSE_ERROR: errors, RAW_RECORD: raw_text}
    )
    if not raw.bad:
        return good
    m = len(raw.bad)
    bad_cols: dict[str, pa.Array] = {
        SOURCE: pa.array([name] * m, pa.string()),
        RECORD: pa.array([b[0] for b in raw.bad], pa.int64()),
    }
    for c, arr in out.items():
        bad_cols[c] = pa.nulls(m, arr.type)
    bad_cols[PARSE_ERROR] = pa.array([b[1] for b in raw.bad], pa.string())
    bad_cols[RAW_RECORD] = pa.array([b[2] for b in raw.bad], pa.string())
    return pa.concat_tables([good, pa.table(bad_cols, schema=good.schema)])


def _raw_text_for_errors(raw: _Raw, errors: pa.Array) -> pa.Array:
    """Original text of rows with type errors (their bad values were nulled in the typed columns)."""
    idx = pc.indices_nonzero(pc.is_valid(errors)).to_pylist()
    texts: list[str | None] = [None] * len(errors)
    if raw.raw_lines is not None:
        for i in idx:
            texts[i] = raw.raw_lines[i]
    else:
        rows = raw.strings.filter(pc.is_valid(errors)).to_pylist()
        for i, row in zip(idx, rows, strict=True):
            texts[i] = json.dumps(row, ensure_ascii=False)
    return pa.array(texts, pa.string())


def parse_files(files: Sequence[InputFile], schema: RecordSchema = CONTRACT_SCHEMA) -> ParsedInput:
    """One table for all inputs, rows in input order, with a dense `_row_id` across files."""
    tables: list[pa.Table] = []
    source_columns: list[str] = []
    for f in files:
        data, bad_utf8 = _decode(f.data)
        raw = _read_csv(data) if f.fmt == "csv" else _read_jsonl(data.decode("utf-8"), schema)
        for c in raw.columns:
            if c not in source_columns:
                source_columns.append(c)
        tables.append(_assemble(raw, f.name, schema, bad_utf8))
    if tables:
        table = pa.concat_tables(tables, promote_options="default")
    else:
        table = _assemble(_Raw([], pa.table({}), [], []), "", schema, False)
    # row ids follow (file order, record number); rows stay physically good-then-bad per file
    ids = np.empty(table.num_rows, dtype=np.int64)
    offset = 0
    for t in tables:
        order = np.argsort(t.column(RECORD).to_numpy(), kind="stable")
        ids[offset + order] = np.arange(offset, offset + t.num_rows, dtype=np.int64)
        offset += t.num_rows
    table = table.add_column(0, ROW_ID, pa.array(ids))
    return ParsedInput(table, source_columns, list(files))


def read_inputs(locations: Sequence[str | Path], schema: RecordSchema = CONTRACT_SCHEMA) -> ParsedInput:
    files = load_input_files(locations)
    if not files:
        raise InputError(f"no .csv/.jsonl input found in {', '.join(str(x) for x in locations)}")
    return parse_files(files, schema)
