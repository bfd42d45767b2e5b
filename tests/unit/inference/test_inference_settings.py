"""Settings are read once from the environment and refuse bad values with the variable's name."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from dq_platform.inference.settings import InferenceSettings

pytestmark = pytest.mark.unit


def test_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("MODEL_DIR", "MODEL_S3_URI", "AB_WEIGHTS_PARAM", "ANALYTICS_BUCKET", "POWERTOOLS_SERVICE_NAME"):
        monkeypatch.delenv(var, raising=False)
    settings = InferenceSettings()
    assert settings.model_dir == Path("/opt/models")
    assert settings.model_s3_uri is None
    assert settings.ab_weights_param is None
    assert settings.explanation_url_ttl_s == 900
    assert settings.max_text_chars == 20_000


def test_reads_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODEL_DIR", "/srv/models")
    monkeypatch.setenv("MODEL_S3_URI", "s3://bucket/models")
    monkeypatch.setenv("AB_WEIGHTS_PARAM", "/enterprise/production/ab-weights")
    monkeypatch.setenv("AB_WEIGHTS_TTL_SECONDS", "5")
    monkeypatch.setenv("ANALYTICS_BUCKET", "analytics")
    monkeypatch.setenv("EXPLANATION_URL_TTL_SECONDS", "300")
    settings = InferenceSettings()
    assert settings.model_dir == Path("/srv/models")
    assert settings.model_s3_uri == "s3://bucket/models"
    assert settings.ab_weights_param == "/enterprise/production/ab-weights"
    assert settings.config_ttl_s == 5
    assert settings.analytics_bucket == "analytics"
    assert settings.explanation_url_ttl_s == 300


def test_blank_optional_values_mean_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODEL_S3_URI", "")  # what the template sets when the override is off
    assert InferenceSettings().model_s3_uri is None


@pytest.mark.parametrize(
    ("var", "value"),
    [
        ("MODEL_S3_URI", "https://bucket/models"),
        ("EXPLANATION_URL_TTL_SECONDS", "3600"),  # pre-signed links must expire within 15 minutes
        ("MAX_TEXT_CHARS", "50000"),  # may only lower the documented limit
        ("AB_WEIGHTS_TTL_SECONDS", "-1"),
        ("POWERTOOLS_LOGGER_LOG_EVENT", "true"),  # events carry the text
    ],
)
def test_bad_values_name_the_variable(monkeypatch: pytest.MonkeyPatch, var: str, value: str) -> None:
    monkeypatch.setenv(var, value)
    with pytest.raises(ValidationError) as info:
        InferenceSettings()
    text = str(info.value)
    assert var in text or "LOG_EVENT" in text
