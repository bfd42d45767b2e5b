"""Contract files with malformed lines at known places, and the check that every record of them is in
exactly one output at its line (issue #19). Shared by the DuckDB and Spark tests.

The file is built record by record, so the test knows each record's first physical line without
parsing anything: that is what the outputs are compared with."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from dq_platform.sample_data import RECORD_FIELDS, generate_records

CSV_DEFECTS = (
    "unterminated-quote",  # a quote opened in a field and never closed
    "quote-to-end",  # a quote opening a field with nothing after it that closes it
    "too-few-fields",
    "too-many-fields",
    "wrong-delimiter",
    "binary-junk",
    "bad-date",  # a record whose date does not parse: a typed-value error, still that record
)
JSONL_DEFECTS = ("truncated", "junk", "unbalanced-brace", "binary-junk", "bad-date")
_JUNK = bytes([0x00, 0x01, 0x7F, 0x80, 0xC3, 0xFF, 0xFE, 0x22, 0x3B, 0x20, 0x41, 0x7B])  # no , \n \r


@dataclass
class Expected:
    line: int  # 1-based first physical line
    kind: str  # "good", a defect name
    doc_id: str | None
    raw: str | None = None  # the exact text a malformed line must be quarantined with


@dataclass
class BrokenFile:
    path: Path
    expected: list[Expected] = field(default_factory=list)

    @property
    def malformed(self) -> list[Expected]:
        return [e for e in self.expected if e.kind not in ("good", "bad-date")]


def _csv_line(rec: dict[str, Any]) -> str:
    buf = io.StringIO()
    csv.DictWriter(buf, fieldnames=RECORD_FIELDS, lineterminator="\n", extrasaction="ignore").writerow(rec)
    return buf.getvalue()[:-1]


def _junk(seed: int) -> bytes:
    return bytes(_JUNK[(seed * 7 + k * 5) % len(_JUNK)] for k in range(3 + seed % 9))


def _csv_defect(kind: str, rec: dict[str, Any], seed: int) -> bytes:
    line = _csv_line(rec)
    if kind == "unterminated-quote":
        cut = line.index(",", line.index(",") + 1)  # at the start of the third field
        return (line[: cut + 1] + '"' + line[cut + 1 :]).encode()
    if kind == "quote-to-end":
        return (line.split(",", 1)[0] + ',"never closed').encode()
    if kind == "too-few-fields":
        return b",".join(line.encode().split(b",")[:3])
    if kind == "too-many-fields":
        return (line + ",extra,fields").encode()
    if kind == "wrong-delimiter":
        return ";".join(str(rec.get(k) or "") for k in RECORD_FIELDS).replace('"', "").replace(",", " ").encode()
    if kind == "binary-junk":
        return _junk(seed)
    raise ValueError(kind)


def _jsonl_defect(kind: str, rec: dict[str, Any], seed: int) -> bytes:
    line = json.dumps(rec, ensure_ascii=False)
    if kind == "truncated":
        return line[: max(2, len(line) // 2)].encode()
    if kind == "junk":
        return b"this is not json at all"
    if kind == "unbalanced-brace":
        return (line[:-1] + ', "nested": {"a": 1}').encode()
    if kind == "binary-junk":
        return _junk(seed)
    raise ValueError(kind)


def build(
    path: Path,
    fmt: str,
    n_records: int,
    defects: list[tuple[int, str]],
    seed: int = 0,
    multiline_every: int = 0,
    crlf: bool = False,
) -> BrokenFile:
    """`n_records` good records (every `multiline_every`-th with a line break inside its text, CSV), and
    before record i each (i, defect) of `defects`: a malformed line, or a record with a bad date."""
    records = generate_records(n_records, seed=seed, defect_rate=0.0)
    for i, rec in enumerate(records):
        rec["doc_id"] = f"CTR-{seed}-{i:05d}"  # unique, so rules quarantine by content, not by clashes
        if fmt == "csv" and multiline_every and i % multiline_every == multiline_every - 1:
            rec["text"] = str(rec["text"]) + "\nSecond paragraph, after a line break."
    newline = b"\r\n" if crlf else b"\n"
    out = BrokenFile(path)
    chunks: list[bytes] = []
    line = 0

    def add(text: bytes, expected: Expected) -> None:
        nonlocal line
        expected.line = line + 1
        out.expected.append(expected)
        chunks.append(text.replace(b"\n", newline) + newline)
        line += text.count(b"\n") + 1

    if fmt == "csv":
        chunks.append(",".join(RECORD_FIELDS).encode() + newline)
        line = 1
    by_position: dict[int, list[str]] = {}
    for position, kind in defects:
        by_position.setdefault(position, []).append(kind)
    for i in range(n_records + 1):
        for k, kind in enumerate(by_position.get(i, [])):
            base = dict(generate_records(1, seed=seed * 1000 + i * 10 + k, defect_rate=0.0)[0])
            base["doc_id"] = f"BAD-{seed}-{i}-{k}"
            if kind == "bad-date":
                base["effective_date"] = "2024-13-45"
                text = (_csv_line(base) if fmt == "csv" else json.dumps(base)).encode()
                add(text, Expected(0, kind, base["doc_id"]))
                continue
            text = _csv_defect(kind, base, i + k) if fmt == "csv" else _jsonl_defect(kind, base, i + k)
            add(text, Expected(0, kind, None, text.decode("utf-8", errors="replace")))
        if i < n_records:
            rec = records[i]
            text = (_csv_line(rec) if fmt == "csv" else json.dumps(rec, ensure_ascii=False)).encode()
            add(text, Expected(0, "good", str(rec["doc_id"])))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"".join(chunks))
    return out


def output_rows(out: Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(processed, quarantine) rows of a run's output folder."""

    def rows(kind: str) -> list[dict[str, Any]]:
        return [r for f in sorted((out / kind).rglob("*.parquet")) for r in pq.read_table(f).to_pylist()]

    return rows("processed"), rows("quarantine")


def assert_every_record_once(files: list[BrokenFile], results: dict[str, Any], out: Path) -> None:
    """Each built record is exactly one output row at its line; malformed lines are quarantined with
    their text and a parse reason; the counts in results.json agree with all of it."""
    processed, quarantine = output_rows(out)
    total = sum(len(f.expected) for f in files)
    assert results["status"] == "SUCCEEDED", results.get("error")
    assert (results["rows_in"], results["records_counted"], results["records_check"]) == (total, total, "PASSED")
    assert results["rows_in"] == results["rows_processed"] + results["rows_quarantined"]
    assert (len(processed), len(quarantine)) == (results["rows_processed"], results["rows_quarantined"])
    seen: dict[tuple[str, int], tuple[str, dict[str, Any]]] = {}
    for kind, rows in (("processed", processed), ("quarantine", quarantine)):
        for r in rows:
            key = (r["_source"], r["_line"])
            assert key not in seen, f"two rows start at {key}"
            seen[key] = (kind, r)
    expected_keys = {(f.path.name, e.line) for f in files for e in f.expected}
    assert set(seen) == expected_keys
    for f in files:
        for e in f.expected:
            where, row = seen[(f.path.name, e.line)]
            if e.kind == "good":
                assert (row["doc_id"], row.get("_parse_error")) == (e.doc_id, None)
            elif e.kind == "bad-date":
                assert (where, row["doc_id"]) == ("quarantine", e.doc_id)
                assert "effective_date: not a date" in row["_parse_error"]
            else:
                assert where == "quarantine", (e, row)
                assert str(row["_parse_error"]).startswith("malformed"), (e, row)
                assert row["_raw_record"] == e.raw
