"""Explanations for /predict (docs/api.md, `POST /predict`; docs/models.md, "Explanations").

Baseline: exact linear contributions from the model itself. Transformer: the batch job's precomputed
SHAP for the `doc_id` (top terms + a short-lived pre-signed link to its HTML), else the model's bounded
on-the-fly explainer, else `unavailable` with the reason. Nothing here may exceed the latency budget.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from pydantic import BaseModel, ConfigDict, ValidationError

from dq_platform.inference.ab import TRANSFORMER
from dq_platform.inference.schemas import DetailedExplanationOut, ExplanationDetail, ExplanationOut, TermWeight
from dq_platform.models.artifacts import TermWeight as FoundTerm
from dq_platform.models.runtime import Explanation
from dq_platform.storage import StorageError, open_storage

if TYPE_CHECKING:
    from aws_lambda_powertools import Logger
    from mypy_boto3_s3 import S3Client

    from dq_platform.models.runtime import LoadedModel
    from dq_platform.storage import Storage

PRECOMPUTED_TYPE = "shap-partition"
UNAVAILABLE = "unavailable"


class PrecomputedExplanation(BaseModel):
    """`explanations/<model>/<doc_id>.json` as the batch job writes it (docs/models.md, "Explanations")."""

    model_config = ConfigDict(extra="ignore", protected_namespaces=())

    doc_id: str
    model: str
    model_version: str
    type: str = PRECOMPUTED_TYPE
    top_terms: list[FoundTerm]
    html_key: str | None = None


def public_explanation(found: Explanation, detail: bool) -> ExplanationOut:
    """An explainer's result in the API's shape: the seed's (`type: tokens`, the words); with `detail`, also
    each term's weight, the method and the reason."""
    words = [t.term for t in found.top_terms]
    if not detail:
        return ExplanationOut(top_terms=words, html_url=found.html_url)
    terms = [TermWeight(term=t.term, weight=t.weight) for t in found.top_terms]
    return DetailedExplanationOut(
        top_terms=words,
        html_url=found.html_url,
        detail=ExplanationDetail(method=found.type, terms=terms, reason=found.reason),
    )


class LinkSigner(Protocol):
    def __call__(self, key: str) -> str | None: ...


class S3LinkSigner:
    """Pre-signed GET links into the analytics bucket; SigV4 so KMS-encrypted objects open."""

    def __init__(self, bucket: str, expires_s: int, client: S3Client) -> None:
        self.bucket = bucket
        self.expires_s = expires_s
        self.client = client

    def __call__(self, key: str) -> str | None:
        return self.client.generate_presigned_url(
            "get_object", Params={"Bucket": self.bucket, "Key": key}, ExpiresIn=self.expires_s
        )


class LocalLinkSigner:
    """`file://` links for a local analytics folder (`dqp serve`), where no signing exists."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def __call__(self, key: str) -> str | None:
        path = (self.root / key).resolve()
        return path.as_uri() if path.is_file() else None


class ExplanationService:
    def __init__(
        self,
        storage: Storage | None,
        signer: LinkSigner | None,
        logger: Logger,
        top_k: int = 10,
        budget_s: float = 2.0,
        connect: Callable[[], tuple[Storage, LinkSigner]] | None = None,
    ) -> None:
        """`connect` builds storage and signer on first use instead (an S3 client costs cold start)."""
        self._storage = storage
        self._signer = signer
        self._connect = connect
        self.logger = logger
        self.top_k = top_k
        self.budget_s = budget_s

    def _location(self) -> tuple[Storage | None, LinkSigner | None]:
        if self._connect is not None:
            self._storage, self._signer = self._connect()
            self._connect = None
        return self._storage, self._signer

    @classmethod
    def from_location(
        cls,
        bucket: str | None,
        local_dir: Path | None,
        url_ttl_s: int,
        logger: Logger,
        top_k: int,
        budget_s: float,
        s3_client: S3Client | None = None,
    ) -> ExplanationService:
        if bucket:

            def connect() -> tuple[Storage, LinkSigner]:
                client = s3_client
                if client is None:
                    import boto3
                    from botocore.config import Config

                    client = boto3.client("s3", config=Config(signature_version="s3v4"))
                return open_storage(f"s3://{bucket}", client=client), S3LinkSigner(bucket, url_ttl_s, client)

            return cls(None, None, logger, top_k=top_k, budget_s=budget_s, connect=connect)
        if local_dir is not None:
            return cls(open_storage(local_dir), LocalLinkSigner(local_dir), logger, top_k=top_k, budget_s=budget_s)
        return cls(None, None, logger, top_k=top_k, budget_s=budget_s)

    def explain(self, model: LoadedModel, text: str, doc_id: str | None) -> Explanation:
        stale: str | None = None
        if model.name == TRANSFORMER and doc_id is not None:
            found, stale = self._precomputed(model, doc_id)
            if found is not None:
                return found
        try:
            exp = model.explain(text, top_k=self.top_k, budget_s=self.budget_s)
        except Exception as exc:  # the explainer must never fail the prediction itself
            self.logger.warning(
                "on-the-fly explanation failed", extra={"model": model.name, "error": type(exc).__name__}
            )
            reason = f"the {model.name} explainer failed ({type(exc).__name__})"
            return Explanation(type=UNAVAILABLE, top_terms=[], reason=f"{stale}; {reason}" if stale else reason)
        if stale and exp.type == UNAVAILABLE:
            exp.reason = f"{stale}; {exp.reason}" if exp.reason else stale
        return exp

    def _precomputed(self, model: LoadedModel, doc_id: str) -> tuple[Explanation | None, str | None]:
        """The stored explanation, or None and (if one exists but cannot be used) why not."""
        storage, signer = self._location()
        if storage is None:
            return None, None
        key = f"explanations/{model.name}/{doc_id}.json"
        try:
            raw = storage.read_bytes(key)
        except StorageError:
            return None, None
        except Exception as exc:  # e.g. AccessDenied or a throttled read: answer without it
            self.logger.warning("precomputed explanation unreadable", extra={"key": key, "error": type(exc).__name__})
            return None, "precomputed explanation could not be read"
        try:
            stored = PrecomputedExplanation.model_validate(_json(raw))
        except (ValueError, ValidationError):
            self.logger.warning("precomputed explanation malformed", extra={"key": key})
            return None, "precomputed explanation is malformed"
        if stored.model != model.name or stored.model_version != model.version:
            return None, (
                f"precomputed explanation is for {stored.model} {stored.model_version}, "
                f"not the served {model.name} {model.version}"
            )
        html_url: str | None = None
        # Only ever sign keys under this model's explanations, whatever the JSON says.
        if stored.html_key and stored.html_key.startswith(f"explanations/{model.name}/") and signer:
            try:
                html_url = signer(stored.html_key)
            except Exception as exc:
                self.logger.warning("could not sign explanation link", extra={"error": type(exc).__name__})
        return Explanation(type=stored.type, top_terms=stored.top_terms[: self.top_k], html_url=html_url), None


def _json(raw: bytes) -> Any:
    return json.loads(raw.decode("utf-8"))
