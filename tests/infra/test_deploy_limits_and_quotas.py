"""Deploy readiness without AWS: what a real account refuses, checked on the templates.

Each test names the AWS fact it encodes. They fail on the defects found by the first deploy audit (issue
15): reserved concurrency that a new account's quota cannot give, names past AWS limits at the parameters'
longest values, and templates that lint clean only before the SAM transform.
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest

from tests.infra.cfn import CFN_LINT, ROOT, TEMPLATES, load_template, run

pytestmark = pytest.mark.infra
IDS = [str(t.relative_to(ROOT)) for t in TEMPLATES]

# The longest values AWS can substitute: a 12-digit account, and the longest region names in use
# (ap-southeast-3, ap-northeast-1: 14 characters).
PSEUDO = {"AWS::AccountId": "123456789012", "AWS::Region": "ap-southeast-3", "AWS::Partition": "aws-us-gov"}
PSEUDO.update({"AWS::URLSuffix": "amazonaws.com", "AWS::StackName": "s" * 128})

# Name limits from each service's API reference: (resource type, name property) -> max characters.
NAME_LIMITS: dict[tuple[str, str], int] = {
    ("AWS::S3::Bucket", "BucketName"): 63,
    ("AWS::Serverless::Function", "FunctionName"): 64,
    ("AWS::Lambda::Function", "FunctionName"): 64,
    ("AWS::IAM::Role", "RoleName"): 64,
    ("AWS::Logs::LogGroup", "LogGroupName"): 512,
    ("AWS::SQS::Queue", "QueueName"): 80,
    ("AWS::CloudWatch::Alarm", "AlarmName"): 255,
    ("AWS::CloudWatch::Dashboard", "DashboardName"): 255,
    ("AWS::Glue::Job", "Name"): 255,
    ("AWS::Glue::SecurityConfiguration", "Name"): 255,
    ("AWS::Serverless::StateMachine", "Name"): 80,
    ("AWS::Serverless::LayerVersion", "LayerName"): 140,
    ("AWS::SSM::Parameter", "Name"): 1011,
    ("AWS::Budgets::Budget", "BudgetName"): 100,
    ("AWS::SNS::Topic", "TopicName"): 256,
    ("AWS::CloudTrail::Trail", "TrailName"): 128,
    ("AWS::KMS::Alias", "AliasName"): 256,
    ("AWS::ApiGateway::UsagePlan", "UsagePlanName"): 1024,
}
EVENTBRIDGE_RULE_NAME = 64
GLUE_LOG_PREFIX = 400  # --custom-logGroup-prefix (AWS Glue 5.0 logging)


def _longest_value(spec: dict[str, Any]) -> str:
    """The longest value a parameter admits: from AllowedValues, an AllowedPattern's bound, or its default."""
    if "AllowedValues" in spec:
        return max((str(v) for v in spec["AllowedValues"]), key=len)
    pattern = spec.get("AllowedPattern", "")
    bounded = re.fullmatch(r"\^(\[[^\]]+\])(\[[^\]]+\])\{\d+,(\d+)\}\$", pattern)
    if bounded:
        return "a" * (1 + int(bounded.group(3)))
    if spec.get("Type") == "Number":
        return str(spec.get("MaxValue", spec.get("Default", 0)))
    return str(spec.get("Default", ""))


def _resolve(value: Any, params: dict[str, str]) -> str | None:
    """A name's longest rendering, or None when it is not a plain string/Sub (generated names)."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and "Fn::Sub" in value:
        sub = value["Fn::Sub"]
        text, local = (sub, {}) if isinstance(sub, str) else (sub[0], sub[1])
        names = {**params, **{k: _resolve(v, params) or "" for k, v in local.items()}}

        def fill(match: re.Match[str]) -> str:
            ref = match.group(1)
            if ref.startswith("!"):
                return "${" + ref[1:] + "}"
            return names.get(ref, names.get(ref.split(".")[0], "x" * 64))

        return re.sub(r"\$\{([^}]+)\}", fill, text)
    if isinstance(value, dict) and "Ref" in value:
        return params.get(value["Ref"])
    return None


def _params(template: dict[str, Any]) -> dict[str, str]:
    params = {name: _longest_value(spec) for name, spec in template.get("Parameters", {}).items()}
    return {**params, **PSEUDO}


def _names(template: dict[str, Any]) -> list[tuple[str, str, int]]:
    params = _params(template)
    found = []
    for logical, res in template["Resources"].items():
        props = res.get("Properties", {})
        for (rtype, prop), limit in NAME_LIMITS.items():
            if res["Type"] == rtype and prop in props:
                name = _resolve(props[prop], params)
                if name is not None:
                    found.append((f"{logical}.{prop}", name, limit))
        for event_name, event in props.get("Events", {}).items():
            rule = event.get("Properties", {}).get("RuleName")
            if event.get("Type") == "EventBridgeRule" and rule is not None:
                name = _resolve(rule, params)
                if name is not None:
                    found.append((f"{logical}.Events.{event_name}.RuleName", name, EVENTBRIDGE_RULE_NAME))
        prefix = props.get("DefaultArguments", {}).get("--custom-logGroup-prefix")
        if prefix is not None:
            name = _resolve(prefix, params)
            if name is not None:
                found.append((f"{logical}.--custom-logGroup-prefix", name, GLUE_LOG_PREFIX))
    return found


@pytest.mark.parametrize("template", TEMPLATES, ids=IDS)
def test_generated_names_fit_aws_limits_at_the_longest_parameter_values(template: Path) -> None:
    t = load_template(str(template.relative_to(ROOT)))
    too_long = [f"{where}: {len(name)} > {limit} ({name})" for where, name, limit in _names(t) if len(name) > limit]
    assert too_long == []


def test_the_name_check_sees_the_long_names() -> None:
    """Guard on the check itself: the bucket and hook names, the tightest ones, are among those checked."""
    names = {where for where, _, _ in _names(load_template("stacks/foundation.yaml"))}
    assert "AccessLogsBucket.BucketName" in names
    hook = {w: n for w, n, _ in _names(load_template("stacks/inference.yaml"))}
    assert hook["PreTrafficHookFunction.FunctionName"].startswith("CodeDeployHook_")


def _reserved_concurrency(node: Any, path: str = "") -> list[tuple[str, Any]]:
    found: list[tuple[str, Any]] = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "ReservedConcurrentExecutions":
                found.append((f"{path}.{key}", value))
            found += _reserved_concurrency(value, f"{path}.{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            found += _reserved_concurrency(value, f"{path}[{i}]")
    return found


@pytest.mark.parametrize("template", TEMPLATES, ids=IDS)
def test_no_reserved_concurrency_unless_a_parameter_asks_for_it(template: Path) -> None:
    """Lambda keeps 10 executions of the account quota unreserved, and new accounts often have a quota of
    10: any fixed reservation fails their deploy. Each one must come from a parameter that defaults to 0,
    behind a condition that drops the property at 0."""
    t = load_template(str(template.relative_to(ROOT)))
    for where, value in _reserved_concurrency(t["Resources"]):
        assert isinstance(value, dict), f"{where} is fixed: {value}"
        assert "Fn::If" in value, f"{where} is not conditional: {value}"
        condition, when_set, when_unset = value["Fn::If"]
        assert when_unset == {"Ref": "AWS::NoValue"}, where
        param = when_set["Ref"]
        assert t["Parameters"][param]["Default"] == 0, f"{where}: {param} must default to 0"
        assert t["Conditions"][condition] == {"Fn::Not": [{"Fn::Equals": [{"Ref": param}, 0]}]}, where


def test_root_template_passes_every_reservation_parameter_down() -> None:
    root = load_template("template.yaml")
    inference = load_template("stacks/inference.yaml")
    passed = root["Resources"]["Inference"]["Properties"]["Parameters"]
    for name in ("ReservedConcurrency", "BatchExplainReservedConcurrency", "ApiGatewayLogging"):
        assert passed[name] == {"Ref": name}
        assert root["Parameters"][name]["Default"] == inference["Parameters"][name]["Default"]


def test_lambda_timeout_is_below_api_gateways_29_seconds() -> None:
    """API Gateway ends a REST integration at 29 s: a function that runs longer is billed for work nobody
    receives. The function must time out first."""
    fn = load_template("stacks/inference.yaml")["Resources"]["InferenceFunction"]["Properties"]
    assert fn["Timeout"] < 29


def test_throttled_invokes_answer_429_and_alarm() -> None:
    """Lambda throttling behind a proxy integration surfaces as INTEGRATION_FAILURE (a 5xx by default)."""
    t = load_template("stacks/inference.yaml")
    responses = t["Resources"]["InferenceApi"]["Properties"]["DefinitionBody"]["x-amazon-apigateway-gateway-responses"]
    failure = responses["INTEGRATION_FAILURE"]
    assert failure["statusCode"] == 429
    assert "Retry-After" in next(iter(failure["responseParameters"]))
    body = failure["responseTemplates"]["application/json"]
    assert json.loads(body.replace("$context.requestId", "x"))["error"] == "throttled"
    alarm = t["Resources"]["ThrottlesAlarm"]["Properties"]
    assert (alarm["Namespace"], alarm["MetricName"]) == ("AWS/Lambda", "Throttles")
    assert alarm["AlarmActions"] == [{"Ref": "AlertTopicArn"}]


def test_api_gateway_account_role_is_created_once_or_not_at_all() -> None:
    """AWS::ApiGateway::Account is one setting per account and region: two stacks that both set it
    replace each other's role. It must be optional, and off in all but one environment."""
    t = load_template("stacks/inference.yaml")
    assert t["Parameters"]["ApiGatewayLogging"]["AllowedValues"] == ["create", "existing", "none"]
    assert t["Resources"]["ApiGatewayAccount"]["Condition"] == "CreateLogsRole"
    assert t["Resources"]["ApiGatewayLogsRole"]["Condition"] == "CreateLogsRole"
    assert t["Conditions"]["CreateLogsRole"] == {"Fn::Equals": [{"Ref": "ApiGatewayLogging"}, "create"]}


def test_budget_counts_only_this_environment() -> None:
    """A budget without a cost filter sums the whole account: dev and prod would each alert on both."""
    root = load_template("template.yaml")
    for name in ("Foundation", "DataQuality", "Inference"):
        tags = root["Resources"][name]["Properties"]["Tags"]
        assert tags == {"dqp-environment": {"Fn::Sub": "${ProjectPrefix}-${EnvName}"}}, name
    budget = load_template("stacks/foundation.yaml")["Resources"]["MonthlyCostBudget"]["Properties"]["Budget"]
    assert budget["CostFilters"] == {"TagKeyValue": [{"Fn::Sub": "user:dqp-environment$${ProjectPrefix}-${EnvName}"}]}


def test_a_failed_first_create_removes_what_it_made() -> None:
    """Retained fixed-name buckets outlive a failed create and block the retry with 'already exists'.
    RetainExceptOnCreate keeps them on delete but removes them when their own create rolls back."""
    t = load_template("stacks/foundation.yaml")
    for name, res in t["Resources"].items():
        if res["Type"] in {"AWS::S3::Bucket", "AWS::KMS::Key"}:
            assert res.get("DeletionPolicy") == "RetainExceptOnCreate", name


# ---------------------------------------------------------------- lint after the SAM transform
# What `sam package` puts in place of local paths, so the translator sees what `sam deploy` sends.
PACKAGED = {
    "CodeUri": "s3://packaged-artifacts/code.zip",
    "ContentUri": "s3://packaged-artifacts/layer.zip",
    "DefinitionUri": "s3://packaged-artifacts/definition.json",
    "Location": "https://s3.eu-west-1.amazonaws.com/packaged-artifacts/nested.template",
}
IMAGE_URI = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/dqp-images:inference"


def _as_packaged(template: dict[str, Any]) -> dict[str, Any]:
    t = copy.deepcopy(template)
    for res in t["Resources"].values():
        props = res.get("Properties", {})
        for key, uri in PACKAGED.items():
            if isinstance(props.get(key), str) and not props[key].startswith(("s3://", "https://")):
                props[key] = uri
        if res["Type"] == "AWS::Serverless::Function" and props.get("PackageType") == "Image":
            props["ImageUri"] = IMAGE_URI
    return t


class _ManagedPolicies:
    """The translator's managed-policy lookup (sam deploy asks IAM), answered offline: an AWS managed
    policy named N has the ARN arn:aws:iam::aws:policy/N."""

    def load(self) -> dict[str, str]:
        return _AwsManagedArns()


class _AwsManagedArns(dict[str, str]):
    def __missing__(self, name: str) -> str:
        return f"arn:aws:iam::aws:policy/{name}"

    def get(self, name: str, default: Any = None) -> str:  # type: ignore[override]  # every name resolves
        return self[name]


@pytest.mark.parametrize("template", [t for t in TEMPLATES if "Transform" in load_template(str(t.relative_to(ROOT)))])
def test_transformed_templates_lint_clean(template: Path, tmp_path: Path) -> None:
    """cfn-lint 1.58 reads SAM templates untransformed; CloudFormation receives the translator's output,
    where SAM-only syntax is gone and generated resources appear. Lint that."""
    import boto3
    from samtranslator.parser.parser import Parser
    from samtranslator.translator.translator import Translator

    source = load_template(str(template.relative_to(ROOT)))
    # A region for the pseudo parameters the translator fills in; no call leaves this machine.
    translator = Translator(None, Parser(), boto_session=boto3.Session(region_name="eu-west-1"))
    translated = translator.translate(
        _as_packaged(source), parameter_values={}, get_managed_policy_map=_ManagedPolicies().load
    )
    out = tmp_path / (template.stem + ".json")
    out.write_text(json.dumps(translated), encoding="utf-8")
    # The translator substitutes parameter values where SAM needs them at transform time (LayerName,
    # DeploymentPreference.Type): with the defaults here, that leaves a Sub without variables (W1020) and a
    # parameter nobody references any more (W2001). CloudFormation's transform does the same with the
    # deployed values, so these two say nothing about the template; every other finding fails.
    ignored = ["--ignore-checks", "W1020", "W2001"]
    result = run([str(CFN_LINT), "--regions", "eu-west-1", "us-east-1", *ignored, "--", str(out)])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Transform" not in translated
