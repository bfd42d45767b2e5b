"""Fixtures for the A/B report integration tests: a moto server on 127.0.0.1 and the log generator."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from tests.support.aws import load_module, moto_server, point_at_moto

_FACTORY = Path(__file__).resolve().parents[2] / "unit" / "abtest" / "logfactory.py"


@pytest.fixture(scope="session")
def logfactory() -> ModuleType:
    """tests/unit/abtest/logfactory.py, loaded by path (tests/integration is not a package)."""
    return load_module("ab_logfactory", _FACTORY)


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    with moto_server() as endpoint:
        yield endpoint


@pytest.fixture
def aws_env(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """Every boto3 client made in the test talks to the moto server (AWS_ENDPOINT_URL)."""
    return point_at_moto(monkeypatch, moto_endpoint)
