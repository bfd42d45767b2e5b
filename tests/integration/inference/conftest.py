from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

# tests/integration is not a package, so the repository root is not on sys.path when this folder runs
# alone; the shared helpers live in tests/unit/inference/support.py.
_ROOT = str(Path(__file__).resolve().parents[3])
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from tests.support.aws import moto_server, point_at_moto  # noqa: E402

# pytest fixtures, used by name: importing them here makes them apply to this folder.
from tests.support.fixtures import local_only_env, models_root  # noqa: E402, F401


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    """A moto server (S3, SSM) on a free loopback port, shared by a module's tests."""
    with moto_server() as endpoint:
        yield endpoint


@pytest.fixture
def aws(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """Point boto3 (and so Powertools Parameters and the storage layer) at the moto server."""
    return point_at_moto(monkeypatch, moto_endpoint)
