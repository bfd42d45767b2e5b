"""What the API does, free of HTTP: load models once, route, predict, explain, describe."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from dq_platform import __version__
from dq_platform.inference.ab import (
    BASELINE,
    DEFAULT_WEIGHTS,
    TRANSFORMER,
    ABWeights,
    ModelVersions,
    SSMJsonConfig,
    assign,
    other_model,
    wants_shadow,
)
from dq_platform.inference.audit import PredictionAudit
from dq_platform.inference.errors import ModelUnavailableError, PayloadTooLargeError
from dq_platform.inference.explanations import ExplanationService, public_explanation
from dq_platform.inference.schemas import (
    ABWeightsOut,
    HealthResponse,
    ModelInfo,
    ModelsResponse,
    PredictRequest,
    PredictResponse,
    Timings,
)
from dq_platform.models.artifacts import MODEL_NAMES, ArtifactError, fetch_models, read_manifest

if TYPE_CHECKING:
    from aws_lambda_powertools import Logger

    from dq_platform.inference.settings import InferenceSettings
    from dq_platform.models.runtime import LoadedModel


@dataclass(frozen=True)
class PredictResult:
    response: PredictResponse
    # The outcome for the "prediction" log record and metrics: who answered, how; never the text.
    audit: PredictionAudit


def _ms(start: float, end: float) -> float:
    return round((end - start) * 1000.0, 3)


def load_served_models(
    settings: InferenceSettings, logger: Logger
) -> tuple[Path, dict[str, LoadedModel], dict[str, str]]:
    """Models from MODEL_S3_URI when set, else the baked MODEL_DIR; failures become per-model reasons."""
    from dq_platform.models.runtime import load_models

    root = settings.model_dir
    if settings.model_s3_uri:
        try:
            root = fetch_models(settings.model_s3_uri, dest=settings.model_cache_dir)
        except Exception as exc:  # S3 errors of any kind: report degraded instead of crashing init
            reason = f"could not fetch models from {settings.model_s3_uri}: {type(exc).__name__}: {exc}"
            logger.error("model fetch failed", extra={"model_s3_uri": settings.model_s3_uri})
            return root, {}, dict.fromkeys(MODEL_NAMES, reason)
    loaded, errors = load_models(root)
    for name in MODEL_NAMES:
        if name not in loaded and name not in errors:
            errors[name] = f"no model folder {root / name}"
    for name, reason in errors.items():
        logger.error("model not loaded", extra={"model": name, "reason": reason})
    return root, loaded, errors


class InferenceService:
    def __init__(
        self,
        settings: InferenceSettings,
        model_root: Path,
        models: dict[str, LoadedModel],
        load_errors: dict[str, str],
        weights: SSMJsonConfig[ABWeights],
        versions: SSMJsonConfig[ModelVersions],
        explanations: ExplanationService,
        logger: Logger,
    ) -> None:
        self.settings = settings
        self.model_root = model_root
        self.models = models
        self.load_errors = load_errors
        self.weights = weights
        self.versions = versions
        self.explanations = explanations
        self.logger = logger

    @classmethod
    def from_settings(cls, settings: InferenceSettings, logger: Logger) -> InferenceService:
        root, models, errors = load_served_models(settings, logger)
        weights = SSMJsonConfig(settings.ab_weights_param, ABWeights, DEFAULT_WEIGHTS, settings.config_ttl_s, logger)
        versions = SSMJsonConfig(
            settings.model_versions_param, ModelVersions, ModelVersions(), settings.config_ttl_s, logger
        )
        explanations = ExplanationService.from_location(
            settings.analytics_bucket,
            settings.analytics_dir,
            settings.explanation_url_ttl_s,
            logger,
            top_k=settings.explain_top_k,
            budget_s=settings.explain_budget_s,
        )
        return cls(settings, root, models, errors, weights, versions, explanations, logger)

    @classmethod
    def without_models(cls, settings: InferenceSettings, logger: Logger) -> InferenceService:
        """A service that serves nothing: enough to build the resolver for its OpenAPI document."""
        weights = SSMJsonConfig(None, ABWeights, DEFAULT_WEIGHTS, settings.config_ttl_s, logger)
        versions = SSMJsonConfig(None, ModelVersions, ModelVersions(), settings.config_ttl_s, logger)
        explanations = ExplanationService(None, None, logger)
        return cls(settings, settings.model_dir, {}, {}, weights, versions, explanations, logger)

    # ---- GET /health -------------------------------------------------------------------------
    def health(self) -> HealthResponse:
        reasons = [f"{name}: {reason}" for name, reason in sorted(self.load_errors.items())]
        expected, _ = self.versions.current()
        for name, version in sorted(expected.expected().items()):
            model = self.models.get(name)
            if model is not None and model.version != version:
                reasons.append(f"{name}: serving version {model.version}, deployment expects {version}")
        return HealthResponse(
            status="degraded" if reasons else "ok",
            version=__version__,
            models_loaded={name: m.version for name, m in sorted(self.models.items())},
            degraded_reasons=reasons,
        )

    # ---- GET /models -------------------------------------------------------------------------
    def describe_models(self) -> ModelsResponse:
        infos: list[ModelInfo] = []
        for name in MODEL_NAMES:
            model = self.models.get(name)
            if model is not None:
                m = model.manifest
                infos.append(
                    ModelInfo(
                        name=name,
                        version=m.version,
                        kind=m.kind,
                        loaded=True,
                        quantization=m.quantization,
                        labels=list(m.labels),
                        metrics=m.metrics,
                    )
                )
                continue
            info = ModelInfo(name=name, version=None, kind=None, loaded=False, error=self.load_errors.get(name))
            try:  # a model that failed to load may still have a readable manifest
                m = read_manifest(self.model_root / name)
                info = info.model_copy(
                    update={
                        "version": m.version,
                        "kind": m.kind,
                        "labels": list(m.labels),
                        "metrics": m.metrics,
                    }
                )
            except (ArtifactError, OSError):
                pass
            infos.append(info)
        weights, source = self.weights.current()
        return ModelsResponse(models=infos, ab_weights=ABWeightsOut(**weights.model_dump(), source=source))

    # ---- POST /predict -----------------------------------------------------------------------
    def predict(self, request: PredictRequest, request_id: str) -> PredictResult:
        t0 = time.perf_counter()
        text = request.text
        if len(text) > self.settings.max_text_chars:
            raise PayloadTooLargeError(
                f"text has {len(text)} characters; this deployment accepts at most {self.settings.max_text_chars}"
            )
        key = request.doc_id or request_id
        audit = PredictionAudit()
        weights: ABWeights | None = None
        if request.model == "auto":
            weights, audit.ab_weights_source = self.weights.current()
            name = self._auto_model(assign(key, weights), audit)
        else:
            name = self._pinned_model(request.model)
        model = self.models[name]
        audit.model, audit.model_version = name, model.version
        t1 = time.perf_counter()
        prediction = model.predict(text)
        t2 = time.perf_counter()
        explanation = self.explanations.explain(model, text, request.doc_id) if request.explain else None
        if explanation is not None:
            audit.explanation_type = explanation.type
        if weights is not None and wants_shadow(key, weights):
            self._shadow(other_model(name), text, prediction.label, audit)
        t3 = time.perf_counter()
        audit.label, audit.confidence = prediction.label, round(prediction.confidence, 6)
        response = PredictResponse(
            model=BASELINE if name == BASELINE else TRANSFORMER,
            label=prediction.label,
            confidence=min(1.0, max(0.0, prediction.confidence)),
            explanation=None if explanation is None else public_explanation(explanation, request.explain_detail),
            timings_ms=Timings(pre=_ms(t0, t1), infer=_ms(t1, t2), post=_ms(t2, t3)),
        )
        return PredictResult(response=response, audit=audit)

    def _auto_model(self, assigned: str, audit: PredictionAudit) -> str:
        """The A/B assignment, or the other model when the assigned one is not loaded."""
        if assigned in self.models:
            return assigned
        fallback = other_model(assigned)
        if fallback not in self.models:
            raise ModelUnavailableError(f"no model is loaded ({self._reasons()})")
        audit.fallback_from = assigned
        return fallback

    def _pinned_model(self, name: str) -> str:
        if name not in self.models:
            raise ModelUnavailableError(f"model {name!r} is not loaded: {self.load_errors.get(name, 'unknown')}")
        return name

    def _shadow(self, name: str, text: str, label: str, audit: PredictionAudit) -> None:
        """Run the other model on the same text for the agreement metric; its answer is only recorded."""
        shadow_model = self.models.get(name)
        if shadow_model is None:
            return
        shadow = shadow_model.predict(text)
        audit.shadow_model, audit.shadow_model_version = name, shadow_model.version
        audit.shadow_label, audit.shadow_agree = shadow.label, shadow.label == label

    def _reasons(self) -> str:
        return "; ".join(f"{n}: {r}" for n, r in sorted(self.load_errors.items())) or "no models configured"
