"""Loading the served models: the baked folder or MODEL_S3_URI, with a reason for each one that fails."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from dq_platform.models.artifacts import MODEL_NAMES, fetch_models

if TYPE_CHECKING:
    from dq_platform.inference.settings import InferenceSettings
    from dq_platform.models.runtime import LoadedModel


@dataclass
class ServedModels:
    root: Path
    models: dict[str, LoadedModel]
    errors: dict[str, str]
    fetch_failed: bool = False


def load_served_models(settings: InferenceSettings) -> ServedModels:
    """Models from MODEL_S3_URI when set, else the baked MODEL_DIR; failures become per-model reasons.

    Logs nothing: the caller logs the reasons with its own logger.
    """
    from dq_platform.models.runtime import load_models

    root = settings.model_dir
    if settings.model_s3_uri:
        try:
            root = fetch_models(settings.model_s3_uri, dest=settings.model_cache_dir)
        except Exception as exc:  # S3 errors of any kind: report degraded instead of crashing init
            reason = f"could not fetch models from {settings.model_s3_uri}: {type(exc).__name__}: {exc}"
            return ServedModels(root, {}, dict.fromkeys(MODEL_NAMES, reason), fetch_failed=True)
    loaded, errors = load_models(root)
    for name in MODEL_NAMES:
        if name not in loaded and name not in errors:
            errors[name] = f"no model folder {root / name}"
    return ServedModels(root, loaded, errors)
