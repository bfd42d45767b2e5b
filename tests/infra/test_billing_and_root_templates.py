"""stacks/billing.yaml, the root template and samconfig.toml environments."""

from __future__ import annotations

import tomllib

import pytest

from tests.infra.cfn import ROOT, load_template, resources

pytestmark = pytest.mark.infra

BILLING = load_template("stacks/billing.yaml")
ROOT_T = load_template("template.yaml")


def test_billing_only_deploys_in_us_east_1() -> None:
    assertion = BILLING["Rules"]["OnlyInUsEast1"]["Assertions"][0]["Assert"]
    assert assertion == {"Fn::Equals": [{"Ref": "AWS::Region"}, "us-east-1"]}


def test_billing_alarms_step_through_shares_of_the_budget() -> None:
    alarms = resources(BILLING, "AWS::CloudWatch::Alarm")
    thresholds = sorted(a["Properties"]["Threshold"] for a in alarms.values())
    assert thresholds == [50, 80, 100, 120]
    for alarm in alarms.values():
        p = alarm["Properties"]
        stat = next(m for m in p["Metrics"] if "MetricStat" in m)["MetricStat"]
        assert stat["Metric"]["Namespace"] == "AWS/Billing"
        assert stat["Metric"]["MetricName"] == "EstimatedCharges"
        expr = next(m for m in p["Metrics"] if m.get("ReturnData"))["Expression"]
        assert expr == {"Fn::Sub": "100 * charges / ${MonthlyBudget}"}
        assert p["AlarmActions"] == [{"Ref": "BillingTopic"}]


def test_billing_topic_encrypted_with_own_key_and_subscribed() -> None:
    topic = BILLING["Resources"]["BillingTopic"]["Properties"]
    assert topic["KmsMasterKeyId"] == {"Fn::GetAtt": ["BillingKey", "Arn"]}
    assert topic["Subscription"] == [{"Protocol": "email", "Endpoint": {"Ref": "BillingEmail"}}]
    assert BILLING["Resources"]["BillingKey"]["Properties"]["EnableKeyRotation"] is True


def test_root_nests_one_application_per_domain_with_the_parameters() -> None:
    apps = resources(ROOT_T, "AWS::Serverless::Application")
    assert apps["Foundation"]["Properties"]["Location"] == "stacks/foundation.yaml"
    for app in apps.values():
        assert (ROOT / app["Properties"]["Location"]).is_file()
        params = app["Properties"]["Parameters"]
        assert params["ProjectPrefix"] == {"Ref": "ProjectPrefix"}
        assert params["EnvName"] == {"Ref": "EnvName"}
    p = ROOT_T["Parameters"]
    assert (p["ProjectPrefix"]["Default"], p["EnvName"]["Default"]) == ("enterprise", "production")
    assert (p["MonthlyBudget"]["Default"], p["BudgetAlertPercent"]["Default"]) == (5000, 80)


def test_samconfig_environments() -> None:
    cfg = tomllib.loads((ROOT / "samconfig.toml").read_text())
    assert {"default", "prod", "billing"} <= set(cfg)
    billing = cfg["billing"]["deploy"]["parameters"]
    assert billing["region"] == "us-east-1"
    assert billing["template_file"] == "stacks/billing.yaml"
    for env in ("default", "prod"):
        deploy = cfg[env]["deploy"]["parameters"]
        assert "CAPABILITY_AUTO_EXPAND" in deploy["capabilities"]  # nested applications need it
        assert "BillingEmail=" in deploy["parameter_overrides"]
