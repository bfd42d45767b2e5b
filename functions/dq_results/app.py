"""Step after the Glue DQ run: read its results.json, publish the run's metrics, hand back a summary.

The state machine decides on the alert from the summary's `status` and `score`; the summary's
`subject`/`message` are what the alert says. Everything here is counts, rule text and ids: the results
document never holds record text (CONTRACTS.md), and nothing in this module reads records.
Dependencies: boto3 (Lambda runtime), Powertools, pydantic and dq_platform (the domain layer).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from functools import cache
from typing import TYPE_CHECKING, Any, Literal

import boto3
from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.parser import event_parser
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from dq_platform.dq.signals import NAMESPACE, alert_summary, metrics_from_results
from dq_platform.storage import S3Storage, StorageError, split_s3_uri

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext
    from mypy_boto3_cloudwatch import CloudWatchClient
    from mypy_boto3_s3 import S3Client

logger = Logger()
tracer = Tracer()

RESULTS_PREFIX = "dq-results/"
# PutMetricData takes at most 1000 entries and 1 MB per call; rule dimensions can be 1 KB each.
METRIC_BATCH = 150
# SNS: subject under 100 characters, printable ASCII, no line breaks.
MAX_SUBJECT = 99


class ResultsError(Exception):
    """results.json exists but is not a results document; the state machine alerts with this name."""


class Settings(BaseModel):
    """Read once per container from the environment the template sets."""

    model_config = ConfigDict(frozen=True)

    results_bucket: str = Field(min_length=3)
    alert_prefix: str = Field(min_length=1, max_length=40)

    @classmethod
    def from_env(cls) -> Settings:
        try:
            return cls(
                results_bucket=os.environ.get("RESULTS_BUCKET", ""),
                alert_prefix=os.environ.get("ALERT_PREFIX", "dq-platform"),
            )
        except ValidationError as exc:
            raise RuntimeError(f"bad function configuration (RESULTS_BUCKET, ALERT_PREFIX): {exc}") from exc


class ResultsRequest(BaseModel):
    """What the state machine's ReadResults step sends."""

    model_config = ConfigDict(extra="ignore")

    run_id: str = Field(min_length=1, max_length=80, pattern=r"^[A-Za-z0-9_.:-]+$")
    input_uri: str = Field(min_length=1, max_length=2048)
    results_uri: str = Field(pattern=r"^s3://[^/]+/.+$")
    score_threshold: float = Field(ge=0.0, le=1.0)
    glue_job_run_id: str | None = None
    glue_job_run_state: str | None = None


class RunResults(BaseModel):
    """The fields of the results document (CONTRACTS.md) this step relies on; the rest passes through."""

    model_config = ConfigDict(extra="allow")

    run_id: str
    ruleset: str
    status: Literal["SUCCEEDED", "HALTED", "FAILED"]
    score: float = Field(ge=0.0, le=1.0)
    rows_in: int = Field(ge=0)
    rows_processed: int = Field(ge=0)
    rows_quarantined: int = Field(ge=0)
    # the independent record count (absent from results written before it existed)
    records_counted: int | None = Field(default=None, ge=0)
    records_check: Literal["PASSED", "FAILED", "NOT_RUN"] | None = None
    ruleOutcomes: list[dict[str, Any]] = Field(default_factory=list)  # noqa: N815 - Glue's field name


class RunSummary(BaseModel):
    """Compact output for the state machine (well under the 256 KB payload limit)."""

    run_id: str
    status: Literal["SUCCEEDED", "HALTED", "FAILED"]
    ruleset: str
    score: float
    score_threshold: float
    below_threshold: bool
    rows_in: int
    rows_processed: int
    rows_quarantined: int
    records_counted: int | None
    records_check: str | None
    rules_failed: int
    metrics_published: int
    results_uri: str
    subject: str
    message: str


@cache
def settings() -> Settings:
    return Settings.from_env()


@cache
def s3_client() -> S3Client:
    return boto3.client("s3")


@cache
def cloudwatch_client() -> CloudWatchClient:
    return boto3.client("cloudwatch")


def _batches(items: Sequence[dict[str, Any]], size: int) -> Iterator[Sequence[dict[str, Any]]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


@tracer.capture_method(capture_response=False)
def publish_metrics(results: dict[str, Any], cloudwatch: CloudWatchClient) -> int:
    data = metrics_from_results(results)
    for batch in _batches(data, METRIC_BATCH):
        cloudwatch.put_metric_data(Namespace=NAMESPACE, MetricData=batch)  # type: ignore[arg-type]
    return len(data)


def make_subject(prefix: str, status: str, ruleset: str, score: float | None) -> str:
    score_text = f" score {score:.3f}" if score is not None else ""
    raw = f"[{prefix}] DQ {status}: {ruleset}{score_text}"
    ascii_only = "".join(ch if 32 <= ord(ch) < 127 else "?" for ch in raw)
    return ascii_only if len(ascii_only) <= MAX_SUBJECT else ascii_only[: MAX_SUBJECT - 3] + "..."


def _verdict(status: str, below: bool) -> str:
    """The subject's headline: a finished run is PASSED or LOW SCORE, so alerts never read "SUCCEEDED"."""
    if status != "SUCCEEDED":
        return status
    return "LOW SCORE" if below else "PASSED"


def _footer(request: ResultsRequest, below: bool) -> list[str]:
    verdict = "below threshold" if below else "meets threshold"
    return [
        f"Threshold: {request.score_threshold:.4f} ({verdict})",
        f"Input: {request.input_uri}",
        f"Execution: {request.run_id}; Glue run: {request.glue_job_run_id or '-'} "
        f"({request.glue_job_run_state or 'unknown'})",
    ]


@tracer.capture_method(capture_response=False)
def read_results(request: ResultsRequest, cfg: Settings, s3: S3Client) -> dict[str, Any] | None:
    """The results document, or None when the run wrote none (the Glue job failed before the end)."""
    bucket, key = split_s3_uri(request.results_uri)
    if bucket != cfg.results_bucket or not key.startswith(RESULTS_PREFIX):
        raise ValueError(
            f"results_uri must be under s3://{cfg.results_bucket}/{RESULTS_PREFIX}, got {request.results_uri}"
        )
    try:
        raw = S3Storage(bucket, "", client=s3).read_bytes(key)
    except StorageError:
        return None
    try:
        document = json.loads(raw)
        RunResults.model_validate(document)
    except (json.JSONDecodeError, UnicodeDecodeError, ValidationError) as exc:
        # The pydantic message lists field names and types only; it never echoes the document.
        if isinstance(exc, ValidationError):
            errors = exc.errors(include_input=False, include_url=False)
            reason = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'document'}: {e['msg']}" for e in errors)
        else:
            reason = f"not JSON ({type(exc).__name__})"
        raise ResultsError(f"{request.results_uri} is not a DQ results document: {reason}") from None
    return dict(document)


def summarise_run(request: ResultsRequest, cfg: Settings, s3: S3Client, cloudwatch: CloudWatchClient) -> RunSummary:
    document = read_results(request, cfg, s3)
    glue_state = request.glue_job_run_state
    if document is None:
        state = glue_state or "unknown"
        message = "\n".join(
            [
                f"Data-quality run {request.run_id}: FAILED",
                f"The Glue run ended {state} without writing {request.results_uri}.",
                "The run did not finish (results.json is written last), so its outputs may be incomplete; "
                "re-running the same input completes them. The Glue error text is not copied here because "
                "it can quote input values: read it in the job run's logs.",
                *_footer(request, below=True),
            ]
        )
        return RunSummary(
            run_id=request.run_id,
            status="FAILED",
            ruleset="unknown",
            score=0.0,
            score_threshold=request.score_threshold,
            below_threshold=True,
            rows_in=0,
            rows_processed=0,
            rows_quarantined=0,
            records_counted=None,
            records_check=None,
            rules_failed=0,
            metrics_published=0,
            results_uri=request.results_uri,
            subject=make_subject(cfg.alert_prefix, "FAILED", "no results", None),
            message=message,
        )

    results = RunResults.model_validate(document)
    published = publish_metrics(document, cloudwatch)
    status = results.status
    notes: list[str] = []
    if status == "SUCCEEDED" and glue_state not in (None, "SUCCEEDED"):
        # Results were written but the job did not finish cleanly: outputs may not be committed.
        status = "FAILED"
        notes.append(f"The results say SUCCEEDED but the Glue run ended {glue_state}: check the outputs.")
    below = results.score < request.score_threshold
    rules_failed = sum(1 for o in results.ruleOutcomes if o.get("Outcome") in ("Failed", "Error"))
    message = "\n".join([alert_summary(document), *notes, *_footer(request, below)])
    return RunSummary(
        run_id=request.run_id,
        status=status,
        ruleset=results.ruleset,
        score=results.score,
        score_threshold=request.score_threshold,
        below_threshold=below,
        rows_in=results.rows_in,
        rows_processed=results.rows_processed,
        rows_quarantined=results.rows_quarantined,
        records_counted=results.records_counted,
        records_check=results.records_check,
        rules_failed=rules_failed,
        metrics_published=published,
        results_uri=request.results_uri,
        subject=make_subject(cfg.alert_prefix, _verdict(status, below), results.ruleset, results.score),
        message=message,
    )


@logger.inject_lambda_context(correlation_id_path="run_id")
@tracer.capture_lambda_handler(capture_response=False)
@event_parser(model=ResultsRequest)
def handler(event: ResultsRequest, context: LambdaContext) -> dict[str, Any]:
    summary = summarise_run(event, settings(), s3_client(), cloudwatch_client())
    logger.info(
        "dq run summarised",
        extra={
            "status": summary.status,
            "ruleset": summary.ruleset,
            "score": summary.score,
            "below_threshold": summary.below_threshold,
            "rows_in": summary.rows_in,
            "rows_processed": summary.rows_processed,
            "rows_quarantined": summary.rows_quarantined,
            "records_counted": summary.records_counted,
            "records_check": summary.records_check,
            "rules_failed": summary.rules_failed,
            "metrics_published": summary.metrics_published,
        },
    )
    return summary.model_dump()
