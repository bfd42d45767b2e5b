from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.aws import moto_server, point_at_moto


@pytest.fixture(scope="module")
def moto_endpoint(monkeypatch_module: pytest.MonkeyPatch) -> Iterator[str]:
    """A real moto server on 127.0.0.1; boto3 reaches it through AWS_ENDPOINT_URL like in any account."""
    with moto_server() as endpoint:
        point_at_moto(monkeypatch_module, endpoint)
        for var, value in {
            "AWS_EC2_METADATA_DISABLED": "true",
            "POWERTOOLS_TRACE_DISABLED": "true",
            "HF_HUB_OFFLINE": "1",
        }.items():
            monkeypatch_module.setenv(var, value)
        yield endpoint


@pytest.fixture(scope="module")
def monkeypatch_module() -> Iterator[pytest.MonkeyPatch]:
    with pytest.MonkeyPatch.context() as mp:
        yield mp
