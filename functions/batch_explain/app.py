"""Batch SHAP explanations for processed contracts: `explanations/<model>/<doc_id>.json|.html`.

Invoked by the data-quality state machine after a run promotes rows (or by hand) with either the
processed objects to explain or a prefix under `contracts/`. The work itself is
`dq_platform.models.explain`; this module only parses the event, loads the model once per container
and stops before the Lambda timeout. Documents this model version already explained are skipped, so
re-invoking with the same event after `"complete": false` simply continues. No record text is logged.
"""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger, Tracer
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from dq_platform.models.artifacts import TRANSFORMER, fetch_models
from dq_platform.models.explain import DEFAULT_MAX_EVALS, ExplainError, explain_to_storage, read_documents
from dq_platform.models.runtime import LoadedModel, ModelLoadError, load_model
from dq_platform.storage import open_storage

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

logger = Logger()
tracer = Tracer()

CONTRACTS_PREFIX = "contracts/"


class Settings(BaseModel):
    """Read once per container from the environment the template sets."""

    model_config = ConfigDict(frozen=True)

    processed_bucket: str = Field(min_length=3)
    analytics_bucket: str = Field(min_length=3)
    model_name: str = TRANSFORMER
    models_prefix: str = "models"
    max_evals: int = Field(default=DEFAULT_MAX_EVALS, ge=10, le=5000)
    # stop starting new documents when less than this is left (one document takes ~1-3 s)
    safety_margin_s: float = Field(default=20.0, ge=1.0)
    model_dir: str = "/tmp/models"  # noqa: S108  (Lambda's only writable path)

    @classmethod
    def from_env(cls) -> Settings:
        env = os.environ
        try:
            return cls(
                processed_bucket=env.get("PROCESSED_BUCKET", ""),
                analytics_bucket=env.get("ANALYTICS_BUCKET", ""),
                model_name=env.get("MODEL_NAME", TRANSFORMER),
                models_prefix=env.get("MODELS_PREFIX", "models"),
                max_evals=int(env.get("MAX_EVALS", str(DEFAULT_MAX_EVALS))),
                safety_margin_s=float(env.get("SAFETY_MARGIN_S", "20")),
                model_dir=env.get("MODEL_CACHE_DIR", "/tmp/models"),  # noqa: S108
            )
        except (ValidationError, ValueError) as exc:
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


@cache
def _settings() -> Settings:
    return Settings.from_env()


@cache
def _model(settings: Settings) -> LoadedModel:
    """The model as published under analytics `models/<name>/LATEST`, cached for the container's life."""
    uri = f"s3://{settings.analytics_bucket}/{settings.models_prefix}"
    root = fetch_models(uri, dest=Path(settings.model_dir), names=(settings.model_name,))
    return load_model(root / settings.model_name)


def _keys(settings: Settings, request: BatchExplainRequest) -> list[str]:
    if request.keys:
        return request.keys
    processed = open_storage(f"s3://{settings.processed_bucket}")
    return [k for k in processed.list(request.prefix or "") if k.endswith(".parquet")]


@logger.inject_lambda_context(log_event=False)
@tracer.capture_lambda_handler(capture_response=False)
def handler(event: dict[str, Any] | list[str], context: LambdaContext) -> dict[str, Any]:
    settings = _settings()
    try:
        request = BatchExplainRequest.model_validate(event)
    except ValidationError as exc:
        logger.warning("rejected event", extra={"errors": [e["msg"] for e in exc.errors()]})
        return {"status": "rejected", "reason": "; ".join(e["msg"] for e in exc.errors())}
    try:
        model = _model(settings)
    except ModelLoadError as exc:
        logger.error("model not loadable", extra={"model": settings.model_name, "reason": exc.reason})
        raise
    keys = _keys(settings, request)
    docs = []
    for key in keys:
        try:
            docs.extend(read_documents(f"s3://{settings.processed_bucket}/{key}"))
        except ExplainError as exc:
            logger.error("unreadable processed object", extra={"key": key, "reason": str(exc)})
            raise
    margin_ms = settings.safety_margin_s * 1000
    summary = explain_to_storage(
        model,
        docs,
        open_storage(f"s3://{settings.analytics_bucket}"),
        max_evals=settings.max_evals,
        force=request.force,
        deadline=lambda: context.get_remaining_time_in_millis() < margin_ms,
    )
    result = {
        "status": "complete" if summary.complete else "partial",
        "complete": summary.complete,
        "model": model.name,
        "model_version": model.version,
        "objects": len(keys),
        "documents": len(docs),
        "written": summary.written,
        "skipped": summary.skipped,
        "pending": len(summary.pending),
        "mean_seconds_per_document": round(summary.mean_seconds, 3),
    }
    logger.info("batch explanations", extra=result)
    return result
