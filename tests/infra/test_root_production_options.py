"""Every production option of the nested stacks can be set from template.yaml (issue 20, item 2).

And the VPC option works: a function placed in subnets gets the network-interface permissions Lambda
needs from its execution role (Lambda Developer Guide, "Giving Lambda functions access to resources in an
Amazon VPC"; the actions of the AWS managed policy AWSLambdaVPCAccessExecutionRole).
"""

from __future__ import annotations

import re
import tomllib
from typing import Any

import pytest

from tests.infra.cfn import ROOT, load_template

pytestmark = pytest.mark.infra

ROOT_T = load_template("template.yaml")
INFERENCE = load_template("stacks/inference.yaml")
DATA_QUALITY = load_template("stacks/data-quality.yaml")

# The options an operator sets per environment; the rest of the nested parameters are wiring (foundation
# outputs) or tuning kept at the nested stack's default (alarm thresholds, retention, TTLs, poll interval).
PRODUCTION_OPTIONS = {
    "Inference": [
        "ApiAuth",
        "DeploymentType",
        "WebAclArn",
        "ReservedConcurrency",
        "BatchExplainReservedConcurrency",
        "ApiGatewayLogging",
        "ModelS3Uri",
        "MemorySize",
        "ProvisionedConcurrency",
        "VpcSubnetIds",
        "VpcSecurityGroupIds",
        "AbWeights",
        "ThrottleRateLimit",
        "ThrottleBurstLimit",
        "DailyQuota",
    ],
    "DataQuality": ["GlueWorkerType", "GlueNumberOfWorkers", "GlueMaxConcurrentRuns"],
}
NESTED = {"Inference": INFERENCE, "DataQuality": DATA_QUALITY}
LISTS = {"VpcSubnetIds", "VpcSecurityGroupIds"}
VPC_EC2_ACTIONS = {
    "ec2:CreateNetworkInterface",
    "ec2:DescribeNetworkInterfaces",
    "ec2:DescribeSubnets",
    "ec2:DeleteNetworkInterface",
    "ec2:AssignPrivateIpAddresses",
    "ec2:UnassignPrivateIpAddresses",
}


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


@pytest.mark.parametrize(("app", "name"), [(app, name) for app, names in PRODUCTION_OPTIONS.items() for name in names])
def test_each_production_option_is_a_root_parameter_passed_down(app: str, name: str) -> None:
    root_spec = ROOT_T["Parameters"][name]
    nested_spec = NESTED[app]["Parameters"][name]
    passed = ROOT_T["Resources"][app]["Properties"]["Parameters"][name]
    if name in LISTS:
        # A nested stack's parameters are strings: the list travels comma-joined.
        assert passed == {"Fn::Join": [",", {"Ref": name}]}
    else:
        assert passed == {"Ref": name}
    for key in ("Type", "Default", "AllowedValues", "AllowedPattern", "MinValue", "MaxValue"):
        assert root_spec.get(key) == nested_spec.get(key), (name, key)


def test_every_root_parameter_reaches_a_stack() -> None:
    passed = {
        name
        for res in ROOT_T["Resources"].values()
        for value in res["Properties"].get("Parameters", {}).values()
        for name in re.findall(r"'Ref': '([A-Za-z0-9]+)'", str(value))
    }
    assert set(ROOT_T["Parameters"]) - passed == set()


def test_samconfig_shows_every_production_option() -> None:
    text = (ROOT / "samconfig.toml").read_text(encoding="utf-8")
    for name in {n for names in PRODUCTION_OPTIONS.values() for n in names} - {"ModelS3Uri", "ApiGatewayLogging"}:
        assert re.search(rf"#.*\b{name}=", text), f"samconfig.toml has no example of {name}"


def test_samconfig_keeps_the_seeds_region() -> None:
    cfg = tomllib.loads((ROOT / "samconfig.toml").read_text(encoding="utf-8"))
    assert cfg["default"]["deploy"]["parameters"]["region"] == "eu-west-2"
    assert cfg["prod"]["deploy"]["parameters"]["region"] == "eu-west-2"
    assert cfg["billing"]["deploy"]["parameters"]["region"] == "us-east-1"  # EstimatedCharges lives only there


def test_every_root_parameter_is_documented() -> None:
    doc = (ROOT / "docs" / "deploy.md").read_text(encoding="utf-8")
    missing = [name for name in ROOT_T["Parameters"] if f"`{name}`" not in doc]
    assert missing == []


# ---------------------------------------------------------------- VPC


def _function() -> dict[str, Any]:
    props: dict[str, Any] = INFERENCE["Resources"]["InferenceFunction"]["Properties"]
    return props


def test_function_joins_the_vpc_only_when_subnets_are_given() -> None:
    assert INFERENCE["Conditions"]["UseVpc"] == {
        "Fn::Not": [{"Fn::Equals": [{"Fn::Join": ["", {"Ref": "VpcSubnetIds"}]}, ""]}]
    }
    assert _function()["VpcConfig"] == {
        "Fn::If": [
            "UseVpc",
            {"SubnetIds": {"Ref": "VpcSubnetIds"}, "SecurityGroupIds": {"Ref": "VpcSecurityGroupIds"}},
            {"Ref": "AWS::NoValue"},
        ]
    }
    for name in LISTS:
        assert INFERENCE["Parameters"][name] == ROOT_T["Parameters"][name] | {
            "Description": INFERENCE["Parameters"][name]["Description"]
        }


def test_vpc_policy_grants_lambdas_network_interface_actions_on_the_function_role() -> None:
    policy = INFERENCE["Resources"]["InferenceVpcAccessPolicy"]
    assert policy["Type"] == "AWS::IAM::Policy"
    assert policy["Condition"] == "UseVpc"
    # Attached to the foundation's role: its name is the ARN's last part.
    assert policy["Properties"]["Roles"] == [
        {"Fn::Select": [1, {"Fn::Split": ["/", {"Ref": "InferenceFunctionRoleArn"}]}]}
    ]
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    actions = {a for s in statements for a in _as_list(s["Action"])}
    assert actions == VPC_EC2_ACTIONS
    for stmt in statements:
        assert stmt["Effect"] == "Allow"
        assert "Condition" not in stmt
        if stmt["Resource"] == "*":
            # EC2 has no resource-level permissions for the Describe calls: only they may use "*".
            assert set(_as_list(stmt["Action"])) == {"ec2:DescribeNetworkInterfaces", "ec2:DescribeSubnets"}
            continue
        for resource in _as_list(stmt["Resource"]):
            text = resource["Fn::Sub"]
            assert text.startswith("arn:${AWS::Partition}:ec2:${AWS::Region}:${AWS::AccountId}:"), text
            kind = text.split(":")[-1].split("/")[0]
            if kind == "*":
                # Only DeleteNetworkInterface, as the Lambda guide asks ("all resource IDs" of the account).
                assert _as_list(stmt["Action"]) == ["ec2:DeleteNetworkInterface"], stmt
            else:
                assert kind in {"network-interface", "subnet", "security-group"}, text


def test_the_function_waits_for_the_vpc_policy_and_is_not_tied_to_it_without_a_vpc() -> None:
    env = _function()["Environment"]["Variables"]
    assert env["DQP_VPC_ACCESS_POLICY"] == {"Fn::If": ["UseVpc", {"Ref": "InferenceVpcAccessPolicy"}, ""]}
    assert "InferenceVpcAccessPolicy" not in _as_list(INFERENCE["Resources"]["InferenceFunction"].get("DependsOn", []))


def test_the_role_has_no_standing_ec2_permissions() -> None:
    """Without a VPC the role keeps no EC2 action: the permissions come and go with the policy."""
    foundation = load_template("stacks/foundation.yaml")
    role = foundation["Resources"]["InferenceFunctionRole"]["Properties"]
    actions = [a for p in role["Policies"] for s in p["PolicyDocument"]["Statement"] for a in _as_list(s["Action"])]
    assert not [a for a in actions if a.startswith("ec2:")]
    assert not [m for m in role["ManagedPolicyArns"] if "VPCAccess" in str(m)]


# ---------------------------------------------------------------- docs/operations.md (issue 20, item 3)

OPERATIONS = ROOT / "docs" / "operations.md"


def test_operations_covers_each_lifecycle_command() -> None:
    text = OPERATIONS.read_text(encoding="utf-8")
    for command in (
        "sam list stack-outputs",
        "sam list resources",
        "sam list endpoints",
        "--no-execute-changeset",
        "aws cloudformation execute-change-set",
        "sam sync --code",
        "sam logs",
        "sam traces",
        "continue-update-rollback",
        "sam delete",
    ):
        assert command in text, command


def test_operations_names_only_stacks_and_regions_that_samconfig_deploys() -> None:
    cfg = tomllib.loads((ROOT / "samconfig.toml").read_text(encoding="utf-8"))
    deployed = {
        (cfg[env]["global"]["parameters"]["stack_name"], cfg[env]["deploy"]["parameters"]["region"])
        for env in ("default", "prod", "billing")
    }
    text = OPERATIONS.read_text(encoding="utf-8")
    pairs = set(re.findall(r"--stack-name (enterprise-[a-z-]+) --region ([a-z0-9-]+)", text))
    assert pairs, "no --stack-name/--region examples found"
    assert pairs <= deployed


def test_operations_names_logical_ids_that_exist() -> None:
    text = OPERATIONS.read_text(encoding="utf-8")
    for app, resource in set(re.findall(r"(?<![/\w])(Inference|DataQuality|Foundation)/([A-Z][A-Za-z]+)", text)):
        template = {"Inference": INFERENCE, "DataQuality": DATA_QUALITY}.get(app) or load_template(
            "stacks/foundation.yaml"
        )
        assert resource in template["Resources"], f"{app}/{resource}"
    for group in re.findall(r"--cw-log-group (\S+)", text):
        names = [
            res["Properties"]["LogGroupName"]["Fn::Sub"].replace("${ProjectPrefix}-${EnvName}", "enterprise-dev")
            for t in (INFERENCE, DATA_QUALITY)
            for res in t["Resources"].values()
            if res["Type"] == "AWS::Logs::LogGroup"
        ]
        assert group in names, group


def test_subnets_without_security_groups_are_refused_by_a_template_rule() -> None:
    rule = ROOT_T["Rules"]["VpcNeedsSecurityGroups"]
    assert rule["RuleCondition"] == {"Fn::Not": [{"Fn::Contains": [{"Ref": "VpcSubnetIds"}, ""]}]}
    (assertion,) = rule["Assertions"]
    assert assertion["Assert"] == {"Fn::Not": [{"Fn::Contains": [{"Ref": "VpcSecurityGroupIds"}, ""]}]}

    def holds(subnets: str, groups: str) -> bool:
        """The rule evaluated the way CloudFormation reads the lists (split on commas)."""
        subnet_list, group_list = subnets.split(","), groups.split(",")
        return ("" in subnet_list) or ("" not in group_list)

    assert holds("", "")
    assert holds("subnet-0a1b2c3d4e5f60718,subnet-0f1e2d3c4b5a69788", "sg-0123456789abcdef0")
    assert not holds("subnet-0a1b2c3d4e5f60718", "")
