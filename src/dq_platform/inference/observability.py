"""Logger, Tracer and Metrics of the inference function, and the one "prediction" record per /predict.

Request text never reaches a log, a trace or a metric: only its sha256 and length do (`audit.py`).
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass
from http import HTTPStatus
from typing import IO, TYPE_CHECKING, Any

import wrapt
from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit

if TYPE_CHECKING:
    from dq_platform.inference.audit import PredictionAudit
    from dq_platform.inference.settings import InferenceSettings

# The /health and /models invocations publish no application metrics; that is expected.
warnings.filterwarnings("ignore", message="No application metrics to publish")

# Optional fields of the "prediction" record, in the order they are written when known.
_OPTIONAL_FIELDS = (
    "requested_model",
    "text_sha256",
    "text_length",
    "doc_id_sha256",
    "shadow_model",
    "shadow_model_version",
    "shadow_label",
    "shadow_agree",
    "fallback_from",
    "explanation_type",
    "ab_weights_source",
    "error",
)


@dataclass(frozen=True)
class Observability:
    logger: Logger
    tracer: Tracer
    metrics: Metrics

    @classmethod
    def from_settings(cls, settings: InferenceSettings, log_stream: IO[str] | None = None) -> Observability:
        """`log_stream` redirects the JSON logs (Powertools' `logger_handler`), e.g. to inspect them."""
        handler = logging.StreamHandler(log_stream) if log_stream is not None else None
        # Only botocore (the SSM and S3 calls) is traced, and it is patched once boto3 is first imported
        # rather than at init: importing botocore costs ~0.13 s of cold start that /health and a plain
        # /predict never need. X-Ray patches the client class, so every call made afterwards is traced.
        # The hook waits for boto3, not botocore.client: while botocore.client runs its hooks it is not yet
        # an attribute of botocore, and X-Ray's patch would fail on it.
        tracer = Tracer(service=settings.service_name, auto_patch=False)
        wrapt.register_post_import_hook(lambda _module: tracer.patch(["botocore"]), "boto3")
        return cls(
            logger=Logger(service=settings.service_name, logger_handler=handler),
            tracer=tracer,
            metrics=Metrics(namespace=settings.metrics_namespace, service=settings.service_name),
        )


def record_prediction(
    obs: Observability,
    audit: PredictionAudit,
    request_id: str | None,
    correlation_id: str,
    status: int,
    latency_ms: float,
) -> None:
    """Write the "prediction" log record, its trace annotations and its metrics."""
    known = audit.known()
    model = str(audit.model or "none")
    record: dict[str, Any] = {
        "request_id": request_id,
        "correlation_id": correlation_id,
        "model": audit.model,
        "model_version": audit.model_version,
        "variant": audit.variant,
        "label": audit.label,
        "confidence": audit.confidence,
        "latency_ms": latency_ms,
        "status_code": status,
    }
    record.update((key, known[key]) for key in _OPTIONAL_FIELDS if key in known)
    obs.logger.info("prediction", extra=record)
    obs.tracer.put_annotation("Model", model)
    obs.tracer.put_annotation("StatusCode", str(status))
    metrics = obs.metrics
    metrics.add_dimension("Model", model)
    metrics.add_metric(name="Latency", unit=MetricUnit.Milliseconds, value=latency_ms)
    if status < HTTPStatus.BAD_REQUEST:
        metrics.add_metric(name="Predictions", unit=MetricUnit.Count, value=1)
    if status >= HTTPStatus.INTERNAL_SERVER_ERROR:
        metrics.add_metric(name="Errors", unit=MetricUnit.Count, value=1)
    if audit.shadow_agree is not None:
        metrics.add_metric(name="ShadowAgreement", unit=MetricUnit.Percent, value=100.0 if audit.shadow_agree else 0.0)
