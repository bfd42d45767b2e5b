"""`dqp serve` over real HTTP on 127.0.0.1, and `dqp smoke` against it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from dq_platform.cli import app as dqp
from dq_platform.inference.local_server import make_server
from tests.support.aws import free_port, serving
from tests.unit.inference.support import ROOT, build_handler, copy_models

pytestmark = pytest.mark.integration


def _serve(handler: Any) -> Iterator[str]:
    with serving(make_server(handler, port=0)) as url:
        yield url


@pytest.fixture(scope="module")
def url(models_root: Path) -> Iterator[str]:
    yield from _serve(build_handler(model_dir=models_root)[0])


def _call(url: str, method: str, path: str, body: bytes | None = None) -> tuple[int, dict[str, str], Any]:
    req = urllib.request.Request(url + path, data=body, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, dict(resp.headers), json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), json.loads(exc.read())


def test_routes_over_http(url: str) -> None:
    status, _, health = _call(url, "GET", "/health")
    assert (status, health["status"]) == (200, "ok")
    status, _, models = _call(url, "GET", "/models")
    assert status == 200
    assert {m["name"] for m in models["models"]} == {"baseline", "transformer"}
    body = json.dumps(
        {"text": "Fees are non-refundable.", "model": "baseline", "explain": True, "explain_detail": True}
    ).encode()
    status, headers, prediction = _call(url, "POST", "/predict", body)
    assert status == 200
    assert prediction["model"] == "baseline"
    assert prediction["explanation"]["detail"]["method"] == "linear-contributions"
    assert headers["Content-Type"] == "application/json"
    assert headers["X-Model"] == "baseline"
    assert headers["X-Correlation-Id"]


def test_errors_over_http(url: str) -> None:
    status, _, body = _call(url, "POST", "/predict", b"{broken")
    assert (status, body["error"]) == (400, "invalid_json")
    status, _, body = _call(url, "POST", "/predict", json.dumps({"text": "a", "model": "x"}).encode())
    assert (status, body["error"]) == (422, "validation_error")
    status, _, body = _call(url, "GET", "/missing")
    assert status == 404


def test_parallel_clients_all_answered(url: str) -> None:
    body = json.dumps({"text": "Liability is capped at fees paid.", "model": "auto"}).encode()
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda _: _call(url, "POST", "/predict", body)[0], range(24)))
    assert results == [200] * 24


def test_smoke_passes_against_dqp_serve(url: str) -> None:
    result = CliRunner().invoke(dqp, ["smoke", "--url", url])
    assert result.exit_code == 0, result.output
    assert result.output.count("PASS") == 9
    assert "9/9 checks passed" in result.output


def test_smoke_fails_when_a_model_is_missing(models_root: Path, tmp_path: Path) -> None:
    root = copy_models(models_root / "baseline", tmp_path / "m" / "baseline").parent
    for base in _serve(build_handler(model_dir=root)[0]):
        result = CliRunner().invoke(dqp, ["smoke", "--url", base])
        assert result.exit_code == 1, result.output
        assert "FAIL  GET /health" in result.output
        assert "FAIL  POST /predict model=transformer explain=False" in result.output
        assert "PASS  POST /predict model=baseline explain=True" in result.output


def test_smoke_fails_cleanly_when_nothing_listens() -> None:
    port = free_port()
    result = CliRunner().invoke(dqp, ["smoke", "--url", f"http://127.0.0.1:{port}", "--timeout", "2"])
    assert result.exit_code == 1
    assert result.output == (  # one line, not nine failed checks: nothing answered at all
        f"error: nothing answers at http://127.0.0.1:{port} (connection refused); check the URL and that the API "
        "is up (`dqp serve`, or the deployed stage)\n"
    )


def test_dqp_serve_command(models_root: Path) -> None:
    port = free_port()
    env = {**os.environ, "POWERTOOLS_TRACE_DISABLED": "true"}
    dqp_bin = Path(sys.executable).parent / "dqp"  # the console script installed with the package
    cmd = [str(dqp_bin), "serve", "--port", str(port), "--models", str(models_root)]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                status, _, health = _call(f"http://127.0.0.1:{port}", "GET", "/health")
                break
            except urllib.error.URLError:
                assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
                assert time.monotonic() < deadline, "dqp serve did not come up"
                time.sleep(0.2)
        assert (status, health["status"]) == (200, "ok")
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_a_crashing_handler_gives_502_not_a_dropped_connection() -> None:
    def crash(event: Any, context: Any) -> Any:
        raise RuntimeError("bug")

    for base in _serve(crash):
        status, _, body = _call(base, "GET", "/health")
        assert status == 502
        assert body == {"message": "Internal server error"}
