"""The Glue job entry point on local Spark 3.5 with file paths (Glue's own service cannot run here)."""

from __future__ import annotations

import json
from datetime import date, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import pyarrow.parquet as pq
import pytest

from dq_platform.sample_data import generate_records, write_records
from tests.support.aws import load_module

pytestmark = [pytest.mark.integration, pytest.mark.spark]

ROOT = Path(__file__).resolve().parents[3]


def _job() -> ModuleType:
    return load_module("contracts_dq", ROOT / "glue/jobs/contracts_dq.py")


@pytest.mark.parametrize("row_outcomes", [None, "full"])
def test_glue_job_main_on_local_spark(spark: Any, tmp_path: Path, row_outcomes: str | None) -> None:
    job = _job()
    today = date.today()
    records = generate_records(120, seed=5, defect_rate=0.3, today=today)
    src = write_records(tmp_path / "raw/incoming/batch.csv", records, "csv", malformed_lines=2)
    argv = [
        "contracts_dq.py",
        "--JOB_NAME",
        "enterprise-production-contracts-dq",
        "--ruleset_uri",
        str(ROOT / "glue/rulesets/contracts.dqdl"),
        "--input_uri",
        str(src),
        "--processed_uri",
        str(tmp_path / "processed/contracts"),
        "--quarantine_uri",
        str(tmp_path / "processed/quarantine"),
        "--results_uri",
        str(tmp_path / "analytics/dq-results/{run_id}/results.json"),
        "--ingest_date",
        "2025-06-01",
        *(["--row_outcomes", row_outcomes] if row_outcomes else []),
    ]
    results = job.main(argv, spark=spark)
    stored = json.loads((tmp_path / f"analytics/dq-results/{results['run_id']}/results.json").read_text())
    assert stored == results
    assert results["engine"] == "spark"
    assert results["status"] == "SUCCEEDED"
    assert results["rows_in"] == 122 == results["rows_processed"] + results["rows_quarantined"]
    processed = pq.read_table(tmp_path / "processed/contracts/ingest_date=2025-06-01")
    quarantine = pq.read_table(tmp_path / "processed/quarantine/ingest_date=2025-06-01")
    assert processed.num_rows == results["rows_processed"]
    assert quarantine.num_rows == results["rows_quarantined"]
    # compact processed rows (the default), Glue's four row-level columns on quarantine rows (and on
    # processed rows with --row_outcomes full)
    assert {"DataQualityRulesFail", "DataQualityEvaluationResult"} <= set(processed.column_names)
    full = {"DataQualityRulesPass", "DataQualityRulesSkip"} <= set(processed.column_names)
    assert full == (row_outcomes == "full")
    assert results["row_outcomes"]["processed"] == (row_outcomes or "compact")
    assert {
        "DataQualityRulesPass",
        "DataQualityRulesFail",
        "DataQualityRulesSkip",
        "DataQualityEvaluationResult",
    } <= set(quarantine.column_names)
    names = [p.name for p in (tmp_path / "processed/contracts/ingest_date=2025-06-01").iterdir()]
    assert names == [f"part-{results['run_id'][3:]}-00000.parquet"]


def test_evaluate_frame_is_a_pure_transform(spark: Any) -> None:
    job = _job()
    rows = [("A1", "USD", 10.0), ("A1", "XXX", 20.0), ("A3", None, -5.0)]
    df = spark.createDataFrame(rows, "doc_id string, currency string, value_amount double")
    rules = (
        'Rules = [ IsUnique "doc_id" labels=["action"="quarantine"], '
        'ColumnValues "currency" in ["USD", "EUR"], ColumnValues "value_amount" > 0 labels=["action"="quarantine"] ]'
    )
    processed, quarantine, ev = job.evaluate_frame(spark, df, rules, datetime(2025, 6, 1))
    assert [r["doc_id"] for r in processed.collect()] == []
    assert "DataQualityRulesPass" not in processed.columns
    assert "DataQualityRulesPass" in quarantine.columns
    full, _, _ = job.evaluate_frame(spark, df, rules, datetime(2025, 6, 1), row_outcomes="full")
    assert "DataQualityRulesPass" in full.columns
    q = {r["doc_id"]: r for r in quarantine.collect()}
    assert sorted(q["A3"]["DataQualityQuarantineReasons"]) == ['ColumnValues "value_amount" > 0']
    assert [o["Outcome"] for o in ev.outcomes] == ["Failed", "Failed", "Failed"]
    assert ev.outcomes[1]["RowsFailed"] == 2


def _argv(tmp_path: Path, src: Path) -> list[str]:
    return [
        "contracts_dq.py",
        "--ruleset_uri",
        str(ROOT / "glue/rulesets/contracts.dqdl"),
        "--input_uri",
        str(src),
        "--processed_uri",
        str(tmp_path / "out/processed"),
        "--quarantine_uri",
        str(tmp_path / "out/quarantine"),
        "--results_uri",
        str(tmp_path / "analytics/dq-results/{run_id}/results.json"),
        "--ingest_date",
        "2025-06-01",
    ]


def test_glue_job_quarantines_an_unterminated_quote_line_alone(spark: Any, tmp_path: Path) -> None:
    from tests.unit.dq.broken_inputs import assert_every_record_once, build

    f = build(tmp_path / "raw/batch.csv", "csv", 150, [(1, "unterminated-quote"), (90, "quote-to-end")], seed=8)
    job = _job()
    results = job.main([*_argv(tmp_path, f.path), "--max_record_lines", "50"], spark=spark)
    assert results["max_record_lines"] == 50
    assert_every_record_once([f], results, tmp_path / "out")
    assert results["rows_in"] == results["records_counted"] == 152


def test_glue_job_fails_when_the_rows_differ_from_the_count(
    spark: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dq_platform.dq import readers

    records = generate_records(40, seed=9, defect_rate=0.0)
    src = write_records(tmp_path / "raw/batch.csv", records, "csv")
    real = readers.count_records
    monkeypatch.setattr(readers, "count_records", lambda *a: real(*a) + 2)
    job = _job()
    with pytest.raises(job.RecordCheckError, match=r"batch\.csv: read 40, counted 42"):
        job.main(_argv(tmp_path, src), spark=spark)
    (written,) = (tmp_path / "analytics/dq-results").rglob("results.json")
    results = json.loads(written.read_text())
    assert (results["status"], results["records_check"], results["records_counted"]) == ("FAILED", "FAILED", 42)
    assert not list(tmp_path.rglob("*.parquet"))  # nothing promoted, nothing left in staging
