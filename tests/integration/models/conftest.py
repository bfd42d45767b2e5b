from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest


@pytest.fixture(scope="module")
def moto_endpoint(monkeypatch_module: pytest.MonkeyPatch) -> Iterator[str]:
    """A real moto server on 127.0.0.1; boto3 reaches it through AWS_ENDPOINT_URL like in any account."""
    from moto.server import ThreadedMotoServer

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    for var, value in {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "eu-west-1",
        "AWS_EC2_METADATA_DISABLED": "true",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "HF_HUB_OFFLINE": "1",
    }.items():
        monkeypatch_module.setenv(var, value)
    monkeypatch_module.delenv("AWS_PROFILE", raising=False)
    monkeypatch_module.delenv("AWS_SESSION_TOKEN", raising=False)
    yield endpoint
    server.stop()


@pytest.fixture(scope="module")
def monkeypatch_module() -> Iterator[pytest.MonkeyPatch]:
    with pytest.MonkeyPatch.context() as mp:
        yield mp
