"""Helpers of the reliability tier: a real `dqp serve` subprocess, raw HTTP, a moto server, a UDP sink.

Everything binds 127.0.0.1. Subprocesses get a scrubbed environment (no AWS credentials or endpoints
from the caller), so a test reaches only what it started itself.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.support.aws import free_port

ROOT = Path(__file__).resolve().parents[2]
DQP = Path(sys.executable).parent / "dqp"
RULESET = ROOT / "glue" / "rulesets" / "contracts.dqdl"
REGION = "eu-west-1"


def scrubbed_env(**extra: str) -> dict[str, str]:
    """The caller's environment without AWS_* or Powertools settings, plus local-only defaults."""
    drop = ("AWS_", "POWERTOOLS_", "_X_AMZN", "LAMBDA_", "MODEL_", "AB_WEIGHTS", "ANALYTICS_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    env.update(
        AWS_EC2_METADATA_DISABLED="true",
        AWS_DEFAULT_REGION=REGION,
        HF_HUB_OFFLINE="1",
        TOKENIZERS_PARALLELISM="false",
        POWERTOOLS_TRACE_DISABLED="true",
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


def aws_env(endpoint: str, **extra: str) -> dict[str, str]:
    return scrubbed_env(
        AWS_ENDPOINT_URL=endpoint,
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        # Bounded retries: an outage test must see the error, not minutes of back-off.
        AWS_RETRY_MODE="standard",
        AWS_MAX_ATTEMPTS="2",
        **extra,
    )


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def call(
    url: str,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = 60.0,
) -> Reply:
    """One request on a fresh connection, exactly the bytes given (no client-side JSON or encoding)."""
    host, _, port = url.removeprefix("http://").partition(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        return Reply(resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read())
    finally:
        conn.close()


def post_json(url: str, payload: Any, headers: dict[str, str] | None = None) -> Reply:
    hdrs = {"Content-Type": "application/json", **(headers or {})}
    return call(url, "POST", "/predict", json.dumps(payload).encode(), hdrs)


@dataclass
class Served:
    """A running `dqp serve`; its stdout and stderr go to files so nothing blocks on a full pipe."""

    url: str
    proc: subprocess.Popen[bytes]
    stdout_path: Path
    stderr_path: Path
    extra: dict[str, Any] = field(default_factory=dict)

    def stdout(self) -> str:
        return self.stdout_path.read_text(encoding="utf-8", errors="replace")

    def stderr(self) -> str:
        return self.stderr_path.read_text(encoding="utf-8", errors="replace")

    def json_lines(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for line in self.stdout().splitlines():
            if line.startswith("{"):
                out.append(json.loads(line))
        return out


def wait_until_up(url: str, proc: subprocess.Popen[bytes], stderr_path: Path, timeout_s: float = 90.0) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            call(url, "GET", "/health", timeout=5)
            return
        except OSError as exc:
            if proc.poll() is not None:
                raise AssertionError(f"dqp serve exited {proc.returncode}: {stderr_path.read_text()}") from exc
            if time.monotonic() > deadline:
                raise AssertionError(f"dqp serve did not come up: {stderr_path.read_text()}") from exc
            time.sleep(0.1)


@contextmanager
def dqp_serve(
    models: Path,
    workdir: Path,
    env: dict[str, str] | None = None,
    args: list[str] | None = None,
    name: str = "serve",
    command: list[str] | None = None,
) -> Iterator[Served]:
    """`dqp serve --models MODELS` (or `command`) on a free loopback port until the block ends."""
    port = free_port()
    workdir.mkdir(parents=True, exist_ok=True)
    out, err = workdir / f"{name}.stdout", workdir / f"{name}.stderr"
    cmd = command or [str(DQP), "serve", "--models", str(models)]
    cmd = [*cmd, "--port", str(port), *(args or [])]
    with out.open("wb") as stdout, err.open("wb") as stderr:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env or scrubbed_env(), stdout=stdout, stderr=stderr)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(url, proc, err)
        yield Served(url, proc, out, err)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=20)


class MotoServer:
    """A moto server on a fixed loopback port that can be stopped and started again (same state)."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self._server: Any = None

    def start(self) -> MotoServer:
        from moto.server import ThreadedMotoServer

        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        self._server.start()
        return self

    def reset(self) -> None:
        import requests

        requests.post(f"{self.endpoint}/moto-api/reset", timeout=10).raise_for_status()

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None

    def client(self, service: str) -> Any:
        import boto3

        return boto3.client(
            service,  # type: ignore[call-overload]
            endpoint_url=self.endpoint,
            region_name=REGION,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )


class UdpSink:
    """Collects every datagram sent to 127.0.0.1:PORT: the X-Ray daemon's address, for the SDK."""

    def __init__(self, port: int = 2000) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            self.sock.bind(("127.0.0.1", port))
        except OSError:  # 2000 taken (another run): any free port, passed to the SDK the same way
            self.sock.bind(("127.0.0.1", 0))
        self.port: int = self.sock.getsockname()[1]
        self.sock.settimeout(0.2)
        self.datagrams: list[bytes] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                data, _ = self.sock.recvfrom(65535)
            except TimeoutError:
                continue
            except OSError:
                return
            self.datagrams.append(data)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.sock.close()

    def segments(self) -> list[dict[str, Any]]:
        """The JSON documents (X-Ray sends a header line, then the segment)."""
        docs: list[dict[str, Any]] = []
        for data in self.datagrams:
            for line in data.decode("utf-8", errors="replace").splitlines():
                if line.startswith("{") and '"format"' not in line[:12]:
                    docs.append(json.loads(line))
        return docs
