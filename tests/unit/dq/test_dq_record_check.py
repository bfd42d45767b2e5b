"""The record check: every run states the independent record count next to rows_in, and a run whose
rows read, evaluated or written differ from it fails with nothing promoted (issue #19)."""

from __future__ import annotations

import json
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from typer.testing import CliRunner

from dq_platform.cli import app
from dq_platform.dq import readers
from dq_platform.dq.engines.duckdb_engine import DuckDBEngine
from dq_platform.dq.pipeline import RunOutputs, run
from dq_platform.dq.signals import alert_summary, metrics_from_results
from dq_platform.sample_data import generate_records, write_records

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[3]
RULESET = (ROOT / "glue" / "rulesets" / "contracts.dqdl").read_text()
NOW = datetime(2025, 6, 1, 12, 0, 0)
DAY = date(2025, 6, 1)


def _run(inputs: list[Path], out: Path, **kwargs: Any) -> dict[str, Any]:
    outputs = RunOutputs(str(out / "processed"), str(out / "quarantine"), str(out / "results.json"))
    return run(RULESET, "contracts", inputs, outputs, DuckDBEngine(), now=NOW, ingest_date=DAY, **kwargs).results


def _files(out: Path) -> dict[Path, bytes]:
    return {p: p.read_bytes() for p in sorted(out.rglob("*.parquet"))}


@pytest.fixture
def source(tmp_path: Path) -> Path:
    records = generate_records(120, seed=4, defect_rate=0.1, today=DAY)
    return write_records(tmp_path / "in.csv", records, "csv", malformed_lines=3, seed=2)


def test_results_state_the_count_next_to_rows_in(source: Path, tmp_path: Path) -> None:
    res = _run([source], tmp_path / "out")
    assert res["status"] == "SUCCEEDED"
    assert (res["rows_in"], res["records_counted"], res["records_check"]) == (123, 123, "PASSED")
    assert res["max_record_lines"] == 100
    keys = list(res)
    assert keys.index("records_counted") == keys.index("rows_quarantined") + 1
    metrics = {m["MetricName"]: m["Value"] for m in metrics_from_results(res) if len(m["Dimensions"]) == 1}
    assert (metrics["RecordsCounted"], metrics["RecordCountMismatch"]) == (123.0, 0.0)
    assert "Records counted in the input: 123 (matches the rows)" in alert_summary(res)


def _previous_run(source: Path, out: Path) -> dict[Path, bytes]:
    first = _run([source], out)
    assert first["status"] == "SUCCEEDED"
    files = _files(out)
    assert len(files) == 2
    return files


def _assert_failed_and_untouched(res: dict[str, Any], out: Path, before: dict[Path, bytes], says: str) -> None:
    assert res["status"] == "FAILED"
    assert res["records_check"] == "FAILED"
    assert says in res["error"]
    assert res["rows_processed"] == 0
    assert res["rows_in"] == res["rows_processed"] + res["rows_quarantined"]
    assert res["outputs"]["processed"] is None
    assert res["outputs"]["quarantine"] is None
    assert _files(out) == before  # previous outputs intact, nothing new promoted
    assert not (out / "_staging").exists()
    assert json.loads((out / "results.json").read_text()) == res
    metrics = {m["MetricName"]: m["Value"] for m in metrics_from_results(res) if len(m["Dimensions"]) == 1}
    assert metrics["RecordCountMismatch"] == 1.0
    alert = alert_summary(res)
    assert "DOES NOT MATCH the rows: nothing promoted" in alert
    assert says in alert


def test_reader_rows_differing_from_the_count_fail_before_evaluating(
    source: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out"
    before = _previous_run(source, out)
    source.write_bytes(
        source.read_bytes() + b"CTR-NEW,T,P,MSA,2024-01-01,2025-01-01,5,USD,UK,Some text here.,LowRisk\n"
    )
    real = readers.count_records
    monkeypatch.setattr(readers, "count_records", lambda *a: real(*a) + 1)  # the count finds one more record
    res = _run([source], out)
    _assert_failed_and_untouched(res, out, before, "in.csv: read 124, counted 125")
    assert (res["rows_in"], res["records_counted"]) == (124, 125)
    assert res["ruleOutcomes"] == []


def test_engine_losing_a_row_fails_the_run(source: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "out"
    before = _previous_run(source, out)
    source.write_bytes(
        source.read_bytes() + b"CTR-NEW,T,P,MSA,2024-01-01,2025-01-01,5,USD,UK,Some text here.,LowRisk\n"
    )
    load = DuckDBEngine.load

    def lossy(self: DuckDBEngine, view: str, table: pa.Table, staging: Path) -> None:
        load(self, view, table.slice(0, table.num_rows - 1) if view == "parsed" else table, staging)

    monkeypatch.setattr(DuckDBEngine, "load", lossy)
    res = _run([source], out)
    _assert_failed_and_untouched(res, out, before, "the engine evaluated 123 rows, the input has 124 records")
    assert res["records_counted"] == 124
    assert res["ruleOutcomes"]  # evaluated, so the outcomes are reported


def test_outputs_missing_a_row_are_not_promoted(source: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "out"
    before = _previous_run(source, out)
    source.write_bytes(
        source.read_bytes() + b"CTR-NEW,T,P,MSA,2024-01-01,2025-01-01,5,USD,UK,Some text here.,LowRisk\n"
    )
    write = DuckDBEngine.write_parquet

    def short(self: DuckDBEngine, sql: str, *args: Any, **kwargs: Any) -> list[str]:
        return write(self, f"SELECT * FROM ({sql}) LIMIT 5", *args, **kwargs)

    monkeypatch.setattr(DuckDBEngine, "write_parquet", short)
    res = _run([source], out)
    _assert_failed_and_untouched(res, out, before, "the outputs hold 5 processed and 5 quarantined rows")


def test_cli_exits_4_and_says_why(source: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = readers.count_records
    monkeypatch.setattr(readers, "count_records", lambda *a: real(*a) - 1)
    out = tmp_path / "out"
    args = ["dq", "run", "-r", str(ROOT / "glue/rulesets/contracts.dqdl"), "-i", str(source), "-o", str(out), "-q"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 4, result.output
    assert "FAILED: rows in 123, processed 0, quarantined 123; records counted 122 (failed)" in result.output
    assert "error: record count mismatch" in result.output
    assert "nothing promoted" in result.output
    assert not list(out.rglob("*.parquet"))


def test_max_record_lines_is_stated_and_names_the_run(tmp_path: Path) -> None:
    records = generate_records(10, seed=1, defect_rate=0.0, today=DAY)
    src = write_records(tmp_path / "in.csv", records, "csv")
    default = _run([src], tmp_path / "a")
    one = _run([src], tmp_path / "b", max_record_lines=1)
    assert (one["max_record_lines"], default["max_record_lines"]) == (1, 100)
    assert one["run_id"] != default["run_id"]  # other boundaries, other output names
    assert one["rows_in"] == default["rows_in"] == one["records_counted"] == 10
