"""Runtime configuration of the inference function, validated once at init.

Everything comes from environment variables (the template sets them), so a bad deployment fails at
cold start with a message naming the variable instead of on the first request.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# Hard cap on request text (characters). Part of the public contract: it is in the OpenAPI document
# and in the API Gateway request model, so it is a constant rather than a setting; a deployment may
# only lower it (MAX_TEXT_CHARS).
TEXT_LIMIT_CHARS = 20_000
# S3 pre-signed links to explanation HTML must not outlive this (docs/api.md, `POST /predict`: 15 minutes).
MAX_PRESIGN_SECONDS = 900
DEFAULT_MODEL_DIR = Path("/opt/models")
# The largest valid /predict body: every character of `text` JSON-escaped as a surrogate pair
# (`\ud83d\ude00`, 12 bytes), plus the other fields. A lower MAX_BODY_BYTES refuses valid requests.
DEFAULT_MAX_BODY_BYTES = 12 * TEXT_LIMIT_CHARS + 4096
# API Gateway's own payload cap: no deployment can raise the body limit above it.
API_GATEWAY_MAX_BODY_BYTES = 10 * 1024 * 1024


class InferenceSettings(BaseSettings):
    """One object, read once; unknown POWERTOOLS_* variables are left to Powertools itself."""

    model_config = SettingsConfigDict(
        env_prefix="", case_sensitive=False, extra="ignore", frozen=True, populate_by_name=True
    )

    model_dir: Path = Field(default=DEFAULT_MODEL_DIR, validation_alias="MODEL_DIR")
    model_s3_uri: str | None = Field(default=None, validation_alias="MODEL_S3_URI")
    # Where an S3 override is unpacked; /tmp is the only writable place in Lambda.
    model_cache_dir: Path = Field(default=Path("/tmp/dqp-models"), validation_alias="MODEL_CACHE_DIR")  # noqa: S108
    ab_weights_param: str | None = Field(default=None, validation_alias="AB_WEIGHTS_PARAM")
    model_versions_param: str | None = Field(default=None, validation_alias="MODEL_VERSIONS_PARAM")
    # Seconds an SSM value is reused before it is read again (Powertools Parameters max_age).
    config_ttl_s: int = Field(default=60, ge=0, le=3600, validation_alias="AB_WEIGHTS_TTL_SECONDS")
    max_text_chars: int = Field(default=TEXT_LIMIT_CHARS, gt=0, le=TEXT_LIMIT_CHARS, validation_alias="MAX_TEXT_CHARS")
    # Raw body limit checked before parsing (413); JSON escaping can make a body 12x its text.
    max_body_bytes: int = Field(
        default=DEFAULT_MAX_BODY_BYTES, gt=0, le=API_GATEWAY_MAX_BODY_BYTES, validation_alias="MAX_BODY_BYTES"
    )
    analytics_bucket: str | None = Field(default=None, validation_alias="ANALYTICS_BUCKET")
    # A local folder standing in for the analytics bucket (dqp serve); ignored when the bucket is set.
    analytics_dir: Path | None = Field(default=None, validation_alias="ANALYTICS_DIR")
    explanation_url_ttl_s: int = Field(
        default=MAX_PRESIGN_SECONDS,
        gt=0,
        le=MAX_PRESIGN_SECONDS,
        validation_alias="EXPLANATION_URL_TTL_SECONDS",
    )
    # Time the on-the-fly explainer may spend; far below API Gateway's 29 s integration timeout.
    explain_budget_s: float = Field(default=2.0, gt=0, le=10.0, validation_alias="EXPLAIN_BUDGET_SECONDS")
    explain_top_k: int = Field(default=10, gt=0, le=50, validation_alias="EXPLAIN_TOP_K")
    service_name: str = Field(default="dq-inference", validation_alias="POWERTOOLS_SERVICE_NAME")
    metrics_namespace: str = Field(default="DQPlatform/Inference", validation_alias="POWERTOOLS_METRICS_NAMESPACE")
    log_event: bool = Field(default=False, validation_alias="POWERTOOLS_LOGGER_LOG_EVENT")

    @field_validator("model_s3_uri", "ab_weights_param", "model_versions_param", "analytics_bucket", mode="before")
    @classmethod
    def _blank_is_unset(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("model_s3_uri")
    @classmethod
    def _s3_uri(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith("s3://"):
            raise ValueError(f"MODEL_S3_URI must be an s3:// URI, got {value!r}")
        return value

    @model_validator(mode="after")
    def _never_log_events(self) -> InferenceSettings:
        # The event carries the request text; logging it would break the no-text-in-logs rule.
        if self.log_event:
            raise ValueError("POWERTOOLS_LOGGER_LOG_EVENT must stay false: events contain request text")
        return self
