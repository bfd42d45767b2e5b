"""`make deploy`: the first deploy and every update of one samconfig environment, from a fresh clone.

    python tools/deploy.py [--config-env default|prod|billing] [--models DIR] [--yes]

`make deploy` runs `make build` first (images, wheels, models, `sam build`), then this script:

1. preflight against the account, before anything is created: the stack's state (a failed first create
   must be deleted before a retry, and buckets its rollback could not delete are named with the command
   that removes them), the Lambda concurrency quota when a reservation is asked for, and the regional
   API Gateway logging role (create it here, or use the one the account has);
2. `sam deploy` with samconfig.toml's parameters plus what the preflight chose;
3. uploads what the Glue job runs (script, dq_platform zip, rulesets) to the stack's artifacts location;
4. publishes the models (`dqp train` output, or the sample models) to the analytics bucket with LATEST,
   where the API (ModelS3Uri) and the batch explanations read them;
5. `dqp smoke` against the deployed stage, with the stage's API key (or SigV4-signed with ApiAuth=IAM).

The billing environment (stacks/billing.yaml, us-east-1) only runs step 2.
Every AWS call goes through boto3's default chain (AWS_PROFILE, AWS_REGION, AWS_ENDPOINT_URL), so the
tests run this script unchanged against a moto server.
"""

from __future__ import annotations

import argparse
import shlex
import subprocess
import sys
import tomllib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))

# Lambda keeps this many executions of the account's concurrency quota unreserved (Lambda quotas page).
UNRESERVED_MINIMUM = 10
RESERVATIONS = ("ReservedConcurrency", "BatchExplainReservedConcurrency")
# CloudFormation states from which `sam deploy` cannot update: the stack must be deleted first.
DEAD_STATES = {"ROLLBACK_COMPLETE", "ROLLBACK_FAILED", "DELETE_FAILED"}
BUCKET_KINDS = ("access-logs", "raw", "processed", "analytics", "audit")


class DeployError(Exception):
    """A reason the deploy stops, worded as what happened and what to do."""


@dataclass
class Environment:
    """One samconfig.toml environment, with its parameters as a dict."""

    name: str
    stack_name: str
    region: str
    template_file: str
    parameters: dict[str, str] = field(default_factory=dict)

    @property
    def is_billing(self) -> bool:
        return self.template_file.endswith("billing.yaml")

    @property
    def prefix_env(self) -> str:
        return f"{self.parameters.get('ProjectPrefix', 'enterprise')}-{self.parameters.get('EnvName', 'production')}"


def parse_overrides(text: str) -> dict[str, str]:
    """`K=V K2='a b'` (samconfig's parameter_overrides) as a dict; a token without '=' is an error."""
    out: dict[str, str] = {}
    for token in shlex.split(text):
        key, sep, value = token.partition("=")
        if not sep or not key:
            raise DeployError(f"parameter override {token!r} is not Key=Value: fix it in samconfig.toml")
        out[key] = value
    return out


def format_overrides(parameters: dict[str, str]) -> list[str]:
    return [f"{k}={v}" for k, v in parameters.items()]


def read_environment(config_env: str, samconfig: Path = ROOT / "samconfig.toml") -> Environment:
    config = tomllib.loads(samconfig.read_text(encoding="utf-8"))
    if config_env not in config:
        known = ", ".join(k for k in config if k != "version")
        raise DeployError(f"samconfig.toml has no environment {config_env!r}: use one of {known}")
    section = config[config_env]
    deploy = section.get("deploy", {}).get("parameters", {})
    stack = section.get("global", {}).get("parameters", {}).get("stack_name") or deploy.get("stack_name")
    if not stack:
        raise DeployError(f"samconfig.toml [{config_env}] names no stack_name")
    return Environment(
        name=config_env,
        stack_name=stack,
        region=deploy.get("region", "eu-west-2"),
        template_file=deploy.get("template_file", "template.yaml"),
        parameters=parse_overrides(deploy.get("parameter_overrides", "")),
    )


# ---------------------------------------------------------------- preflight
def stack_status(cfn: Any, stack_name: str) -> str | None:
    """The stack's status, or None when there is no such stack."""
    from botocore.exceptions import ClientError

    try:
        stacks = cfn.describe_stacks(StackName=stack_name)["Stacks"]
    except ClientError as exc:
        if "does not exist" in str(exc):
            return None
        raise
    return str(stacks[0]["StackStatus"]) if stacks else None


def leftover_buckets(s3: Any, env: Environment, account: str) -> list[str]:
    """This environment's fixed-name buckets that exist: after a failed create, the ones its rollback kept."""
    wanted = {f"{env.prefix_env}-{kind}-{account}-{env.region}" for kind in BUCKET_KINDS}
    return sorted(b["Name"] for b in s3.list_buckets().get("Buckets", []) if b["Name"] in wanted)


def check_stack_state(status: str | None, env: Environment, leftovers: list[str]) -> str:
    """'create' or 'update', or a DeployError saying exactly what to clean up first."""
    if status in DEAD_STATES:
        steps = [f"  sam delete --stack-name {env.stack_name} --region {env.region}"]
        steps += [f"  aws s3 rb s3://{bucket} --force   # kept by the failed create" for bucket in leftovers]
        raise DeployError(
            f"stack {env.stack_name} is {status} (a failed first create or delete); CloudFormation cannot "
            "update it. Read why in the stack events (`aws cloudformation describe-stack-events "
            f"--stack-name {env.stack_name}`), then remove it and retry `make deploy`:\n" + "\n".join(steps)
        )
    if status is None and leftovers:
        commands = "\n".join(f"  aws s3 rb s3://{bucket} --force" for bucket in leftovers)
        raise DeployError(
            f"no stack {env.stack_name}, but its fixed-name buckets exist (left by an earlier stack or a "
            f"rollback that could not empty them); the create would fail with 'already exists'. "
            f"Check they hold nothing you need, then:\n{commands}"
        )
    return "create" if status is None else "update"


def reserved(parameters: dict[str, str]) -> int:
    """Executions the parameters reserve, over every reservation parameter."""
    return sum(int(parameters.get(name, "0") or 0) for name in RESERVATIONS)


def check_concurrency(account_settings: dict[str, Any], parameters: dict[str, str]) -> None:
    """Refuse reservations the account cannot give (Lambda GetAccountSettings response)."""
    asked = reserved(parameters)
    if asked == 0:
        return
    limit = account_settings["AccountLimit"]
    available = int(limit["UnreservedConcurrentExecutions"]) - UNRESERVED_MINIMUM
    if asked > available:
        names = " + ".join(f"{n}={parameters.get(n, '0')}" for n in RESERVATIONS)
        raise DeployError(
            f"{names} reserves {asked} executions, but this account can reserve {max(available, 0)} "
            f"(quota {limit['ConcurrentExecutions']}, {limit['UnreservedConcurrentExecutions']} unreserved, "
            f"{UNRESERVED_MINIMUM} must stay unreserved). Set them to 0, or request a higher 'Concurrent "
            "executions' quota in Service Quotas (Lambda) and retry."
        )


def choose_api_logging(account: dict[str, Any], stack_name: str) -> str:
    """`create` unless the account's API Gateway logging role belongs to another stack (then `existing`)."""
    role_arn = str(account.get("cloudwatchRoleArn") or "")
    if not role_arn:
        return "create"
    role_name = role_arn.rsplit("/", 1)[-1]
    return "create" if role_name.startswith(f"{stack_name}-Inference") else "existing"


# ---------------------------------------------------------------- after sam deploy
def stack_outputs(cfn: Any, stack_name: str) -> dict[str, str]:
    stack = cfn.describe_stacks(StackName=stack_name)["Stacks"][0]
    return {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}


def require(outputs: dict[str, str], key: str) -> str:
    if key not in outputs:
        raise DeployError(f"the stack has no output {key}: was it deployed from this repository's template.yaml?")
    return outputs[key]


def api_key_value(apigw: Any, env: Environment) -> str | None:
    """The stage's API key (ApiAuth=API_KEY), found by the name the inference stack gives it."""
    name = f"{env.prefix_env}-inference"
    items = apigw.get_api_keys(nameQuery=name, includeValues=True).get("items", [])
    values = [str(i["value"]) for i in items if i.get("name") == name and i.get("value")]
    return values[0] if values else None


def upload_glue_artifacts(location: str) -> None:
    import upload_dq_artifacts  # tools/upload_dq_artifacts.py, also `make dq-artifacts`

    if upload_dq_artifacts.main([location]) != 0:
        raise DeployError(f"uploading the Glue artifacts to {location} failed")


def publish_models(models_dir: Path, destination: str) -> list[str]:
    from dq_platform.models.artifacts import MODEL_NAMES, publish

    missing = [n for n in MODEL_NAMES if not (models_dir / n / "manifest.json").is_file()]
    if missing:
        raise DeployError(
            f"no {', '.join(missing)} model in {models_dir}: train them (`dqp train --out {models_dir}`, or "
            "`make sample-models` for the small sample set) or pass --models"
        )
    return [publish(models_dir / name, destination) for name in MODEL_NAMES]


def smoke(url: str, api_key: str | None, signer: Any = None) -> bool:
    from dq_platform.inference.smoke import format_results, run_smoke

    results = run_smoke(url, api_key=api_key, signer=signer)
    print(format_results(results))
    return all(r.ok for r in results)


# ---------------------------------------------------------------- the command
@dataclass
class Clients:
    """boto3 clients of the environment's region; a seam for the tests' moto server."""

    region: str
    factory: Callable[..., Any] | None = None

    def __call__(self, service: str) -> Any:
        if self.factory is not None:
            return self.factory(service, region_name=self.region)
        import boto3

        return boto3.client(service, region_name=self.region)  # type: ignore[call-overload]  # any service name


def sam_deploy(sam: str, env: Environment, parameters: dict[str, str], yes: bool) -> None:
    cmd = [sam, "deploy", "--config-env", env.name, "--no-fail-on-empty-changeset"]
    cmd += ["--parameter-overrides", *format_overrides(parameters)]
    if yes:
        cmd.append("--no-confirm-changeset")
    print("+ " + shlex.join(cmd), flush=True)
    # The command is this repository's SAM CLI with arguments built above, not caller input.
    if subprocess.run(cmd, cwd=ROOT, check=False).returncode != 0:  # noqa: S603
        raise DeployError(
            "sam deploy failed: its output above names the failing resource. Fix it and run `make deploy` "
            "again (a failed first create is cleaned up by the next run's preflight instructions)"
        )


def deploy(args: argparse.Namespace, env: Environment, clients: Clients) -> int:
    parameters = dict(env.parameters)
    if env.is_billing:
        sam_deploy(args.sam, env, parameters, args.yes)
        print(f"billing alarms deployed to {env.region} (stack {env.stack_name})")
        return 0

    account = clients("sts").get_caller_identity()["Account"]
    status = stack_status(clients("cloudformation"), env.stack_name)
    mode = check_stack_state(status, env, leftover_buckets(clients("s3"), env, account))
    if reserved(parameters):  # only then is the account's quota worth a call
        check_concurrency(clients("lambda").get_account_settings(), parameters)
    parameters.setdefault("ApiGatewayLogging", choose_api_logging(clients("apigateway").get_account(), env.stack_name))
    analytics = f"{env.prefix_env}-analytics-{account}-{env.region}"
    parameters.setdefault("ModelS3Uri", f"s3://{analytics}/models")
    print(
        f"[deploy] {mode} {env.stack_name} in {env.region} (account {account}); "
        f"API Gateway logging role: {parameters['ApiGatewayLogging']}",
        flush=True,
    )

    sam_deploy(args.sam, env, parameters, args.yes)

    outputs = stack_outputs(clients("cloudformation"), env.stack_name)
    location = require(outputs, "DataQualityArtifactsLocation")
    upload_glue_artifacts(location)
    print(f"[deploy] Glue job artifacts uploaded to {location}")
    published = publish_models(Path(args.models), parameters["ModelS3Uri"])
    print("[deploy] models published: " + ", ".join(published))

    url = require(outputs, "ApiUrl")
    key, signer = None, None
    if parameters.get("ApiAuth") == "IAM":
        from dq_platform.inference.smoke import iam_signer

        # The deploying credentials sign the requests (SigV4, execute-api); they need execute-api:Invoke.
        try:
            signer = iam_signer(url, env.region)
        except ValueError as exc:
            raise DeployError(f"cannot smoke-test the IAM stage at {url}: {exc}") from exc
    else:
        key = api_key_value(clients("apigateway"), env)
    print(f"[deploy] smoke test of {url}" + (" (SigV4-signed, ApiAuth=IAM)" if signer else ""), flush=True)
    if not smoke(url, key, signer):
        raise DeployError(
            f"the deployed API at {url} failed its smoke checks (above). Its logs: "
            f"`sam logs --stack-name {env.stack_name} --region {env.region} --tail`"
        )
    print(f"[deploy] done: {url}")
    return 0


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config-env", default="default", help="samconfig.toml environment (default, prod, billing)")
    parser.add_argument("--models", default=str(ROOT / "build" / "models"), help="served-layout model folder")
    parser.add_argument("--sam", default=str(ROOT / ".venv-sam" / "bin" / "sam"), help="SAM CLI to run")
    parser.add_argument("--yes", action="store_true", help="deploy the change set without asking")
    return parser.parse_args(list(argv))


def main(argv: Sequence[str] | None = None, clients: Clients | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        env = read_environment(args.config_env)  # read once; its region picks the clients' region
        return deploy(args, env, clients or Clients(env.region))
    except DeployError as exc:
        print(f"make deploy: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
