from __future__ import annotations

from pathlib import Path

import pytest

from dq_platform.models.artifacts import Manifest
from tests.unit.models.support import train_tiny


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Manifest]]:
    """Both models trained once per session (~20 s): the tiny transformer and the real baseline."""
    root = tmp_path_factory.mktemp("tiny-models")
    manifests = train_tiny(root)
    return root, manifests


@pytest.fixture(autouse=True)
def _no_aws(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("AWS_PROFILE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
