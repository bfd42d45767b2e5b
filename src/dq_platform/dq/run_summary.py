"""The state machine's step after a DQ run: read its results.json, publish its metrics, summarise it.

`functions/dq_results` is the Lambda entry point; everything it does lives here. The state machine
decides on the alert from the summary's `status` and `score`; the summary's `subject`/`message` are what
the alert says. Everything here is counts, rule text and ids: the results document never holds record
text (`dq.results`), and nothing in this module reads records.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from dq_platform.dq.results import RunResults
from dq_platform.dq.signals import NAMESPACE, alert_summary, metrics_from_results
from dq_platform.storage import S3Storage, StorageError, split_s3_uri

if TYPE_CHECKING:
    from mypy_boto3_cloudwatch import CloudWatchClient
    from mypy_boto3_s3 import S3Client

RESULTS_PREFIX = "dq-results/"
# PutMetricData takes at most 1000 entries and 1 MB per call; rule dimensions can be 1 KB each.
METRIC_BATCH = 150
# SNS: subject under 100 characters, printable ASCII, no line breaks.
MAX_SUBJECT = 99


class ResultsError(Exception):
    """results.json exists but is not a results document; the state machine alerts with this name."""


class ResultsSettings(BaseSettings):
    """Read once per container from the environment the template sets (stacks/data-quality.yaml)."""

    model_config = SettingsConfigDict(env_prefix="", case_sensitive=False, extra="ignore", frozen=True)

    results_bucket: str = Field(min_length=3, validation_alias="RESULTS_BUCKET")
    alert_prefix: str = Field(default="dq-platform", min_length=1, max_length=40, validation_alias="ALERT_PREFIX")

    @classmethod
    def from_env(cls) -> ResultsSettings:
        try:
            return cls()
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


def _batches(items: Sequence[dict[str, Any]], size: int) -> Iterator[Sequence[dict[str, Any]]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def publish_metrics(results: RunResults, cloudwatch: CloudWatchClient) -> int:
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


def _not_a_document(request: ResultsRequest, exc: Exception) -> ResultsError:
    # The pydantic message lists field names and types only; it never echoes the document.
    if isinstance(exc, ValidationError):
        errors = exc.errors(include_input=False, include_url=False)
        reason = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'document'}: {e['msg']}" for e in errors)
    else:
        reason = f"not JSON ({type(exc).__name__})"
    return ResultsError(f"{request.results_uri} is not a DQ results document: {reason}")


def read_results(request: ResultsRequest, cfg: ResultsSettings, s3: S3Client) -> RunResults | None:
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
        return RunResults.model_validate(json.loads(raw))
    except (json.JSONDecodeError, UnicodeDecodeError, ValidationError) as exc:
        raise _not_a_document(request, exc) from None


def _no_results(request: ResultsRequest, cfg: ResultsSettings) -> RunSummary:
    """The Glue run wrote no results.json: FAILED, with what is known."""
    state = request.glue_job_run_state or "unknown"
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


def summarise_run(
    request: ResultsRequest, cfg: ResultsSettings, s3: S3Client, cloudwatch: CloudWatchClient
) -> RunSummary:
    results = read_results(request, cfg, s3)
    if results is None:
        return _no_results(request, cfg)
    published = publish_metrics(results, cloudwatch)
    glue_state = request.glue_job_run_state
    status = results.status
    notes: list[str] = []
    if status == "SUCCEEDED" and glue_state not in (None, "SUCCEEDED"):
        # Results were written but the job did not finish cleanly: outputs may not be committed.
        status = "FAILED"
        notes.append(f"The results say SUCCEEDED but the Glue run ended {glue_state}: check the outputs.")
    below = results.score < request.score_threshold
    message = "\n".join([alert_summary(results), *notes, *_footer(request, below)])
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
        rules_failed=len(results.failed_outcomes),
        metrics_published=published,
        results_uri=request.results_uri,
        subject=make_subject(cfg.alert_prefix, _verdict(status, below), results.ruleset, results.score),
        message=message,
    )
