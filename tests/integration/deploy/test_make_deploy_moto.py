"""`make deploy` (tools/deploy.py) end to end against a moto server.

What is real: the deploy script, boto3, and moto standing in for STS (GetCallerIdentity), CloudFormation
(DescribeStacks), S3 (ListBuckets, the Glue artifacts and the published models), API Gateway (GetAccount,
GetApiKeys), plus the deployed API: the real handler behind `dqp serve`'s HTTP server, initialised at the
first request from the models the deploy published (as a Lambda cold start after a deploy would).

What is a stand-in, named as such: `sam deploy` itself. CloudFormation cannot run a SAM application on
moto, so a fake `sam` records its arguments and creates a stack that carries the root template's outputs.
Lambda GetAccountSettings is not in moto: the quota check is tested on that API's documented response.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from dq_platform.inference.local_server import make_server
from dq_platform.models.artifacts import fetch_models, read_manifest
from tests.support.aws import load_module, moto_server, point_at_moto, serving
from tests.support.sigv4 import verify_sigv4
from tests.unit.inference.support import ROOT, build_handler

pytestmark = pytest.mark.integration
REGION = "eu-west-2"  # samconfig.toml [default]
STACK = "enterprise-dev"
ACCOUNT = "123456789012"  # moto's account
ANALYTICS = f"enterprise-dev-analytics-{ACCOUNT}-{REGION}"
API_KEY = "k" * 40

FAKE_SAM = """#!{python}
# Stand-in for `sam deploy` (CloudFormation cannot run a SAM app on moto): records the arguments, then
# creates the stack with the outputs the root template has.
import json, os, sys
import boto3
args = sys.argv[1:]
with open(os.environ["FAKE_SAM_LOG"], "a") as log:
    log.write(json.dumps(args) + "\\n")
if args[0] != "deploy" or args[2] == "billing":
    sys.exit(0)
bucket = os.environ["FAKE_SAM_ANALYTICS"]
template = {{
    "Resources": {{"Analytics": {{"Type": "AWS::S3::Bucket", "Properties": {{"BucketName": bucket}}}}}},
    "Outputs": {{
        "DataQualityArtifactsLocation": {{"Value": "s3://" + bucket + "/artifacts/dq/"}},
        "AnalyticsBucketName": {{"Value": bucket}},
        "ApiUrl": {{"Value": os.environ["FAKE_SAM_API_URL"]}},
    }},
}}
cfn = boto3.client("cloudformation", region_name="{region}")
cfn.create_stack(StackName="{stack}", TemplateBody=json.dumps(template))
"""


@pytest.fixture(scope="module")
def deploy_tool() -> Any:
    return load_module("deploy_tool", ROOT / "tools" / "deploy.py")


@pytest.fixture
def moto(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    with moto_server() as endpoint:
        # moto's in-process backends outlive a server: start every test from an empty account.
        urllib.request.urlopen(urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST"), timeout=10)
        point_at_moto(monkeypatch, endpoint, region=REGION)
        yield endpoint


class ColdStartApi:
    """The deployed API: built at its first request from MODEL_S3_URI, like a function after a deploy.

    In front of it, what API Gateway checks first: the stage's API key (ApiAuth=API_KEY), or with
    `auth = "IAM"` a valid SigV4 signature by the moto credentials (ApiAuth=IAM).
    """

    def __init__(self, model_s3_uri: str, empty_model_dir: Path) -> None:
        self.settings = {"model_s3_uri": model_s3_uri, "model_dir": empty_model_dir}
        self.handler: Any = None
        self.keys_seen: set[str] = set()
        self.auth = "API_KEY"
        self.signatures_seen: set[tuple[str, str, str]] = set()
        self.lock = threading.Lock()

    def _signed(self, event: dict[str, Any], headers: dict[str, str]) -> bool:
        body = (event.get("body") or "").encode()
        query = urllib.parse.urlencode(event.get("multiValueQueryStringParameters") or {}, doseq=True)
        target = event["path"] + (f"?{query}" if query else "")
        try:
            parts = verify_sigv4(event["httpMethod"], target, headers, body, os.environ["AWS_SECRET_ACCESS_KEY"])
        except (AssertionError, KeyError, ValueError):
            return False
        self.signatures_seen.add((parts["key_id"], parts["region"], parts["service"]))
        return True

    def __call__(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        headers = {k.lower(): v for k, v in (event.get("headers") or {}).items()}
        self.keys_seen.add(headers.get("x-api-key", ""))
        if self.auth == "IAM":
            if not self._signed(event, headers):  # API Gateway's answer to a missing or wrong signature
                return {"statusCode": 403, "body": json.dumps({"message": "Missing Authentication Token"})}
        elif headers.get("x-api-key") != API_KEY:  # what API Gateway answers without the stage's key
            return {"statusCode": 403, "body": json.dumps({"message": "Forbidden"})}
        # API Gateway takes the stage name off the path before the function sees it.
        for key in ("path", "resource"):
            if str(event.get(key, "")).startswith("/prod/"):
                event[key] = event[key][len("/prod") :]
        with self.lock:
            if self.handler is None:
                self.handler = build_handler(**self.settings)[0]
        result: dict[str, Any] = self.handler(event, context)
        return result


@pytest.fixture
def deployed_api(tmp_path: Path) -> Iterator[tuple[str, ColdStartApi]]:
    empty = tmp_path / "no-baked-models"
    empty.mkdir()
    api = ColdStartApi(f"s3://{ANALYTICS}/models", empty)
    with serving(make_server(api, port=0)) as url:
        yield f"{url}/prod", api


@pytest.fixture
def fake_sam(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, deployed_api: tuple[str, ColdStartApi]) -> Path:
    script = tmp_path / "sam"
    script.write_text(FAKE_SAM.format(python=sys.executable, region=REGION, stack=STACK), encoding="utf-8")
    script.chmod(0o755)
    monkeypatch.setenv("FAKE_SAM_LOG", str(tmp_path / "sam-calls.jsonl"))
    monkeypatch.setenv("FAKE_SAM_ANALYTICS", ANALYTICS)
    monkeypatch.setenv("FAKE_SAM_API_URL", deployed_api[0])
    return script


def _sam_calls(tmp_path: Path) -> list[list[str]]:
    log = tmp_path / "sam-calls.jsonl"
    return [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()] if log.exists() else []


def _overrides(call: list[str]) -> dict[str, str]:
    start = call.index("--parameter-overrides") + 1
    values = [a for a in call[start:] if "=" in a and not a.startswith("--")]
    return dict(v.split("=", 1) for v in values)


def _glue_artifact_keys() -> set[str]:
    """Keys under the analytics bucket that ScriptLocation, --extra-py-files and --ruleset_uri name."""
    from tests.infra.cfn import load_template

    t = load_template("stacks/data-quality.yaml")
    defaults = {k: str(v.get("Default", "")) for k, v in t["Parameters"].items()}
    job = t["Resources"]["ContractsDqJob"]["Properties"]
    uris = [job["Command"]["ScriptLocation"], job["DefaultArguments"]["--extra-py-files"]]
    uris.append(job["DefaultArguments"]["--ruleset_uri"])
    keys = set()
    for uri in uris:
        text = uri["Fn::Sub"]
        for name, value in defaults.items():
            text = text.replace("${" + name + "}", value)
        prefix = "s3://${AnalyticsBucketName}/"
        assert text.startswith(prefix), text
        keys.add(text[len(prefix) :])
    assert len(keys) == 3
    return keys


def _api_key() -> None:
    boto3.client("apigateway", region_name=REGION).create_api_key(
        name="enterprise-dev-inference", value=API_KEY, enabled=True
    )


def test_first_deploy_uploads_glue_artifacts_publishes_models_and_smoke_tests(
    moto: str,
    deploy_tool: Any,
    fake_sam: Path,
    deployed_api: tuple[str, ColdStartApi],
    models_root: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _api_key()
    rc = deploy_tool.main(["--models", str(models_root), "--sam", str(fake_sam), "--yes"])
    out = capsys.readouterr()
    assert rc == 0, out.err + out.out

    (call,) = _sam_calls(tmp_path)
    assert call[:3] == ["deploy", "--config-env", "default"]
    assert "--no-confirm-changeset" in call
    params = _overrides(call)
    # samconfig.toml's parameters, plus what the preflight chose: no logging role in the account yet.
    assert params["ProjectPrefix"] == "enterprise"
    assert params["EnvName"] == "dev"
    assert params["ApiGatewayLogging"] == "create"
    assert params["ModelS3Uri"] == f"s3://{ANALYTICS}/models"

    s3 = boto3.client("s3", region_name=REGION)
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket=ANALYTICS)["Contents"]}
    # Exactly what the Glue job's ScriptLocation, --extra-py-files and --ruleset_uri point at.
    assert {
        "artifacts/dq/contracts_dq.py",
        "artifacts/dq/dq_platform.zip",
        "artifacts/dq/rulesets/contracts.dqdl",
    } <= keys
    for name in ("baseline", "transformer"):
        latest = s3.get_object(Bucket=ANALYTICS, Key=f"models/{name}/LATEST")["Body"].read().decode()
        assert latest == read_manifest(models_root / name).version
    fetched = fetch_models(f"s3://{ANALYTICS}/models", dest=tmp_path / "fetched")
    for name in ("baseline", "transformer"):
        assert read_manifest(fetched / name) == read_manifest(models_root / name)

    # The smoke test ran against the deployed URL with the stage's API key, and passed.
    assert "FAIL" not in out.out
    assert "PASS" in out.out
    assert deployed_api[1].keys_seen == {API_KEY}
    assert deployed_api[1].handler is not None  # the API loaded the published models at its first request


def _as_iam_stage(deploy_tool: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every environment the deploy reads gets `ApiAuth=IAM`, as samconfig's parameter_overrides would give."""
    read_environment = deploy_tool.read_environment

    def with_iam(config_env: str) -> Any:
        env = read_environment(config_env)
        env.parameters["ApiAuth"] = "IAM"
        return env

    monkeypatch.setattr(deploy_tool, "read_environment", with_iam)


def test_an_iam_stage_is_smoke_tested_with_sigv4_signed_requests(
    moto: str,
    deploy_tool: Any,
    fake_sam: Path,
    deployed_api: tuple[str, ColdStartApi],
    models_root: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _as_iam_stage(deploy_tool, monkeypatch)
    deployed_api[1].auth = "IAM"
    rc = deploy_tool.main(["--models", str(models_root), "--sam", str(fake_sam), "--yes"])
    out = capsys.readouterr()
    assert rc == 0, out.err + out.out
    (call,) = _sam_calls(tmp_path)
    assert _overrides(call)["ApiAuth"] == "IAM"
    assert "(SigV4-signed, ApiAuth=IAM)" in out.out
    assert "FAIL" not in out.out
    # Every request carried a signature that verifies, by the deploying credentials, for execute-api in the
    # environment's region (the URL is a loopback one here, so the region comes from samconfig).
    assert deployed_api[1].signatures_seen == {("testing", REGION, "execute-api")}
    assert deployed_api[1].keys_seen == {""}  # and no API key
    assert deployed_api[1].handler is not None


def test_an_iam_stage_without_credentials_stops_in_one_line(
    moto: str,
    deploy_tool: Any,
    fake_sam: Path,
    deployed_api: tuple[str, ColdStartApi],
    models_root: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _as_iam_stage(deploy_tool, monkeypatch)
    import dq_platform.inference.smoke as smoke_module

    def no_credentials(url: str, region: str | None = None) -> Any:
        raise ValueError("--auth iam needs AWS credentials and the default chain found none")

    monkeypatch.setattr(smoke_module, "iam_signer", no_credentials)
    assert deploy_tool.main(["--models", str(models_root), "--sam", str(fake_sam), "--yes"]) == 2
    err = capsys.readouterr().err
    assert "cannot smoke-test the IAM stage" in err
    assert "Traceback" not in err


def test_a_second_environment_uses_the_accounts_existing_logging_role(
    moto: str, deploy_tool: Any, fake_sam: Path, models_root: Path, tmp_path: Path
) -> None:
    apigw = boto3.client("apigateway", region_name=REGION)
    other = f"arn:aws:iam::{ACCOUNT}:role/enterprise-production-Inference-ABC-ApiGatewayLogsRole-XYZ"
    apigw.update_account(patchOperations=[{"op": "replace", "path": "/cloudwatchRoleArn", "value": other}])
    _api_key()
    assert deploy_tool.main(["--models", str(models_root), "--sam", str(fake_sam), "--yes"]) == 0
    (call,) = _sam_calls(tmp_path)
    assert _overrides(call)["ApiGatewayLogging"] == "existing"


def test_leftover_buckets_of_a_failed_create_stop_the_deploy_with_the_cleanup(
    moto: str, deploy_tool: Any, fake_sam: Path, models_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    s3 = boto3.client("s3", region_name=REGION)
    kept = f"enterprise-dev-audit-{ACCOUNT}-{REGION}"
    s3.create_bucket(Bucket=kept, CreateBucketConfiguration={"LocationConstraint": REGION})
    assert deploy_tool.main(["--models", str(models_root), "--sam", str(fake_sam), "--yes"]) == 2
    err = capsys.readouterr().err
    assert f"aws s3 rb s3://{kept} --force" in err
    assert _sam_calls(tmp_path) == []  # nothing was deployed


def test_missing_models_stop_before_publishing(
    moto: str, deploy_tool: Any, fake_sam: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _api_key()
    assert deploy_tool.main(["--models", str(tmp_path / "none"), "--sam", str(fake_sam), "--yes"]) == 2
    assert "make sample-models" in capsys.readouterr().err


def test_failed_stack_states_say_what_to_delete(deploy_tool: Any) -> None:
    env = deploy_tool.read_environment("default")
    with pytest.raises(deploy_tool.DeployError) as exc:
        deploy_tool.check_stack_state("ROLLBACK_COMPLETE", env, [f"enterprise-dev-raw-{ACCOUNT}-{REGION}"])
    text = str(exc.value)
    assert f"sam delete --stack-name {STACK} --region {REGION}" in text
    assert f"aws s3 rb s3://enterprise-dev-raw-{ACCOUNT}-{REGION} --force" in text
    assert deploy_tool.check_stack_state(None, env, []) == "create"
    assert deploy_tool.check_stack_state("UPDATE_COMPLETE", env, []) == "update"


# Lambda GetAccountSettings response shape (Lambda API reference); moto does not implement the call.
NEW_ACCOUNT = {"AccountLimit": {"ConcurrentExecutions": 10, "UnreservedConcurrentExecutions": 10}}
BIG_ACCOUNT = {"AccountLimit": {"ConcurrentExecutions": 1000, "UnreservedConcurrentExecutions": 1000}}


def test_reservations_a_new_account_cannot_give_are_refused_before_deploying(deploy_tool: Any) -> None:
    deploy_tool.check_concurrency(NEW_ACCOUNT, {"ReservedConcurrency": "0"})
    deploy_tool.check_concurrency(BIG_ACCOUNT, {"ReservedConcurrency": "2", "BatchExplainReservedConcurrency": "2"})
    with pytest.raises(deploy_tool.DeployError, match="can reserve 0"):
        deploy_tool.check_concurrency(NEW_ACCOUNT, {"ReservedConcurrency": "2"})


def test_billing_environment_only_deploys_the_billing_stack(
    deploy_tool: Any, fake_sam: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # any AWS call would fail: none is made
    assert deploy_tool.main(["--config-env", "billing", "--sam", str(fake_sam), "--yes"]) == 0
    (call,) = _sam_calls(tmp_path)
    assert call[:3] == ["deploy", "--config-env", "billing"]
    assert os.environ["FAKE_SAM_LOG"]
