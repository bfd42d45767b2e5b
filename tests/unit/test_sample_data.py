from __future__ import annotations

import csv
import io
import json
from datetime import date
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dq_platform import sample_data
from dq_platform.cli import app

pytestmark = pytest.mark.unit
TODAY = date(2026, 11, 25)


def test_records_are_reproducible_and_complete() -> None:
    a = sample_data.generate_records(200, seed=7, today=TODAY)
    b = sample_data.generate_records(200, seed=7, today=TODAY)
    assert a == b
    assert all(set(r) == set(sample_data.RECORD_FIELDS) for r in a)
    assert {r["label"] for r in a} == {"HighRisk", "LowRisk"}


def test_clean_records_have_no_defects() -> None:
    recs = sample_data.generate_records(500, seed=1, defect_rate=0.0, today=TODAY)
    assert len({r["doc_id"] for r in recs}) == 500
    for r in recs:
        assert r["currency"] in sample_data.CURRENCIES
        assert r["jurisdiction"] in sample_data.JURISDICTIONS
        assert date.fromisoformat(r["expiry_date"]) > date.fromisoformat(r["effective_date"])
        assert 0 < r["value_amount"] < 1e10
        assert len(r["text"]) > 40
        assert "\n" not in r["text"]


def test_defects_appear_at_about_the_requested_rate() -> None:
    clean = sample_data.generate_records(2000, seed=3, defect_rate=0.0, today=TODAY)
    dirty = sample_data.generate_records(2000, seed=3, defect_rate=0.1, today=TODAY)
    changed = sum(1 for c, d in zip(clean, dirty, strict=True) if c != d)
    assert 120 <= changed <= 280


def test_csv_with_malformed_lines_keeps_every_record_on_one_line() -> None:
    recs = sample_data.generate_records(50, seed=2, today=TODAY)
    text = sample_data.records_to_text(recs, "csv", malformed_lines=3, seed=2)
    lines = text.splitlines()
    assert lines[0] == ",".join(sample_data.RECORD_FIELDS)
    assert len(lines) == 1 + 50 + 3
    parsed = list(csv.DictReader(io.StringIO("\n".join([lines[0], *[ln for ln in lines[1:] if "CTR-0" in ln]]))))
    assert [p["doc_id"] for p in parsed] == [r["doc_id"] for r in recs]


def test_jsonl_malformed_lines_do_not_parse_as_records() -> None:
    recs = sample_data.generate_records(20, seed=4, today=TODAY)
    lines = sample_data.records_to_text(recs, "jsonl", malformed_lines=3, seed=4).splitlines()
    assert len(lines) == 23
    good = []
    for ln in lines:
        try:
            obj = json.loads(ln)
        except json.JSONDecodeError:
            continue
        if isinstance(obj, dict) and "text" in obj:
            good.append(obj["doc_id"])
    assert good == [r["doc_id"] for r in recs]


def test_clauses_are_labelled_and_grouped_by_document() -> None:
    clauses = sample_data.generate_clauses(80, seed=0)
    assert {c["label"] for c in clauses} == {"HighRisk", "LowRisk"}
    assert len({c["source_doc"] for c in clauses}) == 10


def test_cli_sample_records(tmp_path: Path) -> None:
    out = tmp_path / "raw" / "contracts.jsonl"
    result = CliRunner().invoke(app, ["sample", "records", "--out", str(out), "--rows", "30", "--format", "jsonl"])
    assert result.exit_code == 0, result.output
    assert "wrote 30 records" in result.output
    assert len(out.read_text().splitlines()) == 30


def test_cli_help_lists_subcommands() -> None:
    result = CliRunner().invoke(app, ["--help"])
    assert result.exit_code == 0
    assert "sample" in result.output
