"""stacks/inference.yaml declares what the issue asks for (lint and checkov run in tests/infra)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.infra.cfn import load_template

pytestmark = pytest.mark.infra


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_template("stacks/inference.yaml")


def test_function_settings(template: dict[str, Any]) -> None:
    fn = template["Resources"]["InferenceFunction"]
    props = fn["Properties"]
    assert props["PackageType"] == "Image"
    # Reserved concurrency only when a parameter asks for it (a reservation fails the deploy in accounts
    # whose concurrency quota is under 10 + the reservation); tests/infra/test_deploy_limits_and_quotas.py.
    assert props["ReservedConcurrentExecutions"] == {
        "Fn::If": ["HasReservedConcurrency", {"Ref": "ReservedConcurrency"}, {"Ref": "AWS::NoValue"}]
    }
    # Below API Gateway's 29 s integration timeout.
    assert props["Timeout"] < 29
    assert props["Tracing"] == "Active"
    assert props["Role"] == {"Ref": "InferenceFunctionRoleArn"}
    assert props["AutoPublishAlias"] == "live"
    assert props["AutoPublishAliasAllProperties"] is True
    assert fn["Metadata"]["Dockerfile"] == "functions/inference/Dockerfile"
    env = props["Environment"]["Variables"]
    assert env["POWERTOOLS_LOGGER_LOG_EVENT"] == "false"
    assert env["POWERTOOLS_TRACER_CAPTURE_RESPONSE"] == "false"
    assert env["AB_WEIGHTS_PARAM"] == {"Ref": "AbWeightsParameter"}


def test_canary_with_alarms_and_pre_traffic_hook(template: dict[str, Any]) -> None:
    resources = template["Resources"]
    pref = resources["InferenceFunction"]["Properties"]["DeploymentPreference"]
    assert pref["Type"] == {"Ref": "DeploymentType"}
    assert template["Parameters"]["DeploymentType"]["Default"] == "Canary10Percent5Minutes"
    alarms = {a["Ref"] for a in pref["Alarms"]}
    assert alarms == {"AliasErrorsAlarm", "NewVersionErrorsAlarm", "AliasLatencyAlarm", "NewVersionLatencyAlarm"}
    for name in ("NewVersionErrorsAlarm", "NewVersionLatencyAlarm"):
        dims = {d["Name"]: d["Value"] for d in resources[name]["Properties"]["Dimensions"]}
        assert dims["ExecutedVersion"] == {"Fn::GetAtt": ["InferenceFunction", "Version.Version"]}
    assert pref["Hooks"]["PreTraffic"] == {"Ref": "PreTrafficHookFunction"}
    hook = resources["PreTrafficHookFunction"]["Properties"]
    assert hook["FunctionName"]["Fn::Sub"].startswith("CodeDeployHook_")
    assert hook["DeploymentPreference"] == {"Enabled": False}
    assert hook["Environment"]["Variables"]["TARGET_FUNCTION_VERSION"] == {"Ref": "InferenceFunction.Version"}


def test_api_stage_logging_tracing_throttling(template: dict[str, Any]) -> None:
    api = template["Resources"]["InferenceApi"]["Properties"]
    assert api["StageName"] == "prod"
    assert api["TracingEnabled"] is True
    # Access logs unless ApiGatewayLogging=none (no account logging role to write them with).
    condition, access_logs, off = api["AccessLogSetting"]["Fn::If"]
    assert (condition, off) == ("ApiLogging", {"Ref": "AWS::NoValue"})
    fmt = json.loads(access_logs["Format"])
    assert {"requestId", "status", "latencyMs"} <= set(fmt)
    (settings,) = api["MethodSettings"]
    assert settings["DataTraceEnabled"] is False
    assert settings["ThrottlingRateLimit"] == {"Ref": "ThrottleRateLimit"}
    # Routes are SAM Api events on the function (SAM wires them to the canaried `live` alias, and
    # `sam local start-api` mounts them), merged into the OpenAPI body that carries security/validation.
    assert api["MergeDefinitions"] is True
    function = template["Resources"]["InferenceFunction"]["Properties"]
    assert function["AutoPublishAlias"] == "live"
    routes = {
        (event["Properties"]["Path"], event["Properties"]["Method"].lower()): event
        for event in function["Events"].values()
    }
    assert set(routes) == {("/health", "get"), ("/models", "get"), ("/predict", "post")}
    for (path, method), event in routes.items():
        assert event["Type"] == "Api"
        assert event["Properties"]["RestApiId"] == {"Ref": "InferenceApi"}
        op = api["DefinitionBody"]["paths"][path][method]
        assert "x-amazon-apigateway-integration" not in op  # SAM adds it from the event, on the alias
        assert op["security"] == {"Fn::If": ["UseIam", [{"sigv4": []}], [{"api_key": []}]]}
    assert template["Parameters"]["ApiAuth"]["Default"] == "API_KEY"


def test_ssm_parameters_and_dashboards(template: dict[str, Any]) -> None:
    resources = template["Resources"]
    names = {
        resources[r]["Properties"]["Name"]["Fn::Sub"]
        for r in ("AbWeightsParameter", "ModelVersionsParameter", "ApiEndpointParameter")
    }
    assert names == {
        "/${ProjectPrefix}/${EnvName}/ab-weights",
        "/${ProjectPrefix}/${EnvName}/model-versions",
        "/${ProjectPrefix}/${EnvName}/api-endpoint",
    }
    default = json.loads(template["Parameters"]["AbWeights"]["Default"])
    assert default == {"baseline": 0.9, "transformer": 0.1, "shadow_rate": 0.0}
    for model in ("baseline", "transformer"):
        body = resources[f"{model.capitalize()}Dashboard"]["Properties"]["DashboardBody"]["Fn::Sub"][0]
        assert f'"Model", "{model}"' in body
        for metric in ("Latency", "Errors", "Predictions"):
            assert metric in body


def test_production_options_off_by_default(template: dict[str, Any]) -> None:
    params = template["Parameters"]
    assert params["ProvisionedConcurrency"]["Default"] == 0
    assert params["VpcSubnetIds"]["Default"] == ""
    props = template["Resources"]["InferenceFunction"]["Properties"]
    assert props["VpcConfig"]["Fn::If"][0] == "UseVpc"
    assert props["ProvisionedConcurrencyConfig"]["Fn::If"][0] == "HasProvisionedConcurrency"


def test_batch_explain_is_off_the_api_path(template: dict[str, Any]) -> None:
    fn = template["Resources"]["BatchExplainFunction"]["Properties"]
    assert fn["Role"] == {"Ref": "BatchExplainRoleArn"}
    (event,) = fn["Events"].values()
    assert event["Type"] == "EventBridgeRule"
    assert event["Properties"]["Pattern"]["detail"]["object"]["key"] == [{"prefix": "contracts/"}]
