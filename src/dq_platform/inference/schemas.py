"""Request and response bodies of the API: the seed's contract, validated by Powertools.

These models generate the committed OpenAPI document, so a change here is an API change.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool

from dq_platform.inference.settings import TEXT_LIMIT_CHARS

ModelChoice = Literal["auto", "baseline", "transformer"]
# doc_id becomes part of an S3 key (explanations/<model>/<doc_id>.json): keep it to a safe segment.
DOC_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$"


class PredictRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    text: str = Field(
        min_length=1,
        max_length=TEXT_LIMIT_CHARS,
        description=f"Clause or contract text to classify (1..{TEXT_LIMIT_CHARS} characters). Never logged.",
    )
    model: ModelChoice = Field(
        default="auto",
        description="`auto` follows the A/B weights; `baseline` or `transformer` pins the model.",
    )
    # Strict: "yes", 1 or 0.0 are refused (422), as the schema and API Gateway's request model say.
    explain: StrictBool = Field(default=False, description="Return the top terms behind the prediction.")
    explain_detail: StrictBool = Field(
        default=False,
        description="With `explain`: also return each term's weight, the explanation method and, when none "
        "could be given, why (`explanation.detail`).",
    )
    doc_id: str | None = Field(
        default=None,
        pattern=DOC_ID_PATTERN,
        description="Document id: makes A/B assignment sticky and finds precomputed SHAP explanations.",
    )


class TermWeight(BaseModel):
    term: str
    weight: float


class ExplanationDetail(BaseModel):
    """The richer explanation, on request (`explain_detail`): weights, method, and why none was given."""

    method: str = Field(
        description="`linear-contributions` (baseline), `shap-partition` (precomputed), `occlusion` (on the fly) "
        "or `unavailable`."
    )
    terms: list[TermWeight] = Field(default_factory=list, description="The top terms with their weights.")
    reason: str | None = Field(default=None, description="Why no (or only a bounded) explanation is given.")


class ExplanationOut(BaseModel):
    """The seed's explanation: `type` is always `tokens`, `top_terms` the words, most influential first."""

    type: Literal["tokens"] = "tokens"
    top_terms: list[str] = Field(default_factory=list, description="Words behind the label, strongest first.")
    html_url: str | None = Field(default=None, description="Pre-signed link to SHAP's HTML (<= 15 min).")


class DetailedExplanationOut(ExplanationOut):
    detail: ExplanationDetail


class Timings(BaseModel):
    pre: float = Field(description="Milliseconds spent before inference (routing, configuration).")
    infer: float = Field(description="Milliseconds in the model.")
    post: float = Field(description="Milliseconds after inference (explanation, shadow run).")


class PredictResponse(BaseModel):
    model_config = ConfigDict(protected_namespaces=())

    model: Literal["baseline", "transformer"] = Field(description="The model that answered.")
    label: str
    confidence: float = Field(ge=0.0, le=1.0)
    explanation: DetailedExplanationOut | ExplanationOut | None = Field(
        default=None, description="Present when `explain` was true; `detail` only with `explain_detail`."
    )
    timings_ms: Timings


class HealthResponse(BaseModel):
    status: Literal["ok", "degraded"]
    version: str = Field(description="Version of the dq-compliance-platform package serving the API.")
    models_loaded: dict[str, str] = Field(description="Loaded model name -> model version.")
    degraded_reasons: list[str] = Field(default_factory=list)


class ABWeightsOut(BaseModel):
    baseline: float
    transformer: float
    shadow_rate: float
    source: str = Field(description="Where the weights came from: an SSM parameter name or `default`.")


class ModelInfo(BaseModel):
    model_config = ConfigDict(protected_namespaces=())

    name: str
    version: str | None
    kind: str | None
    loaded: bool
    quantization: str | None = None
    labels: list[str] = Field(default_factory=list)
    metrics: dict[str, dict[str, float]] = Field(default_factory=dict)
    error: str | None = Field(default=None, description="Why the model is not loaded.")


class ModelsResponse(BaseModel):
    models: list[ModelInfo]
    ab_weights: ABWeightsOut


class ErrorDetail(BaseModel):
    loc: list[str | int]
    type: str
    msg: str


class ErrorResponse(BaseModel):
    error: str = Field(description="Machine-readable error code.")
    message: str = Field(description="What was wrong; never echoes the request text.")
    correlation_id: str | None = None
    details: list[ErrorDetail] = Field(default_factory=list)
