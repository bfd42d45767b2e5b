"""CloudWatch metrics and alert text derived from a DQ run's results (`dq.results.RunResults`).

Pure functions so the `dq_results` function, the Glue job and tests share one definition of what a run
reports. Neither output ever carries record text: only counts, rule text (DQDL) and run ids.

Both take a `RunResults` or the results document itself, and tolerate a partial document (a run that
failed before writing some fields still reports what it has).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dq_platform.dq.results import RunResults

Results = RunResults | Mapping[str, Any]

NAMESPACE = "DQPlatform/DataQuality"
# CloudWatch caps a dimension value at 1024 characters; DQDL rule text can be longer.
_MAX_DIMENSION_VALUE = 1024
_MAX_ALERT_RULES = 20
_MAX_REASON_CHARS = 300


def _num(value: Any, default: float = 0.0) -> float:
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, int | float):
        return float(value)
    return default


def _dim(value: str) -> str:
    clean = value.strip() or "unknown"
    return clean if len(clean) <= _MAX_DIMENSION_VALUE else clean[: _MAX_DIMENSION_VALUE - 3] + "..."


def _document(results: Results) -> Mapping[str, Any]:
    return results.to_document() if isinstance(results, RunResults) else results


def _failed_outcomes(results: Mapping[str, Any]) -> list[dict[str, Any]]:
    outcomes = results.get("ruleOutcomes") or []
    return [o for o in outcomes if isinstance(o, dict) and o.get("Outcome") in ("Failed", "Error")]


def metrics_from_results(run_results: Results) -> list[dict[str, Any]]:
    """`MetricData` entries for `PutMetricData` in namespace `DQPlatform/DataQuality`.

    Run-level metrics carry the `Ruleset` dimension; one `RuleFailed` entry per failed or errored rule
    adds the `Rule` dimension, and a run-level `RuleFailed` (the count) makes a single alarm possible.
    `RecordsCounted` (the independent count) and `RecordCountMismatch` (1 when the run's rows disagreed
    with it) come from results that carry them.
    Callers batch the list (PutMetricData accepts at most 1000 entries per call).
    """
    results = _document(run_results)
    ruleset = _dim(str(results.get("ruleset") or "unknown"))
    base = [{"Name": "Ruleset", "Value": ruleset}]
    stamp: dict[str, Any] = {}
    finished = results.get("finished_at")
    if isinstance(finished, str) and finished:
        stamp["Timestamp"] = finished
    failed = _failed_outcomes(results)

    def entry(name: str, value: float, unit: str, dims: list[dict[str, str]]) -> dict[str, Any]:
        return {"MetricName": name, "Dimensions": dims, "Value": value, "Unit": unit, **stamp}

    data = [
        entry("Score", _num(results.get("score")), "None", base),
        entry("RowsIn", _num(results.get("rows_in")), "Count", base),
        entry("RowsProcessed", _num(results.get("rows_processed")), "Count", base),
        entry("RowsQuarantined", _num(results.get("rows_quarantined")), "Count", base),
        entry("RuleFailed", float(len(failed)), "Count", base),
    ]
    if isinstance(results.get("records_counted"), int):
        data.append(entry("RecordsCounted", _num(results.get("records_counted")), "Count", base))
    if results.get("records_check") in ("PASSED", "FAILED"):
        mismatch = 1.0 if results.get("records_check") == "FAILED" else 0.0
        data.append(entry("RecordCountMismatch", mismatch, "Count", base))
    seen: set[str] = set()
    for outcome in failed:
        rule = _dim(str(outcome.get("Rule") or "unknown"))
        if rule in seen:
            continue
        seen.add(rule)
        data.append(entry("RuleFailed", 1.0, "Count", [*base, {"Name": "Rule", "Value": rule}]))
    return data


def _clip(text: str, limit: int) -> str:
    one_line = " ".join(text.split())
    return one_line if len(one_line) <= limit else one_line[: limit - 3] + "..."


def alert_summary(run_results: Results) -> str:
    """Plain-text alert body for SNS: status, score, row counts, failing rules; never record text."""
    results = _document(run_results)
    outcomes = [o for o in (results.get("ruleOutcomes") or []) if isinstance(o, dict)]
    failed = _failed_outcomes(results)
    passed = sum(1 for o in outcomes if o.get("Outcome") == "Passed")
    score = _num(results.get("score"))
    run_id, ruleset = results.get("run_id", "unknown"), results.get("ruleset", "unknown")
    rows_in, rows_ok, rows_bad = (int(_num(results.get(k))) for k in ("rows_in", "rows_processed", "rows_quarantined"))
    lines = [
        f"Data-quality run {run_id} on ruleset {ruleset}: {results.get('status', 'UNKNOWN')}",
        f"Engine: {results.get('engine', 'unknown')}",
        f"Score: {score:.4f} ({passed} of {len(outcomes)} rules passed)",
        f"Rows: in {rows_in}, processed {rows_ok}, quarantined {rows_bad}",
    ]
    counted, check = results.get("records_counted"), results.get("records_check")
    if isinstance(counted, int) and check in ("PASSED", "FAILED"):
        verdict = "matches the rows" if check == "PASSED" else "DOES NOT MATCH the rows: nothing promoted"
        lines.append(f"Records counted in the input: {counted} ({verdict})")
    error = results.get("error")
    if error:
        lines.append(f"Error: {_clip(str(error), _MAX_REASON_CHARS)}")
    halted = [str(r) for r in (results.get("halted_by") or [])]
    if halted:
        lines.append("Halted by: " + "; ".join(_clip(r, 200) for r in halted))
    if failed:
        lines.append(f"Failed rules ({len(failed)}):")
        for outcome in failed[:_MAX_ALERT_RULES]:
            rows = outcome.get("RowsFailed")
            rows_text = f", rows failed {rows}" if isinstance(rows, int) else ""
            reason = outcome.get("FailureReason")
            reason_text = f": {_clip(str(reason), _MAX_REASON_CHARS)}" if reason else ""
            lines.append(
                f"  - [{outcome.get('Outcome')}/{outcome.get('Action', 'warn')}] "
                f"{_clip(str(outcome.get('Rule', '')), 200)}{rows_text}{reason_text}"
            )
        if len(failed) > _MAX_ALERT_RULES:
            lines.append(f"  ... and {len(failed) - _MAX_ALERT_RULES} more")
    reasons = results.get("quarantine_reasons") or {}
    if isinstance(reasons, dict) and reasons:
        lines.append("Quarantine reasons:")
        top = sorted(reasons.items(), key=lambda kv: (-_num(kv[1]), str(kv[0])))
        for reason, count in top[:_MAX_ALERT_RULES]:
            lines.append(f"  - {_clip(str(reason), 200)}: {int(_num(count))}")
    outputs = results.get("outputs") or {}
    if isinstance(outputs, dict) and outputs.get("results"):
        lines.append(f"Results: {outputs['results']}")
    return "\n".join(lines)
