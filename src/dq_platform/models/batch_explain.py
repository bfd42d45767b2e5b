"""The batch SHAP explanation job behind `functions/batch_explain`: settings, request, one run.

The function's `app.py` only keeps the per-container caches and Powertools around `run_batch`; the work
itself (reading processed objects, explaining, writing `explanations/<model>/<doc_id>.json|.html`) is
`dq_platform.models.explain`. No record text is logged or returned.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from dq_platform.models.artifacts import TRANSFORMER, fetch_models
from dq_platform.models.explain import DEFAULT_MAX_EVALS, Document, ExplainError, explain_to_storage, read_documents
from dq_platform.models.runtime import LoadedModel, load_model
from dq_platform.storage import open_storage

CONTRACTS_PREFIX = "contracts/"


class BatchExplainSettings(BaseSettings):
    """Read once per container from the environment the template sets (stacks/inference.yaml)."""

    model_config = SettingsConfigDict(
        env_prefix="", case_sensitive=False, extra="ignore", frozen=True, populate_by_name=True
    )

    processed_bucket: str = Field(min_length=3, validation_alias="PROCESSED_BUCKET")
    analytics_bucket: str = Field(min_length=3, validation_alias="ANALYTICS_BUCKET")
    model_name: str = Field(default=TRANSFORMER, validation_alias="MODEL_NAME")
    models_prefix: str = Field(default="models", validation_alias="MODELS_PREFIX")
    max_evals: int = Field(default=DEFAULT_MAX_EVALS, ge=10, le=5000, validation_alias="MAX_EVALS")
    # stop starting new documents when less than this is left (one document takes ~1-3 s)
    safety_margin_s: float = Field(default=20.0, ge=1.0, validation_alias="SAFETY_MARGIN_S")
    model_dir: str = Field(default="/tmp/models", validation_alias="MODEL_CACHE_DIR")  # noqa: S108  (Lambda's only writable path)

    @classmethod
    def from_env(cls) -> BatchExplainSettings:
        try:
            return cls()
        except ValidationError as exc:
            raise RuntimeError(f"bad function configuration (PROCESSED_BUCKET, ANALYTICS_BUCKET, ...): {exc}") from exc


class BatchExplainRequest(BaseModel):
    """`{"keys": [...]}`, `{"prefix": "contracts/ingest_date=.../"}`, or an S3 Object Created event."""

    model_config = ConfigDict(extra="ignore")

    keys: list[str] = Field(default_factory=list, max_length=1000)
    prefix: str | None = None
    force: bool = False

    @model_validator(mode="before")
    @classmethod
    def _from_eventbridge(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("detail"), dict):
            key = data["detail"].get("object", {}).get("key")
            return {"keys": [key] if key else []}
        if isinstance(data, list):
            return {"keys": data}
        return data

    @model_validator(mode="after")
    def _one_source_under_contracts(self) -> BatchExplainRequest:
        if bool(self.keys) == bool(self.prefix):
            raise ValueError("give either 'keys' (processed objects) or 'prefix', not both or neither")
        for key in [*self.keys, *([self.prefix] if self.prefix else [])]:
            if not key.startswith(CONTRACTS_PREFIX) or ".." in key.split("/"):
                raise ValueError(f"only objects under {CONTRACTS_PREFIX} are explained, got {key!r}")
        return self


class UnreadableObjectError(ExplainError):
    """A processed object that cannot be read as documents; `key` names it, the message says why."""

    def __init__(self, key: str, reason: ExplainError) -> None:
        super().__init__(str(reason))
        self.key = key


@dataclass(frozen=True)
class BatchExplainResult:
    """What one invocation did; `complete: false` means re-invoke with the same event to continue."""

    status: Literal["complete", "partial"]
    complete: bool
    model: str
    model_version: str
    objects: int
    documents: int
    written: int
    skipped: int
    pending: int
    mean_seconds_per_document: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def load_published_model(settings: BatchExplainSettings) -> LoadedModel:
    """The model as published under analytics `models/<name>/LATEST`."""
    uri = f"s3://{settings.analytics_bucket}/{settings.models_prefix}"
    root = fetch_models(uri, dest=Path(settings.model_dir), names=(settings.model_name,))
    return load_model(root / settings.model_name)


def processed_keys(settings: BatchExplainSettings, request: BatchExplainRequest) -> list[str]:
    if request.keys:
        return request.keys
    processed = open_storage(f"s3://{settings.processed_bucket}")
    return [k for k in processed.list(request.prefix or "") if k.endswith(".parquet")]


def read_processed(settings: BatchExplainSettings, keys: list[str]) -> list[Document]:
    """Every document of the processed objects; an unreadable one raises `UnreadableObjectError`."""
    docs: list[Document] = []
    for key in keys:
        try:
            docs.extend(read_documents(f"s3://{settings.processed_bucket}/{key}"))
        except ExplainError as exc:
            raise UnreadableObjectError(key, exc) from exc
    return docs


def run_batch(
    settings: BatchExplainSettings,
    model: LoadedModel,
    request: BatchExplainRequest,
    keys: list[str],
    docs: list[Document],
    deadline: Callable[[], bool],
) -> BatchExplainResult:
    """Explain `docs` (from `keys`) into the analytics bucket until done or `deadline()` says stop."""
    summary = explain_to_storage(
        model,
        docs,
        open_storage(f"s3://{settings.analytics_bucket}"),
        max_evals=settings.max_evals,
        force=request.force,
        deadline=deadline,
    )
    return BatchExplainResult(
        status="complete" if summary.complete else "partial",
        complete=summary.complete,
        model=model.name,
        model_version=model.version,
        objects=len(keys),
        documents=len(docs),
        written=summary.written,
        skipped=summary.skipped,
        pending=len(summary.pending),
        mean_seconds_per_document=round(summary.mean_seconds, 3),
    )
