"""The dq_results Lambda handler, run for real against moto S3 and moto CloudWatch (in-process).

The state-machine test drives the same function through moto's canned Lambda responses; this is
where its code is exercised: reading results.json, publishing metrics, building the summary.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import boto3
import pytest
from moto import mock_aws
from pydantic import ValidationError

from tests.support.aws import load_module

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[3]
APP = REPO / "functions" / "dq_results" / "app.py"
BUCKET = "enterprise-test-analytics"
REGION = "eu-west-1"
RUN_ID = "run-0001"
RESULTS_KEY = f"dq-results/{RUN_ID}/results.json"
RESULTS_URI = f"s3://{BUCKET}/{RESULTS_KEY}"


@dataclass
class LambdaContext:
    """The runtime's context object: the four attributes Powertools Logger reads."""

    function_name: str = "enterprise-test-dq-results"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = f"arn:aws:lambda:{REGION}:123456789012:function:enterprise-test-dq-results"
    aws_request_id: str = "6f1c2a3e-0000-4000-8000-000000000001"


@pytest.fixture
def app(monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleType]:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "RESULTS_BUCKET": BUCKET,
        "ALERT_PREFIX": "enterprise-test",
        "POWERTOOLS_SERVICE_NAME": "dq-results",
        "POWERTOOLS_TRACE_DISABLED": "true",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        module = load_module("dq_results_app", APP)
        boto3.client("s3", region_name=REGION).create_bucket(
            Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION}
        )
        yield module
        for cached in (module.settings, module.s3_client, module.cloudwatch_client):
            cached.cache_clear()


def _outcome(rule: str, outcome: str, action: str = "warn", rows: int | None = None) -> dict[str, Any]:
    return {
        "Rule": rule,
        "Outcome": outcome,
        "FailureReason": None if outcome == "Passed" else f"{rule} did not hold",
        "EvaluatedMetrics": {"Column.value_amount.Minimum": 0.0},
        "Action": action,
        "RowsFailed": rows,
    }


def results_document(
    status: str = "SUCCEEDED", score: float = 0.95, failed_rules: int = 1, passed_rules: int = 19
) -> dict[str, Any]:
    now = datetime.now(UTC)
    outcomes = [_outcome(f'ColumnLength "title" <= {100 + i}', "Passed") for i in range(passed_rules)]
    outcomes += [
        _outcome(f'ColumnValues "currency" in ["EUR", "USD", "GBP", "X{i}"]', "Failed", "quarantine", 3)
        for i in range(failed_rules)
    ]
    return {
        "run_id": RUN_ID,
        "ruleset": "contracts",
        "engine": "spark",
        "started_at": (now - timedelta(minutes=3)).isoformat(),
        "finished_at": now.isoformat(),
        "status": status,
        "score": score,
        "rows_in": 1000,
        "rows_processed": 970,
        "rows_quarantined": 30,
        "ruleOutcomes": outcomes,
        "halted_by": ['RowCount > 5000 with labels=["action"="halt"]'] if status == "HALTED" else [],
        "quarantine_reasons": {'ColumnValues "currency"': 30},
        "outputs": {
            "processed": "s3://enterprise-test-processed/contracts/ingest_date=2025-01-01/",
            "quarantine": "s3://enterprise-test-processed/quarantine/ingest_date=2025-01-01/",
            "results": RESULTS_URI,
        },
    }


def put_results(document: dict[str, Any] | bytes) -> None:
    body = document if isinstance(document, bytes) else json.dumps(document).encode()
    boto3.client("s3", region_name=REGION).put_object(Bucket=BUCKET, Key=RESULTS_KEY, Body=body)


def request(**overrides: Any) -> dict[str, Any]:
    event = {
        "run_id": RUN_ID,
        "input_uri": "s3://enterprise-test-raw/incoming/batch-1.csv",
        "results_uri": RESULTS_URI,
        "score_threshold": 0.9,
        "glue_job_run_id": "jr_0123",
        "glue_job_run_state": "SUCCEEDED",
    }
    event.update(overrides)
    return event


def _metric_value(metric: str, dimensions: list[dict[str, str]], stat: str = "Maximum") -> list[float]:
    cloudwatch = boto3.client("cloudwatch", region_name=REGION)
    now = datetime.now(UTC)
    response = cloudwatch.get_metric_data(
        MetricDataQueries=[
            {
                "Id": "m",
                "MetricStat": {
                    "Metric": {"Namespace": "DQPlatform/DataQuality", "MetricName": metric, "Dimensions": dimensions},
                    "Period": 60,
                    "Stat": stat,
                },
            }
        ],
        StartTime=now - timedelta(minutes=10),
        EndTime=now + timedelta(minutes=10),
    )
    return [float(v) for v in response["MetricDataResults"][0]["Values"]]


def test_passing_run_publishes_metrics_and_returns_summary(app: ModuleType) -> None:
    put_results(results_document(score=0.95, failed_rules=1, passed_rules=19))

    summary = app.handler(request(), LambdaContext())

    assert summary["status"] == "SUCCEEDED"
    assert summary["score"] == pytest.approx(0.95)
    assert summary["below_threshold"] is False
    assert (summary["rows_in"], summary["rows_processed"], summary["rows_quarantined"]) == (1000, 970, 30)
    assert summary["rules_failed"] == 1
    assert summary["subject"] == "[enterprise-test] DQ PASSED: contracts score 0.950"
    assert "meets threshold" in summary["message"]
    ruleset = [{"Name": "Ruleset", "Value": "contracts"}]
    assert _metric_value("Score", ruleset) == [pytest.approx(0.95)]
    assert _metric_value("RowsIn", ruleset) == [1000.0]
    assert _metric_value("RowsProcessed", ruleset) == [970.0]
    assert _metric_value("RowsQuarantined", ruleset) == [30.0]
    per_rule = boto3.client("cloudwatch", region_name=REGION).list_metrics(
        Namespace="DQPlatform/DataQuality", MetricName="RuleFailed", Dimensions=[{"Name": "Rule"}]
    )["Metrics"]
    assert [d["Value"] for m in per_rule for d in m["Dimensions"] if d["Name"] == "Rule"] == [
        'ColumnValues "currency" in ["EUR", "USD", "GBP", "X0"]'
    ]
    assert summary["metrics_published"] == 6


def test_low_score_is_flagged_below_threshold(app: ModuleType) -> None:
    put_results(results_document(score=0.8, failed_rules=4, passed_rules=16))

    summary = app.handler(request(score_threshold=0.9), LambdaContext())

    assert summary["status"] == "SUCCEEDED"
    assert summary["below_threshold"] is True
    assert summary["subject"] == "[enterprise-test] DQ LOW SCORE: contracts score 0.800"
    assert "Threshold: 0.9000 (below threshold)" in summary["message"]
    assert "Failed rules (4):" in summary["message"]


def test_many_failed_rules_are_published_in_batches(app: ModuleType) -> None:
    put_results(results_document(score=0.2, failed_rules=400, passed_rules=100))

    summary = app.handler(request(), LambdaContext())

    assert summary["metrics_published"] == 405  # 5 run-level + one RuleFailed per distinct failed rule
    paginator = boto3.client("cloudwatch", region_name=REGION).get_paginator("list_metrics")
    rules = {
        d["Value"]
        for page in paginator.paginate(Namespace="DQPlatform/DataQuality", MetricName="RuleFailed")
        for m in page["Metrics"]
        for d in m["Dimensions"]
        if d["Name"] == "Rule"
    }
    assert len(rules) == 400
    assert _metric_value("RuleFailed", [{"Name": "Ruleset", "Value": "contracts"}]) == [400.0]


def test_halted_run_reports_halt_rule(app: ModuleType) -> None:
    put_results(results_document(status="HALTED", score=0.5))

    summary = app.handler(request(glue_job_run_state="FAILED"), LambdaContext())

    assert summary["status"] == "HALTED"
    assert summary["subject"].startswith("[enterprise-test] DQ HALTED: contracts")
    assert 'Halted by: RowCount > 5000 with labels=["action"="halt"]' in summary["message"]
    assert "Glue run: jr_0123 (FAILED)" in summary["message"]


def test_missing_results_after_failed_glue_run_is_a_failed_run(app: ModuleType) -> None:
    summary = app.handler(request(glue_job_run_state="FAILED"), LambdaContext())

    assert summary["status"] == "FAILED"
    assert summary["metrics_published"] == 0
    assert f"without writing {RESULTS_URI}" in summary["message"]
    metrics = boto3.client("cloudwatch", region_name=REGION).list_metrics(Namespace="DQPlatform/DataQuality")
    assert metrics["Metrics"] == []


def test_results_written_but_glue_run_failed_is_not_reported_as_success(app: ModuleType) -> None:
    put_results(results_document(status="SUCCEEDED", score=1.0, failed_rules=0, passed_rules=20))

    summary = app.handler(request(glue_job_run_state="TIMEOUT"), LambdaContext())

    assert summary["status"] == "FAILED"
    assert "Glue run ended TIMEOUT" in summary["message"]


def test_corrupt_results_raise_a_named_error(app: ModuleType) -> None:
    put_results(b'{"run_id": "run-0001", "status": "SUCC')
    with pytest.raises(app.ResultsError, match=r"results\.json is not a DQ results document: not JSON"):
        app.handler(request(), LambdaContext())


def test_results_missing_fields_name_them(app: ModuleType) -> None:
    document = results_document()
    del document["rows_in"]
    document["score"] = 1.7
    put_results(document)
    with pytest.raises(app.ResultsError) as excinfo:
        app.handler(request(), LambdaContext())
    assert "rows_in: Field required" in str(excinfo.value)
    assert "score: Input should be less than or equal to 1" in str(excinfo.value)


def test_results_outside_the_results_prefix_are_refused(app: ModuleType) -> None:
    with pytest.raises(ValueError, match=r"results_uri must be under s3://enterprise-test-analytics/dq-results/"):
        app.handler(request(results_uri="s3://someone-elses-bucket/dq-results/x/results.json"), LambdaContext())


def test_bad_request_is_rejected_with_the_field_name(app: ModuleType) -> None:
    with pytest.raises(ValidationError, match="score_threshold"):
        app.handler(request(score_threshold=3), LambdaContext())


def test_results_from_the_dq_engine_are_summarised_without_record_text(app: ModuleType, tmp_path: Path) -> None:
    """Contract check with the engine: a real DuckDB run's results.json goes through the handler."""
    from dq_platform.dq.engines import make_engine
    from dq_platform.dq.pipeline import RunOutputs, load_ruleset, run
    from dq_platform.sample_data import generate_records, write_records

    records = generate_records(300, seed=3, defect_rate=0.1)
    source = write_records(tmp_path / "contracts.csv", records, "csv", malformed_lines=2)
    name, text = load_ruleset(REPO / "glue" / "rulesets" / "contracts.dqdl")
    outputs = RunOutputs(str(tmp_path / "processed"), str(tmp_path / "quarantine"), str(tmp_path / "results.json"))
    results = run(text, name, [source], outputs, make_engine("duckdb")).results
    put_results((tmp_path / "results.json").read_bytes())

    summary = app.handler(request(score_threshold=1.0), LambdaContext())

    assert summary["ruleset"] == "contracts"
    assert summary["status"] == results["status"]
    assert summary["score"] == pytest.approx(results["score"])
    assert summary["rows_in"] == results["rows_in"] == 302
    assert summary["rows_in"] == summary["rows_processed"] + summary["rows_quarantined"]
    assert (summary["records_counted"], summary["records_check"]) == (302, "PASSED")
    assert "Records counted in the input: 302 (matches the rows)" in summary["message"]
    ruleset = [{"Name": "Ruleset", "Value": "contracts"}]
    assert _metric_value("RowsQuarantined", ruleset) == [float(results["rows_quarantined"])]
    published = json.dumps(summary)
    texts = [r["text"] for r in records if isinstance(r.get("text"), str) and len(r["text"]) > 30]
    assert texts
    assert not [t for t in texts if t in published or t[:30] in published]


def test_record_count_mismatch_alerts_as_a_failed_run(app: ModuleType) -> None:
    document = results_document()
    document.update(
        status="FAILED",
        rows_processed=0,
        rows_quarantined=1000,
        records_counted=1002,
        records_check="FAILED",
        error="record count mismatch: the reader's rows differ from the records counted in the input "
        "(batch-1.csv: read 1000, counted 1002)",
    )
    put_results(document)

    summary = app.handler(request(), LambdaContext())

    assert summary["status"] == "FAILED"
    assert (summary["records_counted"], summary["records_check"]) == (1002, "FAILED")
    assert summary["subject"].startswith("[enterprise-test] DQ FAILED: contracts")
    assert "Records counted in the input: 1002 (DOES NOT MATCH the rows: nothing promoted)" in summary["message"]
    assert "batch-1.csv: read 1000, counted 1002" in summary["message"]
    ruleset = [{"Name": "Ruleset", "Value": "contracts"}]
    assert _metric_value("RecordCountMismatch", ruleset) == [1.0]
    assert _metric_value("RecordsCounted", ruleset) == [1002.0]


def test_results_without_the_count_still_read(app: ModuleType) -> None:
    """Results written before the count existed carry no records_counted: read, nothing invented."""
    put_results(results_document())
    summary = app.handler(request(), LambdaContext())
    assert (summary["records_counted"], summary["records_check"]) == (None, None)
    assert "Records counted" not in summary["message"]


def test_subject_is_sns_safe() -> None:
    module = load_module("dq_results_app", APP)
    subject = module.make_subject("enterprise-production", "SUCCEEDED", "règles-" + "x" * 200, 0.5)
    assert len(subject) < 100
    assert subject.isascii()
    assert "\n" not in subject
