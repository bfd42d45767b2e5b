"""Batch SHAP explanations for processed contracts: `explanations/<model>/<doc_id>.json|.html`.

Invoked by the data-quality state machine after a run promotes rows (or by hand) with either the
processed objects to explain or a prefix under `contracts/`. Settings, the request model and the run are
`dq_platform.models.batch_explain`; this module only keeps the settings and the model once per container,
logs, and stops before the Lambda timeout. Documents this model version already explained are skipped, so
re-invoking with the same event after `"complete": false` simply continues. No record text is logged.
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger, Tracer
from pydantic import ValidationError

from dq_platform.models.batch_explain import (
    BatchExplainRequest,
    BatchExplainSettings,
    UnreadableObjectError,
    load_published_model,
    processed_keys,
    read_processed,
    run_batch,
)
from dq_platform.models.runtime import LoadedModel, ModelLoadError

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

logger = Logger()
tracer = Tracer()


@cache
def _settings() -> BatchExplainSettings:
    return BatchExplainSettings.from_env()


@cache
def _model(settings: BatchExplainSettings) -> LoadedModel:
    """The published model, cached for the container's life."""
    return load_published_model(settings)


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
    keys = processed_keys(settings, request)
    try:
        docs = read_processed(settings, keys)
    except UnreadableObjectError as exc:
        logger.error("unreadable processed object", extra={"key": exc.key, "reason": str(exc)})
        raise
    margin_ms = settings.safety_margin_s * 1000
    result = run_batch(
        settings, model, request, keys, docs, deadline=lambda: context.get_remaining_time_in_millis() < margin_ms
    ).as_dict()
    logger.info("batch explanations", extra=result)
    return result
