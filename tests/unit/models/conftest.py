from __future__ import annotations

from pathlib import Path

import pytest

from dq_platform.models.artifacts import Manifest
from tests.support.aws import local_only
from tests.unit.models.support import train_tiny


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Manifest]]:
    """Both models trained once per session (~20 s): the tiny transformer and the real baseline."""
    root = tmp_path_factory.mktemp("tiny-models")
    manifests = train_tiny(root)
    return root, manifests


@pytest.fixture(autouse=True)
def _no_aws(monkeypatch: pytest.MonkeyPatch) -> None:
    local_only(monkeypatch)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
