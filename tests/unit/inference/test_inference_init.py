"""The Lambda module's init: both models loaded, botocore traced only once boto3 is first used, the
OpenAPI document models never imported, and garbage collection back on (init's objects frozen) afterwards.

Each case runs in a fresh interpreter, as a Lambda container does, with the environment Lambda gives it
(a task root and a function name turn the X-Ray SDK and Powertools' tracer on).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]

_SCRIPT = """
import gc, json, sys
import dq_platform.inference.handler as h
from dq_platform.inference.events import proxy_event
from dq_platform.inference.local_server import LocalLambdaContext
import aws_xray_sdk.core.patcher as patcher
after_init = {
    "botocore_imported": "botocore.client" in sys.modules,
    "patched": sorted(patcher._PATCHED_MODULES),
    "openapi_models_imported": "aws_lambda_powertools.event_handler.openapi.models" in sys.modules,
    "gc_enabled": gc.isenabled(),
    "init_objects_frozen": gc.get_freeze_count() > 10_000,
}
body = json.dumps({"text": "Either party may terminate this agreement on notice.", "model": "transformer"})
reply = h.handler(proxy_event("POST", "/predict", body), LocalLambdaContext())
import boto3  # what the SSM and S3 adapters import on first use
print(json.dumps({
    "after_init": after_init,
    "status": reply["statusCode"],
    "model": json.loads(reply["body"]).get("model"),
    "loaded": sorted(h.service.models),
    "patched_after_boto3": sorted(patcher._PATCHED_MODULES),
}))
"""


def _lambda_env(models_root: Path, tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "POWERTOOLS_", "MODEL_"))}
    env.update(
        PYTHONPATH=str(ROOT / "src"),
        MODEL_DIR=str(models_root),
        LAMBDA_TASK_ROOT=str(tmp_path),
        AWS_LAMBDA_FUNCTION_NAME="init-test",
        AWS_DEFAULT_REGION="eu-west-1",
        AWS_EC2_METADATA_DISABLED="true",
        AWS_XRAY_CONTEXT_MISSING="IGNORE_ERROR",
        # Nothing listens here: segments are sent over UDP and dropped, as when no daemon runs.
        AWS_XRAY_DAEMON_ADDRESS="127.0.0.1:9",
        POWERTOOLS_TRACE_DISABLED="false",
        POWERTOOLS_SERVICE_NAME="init-test",
    )
    return env


@pytest.mark.unit
def test_init_loads_both_models_and_defers_botocore(models_root: Path, tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", _SCRIPT],
        env=_lambda_env(models_root, tmp_path),
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["after_init"] == {
        "botocore_imported": False,
        "patched": [],
        "openapi_models_imported": False,
        "gc_enabled": True,
        "init_objects_frozen": True,
    }
    assert result["status"] == 200
    assert result["model"] == "transformer"
    assert result["loaded"] == ["baseline", "transformer"]
    assert result["patched_after_boto3"] == ["botocore"]


_FAILING_INIT = """
import gc, json
try:
    import dq_platform.inference.handler
except Exception as exc:
    print(json.dumps({"error": type(exc).__name__, "gc_enabled": gc.isenabled()}))
"""


@pytest.mark.unit
def test_failed_init_leaves_garbage_collection_on(models_root: Path, tmp_path: Path) -> None:
    env = _lambda_env(models_root, tmp_path)
    env["AB_WEIGHTS_TTL_SECONDS"] = "-5"  # rejected by the settings: init raises
    proc = subprocess.run(
        [sys.executable, "-c", _FAILING_INIT], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == {"error": "ValidationError", "gc_enabled": True}
