"""Domain errors of the API; `routes.py` maps them to HTTP in one place (`error_body` is the one body).

Messages are shown to callers, so they name fields and limits but never contain request text.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dq_platform.inference.schemas import ErrorDetail


class InferenceError(Exception):
    status_code = 500
    code = "internal_error"

    def __init__(self, message: str, details: list[ErrorDetail] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details: list[ErrorDetail] = details or []


class BadRequestError(InferenceError):
    status_code = 400
    code = "bad_request"


class PayloadTooLargeError(InferenceError):
    status_code = 413
    code = "payload_too_large"


class ModelUnavailableError(InferenceError):
    """The requested model (or every model) is missing or failed to load: a deployment problem."""

    status_code = 503
    code = "model_unavailable"


class RequestRefusedError(InferenceError):
    """A /predict body refused by the request guard before the resolver parses it (`guard.py`)."""

    def __init__(self, status: int, code: str, message: str, details: list[ErrorDetail]) -> None:
        super().__init__(message, details)
        self.status_code = status
        self.code = code
