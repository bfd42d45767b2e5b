"""The Powertools resolver behind every entry point (Lambda, `dqp serve`, tests, OpenAPI): routes and errors.

Domain errors are mapped to HTTP here and nowhere else, and `error_body` is the one error body, also for
the request guard's refusals. Request text never reaches an error body or a log line from here.
"""

from __future__ import annotations

import traceback
from typing import TYPE_CHECKING, Annotated, Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.event_handler.openapi.exceptions import (
    RequestUnsupportedContentType,
    RequestValidationError,
)
from aws_lambda_powertools.event_handler.openapi.params import Body

from dq_platform.inference.audit import current_audit
from dq_platform.inference.errors import InferenceError
from dq_platform.inference.guard import UNSUPPORTED_MEDIA
from dq_platform.inference.schemas import (
    ErrorDetail,
    ErrorResponse,
    HealthResponse,
    ModelsResponse,
    PredictRequest,
    PredictResponse,
)
from dq_platform.inference.settings import DEFAULT_MAX_BODY_BYTES

if TYPE_CHECKING:
    from aws_lambda_powertools import Logger
    from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse

    from dq_platform.inference.observability import Observability
    from dq_platform.inference.service import InferenceService

PREDICT_PATH = "/predict"


def error_body(code: str, message: str, logger: Logger, details: list[ErrorDetail] | None = None) -> str:
    """The JSON body of every error the function answers."""
    body = ErrorResponse(error=code, message=message, correlation_id=logger.get_correlation_id(), details=details or [])
    return body.model_dump_json()


def _error(
    status: int, code: str, message: str, logger: Logger, details: list[ErrorDetail] | None = None
) -> Response[Any]:
    audit = current_audit()
    if audit is not None:
        audit.error = code
    return Response(
        status_code=status,
        content_type=content_types.APPLICATION_JSON,
        body=error_body(code, message, logger, details),
    )


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
    _add_routes(app, service)
    _add_error_handlers(app, obs.logger)
    return app


def _add_routes(app: InferenceResolver, service: InferenceService) -> None:
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
        audit = current_audit()
        # Noted first, so a request refused below (413, 503) is still traceable without its text.
        if audit is not None:
            audit.note_request(request.model, request.doc_id)
        result = service.predict(request, request_id)
        if audit is not None:
            audit.absorb(result.audit)
        return result.response


def _add_error_handlers(app: InferenceResolver, logger: Logger) -> None:
    def on_validation(exc: RequestValidationError) -> Response[Any]:
        details = _validation_details(exc)
        if any(d.type == "json_invalid" for d in details):
            return _error(400, "invalid_json", "the request body is not valid JSON", logger, details)
        if any(d.type == "string_too_long" and d.loc[-1:] == ["text"] for d in details):
            return _error(413, "payload_too_large", "`text` is over the size limit", logger, details)
        fields = sorted({".".join(str(p) for p in d.loc[1:]) or "body" for d in details})
        return _error(422, "validation_error", f"invalid request field(s): {', '.join(fields)}", logger, details)

    def on_unsupported_media(exc: RequestUnsupportedContentType) -> Response[Any]:
        # Normally refused before resolving (`guard.parse_predict_body`); this covers direct `app.resolve` callers.
        return _error(415, "unsupported_media_type", UNSUPPORTED_MEDIA, logger)

    def on_domain_error(exc: InferenceError) -> Response[Any]:
        if exc.status_code >= 500:
            logger.error("request failed", extra={"error": exc.code, "reason": exc.message})
        return _error(exc.status_code, exc.code, exc.message, logger, exc.details)

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
