"""The "prediction" record of one /predict call: what it asked, who answered, how it ended; never the text.

One `PredictionAudit` per invocation, opened by the Lambda entry point (`api.make_handler`), filled by the
request guard (text hash), the route (request fields), the service (the outcome) and the error mapping
(the error code), then written once by `observability.record_prediction`.
"""

from __future__ import annotations

import hashlib
from contextvars import ContextVar, Token
from dataclasses import dataclass, fields
from typing import Any


def sha256_hex(value: str) -> str:
    """The one hash of request text and doc ids in logs and metrics.

    surrogatepass: a lone surrogate (a valid JSON escape, invalid UTF-8) must still hash, never raise; any
    other string hashes exactly as its UTF-8 bytes do.
    """
    return hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass
class PredictionAudit:
    """Fields of the "prediction" log record; None means "not known for this call" and is left out."""

    text_sha256: str | None = None
    text_length: int | None = None
    doc_id_sha256: str | None = None
    requested_model: str | None = None
    variant: str | None = None
    model: str | None = None
    model_version: str | None = None
    label: str | None = None
    confidence: float | None = None
    shadow_model: str | None = None
    shadow_model_version: str | None = None
    shadow_label: str | None = None
    shadow_agree: bool | None = None
    fallback_from: str | None = None
    explanation_type: str | None = None
    ab_weights_source: str | None = None
    error: str | None = None

    def note_text(self, payload: Any) -> None:
        """Hash `text` of a parsed body, before any check: even refused text stays traceable."""
        text = payload.get("text") if isinstance(payload, dict) else None
        if isinstance(text, str):
            self.text_sha256, self.text_length = sha256_hex(text), len(text)

    def note_request(self, requested_model: str, doc_id: str | None) -> None:
        self.requested_model = requested_model
        self.variant = "auto" if requested_model == "auto" else "explicit"
        if doc_id is not None:
            self.doc_id_sha256 = sha256_hex(doc_id)

    def absorb(self, outcome: PredictionAudit) -> None:
        """Take every field `outcome` knows (the service's result) over this one's."""
        for f in fields(outcome):
            value = getattr(outcome, f.name)
            if value is not None:
                setattr(self, f.name, value)

    def known(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) is not None}


# The audit of the /predict invocation in progress (None outside one), so that the route and the error
# handlers the resolver calls can add to it without threading it through Powertools.
_current: ContextVar[PredictionAudit | None] = ContextVar("dqp_prediction_audit", default=None)


def current_audit() -> PredictionAudit | None:
    return _current.get()


def open_audit(audit: PredictionAudit | None) -> Token[PredictionAudit | None]:
    """Make `audit` the current one; returns the token for `close_audit`."""
    return _current.set(audit)


def close_audit(token: Token[PredictionAudit | None]) -> None:
    _current.reset(token)
