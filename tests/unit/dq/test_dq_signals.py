"""CloudWatch metric entries and alert text derived from results: counts and rule text, never records."""

from __future__ import annotations

from typing import Any

import pytest

from dq_platform.dq.signals import NAMESPACE, alert_summary, metrics_from_results

pytestmark = pytest.mark.unit

RESULTS: dict[str, Any] = {
    "run_id": "dq-0123456789abcdef",
    "ruleset": "contracts",
    "engine": "duckdb",
    "started_at": "2025-06-01T12:00:00+00:00",
    "finished_at": "2025-06-01T12:00:05+00:00",
    "status": "HALTED",
    "score": 0.5,
    "rows_in": 10,
    "rows_processed": 0,
    "rows_quarantined": 10,
    "ruleOutcomes": [
        {
            "Rule": "RowCount > 100",
            "Outcome": "Failed",
            "FailureReason": "Value: 10 does not meet the constraint > 100",
            "EvaluatedMetrics": {"Dataset.*.RowCount": 10.0},
            "Action": "halt",
            "RowsFailed": None,
        },
        {
            "Rule": 'IsComplete "doc_id"',
            "Outcome": "Passed",
            "FailureReason": None,
            "EvaluatedMetrics": {},
            "Action": "quarantine",
            "RowsFailed": 0,
        },
        {
            "Rule": 'IsComplete "nope"',
            "Outcome": "Error",
            "FailureReason": "column 'nope' not found",
            "EvaluatedMetrics": {},
            "Action": "warn",
            "RowsFailed": None,
        },
    ],
    "halted_by": ["RowCount > 100"],
    "quarantine_reasons": {"parse: value_amount: not a number": 2},
    "outputs": {"processed": None, "quarantine": None, "results": "/x/results.json"},
}


def test_metrics_entries() -> None:
    data = metrics_from_results(RESULTS)
    assert NAMESPACE == "DQPlatform/DataQuality"
    by_name = {(d["MetricName"], len(d["Dimensions"]), d["Dimensions"][-1]["Value"]): d for d in data}
    ruleset = [{"Name": "Ruleset", "Value": "contracts"}]
    assert by_name[("Score", 1, "contracts")]["Value"] == 0.5
    assert by_name[("Score", 1, "contracts")]["Dimensions"] == ruleset
    assert by_name[("RowsIn", 1, "contracts")]["Value"] == 10.0
    assert by_name[("RowsProcessed", 1, "contracts")]["Value"] == 0.0
    assert by_name[("RowsQuarantined", 1, "contracts")]["Unit"] == "Count"
    assert by_name[("RuleFailed", 1, "contracts")]["Value"] == 2.0
    assert by_name[("RuleFailed", 2, "RowCount > 100")]["Dimensions"] == [
        *ruleset,
        {"Name": "Rule", "Value": "RowCount > 100"},
    ]
    assert ("RuleFailed", 2, 'IsComplete "nope"') in by_name
    assert ("RuleFailed", 2, 'IsComplete "doc_id"') not in by_name
    assert all(d["Timestamp"] == "2025-06-01T12:00:05+00:00" for d in data)
    assert len(data) == 7


def test_metrics_tolerate_partial_results() -> None:
    data = metrics_from_results({"status": "FAILED"})
    assert [d["MetricName"] for d in data] == ["Score", "RowsIn", "RowsProcessed", "RowsQuarantined", "RuleFailed"]
    assert data[0]["Dimensions"] == [{"Name": "Ruleset", "Value": "unknown"}]


def test_long_rule_dimension_is_truncated() -> None:
    long_rule = 'CustomSql "' + "x" * 2000 + '"'
    res = {**RESULTS, "ruleOutcomes": [{"Rule": long_rule, "Outcome": "Failed", "Action": "warn"}]}
    per_rule = [d for d in metrics_from_results(res) if len(d["Dimensions"]) == 2]
    assert len(per_rule[0]["Dimensions"][1]["Value"]) == 1024


def test_alert_summary() -> None:
    text = alert_summary(RESULTS)
    assert text.splitlines()[0] == "Data-quality run dq-0123456789abcdef on ruleset contracts: HALTED"
    assert "Score: 0.5000 (1 of 3 rules passed)" in text
    assert "Rows: in 10, processed 0, quarantined 10" in text
    assert "Halted by: RowCount > 100" in text
    assert "[Failed/halt] RowCount > 100: Value: 10 does not meet the constraint > 100" in text
    assert "[Error/warn] IsComplete \"nope\": column 'nope' not found" in text
    assert "parse: value_amount: not a number: 2" in text
    assert 'IsComplete "doc_id"' not in text  # passed rules are not listed


def test_record_count_signals_only_when_the_results_carry_them() -> None:
    names = [m["MetricName"] for m in metrics_from_results(RESULTS)]
    assert "RecordsCounted" not in names
    assert "RecordCountMismatch" not in names
    assert "Records counted" not in alert_summary(RESULTS)
    failed = {
        **RESULTS,
        "status": "FAILED",
        "records_counted": 11,
        "records_check": "FAILED",
        "error": "record count mismatch: x",
    }
    run_level = {m["MetricName"]: m["Value"] for m in metrics_from_results(failed) if len(m["Dimensions"]) == 1}
    assert (run_level["RecordsCounted"], run_level["RecordCountMismatch"]) == (11.0, 1.0)
    text = alert_summary(failed)
    assert "Records counted in the input: 11 (DOES NOT MATCH the rows: nothing promoted)" in text
    assert "Error: record count mismatch: x" in text
