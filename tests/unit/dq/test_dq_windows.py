"""CSV files are read in windows (`readers.WINDOW_BYTES`) so that no input is held whole: the rows, their
numbers, parse reasons, original text and the independent count must be exactly those of a read of the
whole file at once, wherever the windows fall."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dq_platform.dq import readers
from dq_platform.dq.readers import InputFile, ParsedInput, parse_files
from tests.unit.dq.broken_inputs import CSV_DEFECTS, build

pytestmark = pytest.mark.unit

EXAMPLES = int(os.environ.get("DQP_RECORD_FUZZ_EXAMPLES", "300")) // 3
WHOLE = 1 << 26  # a window larger than any test input: the file in one piece


def _parse(monkeypatch: pytest.MonkeyPatch, window: int, f: InputFile, max_lines: int = 100) -> ParsedInput:
    monkeypatch.setattr(readers, "WINDOW_BYTES", window)
    return parse_files([f], max_record_lines=max_lines)


def _same(a: ParsedInput, b: ParsedInput) -> None:
    assert a.table.sort_by("_row_id").to_pylist() == b.table.sort_by("_row_id").to_pylist()
    assert a.counts == b.counts
    assert a.source_columns == b.source_columns
    assert a.content_sha256 == b.content_sha256


@pytest.mark.parametrize("crlf", [False, True], ids=["lf", "crlf"])
def test_windowed_read_of_a_broken_file_equals_the_whole_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, crlf: bool
) -> None:
    defects = [(i * 37 % 600, kind) for i, kind in enumerate(CSV_DEFECTS * 4)]
    broken = build(tmp_path / "in.csv", "csv", 600, defects, seed=3, multiline_every=7, crlf=crlf)
    whole = _parse(monkeypatch, WHOLE, InputFile("in.csv", "csv", path=broken.path))
    assert whole.table.num_rows == len(broken.expected) == whole.records_counted
    for window in (4096, 20_000, 65_536):
        windowed = _parse(monkeypatch, window, InputFile("in.csv", "csv", path=broken.path))
        assert windowed.table.column("_line").num_chunks > 1  # it was read in several windows
        _same(windowed, whole)


def test_a_record_longer_than_a_window_is_carried_whole(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    header = (
        "doc_id,title,counterparty,contract_type,effective_date,expiry_date,value_amount,currency,jurisdiction,text\n"
    )
    long_text = "\n".join(f"paragraph {i}, with a comma" for i in range(40))
    row = f'A{{}},T,P,MSA,2024-01-31,2025-01-31,1,USD,UK,"{long_text}"\n'
    data = (header + "".join(row.format(i) for i in range(30)) + 'B1,"open\n' + row.format(99)).encode()
    f = tmp_path / "long.csv"
    f.write_bytes(data)
    whole = _parse(monkeypatch, WHOLE, InputFile("long.csv", "csv", path=f), max_lines=50)
    windowed = _parse(monkeypatch, 700, InputFile("long.csv", "csv", path=f), max_lines=50)
    _same(windowed, whole)
    assert whole.table.num_rows == 32
    assert sorted(whole.table.column("_line").to_pylist())[:3] == [2, 42, 82]


PIECES = st.sampled_from(
    [
        *(b"a", b"7", b",", b'"', b'""', b',"', b'",', b'"a,b"', b"x,y", b'a"b', b"2024-01-31", b"1.5"),
        *(b"\n", b"\r", b"\r\n", b"\n\n", b" ", b"\xff", b"\xef\xbb\xbf"),
    ]
)


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(PIECES, max_size=120), st.integers(1, 5), st.integers(1, 64), st.booleans())
def test_random_bytes_read_in_windows_equal_the_whole_read(
    parts: list[bytes], max_lines: int, window: int, bom: bool
) -> None:
    data = (b"\xef\xbb\xbf" if bom else b"") + b"doc_id,effective_date,value_amount\n" + b"".join(parts)
    with pytest.MonkeyPatch.context() as mp:
        whole = _parse(mp, WHOLE, InputFile("r.csv", "csv", data), max_lines)
        windowed = _parse(mp, window, InputFile("r.csv", "csv", data), max_lines)
    _same(windowed, whole)
    assert isinstance(windowed.table, pa.Table)


def test_invalid_utf8_flags_the_window_that_holds_it_not_the_windows_after(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    header = b"doc_id,title\n"
    rows = [b"A%d,plain title\n" % i for i in range(200)]
    rows[1] = b"A1,bad \xff byte\n"  # invalid UTF-8 in the first window
    rows[190] = "A190,literal \ufffd in the text\n".encode()  # a real U+FFFD, windows later
    f = tmp_path / "u.csv"
    f.write_bytes(header + b"".join(rows))
    parsed = _parse(monkeypatch, 256, InputFile("u.csv", "csv", path=f), max_lines=2)
    assert parsed.table.column("_line").num_chunks > 3
    errors = dict(
        zip(parsed.table.column("doc_id").to_pylist(), parsed.table.column("_parse_error").to_pylist(), strict=True)
    )
    assert "invalid UTF-8 bytes" in errors["A1"]
    assert "invalid UTF-8 bytes" not in errors["A190"]  # (every row lacks the schema's other columns)


@pytest.mark.parametrize("window", [40, 333, 4096])
def test_a_file_read_by_range_equals_the_whole_read_and_hashes_every_byte_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, window: int
) -> None:
    """Each window is read from where the records before it end (`readers._Ranges`): a BOM, invalid UTF-8
    (which changes the decoded length), line ends of every kind and records over several lines must not
    move a window's start, and the file's hash covers each byte once however often a range is re-read."""
    rows = []
    for i in range(120):
        if i % 9 == 0:
            rows.append(b'A%d,"two\r\nlines, one record"\r\n' % i)
        elif i % 7 == 0:
            rows.append(b"A%d,bad \xff\xfe bytes\n" % i)
        elif i % 5 == 0:
            rows.append(b"A%d,caf\xc3\xa9 \xe2\x82\xac\r" % i)
        else:
            rows.append(b"A%d,plain\n" % i)
    data = b"\xef\xbb\xbfdoc_id,title\r\n" + b"".join(rows)
    f = tmp_path / "r.csv"
    f.write_bytes(data)
    whole = _parse(monkeypatch, WHOLE, InputFile("r.csv", "csv", path=f), max_lines=3)
    windowed = _parse(monkeypatch, window, InputFile("r.csv", "csv", path=f), max_lines=3)
    if window < 4096:
        assert windowed.table.column("_line").num_chunks > 3
    _same(windowed, whole)
    assert windowed.files[0].sha256 == hashlib.sha256(data).hexdigest()
    assert whole.table.num_rows == whole.records_counted == 120


def test_a_parse_error_closes_the_file_being_scanned(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The next window is scanned on its own thread while this one is parsed: when the parse fails, the
    scan is waited for and its file closed before the error reaches the caller, not at collection."""
    f = tmp_path / "in.csv"
    f.write_bytes(b"doc_id,title\n" + b"".join(b"A%d,t\n" % i for i in range(2000)))
    opened: list[object] = []
    real_open = Path.open

    def tracking_open(self: Path, *args: object, **kwargs: object) -> object:
        handle = real_open(self, *args, **kwargs)  # type: ignore[call-overload]
        opened.append(handle)
        return handle

    calls = 0
    real_parse = readers._parse_window

    def failing_parse(scanned: object) -> object:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise readers.InputError("in.csv: parse failed")
        return real_parse(scanned)  # type: ignore[arg-type]

    monkeypatch.setattr(Path, "open", tracking_open)
    monkeypatch.setattr(readers, "_parse_window", failing_parse)
    monkeypatch.setattr(readers, "WINDOW_BYTES", 1024)
    with pytest.raises(readers.InputError, match="parse failed"):
        parse_files([InputFile("in.csv", "csv", path=f)])
    assert len(opened) == 1
    assert opened[0].closed  # type: ignore[attr-defined]
