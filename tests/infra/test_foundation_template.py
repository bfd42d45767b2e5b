"""Security properties of stacks/foundation.yaml, asserted on the parsed template."""

from __future__ import annotations

from typing import Any

import pytest

from tests.infra.cfn import load_template, resources

pytestmark = pytest.mark.infra

T = load_template("stacks/foundation.yaml")
BUCKETS = resources(T, "AWS::S3::Bucket")
DATA_BUCKETS = ["RawBucket", "ProcessedBucket", "AnalyticsBucket", "AuditBucket"]
KEY_ARN = {"Fn::GetAtt": ["DataKey", "Arn"]}


def props(name: str) -> dict[str, Any]:
    return T["Resources"][name]["Properties"]


def test_parameters_and_defaults() -> None:
    p = T["Parameters"]
    assert p["ProjectPrefix"]["Default"] == "enterprise"
    assert p["EnvName"]["Default"] == "production"
    assert p["MonthlyBudget"]["Default"] == 5000
    assert p["BudgetAlertPercent"]["Default"] == 80
    assert "Default" not in p["BillingEmail"]


def test_key_rotates_and_lets_services_use_it() -> None:
    key = props("DataKey")
    assert key["EnableKeyRotation"] is True
    principals: set[str] = set()
    for stmt in key["KeyPolicy"]["Statement"]:
        svc = stmt.get("Principal", {}).get("Service", [])
        principals.update([svc] if isinstance(svc, str) else svc)
    assert {
        "cloudtrail.amazonaws.com",
        "cloudwatch.amazonaws.com",
        "budgets.amazonaws.com",
        "sns.amazonaws.com",
    } <= (principals)


def test_data_buckets_are_kms_encrypted_with_the_cmk() -> None:
    assert set(DATA_BUCKETS) <= set(BUCKETS)
    for name in DATA_BUCKETS:
        rule = props(name)["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]
        assert rule["ServerSideEncryptionByDefault"] == {
            "SSEAlgorithm": "aws:kms",
            "KMSMasterKeyID": KEY_ARN,
        }, name
        assert rule["BucketKeyEnabled"] is True


def test_access_log_bucket_uses_sse_s3_because_s3_requires_it() -> None:
    rule = props("AccessLogsBucket")["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]
    assert rule["ServerSideEncryptionByDefault"] == {"SSEAlgorithm": "AES256"}


@pytest.mark.parametrize("name", sorted(BUCKETS))
def test_every_bucket_versioned_private_and_owner_enforced(name: str) -> None:
    p = props(name)
    assert p["VersioningConfiguration"] == {"Status": "Enabled"}
    assert p["PublicAccessBlockConfiguration"] == dict.fromkeys(
        ["BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets"], True
    )
    assert p["OwnershipControls"]["Rules"] == [{"ObjectOwnership": "BucketOwnerEnforced"}]
    rules = p["LifecycleConfiguration"]["Rules"]
    assert any("AbortIncompleteMultipartUpload" in r for r in rules)


@pytest.mark.parametrize("name", DATA_BUCKETS)
def test_data_buckets_log_to_the_access_log_bucket(name: str) -> None:
    logging = props(name)["LoggingConfiguration"]
    assert logging["DestinationBucketName"] == {"Ref": "AccessLogsBucket"}
    assert logging["LogFilePrefix"].endswith("/")


@pytest.mark.parametrize("name", sorted(BUCKETS))
def test_every_bucket_denies_non_tls(name: str) -> None:
    policies = [
        r["Properties"]
        for r in resources(T, "AWS::S3::BucketPolicy").values()
        if r["Properties"]["Bucket"] == {"Ref": name}
    ]
    assert len(policies) == 1, f"{name} needs exactly one bucket policy"
    deny = [
        s
        for s in policies[0]["PolicyDocument"]["Statement"]
        if s["Effect"] == "Deny" and s.get("Condition", {}).get("Bool", {}).get("aws:SecureTransport") == "false"
    ]
    assert deny, f"{name} does not deny insecure transport"
    assert deny[0]["Action"] == "s3:*"
    assert deny[0]["Principal"] == "*"


def test_lifecycle_expires_noncurrent_versions_quarantine_and_staging() -> None:
    for name in DATA_BUCKETS:
        rules = props(name)["LifecycleConfiguration"]["Rules"]
        assert any("NoncurrentVersionExpiration" in r for r in rules), name
    processed = {r.get("Prefix"): r for r in props("ProcessedBucket")["LifecycleConfiguration"]["Rules"]}
    assert processed["quarantine/"]["ExpirationInDays"] == {"Ref": "QuarantineRetentionDays"}
    assert processed["_staging/"]["ExpirationInDays"] == 1


def test_raw_bucket_sends_events_to_eventbridge() -> None:
    assert props("RawBucket")["NotificationConfiguration"]["EventBridgeConfiguration"]["EventBridgeEnabled"] is True


def test_trail_is_multi_region_validated_encrypted_and_logged() -> None:
    trail = props("Trail")
    assert trail["IsMultiRegionTrail"] is True
    assert trail["EnableLogFileValidation"] is True
    assert trail["IsLogging"] is True
    assert trail["KMSKeyId"] == KEY_ARN
    assert trail["S3BucketName"] == {"Ref": "AuditBucket"}
    assert trail["CloudWatchLogsLogGroupArn"] == {"Fn::GetAtt": ["TrailLogGroup", "Arn"]}
    group = props("TrailLogGroup")
    assert group["RetentionInDays"] == {"Ref": "TrailLogRetentionDays"}
    assert group["KmsKeyId"] == KEY_ARN


def test_alert_topic_encrypted_and_subscribed() -> None:
    topic = props("AlertTopic")
    assert topic["KmsMasterKeyId"] == KEY_ARN
    assert topic["Subscription"] == [{"Protocol": "email", "Endpoint": {"Ref": "BillingEmail"}}]


def test_budget_wired_to_parameters() -> None:
    budget = props("MonthlyCostBudget")
    assert budget["Budget"]["BudgetLimit"] == {"Amount": {"Ref": "MonthlyBudget"}, "Unit": "USD"}
    assert budget["Budget"]["TimeUnit"] == "MONTHLY"
    kinds = set()
    for n in budget["NotificationsWithSubscribers"]:
        assert n["Notification"]["Threshold"] == {"Ref": "BudgetAlertPercent"}
        assert n["Notification"]["ThresholdType"] == "PERCENTAGE"
        assert n["Subscribers"] == [{"SubscriptionType": "SNS", "Address": {"Ref": "AlertTopic"}}]
        kinds.add(n["Notification"]["NotificationType"])
    assert kinds == {"ACTUAL", "FORECASTED"}


def _statements(role: str) -> list[dict[str, Any]]:
    return [s for pol in props(role)["Policies"] for s in pol["PolicyDocument"]["Statement"]]


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def test_inference_role_only_reads_the_analytics_bucket() -> None:
    for stmt in _statements("InferenceFunctionRole"):
        actions = _as_list(stmt["Action"])
        s3_actions = [a for a in actions if a.startswith("s3:")]
        if not s3_actions:
            continue
        assert set(s3_actions) <= {"s3:GetObject", "s3:ListBucket"}, stmt
        for res in _as_list(stmt["Resource"]):
            text = str(res)
            assert "AnalyticsBucket" in text, res
            assert not any(b in text for b in ("Raw", "Processed", "Audit")), res
    kms = [a for s in _statements("InferenceFunctionRole") for a in _as_list(s["Action"]) if a.startswith("kms:")]
    assert kms == ["kms:Decrypt"]


@pytest.mark.parametrize("role", ["GlueJobRole", "DqFunctionRole", "InferenceFunctionRole", "BatchExplainRole"])
def test_roles_have_no_wildcard_actions_or_admin(role: str) -> None:
    for stmt in _statements(role):
        for action in _as_list(stmt["Action"]):
            assert action != "*", role
            assert not action.endswith(":*"), (role, action)
        if stmt["Resource"] == "*":
            # Only PutMetricData may use "*", and then only within our namespace.
            assert _as_list(stmt["Action"]) == ["cloudwatch:PutMetricData"], (role, stmt)
            assert "cloudwatch:namespace" in stmt["Condition"]["StringEquals"]


def test_outputs_export_what_domain_stacks_need() -> None:
    assert {
        "KmsKeyArn",
        "RawBucketName",
        "ProcessedBucketName",
        "AnalyticsBucketName",
        "AuditBucketName",
        "AlertTopicArn",
        "GlueJobRoleArn",
        "DqFunctionRoleArn",
        "InferenceFunctionRoleArn",
        "BatchExplainRoleArn",
    } <= set(T["Outputs"])
