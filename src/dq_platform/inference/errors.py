"""Domain errors of the API; `api.py` maps them to HTTP in one place.

Messages are shown to callers, so they name fields and limits but never contain request text.
"""

from __future__ import annotations


class InferenceError(Exception):
    status_code = 500
    code = "internal_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


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
