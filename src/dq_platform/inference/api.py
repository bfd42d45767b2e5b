"""The Lambda entry point around the resolver: one straight road per /predict invocation.

correlation id -> request guard (`guard.py`, refusals answered here with `routes.error_body`) -> the
resolver (`routes.py`, which calls `service.py`) -> the "prediction" record (`audit.py`, written by
`observability.py`) -> response headers. Request text never reaches a log, a trace or an error body: only
its sha256 and length do (docs/security.md, "Contract text stays out of logs, metrics, traces and alerts").
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.event_handler import content_types

from dq_platform.inference.audit import PredictionAudit, close_audit, open_audit
from dq_platform.inference.errors import InferenceError, RequestRefusedError
from dq_platform.inference.guard import check_payload, parse_predict_body
from dq_platform.inference.observability import record_prediction
from dq_platform.inference.routes import PREDICT_PATH, InferenceResolver, error_body

if TYPE_CHECKING:
    from aws_lambda_powertools import Logger
    from aws_lambda_powertools.utilities.typing import LambdaContext

    from dq_platform.inference.observability import Observability

# A caller may pass its own correlation id; anything else falls back to API Gateway's request id.
_CORRELATION_RE = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]


def _correlation_id(event: dict[str, Any]) -> str:
    headers = {str(k).lower(): v for k, v in (event.get("headers") or {}).items()}
    given = headers.get("x-correlation-id")
    if isinstance(given, str) and _CORRELATION_RE.match(given):
        return given
    return str((event.get("requestContext") or {}).get("requestId") or "")


def _set_header(response: dict[str, Any], name: str, value: str) -> None:
    if "multiValueHeaders" in response:
        response["multiValueHeaders"][name] = [value]
    else:
        response.setdefault("headers", {})[name] = value


def _guard(
    event: dict[str, Any], app: InferenceResolver, audit: PredictionAudit, logger: Logger
) -> tuple[dict[str, Any], InferenceError | None]:
    """(event to resolve, None) or (event, the refusal to answer instead): the guard never raises."""
    try:
        event, payload = parse_predict_body(event, app.max_body_bytes)
        audit.note_text(payload)
        check_payload(payload)
    except RequestRefusedError as exc:
        return event, exc
    except Exception as exc:  # the handler must never raise: that is a Lambda error (502)
        logger.error("body check failed", extra={"error": type(exc).__name__})
        return event, InferenceError("unexpected error; quote the correlation id")
    return event, None


def _refusal_response(refusal: InferenceError, logger: Logger) -> dict[str, Any]:
    """The proxy result for a refusal made before resolving, shaped as the resolver shapes its own."""
    return {
        "statusCode": refusal.status_code,
        "body": error_body(refusal.code, refusal.message, logger, refusal.details),
        "isBase64Encoded": False,
        "multiValueHeaders": {"Content-Type": [content_types.APPLICATION_JSON]},
    }


def _resolve(app: InferenceResolver, event: dict[str, Any], context: Any, audit: PredictionAudit | None) -> Any:
    token = open_audit(audit)
    try:
        return app.resolve(event, context)
    finally:
        close_audit(token)


def make_handler(app: InferenceResolver, obs: Observability) -> Handler:
    """The Lambda entry point around `app`: correlation id, guard, trace, metrics, the "prediction" record."""
    logger, tracer, metrics = obs.logger, obs.tracer, obs.metrics

    @logger.inject_lambda_context(log_event=False, clear_state=True)
    # No response capture: a trace must never hold payloads (explanations quote words of the text).
    @tracer.capture_lambda_handler(capture_response=False)
    @metrics.log_metrics(capture_cold_start_metric=True)
    def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
        start = time.perf_counter()
        correlation_id = _correlation_id(event)
        logger.set_correlation_id(correlation_id)
        is_predict = event.get("resource") == PREDICT_PATH or event.get("path") == PREDICT_PATH
        audit = PredictionAudit() if is_predict else None
        refusal: InferenceError | None = None
        if audit is not None and event.get("httpMethod") == "POST":
            event, refusal = _guard(event, app, audit, logger)
        if refusal is not None:
            response = _refusal_response(refusal, logger)
            if audit is not None:
                audit.error = refusal.code
        else:
            response = _resolve(app, event, context, audit)
        _set_header(response, "X-Correlation-Id", correlation_id)
        if audit is not None:
            status = int(response.get("statusCode", 500))
            latency_ms = round((time.perf_counter() - start) * 1000.0, 3)
            request_id = (event.get("requestContext") or {}).get("requestId")
            record_prediction(obs, audit, request_id, correlation_id, status, latency_ms)
            if audit.model:
                _set_header(response, "X-Model", str(audit.model))
                _set_header(response, "X-Model-Version", str(audit.model_version or ""))
        return response

    return handler  # type: ignore[no-any-return]
