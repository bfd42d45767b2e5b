"""CodeDeploy pre-traffic hook: smoke-test the new inference version before it takes any traffic.

Invokes the new version (TARGET_FUNCTION_VERSION, resolved by SAM to the version being deployed) with
the sample API Gateway events bundled beside this file (copies of the repository's events/, kept equal
by `dqp events` and a test), then reports Succeeded or Failed to CodeDeploy; Failed rolls back.
Self-contained (stdlib + boto3 from the Lambda runtime) so that it never depends on the code under test:
the hook judges the version being deployed, so a defect in dq_platform (or the layer that ships it) must fail
the smoke test, not the hook. Hence its settings are one validated stdlib object (`HookSettings`), not a
pydantic `BaseSettings`: pydantic is not in the Lambda runtime, and bundling it would be bundling our stack.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from botocore.config import _RetryDict  # botocore-stubs' shape of Config(retries=...)

EVENTS_DIR = Path(__file__).resolve().parent / "events"
# Event file -> status the new version must answer (kept equal to dq_platform.inference.events).
EXPECTED_STATUS = {
    "health.json": 200,
    "models.json": 200,
    "predict-baseline.json": 200,
    "predict-transformer.json": 200,
    "predict-auto.json": 200,
    "predict-invalid.json": 422,
}

TARGET_VERSION_VAR = "TARGET_FUNCTION_VERSION"

logger = logging.getLogger("codedeploy_hook")
logger.setLevel(logging.INFO)


def _check(name: str, event: dict[str, Any], result: dict[str, Any]) -> str | None:
    """None if the response is what the event expects, else why not (no request text in the reason)."""
    status = result.get("statusCode")
    if status != EXPECTED_STATUS[name]:
        return f"{name}: expected status {EXPECTED_STATUS[name]}, got {status}"
    try:
        body = json.loads(result.get("body") or "null")
    except ValueError:
        return f"{name}: response body is not JSON"
    if not isinstance(body, dict):
        return f"{name}: response body is not an object"
    if name == "health.json" and body.get("status") != "ok":
        return f"health.json: status {body.get('status')!r}, reasons {body.get('degraded_reasons')}"
    if name == "models.json" and not all(m.get("loaded") for m in body.get("models", [])):
        return "models.json: not every model is loaded"
    if name.startswith("predict-") and status == 200:
        request = json.loads(event["body"])
        if request.get("model", "auto") != "auto" and body.get("model") != request["model"]:
            return f"{name}: answered by {body.get('model')!r}"
        if not body.get("label") or not 0.0 <= float(body.get("confidence", -1)) <= 1.0:
            return f"{name}: no label or confidence out of range"
        if bool(request.get("explain")) != (body.get("explanation") is not None):
            return f"{name}: explanation presence does not match explain"
    if status >= 400 and not body.get("message"):
        return f"{name}: error response without a message"
    return None


def run_smoke(lambda_client: Any, function_version: str, events_dir: Path = EVENTS_DIR) -> list[str]:
    """Invoke `function_version` with every bundled event; the list of failures (empty = healthy)."""
    failures: list[str] = []
    for name in EXPECTED_STATUS:
        path = events_dir / name
        try:
            event = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            failures.append(f"{name}: cannot read bundled event ({type(exc).__name__})")
            continue
        response = lambda_client.invoke(
            FunctionName=function_version, InvocationType="RequestResponse", Payload=json.dumps(event).encode()
        )
        payload = response["Payload"].read()
        if response.get("FunctionError"):
            failures.append(f"{name}: function error {response['FunctionError']}")
            continue
        try:
            result = json.loads(payload)
        except ValueError:
            failures.append(f"{name}: invoke result is not JSON")
            continue
        problem = _check(name, event, result if isinstance(result, dict) else {})
        if problem:
            failures.append(problem)
        logger.info("smoke %s -> %s", name, "ok" if problem is None else "FAILED")
    return failures


def run_hook(event: dict[str, Any], lambda_client: Any, codedeploy_client: Any, function_version: str) -> str:
    """Smoke-test, then report the lifecycle status; returns the status reported."""
    deployment_id = event["DeploymentId"]
    hook_id = event["LifecycleEventHookExecutionId"]
    try:
        failures = run_smoke(lambda_client, function_version)
    except Exception as exc:  # any error talking to Lambda fails the deployment rather than hanging it
        logger.exception("smoke run failed")
        failures = [f"smoke run raised {type(exc).__name__}"]
    status = "Failed" if failures else "Succeeded"
    for failure in failures:
        logger.error("smoke check failed: %s", failure)
    codedeploy_client.put_lifecycle_event_hook_execution_status(
        deploymentId=deployment_id, lifecycleEventHookExecutionId=hook_id, status=status
    )
    logger.info("reported %s for %s", status, function_version)
    return status


# The new version shares the function's concurrency (reserved or the account's) with live traffic, so an
# invoke may be throttled (429 TooManyRequestsException) while the canary runs. botocore's standard retry
# mode retries throttles with exponential backoff and jitter (capped at 20 s a wait): 12 attempts wait at most
# ~3 minutes for one request before a starved smoke test fails (and rolls back) the deployment.
LAMBDA_RETRIES: _RetryDict = {"mode": "standard", "max_attempts": 12}


@dataclass(frozen=True)
class HookSettings:
    """The hook's configuration, read from the environment the template sets and checked in one place."""

    # The version being deployed (SAM resolves `!Ref <function>.Version` to its qualified ARN).
    target_function_version: str

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> HookSettings:
        values = os.environ if env is None else env
        version = values.get(TARGET_VERSION_VAR, "").strip()
        if not version:
            raise RuntimeError(f"{TARGET_VERSION_VAR} is not set: the template sets it to the version being deployed")
        return cls(target_function_version=version)


def handler(event: dict[str, Any], context: Any) -> dict[str, str]:
    import boto3
    from botocore.config import Config

    settings = HookSettings.from_env()
    lambda_client = boto3.client("lambda", config=Config(retries=LAMBDA_RETRIES, read_timeout=60))
    status = run_hook(event, lambda_client, boto3.client("codedeploy"), settings.target_function_version)
    return {"status": status}
