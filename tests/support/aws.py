"""Loopback ports and servers, a moto server, function modules loaded by path, and an environment that cannot
reach AWS.

Every tier needs the same things; one copy here keeps their behaviour the same everywhere.
"""

from __future__ import annotations

import importlib.util
import socket
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

AWS_CREDENTIAL_VARS = ("AWS_PROFILE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    """A free port on 127.0.0.1 (TCP, or UDP with `socket.SOCK_DGRAM`)."""
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def moto_server() -> Iterator[str]:
    """A moto server on a free loopback port; yields its endpoint URL and stops it afterwards."""
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


def load_module(name: str, path: Path) -> ModuleType:
    """Import a function's `app.py` (or a Glue job) by path under `name`.

    The module is registered in `sys.modules` before it runs: pydantic resolves the annotations of models
    defined in it through that entry.
    """
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def local_only(monkeypatch: pytest.MonkeyPatch, region: str = "eu-west-1") -> None:
    """No credentials, profile, endpoint or instance metadata: nothing a test does can reach AWS."""
    for var in (*AWS_CREDENTIAL_VARS, "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_DEFAULT_REGION", region)
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "true")


def point_at_moto(monkeypatch: pytest.MonkeyPatch, endpoint: str, region: str = "eu-west-1") -> str:
    """Every boto3 client made afterwards (Powertools Parameters, the storage layer) talks to `endpoint`."""
    for var in ("AWS_PROFILE", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", region)
    return endpoint


@contextmanager
def serving(server: Any) -> Iterator[str]:
    """Run an http.server-style server on a daemon thread; yields its loopback base URL, then stops it."""
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
