from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from dq_platform.reports.dq_report import load_quarantine_examples, write_dq_report

pytestmark = pytest.mark.unit
CANARY = "CANARY-7f3a91-secret-clause-text"


def _results(run_id: str, score: float, finished: str) -> dict[str, object]:
    return {
        "run_id": run_id,
        "ruleset": "contracts",
        "engine": "duckdb",
        "started_at": finished,
        "finished_at": finished,
        "status": "SUCCEEDED",
        "score": score,
        "rows_in": 10,
        "rows_processed": 8,
        "rows_quarantined": 2,
        "ruleOutcomes": [
            {
                "Rule": 'ColumnValues "currency" in ["USD","EUR"]',
                "Outcome": "Failed",
                "FailureReason": "Value: usd does not meet the constraint requirement",
                "EvaluatedMetrics": {"Column.currency.ColumnValues.Compliance": 0.8},
                "Action": "quarantine",
                "RowsFailed": 2,
            },
            {
                "Rule": "RowCount > 0",
                "Outcome": "Passed",
                "FailureReason": None,
                "EvaluatedMetrics": {"Dataset.*.RowCount": 10.0},
                "Action": "halt",
                "RowsFailed": None,
            },
        ],
        "halted_by": [],
        "quarantine_reasons": {'ColumnValues "currency" in ["USD","EUR"]': 2},
        "outputs": {},
    }


def test_report_shows_outcomes_examples_and_trend_without_text(tmp_path: Path) -> None:
    qdir = tmp_path / "quarantine" / "ingest_date=2026-11-25"
    qdir.mkdir(parents=True)
    table = pa.table(
        {
            "doc_id": ["CTR-1", "CTR-2"],
            "text": [CANARY, CANARY],
            "_raw_record": [CANARY, CANARY],
            "DataQualityRulesFail": [['ColumnValues "currency" in ["USD","EUR"]']] * 2,
            "DataQualityQuarantineReasons": [["currency 'usd' not in allowed set"]] * 2,
        }
    )
    pq.write_table(table, qdir / "part-0.parquet")
    old = tmp_path / "old.json"
    old.write_text(json.dumps(_results("run-0", 0.5, "2026-11-24T10:00:00Z")))
    cur = tmp_path / "results.json"
    cur.write_text(json.dumps(_results("run-1", 0.9, "2026-11-25T10:00:00Z")))

    out = write_dq_report(cur, tmp_path / "report.html", tmp_path / "quarantine", [old])
    page = out.read_text()

    assert CANARY not in page
    assert "CTR-1" in page
    assert "CTR-2" in page
    assert "currency &#x27;usd&#x27; not in allowed set" in page
    assert "ColumnValues &quot;currency&quot; in [&quot;USD&quot;,&quot;EUR&quot;]" in page
    assert "<polyline" in page  # two runs give a trend line
    assert page.index("run-0") < page.index("run-1", page.index("Trend across runs"))
    assert "80.0%" in page  # row pass rate of the failing rule: 1 - 2/10


def test_examples_read_ids_and_reasons_only(tmp_path: Path) -> None:
    pq.write_table(
        pa.table({"doc_id": ["A"], "text": [CANARY], "DataQualityRulesFail": [["r1"]]}), tmp_path / "q.parquet"
    )
    examples = load_quarantine_examples(tmp_path)
    assert [(e.doc_id, e.failed_rules, e.reasons) for e in examples] == [("A", ["r1"], [])]


def test_missing_quarantine_gives_no_examples(tmp_path: Path) -> None:
    assert load_quarantine_examples(tmp_path / "absent") == []


def test_not_a_results_file_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "x.json"
    bad.write_text("{}")
    with pytest.raises(ValueError, match="no ruleOutcomes"):
        write_dq_report(bad, tmp_path / "r.html")


def test_report_shows_the_independent_record_count() -> None:
    from dq_platform.reports.dq_report import render_dq_report

    passed = {**_results("r1", 0.5, "2026-11-25T10:00:00"), "records_counted": 10, "records_check": "PASSED"}
    assert "records counted<b class='status-SUCCEEDED'>10</b>matches rows in" in render_dq_report(passed)
    failed = {**passed, "status": "FAILED", "records_counted": 12, "records_check": "FAILED"}
    assert "records counted<b class='status-FAILED'>12</b>does not match rows in" in render_dq_report(failed)
    assert "records counted" not in render_dq_report(_results("r0", 0.5, "2026-11-25T09:00:00"))
