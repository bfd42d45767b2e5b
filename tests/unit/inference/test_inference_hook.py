"""The CodeDeploy pre-traffic hook, against a stubbed CodeDeploy client (botocore Stubber).

The new version is played by the real handler on the sample models, invoked in-process through a small
Lambda-invoke stand-in (CodeDeploy and Lambda versions cannot run here)."""

from __future__ import annotations

import io
import json
from pathlib import Path
from types import ModuleType
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from dq_platform.inference.local_server import LocalLambdaContext
from tests.support.aws import load_module
from tests.unit.inference.support import ROOT, build_handler, copy_models

pytestmark = pytest.mark.unit
VERSION_ARN = "arn:aws:lambda:eu-west-1:123456789012:function:enterprise-production-ml-infer:7"


def _hook() -> ModuleType:
    return load_module("codedeploy_hook_app", ROOT / "functions/codedeploy_hook/app.py")


class InProcessLambdaStub:
    """Stand-in for the Lambda client: `invoke` runs the real handler and answers like Lambda does."""

    def __init__(self, handler: Any) -> None:
        self.handler = handler
        self.invoked: list[str] = []

    def invoke(self, FunctionName: str, InvocationType: str, Payload: bytes) -> dict[str, Any]:  # noqa: N803
        assert InvocationType == "RequestResponse"
        self.invoked.append(FunctionName)
        try:
            result = self.handler(json.loads(Payload), LocalLambdaContext())
        except Exception as exc:
            body = json.dumps({"errorType": type(exc).__name__}).encode()
            return {"StatusCode": 200, "FunctionError": "Unhandled", "Payload": io.BytesIO(body)}
        return {"StatusCode": 200, "Payload": io.BytesIO(json.dumps(result).encode())}


def _stubbed_codedeploy(expected_status: str) -> tuple[Any, Stubber]:
    client = boto3.client("codedeploy", region_name="eu-west-1", aws_access_key_id="x", aws_secret_access_key="x")
    stubber = Stubber(client)
    stubber.add_response(
        "put_lifecycle_event_hook_execution_status",
        {"lifecycleEventHookExecutionId": "hook-1"},
        {"deploymentId": "d-ABC", "lifecycleEventHookExecutionId": "hook-1", "status": expected_status},
    )
    stubber.activate()
    return client, stubber


EVENT = {"DeploymentId": "d-ABC", "LifecycleEventHookExecutionId": "hook-1"}


def test_healthy_version_succeeds(models_root: Path) -> None:
    handler, _ = build_handler(model_dir=models_root)
    lambda_stub = InProcessLambdaStub(handler)
    codedeploy, stubber = _stubbed_codedeploy("Succeeded")
    assert _hook().run_hook(EVENT, lambda_stub, codedeploy, VERSION_ARN) == "Succeeded"
    stubber.assert_no_pending_responses()
    assert lambda_stub.invoked == [VERSION_ARN] * 6  # every bundled event, against the new version only


def test_version_missing_a_model_fails_and_rolls_back(tmp_path: Path, models_root: Path) -> None:
    root = copy_models(models_root / "baseline", tmp_path / "m" / "baseline").parent
    handler, _ = build_handler(model_dir=root)
    codedeploy, stubber = _stubbed_codedeploy("Failed")
    hook = _hook()
    assert hook.run_hook(EVENT, InProcessLambdaStub(handler), codedeploy, VERSION_ARN) == "Failed"
    stubber.assert_no_pending_responses()
    failures = hook.run_smoke(InProcessLambdaStub(handler), VERSION_ARN)
    assert any(f.startswith("health.json") for f in failures)
    assert any(f.startswith("predict-transformer.json: expected status 200, got 503") for f in failures)


def test_crashing_version_fails() -> None:
    def crash(event: Any, context: Any) -> Any:
        raise RuntimeError("init failed")

    codedeploy, stubber = _stubbed_codedeploy("Failed")
    assert _hook().run_hook(EVENT, InProcessLambdaStub(crash), codedeploy, VERSION_ARN) == "Failed"
    stubber.assert_no_pending_responses()


def test_lambda_api_error_fails_instead_of_hanging() -> None:
    class Unreachable:
        def invoke(self, **kwargs: Any) -> Any:
            raise ConnectionError("endpoint unreachable")

    codedeploy, stubber = _stubbed_codedeploy("Failed")
    assert _hook().run_hook(EVENT, Unreachable(), codedeploy, VERSION_ARN) == "Failed"
    stubber.assert_no_pending_responses()
