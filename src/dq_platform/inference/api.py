"""The Powertools resolver behind every entry point (Lambda, `dqp serve`, tests, OpenAPI).

Domain errors are mapped to HTTP here and nowhere else. Request text never reaches a log, a trace or an
error body: only its sha256 and length do (CONTRACTS.md, inference logs).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
import re
import time
import traceback
import warnings
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass
from http import HTTPStatus
from typing import IO, TYPE_CHECKING, Annotated, Any

import wrapt
from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.event_handler.openapi.exceptions import (
    RequestUnsupportedContentType,
    RequestValidationError,
)
from aws_lambda_powertools.event_handler.openapi.params import Body
from aws_lambda_powertools.metrics import MetricUnit

from dq_platform import __version__
from dq_platform.inference.errors import InferenceError
from dq_platform.inference.schemas import (
    ErrorDetail,
    ErrorResponse,
    HealthResponse,
    ModelsResponse,
    PredictRequest,
    PredictResponse,
)
from dq_platform.inference.settings import DEFAULT_MAX_BODY_BYTES, TEXT_LIMIT_CHARS

if TYPE_CHECKING:
    from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse
    from aws_lambda_powertools.utilities.typing import LambdaContext

    from dq_platform.inference.service import InferenceService
    from dq_platform.inference.settings import InferenceSettings

PREDICT_PATH = "/predict"
JSON_MEDIA_TYPE = "application/json"
API_TITLE = "dq-compliance-platform inference API"
# A caller may pass its own correlation id; anything else falls back to API Gateway's request id.
_CORRELATION_RE = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")

# The /health and /models invocations publish no application metrics; that is expected.
warnings.filterwarnings("ignore", message="No application metrics to publish")

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]


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


# Per-invocation facts about a /predict call, collected by the route and the error handlers and
# written once by the handler as the "prediction" record.
_audit: ContextVar[dict[str, Any] | None] = ContextVar("dqp_inference_audit", default=None)


def _audit_update(**fields: Any) -> None:
    current = _audit.get()
    if current is not None:
        current.update(fields)


def _error_responses(*codes: int) -> dict[int, OpenAPIResponse]:
    text = {
        400: "Malformed request: the body is not UTF-8 JSON (or nests or numbers beyond the parser's limits).",
        413: "`text` is over the size limit, or the body is over `MAX_BODY_BYTES`.",
        415: "`Content-Type` is not `application/json`.",
        422: "The body does not match the request schema (not a JSON object, missing/empty `text`, "
        "unknown `model`, ...).",
        500: "Unexpected error; the body carries the correlation id to quote.",
        503: "The requested model (or every model) is missing or failed to load.",
    }
    return {
        code: {"description": text[code], "content": {"application/json": {"model": ErrorResponse}}} for code in codes
    }


def _error_body(code: str, message: str, logger: Logger, details: list[ErrorDetail] | None = None) -> str:
    body = ErrorResponse(error=code, message=message, correlation_id=logger.get_correlation_id(), details=details or [])
    return body.model_dump_json()


def _error(
    status: int, code: str, message: str, logger: Logger, details: list[ErrorDetail] | None = None
) -> Response[Any]:
    _audit_update(error=code)
    return Response(
        status_code=status,
        content_type=content_types.APPLICATION_JSON,
        body=_error_body(code, message, logger, details),
    )


def _validation_details(exc: RequestValidationError) -> list[ErrorDetail]:
    # Only location, type and pydantic's message: never `input`, which would echo the text back.
    details: list[ErrorDetail] = []
    for err in exc.errors():
        loc = [p if isinstance(p, int) else str(p) for p in err.get("loc", ())]
        details.append(ErrorDetail(loc=loc, type=str(err.get("type", "")), msg=str(err.get("msg", ""))))
    return details


class InferenceResolver(APIGatewayRestResolver):
    """The resolver plus the raw-body limit its Lambda entry point enforces before parsing."""

    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES


def create_app(service: InferenceService, obs: Observability) -> InferenceResolver:
    # debug=False explicitly: Powertools' debug mode prints whole events, text included.
    app = InferenceResolver(enable_validation=True, debug=False)
    app.max_body_bytes = service.settings.max_body_bytes
    logger = obs.logger

    @app.get(
        "/health",
        summary="Liveness and model status",
        description="`degraded` lists why a model is missing, corrupt or not the version the deployment expects.",
        tags=["ops"],
        responses={200: {"description": "Status", "content": {"application/json": {"model": HealthResponse}}}},
    )
    def health() -> HealthResponse:
        return service.health()

    @app.get(
        "/models",
        summary="Models, their versions and metrics, and the A/B weights in force",
        tags=["models"],
        responses={200: {"description": "Models", "content": {"application/json": {"model": ModelsResponse}}}},
    )
    def models() -> ModelsResponse:
        return service.describe_models()

    @app.post(
        PREDICT_PATH,
        summary="Classify a clause as HighRisk/LowRisk",
        description="`model: auto` follows the A/B weights (sticky on `doc_id`); the response names the "
        "model that answered. `explain: true` adds top terms (and a pre-signed SHAP link when one was "
        "precomputed).",
        tags=["predict"],
        responses={
            200: {"description": "Prediction", "content": {"application/json": {"model": PredictResponse}}},
            **_error_responses(400, 413, 415, 422, 500, 503),
        },
    )
    def predict(request: Annotated[PredictRequest, Body()]) -> PredictResponse:
        request_id = app.current_event.request_context.request_id
        # Hashes first, so a request refused below (413, 503) is still traceable without its text.
        _audit_update(
            **_hashes(request),
            requested_model=request.model,
            variant="auto" if request.model == "auto" else "explicit",
        )
        result = service.predict(request, request_id)
        _audit_update(**result.audit)
        return result.response

    def on_validation(exc: RequestValidationError) -> Response[Any]:
        details = _validation_details(exc)
        if any(d.type == "json_invalid" for d in details):
            return _error(400, "invalid_json", "the request body is not valid JSON", logger, details)
        if any(d.type == "string_too_long" and d.loc[-1:] == ["text"] for d in details):
            return _error(413, "payload_too_large", "`text` is over the size limit", logger, details)
        fields = sorted({".".join(str(p) for p in d.loc[1:]) or "body" for d in details})
        return _error(422, "validation_error", f"invalid request field(s): {', '.join(fields)}", logger, details)

    def on_unsupported_media(exc: RequestUnsupportedContentType) -> Response[Any]:
        # Normally refused before resolving (`_parse_predict_body`); this covers direct `app.resolve` callers.
        return _error(415, "unsupported_media_type", _UNSUPPORTED_MEDIA, logger)

    def on_domain_error(exc: InferenceError) -> Response[Any]:
        if exc.status_code >= 500:
            logger.error("request failed", extra={"error": exc.code, "reason": exc.message})
        return _error(exc.status_code, exc.code, exc.message, logger)

    def on_not_found(exc: NotFoundError) -> Response[Any]:
        return _error(404, "not_found", "no such route; see GET /health, GET /models, POST /predict", logger)

    def on_unexpected(exc: Exception) -> Response[Any]:
        # The stack (file, line, code) goes to the log under the correlation id, but not the exception's
        # message, which could quote request text; the caller gets the id only.
        stack = traceback.format_tb(exc.__traceback__)
        logger.error("unhandled error", extra={"error": type(exc).__name__, "stack": stack})
        return _error(500, "internal_error", "unexpected error; quote the correlation id", logger)

    # Registered by call, not decorator syntax: Powertools' registration decorators are untyped.
    app.exception_handler(RequestValidationError)(on_validation)
    app.exception_handler(RequestUnsupportedContentType)(on_unsupported_media)
    app.exception_handler(InferenceError)(on_domain_error)
    app.not_found(on_not_found)
    app.exception_handler(Exception)(on_unexpected)

    return app


def _hashes(request: PredictRequest) -> dict[str, Any]:
    fields: dict[str, Any] = {"text_sha256": _safe_sha256(request.text), "text_length": len(request.text)}
    if request.doc_id is not None:
        fields["doc_id_sha256"] = _safe_sha256(request.doc_id)
    return fields


_UNSUPPORTED_MEDIA = f"Content-Type must be {JSON_MEDIA_TYPE} (the body is a JSON object)"


@dataclass(frozen=True)
class _Refusal:
    status: int
    code: str
    message: str
    details: list[ErrorDetail]


class _BodyRefusedError(Exception):
    """A /predict body refused before resolving; the message names the problem, never the body."""

    def __init__(self, status: int, code: str, message: str, loc: list[str | int], kind: str, msg: str) -> None:
        super().__init__(message)
        self.refusal = _Refusal(status, code, message, [ErrorDetail(loc=loc, type=kind, msg=msg)])


def _safe_sha256(value: str) -> str:
    # surrogatepass: a lone surrogate (valid JSON escape, invalid UTF-8) must still hash, never raise.
    return hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()


def _has_lone_surrogate(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _any_lone_surrogate(payload: Any) -> bool:
    """Whether any key or string value holds a lone surrogate; iterative, so depth cannot overflow."""
    stack = [payload]
    while stack:
        item = stack.pop()
        if isinstance(item, str) and _has_lone_surrogate(item):
            return True
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def _content_type(event: dict[str, Any]) -> tuple[str, str] | None:
    """(header name as sent, value) of Content-Type, looked up case-insensitively."""
    for name, value in (event.get("headers") or {}).items():
        if str(name).lower() == "content-type" and isinstance(value, str) and value.strip():
            return str(name), value
    return None


def _with_content_type(event: dict[str, Any], name: str, value: str) -> dict[str, Any]:
    """A copy of the event whose Content-Type is `value` (Powertools matches media types case-sensitively)."""
    headers = {**(event.get("headers") or {}), name: value}
    multi = {
        key: [value] if str(key).lower() == "content-type" else values
        for key, values in (event.get("multiValueHeaders") or {}).items()
    }
    return {**event, "headers": headers, "multiValueHeaders": multi}


def _parse_predict_body(event: dict[str, Any], max_body_bytes: int) -> tuple[dict[str, Any], Any]:
    """(event to resolve, parsed body or None): the checks Powertools does not make, or makes by raising.

    Parsed with the same `json.loads` Powertools uses, so a body that passes here parses there too.
    """
    found = _content_type(event)
    if found is not None:
        name, value = found
        media, sep, params = value.partition(";")
        if media.strip().lower() != JSON_MEDIA_TYPE:
            raise _BodyRefusedError(
                415, "unsupported_media_type", _UNSUPPORTED_MEDIA, ["header", "Content-Type"],
                "unsupported_media_type", f"expected {JSON_MEDIA_TYPE}",
            )  # fmt: skip
        if JSON_MEDIA_TYPE + sep + params != value:
            event = _with_content_type(event, name, JSON_MEDIA_TYPE + sep + params)
    body = event.get("body")
    if not isinstance(body, str) or not body:
        return event, None  # no body: the request model answers 422 naming `body`
    if event.get("isBase64Encoded"):
        try:
            raw = base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            raise _BodyRefusedError(
                400, "invalid_json", "the request body is not valid base64", ["body"], "json_invalid", "invalid base64"
            ) from None
    else:
        raw = body.encode("utf-8", "surrogatepass")
    if len(raw) > max_body_bytes:
        raise _BodyRefusedError(
            413, "payload_too_large",
            f"the request body is {len(raw)} bytes; this deployment accepts at most {max_body_bytes} "
            f"(`text` up to {TEXT_LIMIT_CHARS} characters always fits)",
            ["body"], "body_too_large", f"at most {max_body_bytes} bytes",
        )  # fmt: skip
    try:
        return event, json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        msg = "the request body is not UTF-8 encoded JSON"
        raise _BodyRefusedError(400, "invalid_json", msg, ["body"], "json_invalid", "invalid UTF-8") from None
    except json.JSONDecodeError as exc:
        msg = "the request body is not valid JSON"
        raise _BodyRefusedError(
            400, "invalid_json", msg, ["body", exc.pos], "json_invalid", "JSON decode error"
        ) from None
    except (ValueError, RecursionError):
        # Python's own limits: integer literals over 4,300 digits, nesting past the recursion limit.
        msg = "the request body is not valid JSON: a number or the nesting is too large"
        raise _BodyRefusedError(
            400, "invalid_json", msg, ["body"], "json_invalid", "beyond the parser's limits"
        ) from None


def _body_hashes(payload: Any) -> dict[str, Any]:
    """Hashes for the audit record, so even refused text is traceable, never logged."""
    text = payload.get("text") if isinstance(payload, dict) else None
    return {"text_sha256": _safe_sha256(text), "text_length": len(text)} if isinstance(text, str) else {}


def _check_payload(payload: Any) -> None:
    """Refusals pydantic would not make: Powertools answers a JSON array for its first element."""
    if payload is None:
        return  # the request model answers 422 naming `body`
    if not isinstance(payload, dict):
        msg = "invalid request field(s): body must be a JSON object"
        raise _BodyRefusedError(
            422, "validation_error", msg, ["body"], "model_attributes_type", "Input should be an object"
        )
    surrogate = "unpaired UTF-16 surrogate escape (\\ud800-\\udfff)"
    text = payload.get("text")
    if isinstance(text, str) and _has_lone_surrogate(text):
        msg = "invalid request field(s): text has an unpaired surrogate escape"
        raise _BodyRefusedError(422, "validation_error", msg, ["body", "text"], "string_unicode", surrogate)
    if _any_lone_surrogate(payload):
        msg = "invalid request field(s): body has an unpaired surrogate escape"
        raise _BodyRefusedError(422, "validation_error", msg, ["body"], "string_unicode", surrogate)


def _refusal_response(refusal: _Refusal, logger: Logger) -> dict[str, Any]:
    """The proxy result for a refusal made before resolving, shaped as the resolver shapes its own."""
    return {
        "statusCode": refusal.status,
        "body": _error_body(refusal.code, refusal.message, logger, refusal.details),
        "isBase64Encoded": False,
        "multiValueHeaders": {"Content-Type": [content_types.APPLICATION_JSON]},
    }


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


def make_handler(app: InferenceResolver, obs: Observability) -> Handler:
    """The Lambda entry point around `app`: correlation id, trace, metrics, the "prediction" record."""
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
        refusal: _Refusal | None = None
        body_hashes: dict[str, Any] = {}
        if is_predict and event.get("httpMethod") == "POST":
            try:
                event, payload = _parse_predict_body(event, app.max_body_bytes)
                body_hashes = _body_hashes(payload)
                _check_payload(payload)
            except _BodyRefusedError as exc:
                refusal = exc.refusal
            except Exception as exc:  # the handler must never raise: that is a Lambda error (502)
                logger.error("body check failed", extra={"error": type(exc).__name__})
                refusal = _Refusal(500, "internal_error", "unexpected error; quote the correlation id", [])
        if refusal is not None:
            response = _refusal_response(refusal, logger)
            fields: dict[str, Any] = {**body_hashes, "error": refusal.code}
        else:
            token = _audit.set({} if is_predict else None)
            try:
                response = app.resolve(event, context)
                fields = _audit.get() or {}
                if is_predict and "text_sha256" not in fields:
                    fields.update(body_hashes)
            finally:
                _audit.reset(token)
        _set_header(response, "X-Correlation-Id", correlation_id)
        if is_predict:
            status = int(response.get("statusCode", 500))
            latency_ms = round((time.perf_counter() - start) * 1000.0, 3)
            _record_prediction(obs, event, correlation_id, fields, status, latency_ms)
            if fields.get("model"):
                _set_header(response, "X-Model", str(fields["model"]))
                _set_header(response, "X-Model-Version", str(fields.get("model_version", "")))
        return response

    return handler  # type: ignore[no-any-return]


def _record_prediction(
    obs: Observability,
    event: dict[str, Any],
    correlation_id: str,
    fields: dict[str, Any],
    status: int,
    latency_ms: float,
) -> None:
    model = str(fields.get("model") or "none")
    record = {
        "request_id": (event.get("requestContext") or {}).get("requestId"),
        "correlation_id": correlation_id,
        "model": fields.get("model"),
        "model_version": fields.get("model_version"),
        "variant": fields.get("variant"),
        "label": fields.get("label"),
        "confidence": fields.get("confidence"),
        "latency_ms": latency_ms,
        "status_code": status,
    }
    for key in (
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
    ):
        if key in fields:
            record[key] = fields[key]
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
    if "shadow_agree" in fields:
        metrics.add_metric(
            name="ShadowAgreement", unit=MetricUnit.Percent, value=100.0 if fields["shadow_agree"] else 0.0
        )


def openapi_json(app: APIGatewayRestResolver) -> str:
    """The committed OpenAPI document (docs/openapi.json): generated, never edited by hand."""
    # Imported here, not at module level: the OpenAPI document models cost ~0.2 s of import at cold
    # start, and serving (request validation included) never needs them.
    from aws_lambda_powertools.event_handler.openapi.models import APIKey, APIKeyIn

    return app.get_openapi_json_schema(
        title=API_TITLE,
        version=__version__,
        description="Contract-clause risk classification (baseline TF-IDF and MiniLM/ONNX) with "
        "explanations, a sustained A/B split for `model: auto`, and operational endpoints. Request text "
        "is never logged.",
        security_schemes={"api_key": APIKey(name="x-api-key", in_=APIKeyIn.header)},
        security=[{"api_key": []}],
    )
