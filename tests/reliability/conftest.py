"""Reliability tier: fuzzing, bad input, privacy, faults, load and security controls (issue 8)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.unit.inference.support import sample_models


def pytest_configure(config: pytest.Config) -> None:
    # Declared here too so the tier runs before pyproject declares the marker.
    config.addinivalue_line("markers", "reliability: fuzzing, bad input, privacy, faults, load (issue 8)")


@pytest.fixture(scope="session")
def models_root() -> Path:
    """Both served models (build/models, or the tiny sample set trained once into build/test-models)."""
    return sample_models()


@pytest.fixture(autouse=True)
def _local_only(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("AWS_PROFILE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "true")
