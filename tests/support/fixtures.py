"""Fixtures shared by the inference tiers; a conftest that imports them makes pytest use them there."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.aws import local_only
from tests.unit.inference.support import sample_models


@pytest.fixture(scope="session")
def models_root() -> Path:
    """Both served models (build/models, or the tiny sample set trained once into build/test-models)."""
    return sample_models()


@pytest.fixture(autouse=True)
def local_only_env(monkeypatch: pytest.MonkeyPatch) -> None:
    local_only(monkeypatch)
