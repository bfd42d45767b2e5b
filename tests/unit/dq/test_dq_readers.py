"""Readers keep every record: typed columns, per-row parse reasons, original text of bad rows."""

from __future__ import annotations

import calendar
import hashlib
import re
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from dq_platform.dq import readers
from dq_platform.dq.readers import InputError, InputFile, _dates, parse_files

pytestmark = pytest.mark.unit

HEADER = "doc_id,title,counterparty,contract_type,effective_date,expiry_date,value_amount,currency,jurisdiction,text\n"


def _rows(data: bytes, name: str = "x.csv") -> list[dict[str, object]]:
    fmt = "csv" if name.endswith(".csv") else "jsonl"
    table = parse_files([InputFile(name, fmt, data)]).table
    return table.sort_by("_row_id").to_pylist()


def test_csv_types_and_errors() -> None:
    body = (
        HEADER
        + 'A1,T,P,MSA,2024-01-31,2025-01-31,1e3,USD,UK,"multi\nline, quoted"\n'
        + "A2,T,P,MSA,2024-02-30,2025-01-31,abc,USD,UK,x\n"
        + "A3,only,three\n"
        + "A4,T,P,MSA,,2025-01-31, 12.5 ,USD,UK,y\n"
    )
    rows = _rows(body.encode())
    assert [r["_record"] for r in rows] == [1, 2, 3, 4]
    assert rows[0]["value_amount"] == 1000.0
    assert rows[0]["text"] == "multi\nline, quoted"
    assert rows[0]["_parse_error"] is None
    assert rows[1]["_parse_error"] == "effective_date: not a date (YYYY-MM-DD); value_amount: not a number"
    assert rows[1]["effective_date"] is None
    assert rows[1]["_raw_record"] == "A2,T,P,MSA,2024-02-30,2025-01-31,abc,USD,UK,x"  # the original text
    assert rows[2]["_parse_error"] == "malformed CSV record: expected 10 fields, found 3"
    assert rows[2]["_raw_record"] == "A3,only,three"
    assert (rows[3]["effective_date"], rows[3]["value_amount"], rows[3]["_parse_error"]) == (None, 12.5, None)


@pytest.mark.parametrize("path", ["pyarrow", "one by one"])
def test_only_an_empty_field_is_null(monkeypatch: pytest.MonkeyPatch, path: str) -> None:
    """Text such as "NA", "null" or "N/A" is a value, whichever way the window was parsed (pyarrow's own
    null spellings are off): a counterparty called "NA" is not a missing one, and "nan" is not a number."""
    if path == "one by one":  # pyarrow's rows not matching the boundaries: every record parsed alone
        monkeypatch.setattr(readers, "_pyarrow_csv", lambda *a, **k: (pa.table({}), []))
    body = (
        HEADER
        + "A1,NA,null,N/A,2024-01-31,2025-01-31,1,NULL,#N/A,nan\n"
        + 'A2,"",,MSA,2024-01-31,2025-01-31,nan,USD,UK,x\n'
        + "A3,T,P,MSA,NA,2025-01-31,2,USD,UK,y\n"
    )
    rows = _rows(body.encode())
    texts = ["title", "counterparty", "contract_type", "currency", "jurisdiction", "text"]
    assert [rows[0][c] for c in texts] == ["NA", "null", "N/A", "NULL", "#N/A", "nan"]
    assert rows[0]["_parse_error"] is None
    assert (rows[1]["title"], rows[1]["counterparty"]) == (None, None)  # empty, quoted or not
    assert rows[1]["_parse_error"] == "value_amount: not a number"
    assert rows[2]["_parse_error"] == "effective_date: not a date (YYYY-MM-DD)"


def test_csv_fast_path_numbers_bad_lines_by_position() -> None:
    body = HEADER + "A1,T,P,MSA,2024-01-31,2025-01-31,1,USD,UK,x\nbad,line\n" * 3
    rows = _rows(body.encode())
    assert [(r["_record"], r["doc_id"]) for r in rows] == [
        (1, "A1"),
        (2, None),
        (3, "A1"),
        (4, None),
        (5, "A1"),
        (6, None),
    ]


def test_bom_and_invalid_utf8_are_flagged_not_fatal() -> None:
    body = b"\xef\xbb\xbf" + HEADER.encode() + b"A1,T,P\xff,MSA,2024-01-31,2025-01-31,1,USD,UK,x\n"
    (row,) = _rows(body)
    assert row["doc_id"] == "A1"
    assert row["_parse_error"] == "invalid UTF-8 bytes"


def test_jsonl_shapes() -> None:
    body = (
        b'{"doc_id": "A1", "value_amount": 5, "effective_date": "2024-01-31", "extra": {"k": 1}}\n'
        b"\n"
        b'{"doc_id": 7}\n'
        b"[1, 2]\n"
        b'{"doc_id": "A4", "value_amount": "7.5"}\n'
        b'{"doc_id": "A5", "title": "tr'
    )
    rows = _rows(body, "x.jsonl")
    assert len(rows) == 5  # blank line is not a record
    assert (rows[0]["value_amount"], rows[0]["extra"], rows[0]["_parse_error"]) == (5.0, '{"k": 1}', None)
    assert rows[1]["_parse_error"] == "doc_id: expected a string"
    assert rows[2]["_parse_error"] == "malformed JSON record: expected an object, found list"
    assert rows[3]["value_amount"] == 7.5
    assert str(rows[4]["_parse_error"]).startswith("malformed JSON record: Unterminated string")
    assert rows[4]["_raw_record"] == '{"doc_id": "A5", "title": "tr'


def test_duplicate_header_is_an_input_error() -> None:
    with pytest.raises(InputError, match="duplicate"):
        _rows(b"a,a\n1,2\n")


def test_row_ids_are_dense_across_files() -> None:
    a = InputFile("a.csv", "csv", (HEADER + "A1,T,P,MSA,2024-01-31,2025-01-31,1,USD,UK,x\nbad\n").encode())
    b = InputFile("b.jsonl", "jsonl", b'{"doc_id": "B1"}\n')
    table = parse_files([a, b]).table
    assert sorted(table["_row_id"].to_pylist()) == [0, 1, 2]
    assert pc.sum(pc.is_valid(table["_parse_error"])).as_py() == 1


@pytest.mark.parametrize("with_bad", [False, True], ids=["all-valid", "one-invalid"])
def test_dates_are_exactly_yyyy_mm_dd_real_days(with_bad: bool) -> None:
    """Both ways of typing dates (one cast for a clean column, a checked strptime otherwise) agree."""
    good = ["2024-02-29", " 2025-01-31 ", "", "9999-12-31"]
    bad = ["2024-02-30", "2023-02-29", "2024-1-05", "20240105", "2024-13-01", "yesterday", "+2024-01-05"]
    values = good + (bad if with_bad else [])
    body = HEADER + "".join(f"A{i},T,P,MSA,{v},2025-01-31,1,USD,UK,x\n" for i, v in enumerate(values))
    rows = _rows(body.encode())
    got = [(str(r["effective_date"]) if r["effective_date"] else None, r["_parse_error"]) for r in rows]
    expected = [("2024-02-29", None), ("2025-01-31", None), (None, None), ("9999-12-31", None)]
    expected += [(None, "effective_date: not a date (YYYY-MM-DD)")] * (len(bad) if with_bad else 0)
    assert got == expected


def _real_day(text: str | None) -> bool:
    """The oracle: ASCII YYYY-MM-DD naming a day of the proleptic Gregorian calendar (year 0 is a leap year)."""
    if text is None or not re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", text):
        return False
    year, month, day = int(text[:4]), int(text[5:7]), int(text[8:])
    leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
    return 1 <= month <= 12 and 1 <= day <= (29 if month == 2 and leap else calendar.mdays[month])


_DIGITS = st.text("0123456789", min_size=1, max_size=5)
_DATE_LIKE = st.one_of(
    st.builds(lambda y, m, d: f"{y}-{m}-{d}", _DIGITS, _DIGITS, _DIGITS),
    st.builds(lambda y, m, d: f"{y:04d}-{m:02d}-{d:02d}", st.integers(0, 9999), st.integers(0, 13), st.integers(0, 32)),
    st.text("0123456789-+ T٢", max_size=12),
    st.none(),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(_DATE_LIKE, min_size=1, max_size=40))
def test_date_check_agrees_with_the_calendar(values: list[str | None]) -> None:
    column = pa.chunked_array(
        [pa.array(values[: len(values) // 2], pa.string()), pa.array(values[len(values) // 2 :], pa.string())]
    )
    days, ok = _dates(column, pc.is_valid(column))
    expected = [_real_day(v) for v in values]
    assert ok.to_pylist() == expected
    assert [d is not None for d in days.cast(pa.int32()).to_pylist()] == expected
    for v, d in zip(values, days.cast(pa.int32()).to_pylist(), strict=True):
        if d is not None:
            assert pc.cast(pa.array([v]), pa.date32()).cast(pa.int32()).to_pylist() == [d]


@pytest.mark.parametrize("broken", [3, 70], ids=["a-few-sliced-around", "many-reordered"])
def test_malformed_records_sit_at_their_record_number(broken: int) -> None:
    """Every row, malformed or not, is physically where its record number puts it, so `_row_id` order is
    the table's order and no output needs a sort."""
    good = [f"A{i},T,P,MSA,2024-01-31,2025-01-31,1,USD,UK,x\n" for i in range(200)]
    lines = list(good)
    for k in range(broken):
        lines.insert(1 + k * 2, "only,three,fields\n")
    table = parse_files([InputFile("x.csv", "csv", (HEADER + "".join(lines)).encode())]).table
    records = table.column("_record").to_pylist()
    assert records == list(range(1, len(lines) + 1))
    assert table.column("_row_id").to_pylist() == list(range(len(lines)))
    bad = [i for i, e in enumerate(table.column("_parse_error").to_pylist()) if e]
    assert bad == [1 + k * 2 for k in range(broken)]


def _regex_typed(name: str, arr: pa.ChunkedArray) -> tuple[list[object], list[object]]:
    """The oracle: every value checked by the number pattern, then cast (the typing before the fast path)."""
    from dq_platform.dq.readers import _NUMBER_RE

    trimmed = pc.utf8_trim_whitespace(arr)
    present = pc.fill_null(pc.invert(pc.equal(trimmed, "")), True)
    ok = pc.match_substring_regex(trimmed, _NUMBER_RE)
    typed = pc.cast(pc.if_else(ok, trimmed, pa.scalar(None, pa.string())), pa.float64())
    bad = pc.and_(pc.and_(pc.is_valid(arr), present), pc.invert(pc.fill_null(ok, False)))
    typed = pc.if_else(present, typed, pa.scalar(None, pa.float64()))
    errors = pc.if_else(bad, pa.scalar(f"{name}: not a number"), pa.scalar(None, pa.string()))
    return typed.to_pylist(), errors.to_pylist()


_NUMBERISH = st.one_of(
    st.text("0123456789.eE+- ", max_size=8),
    st.sampled_from(["nan", "NaN", "inf", "-Infinity", "1e400", "-1e400", "0x10", "1_0", "١٢", " 12.5 ", ""]),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.none(),
)


def _nan_safe(value: object) -> object:
    """NaN never equals itself: compared as a marker."""
    return "NaN" if isinstance(value, float) and value != value else value


@settings(max_examples=300, deadline=None)
@given(st.lists(_NUMBERISH, min_size=1, max_size=30))
@example(["1.5", " 2 ", "", None, "1e5", "-.5", "+3."])  # all numbers: the cast alone decides
@example(["1.5", "nan", "1e400", "-inf"])  # the cast takes them all: the pattern decides
def test_number_typing_agrees_with_the_pattern(values: list[str | None]) -> None:
    from dq_platform.dq.readers import _type_column

    half = len(values) // 2
    arr = pa.chunked_array([pa.array(values[:half], pa.string()), pa.array(values[half:], pa.string())])
    typed, errors = _type_column("value_amount", arr, "double")
    expected_typed, expected_errors = _regex_typed("value_amount", arr)
    assert [_nan_safe(v) for v in typed.to_pylist()] == [_nan_safe(v) for v in expected_typed]
    assert errors is not None
    assert errors.to_pylist() == expected_errors


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_a_file_is_hashed_as_its_bytes_whichever_format_reads_it(tmp_path: Path, fmt: str) -> None:
    """CSV is read window by window, JSON lines whole: both through `InputFile.ranges`, so the content hash
    that names a run's outputs is the file's sha256 either way, and equal to that of the same bytes given
    in memory (an S3 object)."""
    data = b"doc_id,title\nA-1,t\nA-2,u\n" if fmt == "csv" else b'{"doc_id": "A-1"}\n{"doc_id": "A-2"}\n'
    path = tmp_path / f"in.{fmt}"
    path.write_bytes(data)
    from_file = parse_files([InputFile(path.name, fmt, path=path)])
    in_memory = parse_files([InputFile(path.name, fmt, data)])
    assert from_file.table.num_rows == in_memory.table.num_rows == 2
    assert from_file.files[0].sha256 == in_memory.files[0].sha256 == hashlib.sha256(data).hexdigest()
