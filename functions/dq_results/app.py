"""Lambda entry point of the state machine's ReadResults step: read the DQ run's results.json, publish
its metrics, hand back a summary. Thin: settings, the request, the summary and the work live in
`dq_platform.dq.run_summary`; this module holds the clients (one per container) and the handler.
Dependencies: boto3 (Lambda runtime), Powertools, pydantic and dq_platform (the domain layer).
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING, Any

import boto3
from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.parser import event_parser

from dq_platform.dq.run_summary import ResultsError, ResultsRequest, make_subject, summarise_run
from dq_platform.dq.run_summary import ResultsSettings as Settings

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext
    from mypy_boto3_cloudwatch import CloudWatchClient
    from mypy_boto3_s3 import S3Client

__all__ = ["ResultsError", "ResultsRequest", "Settings", "handler", "make_subject", "summarise_run"]

logger = Logger()
tracer = Tracer()


@cache
def settings() -> Settings:
    return Settings.from_env()


@cache
def s3_client() -> S3Client:
    return boto3.client("s3")


@cache
def cloudwatch_client() -> CloudWatchClient:
    return boto3.client("cloudwatch")


@logger.inject_lambda_context(correlation_id_path="run_id")
@tracer.capture_lambda_handler(capture_response=False)
@event_parser(model=ResultsRequest)
def handler(event: ResultsRequest, context: LambdaContext) -> dict[str, Any]:
    summary = summarise_run(event, settings(), s3_client(), cloudwatch_client())
    logger.info(
        "dq run summarised",
        extra=summary.model_dump(
            include={
                "status",
                "ruleset",
                "score",
                "below_threshold",
                "rows_in",
                "rows_processed",
                "rows_quarantined",
                "records_counted",
                "records_check",
                "rules_failed",
                "metrics_published",
            }
        ),
    )
    return summary.model_dump()
