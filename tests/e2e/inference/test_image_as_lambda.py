"""The built inference image under Lambda's own constraints, which `sam local` does not impose.

`sam local` runs containers as root with a writable filesystem; Lambda runs an image function as a
non-root user on a read-only filesystem with a writable /tmp only. Started with plain `docker run`
(the image's entrypoint starts the Runtime Interface Emulator itself, as the official image does), as
Lambda's uid, read-only: the models baked into the image must still load and answer.
"""

from __future__ import annotations

import json
import time
import urllib.error
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e import samlocal

pytestmark = pytest.mark.e2e

LAMBDA_USER = "993:990"  # the uid:gid Lambda runs function code as (sbx_user1051)
INVOKE_PATH = "/2015-03-31/functions/function/invocations"


@pytest.fixture(scope="module")
def lambda_like_container(sam_app: Path, docker_network: str) -> Iterator[str]:
    function = samlocal.functions_by_route()[("GET", "/health")]
    image = samlocal.built_image(function)
    port = samlocal.free_port()
    container = samlocal.docker(
        "run", "--detach",
        "--network", docker_network,
        "--user", LAMBDA_USER,
        "--read-only", "--tmpfs", "/tmp:rw,size=512m",
        "--memory", "1024m",
        "--publish", f"127.0.0.1:{port}:8080",
        "--env", "AWS_EC2_METADATA_DISABLED=true",
        "--env", "AWS_REGION=us-east-1",
        image,
    ).strip()  # fmt: skip
    try:
        yield f"http://127.0.0.1:{port}{INVOKE_PATH}"
    finally:
        logs = samlocal.docker("logs", container)
        samlocal.LOGS.joinpath("lambda-like-container.log").write_text(logs, encoding="utf-8")
        samlocal.docker("rm", "-f", container)


def _invoke(url: str, event_file: str, timeout: float = 120) -> dict[str, Any]:
    event = json.loads((samlocal.EVENTS / event_file).read_text(encoding="utf-8"))
    deadline = time.monotonic() + timeout
    while True:
        try:
            reply = samlocal.http("POST", url, event, timeout=timeout)
            break
        except (urllib.error.URLError, ConnectionError) as exc:  # the emulator is still starting
            if time.monotonic() > deadline:
                raise AssertionError(f"container never answered: {exc}") from exc
            time.sleep(0.5)
    assert reply.status == 200, reply.body
    assert isinstance(reply.body, dict), reply.body
    return reply.body


def test_models_load_as_lambdas_non_root_user_on_a_read_only_filesystem(
    lambda_like_container: str, local_models: dict[str, Any]
) -> None:
    result = _invoke(lambda_like_container, "health.json")
    body = json.loads(result["body"])
    assert result["statusCode"] == 200, result
    assert body["status"] == "ok", f"models do not load as uid {LAMBDA_USER}: {body}"
    assert body["models_loaded"] == {name: m.version for name, m in local_models.items()}


def test_predicts_as_lambdas_non_root_user(lambda_like_container: str, local_models: dict[str, Any]) -> None:
    result = _invoke(lambda_like_container, "predict-transformer.json")
    body = json.loads(result["body"])
    assert result["statusCode"] == 200, body
    assert body["model"] == "transformer"
    event = json.loads((samlocal.EVENTS / "predict-transformer.json").read_text(encoding="utf-8"))
    assert body["label"] == local_models["transformer"].predict(json.loads(event["body"])["text"]).label
