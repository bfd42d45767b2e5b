"""The claims of docs/security.md, checked against the templates.

Each AWS Foundational Security Best Practices (FSBP) control in the document's table has an entry here:
either a check over every template that proves the claim ("met"), a check of what compensates, or, for
controls that cannot apply to these resources, a check that the resource they govern is indeed absent.
A row in the document without an entry here (or the reverse) fails, so the table cannot drift.
cfn-lint, `sam validate --lint` and checkov run over the same templates in tests/infra.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.infra.cfn import ROOT, TEMPLATES, load_template

pytestmark = [pytest.mark.infra, pytest.mark.reliability]

DOC = ROOT / "docs" / "security.md"
SUPPORTED_RUNTIMES = {"python3.11", "python3.12", "python3.13"}


# ---------------------------------------------------------------- template helpers


def _templates() -> dict[str, dict[str, Any]]:
    return {str(t.relative_to(ROOT)): load_template(str(t.relative_to(ROOT))) for t in TEMPLATES}


def _all(rtype: str) -> dict[str, dict[str, Any]]:
    """`file:LogicalId` -> resource, for every resource of `rtype` in every template."""
    return {
        f"{name}:{rid}": res
        for name, tpl in _templates().items()
        for rid, res in tpl.get("Resources", {}).items()
        if res["Type"] == rtype
    }


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _identity_statements() -> Iterator[tuple[str, dict[str, Any]]]:
    """Statements of identity policies: IAM role inline policies and SAM `Policies` statements."""
    for rid, role in _all("AWS::IAM::Role").items():
        for policy in role["Properties"].get("Policies", []):
            for st in _as_list(policy["PolicyDocument"]["Statement"]):
                yield rid, st
    for rtype in ("AWS::Serverless::Function", "AWS::Serverless::StateMachine"):
        for rid, res in _all(rtype).items():
            for policy in _as_list(res["Properties"].get("Policies", [])):
                if isinstance(policy, dict) and "Statement" in policy:
                    for st in _as_list(policy["Statement"]):
                        yield rid, st


def _bucket_policies() -> dict[str, list[dict[str, Any]]]:
    """Bucket logical id -> statements of its bucket policy (same template)."""
    out: dict[str, list[dict[str, Any]]] = {}
    for rid, res in _all("AWS::S3::BucketPolicy").items():
        file = rid.split(":")[0]
        bucket = res["Properties"]["Bucket"]["Ref"]
        out[f"{file}:{bucket}"] = _as_list(res["Properties"]["PolicyDocument"]["Statement"])
    return out


def _inference() -> dict[str, Any]:
    return load_template("stacks/inference.yaml")


def _api_props() -> dict[str, Any]:
    props: dict[str, Any] = _inference()["Resources"]["InferenceApi"]["Properties"]
    return props


# ---------------------------------------------------------------- S3


def _buckets() -> dict[str, dict[str, Any]]:
    buckets = _all("AWS::S3::Bucket")
    assert len(buckets) >= 5
    return buckets


def check_s3_block_public_access() -> None:
    for rid, bucket in _buckets().items():
        block = bucket["Properties"]["PublicAccessBlockConfiguration"]
        assert block == dict.fromkeys(
            ("BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets"), True
        ), rid


def check_s3_no_public_policy() -> None:
    check_s3_block_public_access()
    for rid, statements in _bucket_policies().items():
        for st in statements:
            if st["Effect"] == "Allow":
                assert st["Principal"] != "*", (rid, st.get("Sid"))
                assert "AWS" not in st["Principal"], (rid, st.get("Sid"))
                assert "Service" in st["Principal"], (rid, st.get("Sid"))
                assert "Condition" in st, f"{rid} {st.get('Sid')}: service access must be pinned to this account"


def check_s3_tls_only() -> None:
    policies = _bucket_policies()
    for rid in _buckets():
        denies = [
            st
            for st in policies.get(rid, [])
            if st["Effect"] == "Deny" and st.get("Condition", {}).get("Bool", {}).get("aws:SecureTransport") == "false"
        ]
        assert denies, f"{rid} has no TLS-only statement"
        assert denies[0]["Action"] == "s3:*"
        assert len(_as_list(denies[0]["Resource"])) == 2, f"{rid}: bucket and objects"


def check_s3_access_logging() -> None:
    for rid, bucket in _buckets().items():
        if rid.endswith(":AccessLogsBucket"):
            continue  # the log target itself (logging it into itself would loop)
        target = bucket["Properties"]["LoggingConfiguration"]["DestinationBucketName"]
        assert target == {"Ref": "AccessLogsBucket"}, rid


def check_s3_no_acls() -> None:
    for rid, bucket in _buckets().items():
        rules = bucket["Properties"]["OwnershipControls"]["Rules"]
        assert rules == [{"ObjectOwnership": "BucketOwnerEnforced"}], rid


def check_s3_lifecycle() -> None:
    for rid, bucket in _buckets().items():
        rules = bucket["Properties"]["LifecycleConfiguration"]["Rules"]
        assert any("AbortIncompleteMultipartUpload" in r for r in rules), rid


def check_s3_versioning() -> None:
    for rid, bucket in _buckets().items():
        assert bucket["Properties"]["VersioningConfiguration"] == {"Status": "Enabled"}, rid
        # Kept when the stack is deleted; removed only when their own create rolls back (docs/deploy.md).
        assert bucket.get("DeletionPolicy") == "RetainExceptOnCreate", rid


def check_s3_kms() -> None:
    for rid, bucket in _buckets().items():
        (rule,) = bucket["Properties"]["BucketEncryption"]["ServerSideEncryptionConfiguration"]
        default = rule["ServerSideEncryptionByDefault"]
        if rid.endswith(":AccessLogsBucket"):
            assert default == {"SSEAlgorithm": "AES256"}  # S3 server access logging requires SSE-S3
            continue
        assert default["SSEAlgorithm"] == "aws:kms", rid
        assert default["KMSMasterKeyID"] == {"Fn::GetAtt": ["DataKey", "Arn"]}, rid
        assert rule["BucketKeyEnabled"] is True, rid


def check_s3_object_lock_compensated() -> None:
    trail = next(iter(_all("AWS::CloudTrail::Trail").values()))["Properties"]
    assert trail["EnableLogFileValidation"] is True
    audit = _all("AWS::S3::Bucket")["stacks/foundation.yaml:AuditBucket"]
    assert audit["Properties"]["VersioningConfiguration"] == {"Status": "Enabled"}
    assert "ObjectLockEnabled" not in audit["Properties"]


# ---------------------------------------------------------------- KMS


def check_kms_rotation() -> None:
    keys = _all("AWS::KMS::Key")
    assert len(keys) >= 2
    for rid, key in keys.items():
        assert key["Properties"]["EnableKeyRotation"] is True, rid


def check_kms_deletion_window() -> None:
    for rid, key in _all("AWS::KMS::Key").items():
        assert key["Properties"]["PendingWindowInDays"] == 30, rid
    assert _all("AWS::KMS::Key")["stacks/foundation.yaml:DataKey"]["DeletionPolicy"] == "RetainExceptOnCreate"


def check_kms_no_decrypt_on_all_keys() -> None:
    seen = 0
    for rid, st in _identity_statements():
        actions = [a.lower() for a in _as_list(st.get("Action", []))]
        if st["Effect"] != "Allow" or not any(a.startswith("kms:") or a == "*" for a in actions):
            continue
        seen += 1
        assert "*" not in _as_list(st["Resource"]), f"{rid} {st.get('Sid')}: KMS actions on every key"
    assert seen >= 5


# ---------------------------------------------------------------- CloudTrail


def _trail() -> dict[str, Any]:
    (trail,) = _all("AWS::CloudTrail::Trail").values()
    props: dict[str, Any] = trail["Properties"]
    return props


def check_trail_multi_region() -> None:
    trail = _trail()
    assert trail["IsMultiRegionTrail"] is True
    assert trail["IsLogging"] is True
    assert trail["IncludeGlobalServiceEvents"] is True
    (selector,) = trail["EventSelectors"]
    assert selector["ReadWriteType"] == "All"
    assert selector["IncludeManagementEvents"] is True


def check_trail_kms() -> None:
    assert _trail()["KMSKeyId"] == {"Fn::GetAtt": ["DataKey", "Arn"]}


def check_trail_validation() -> None:
    assert _trail()["EnableLogFileValidation"] is True


def check_trail_cloudwatch() -> None:
    trail = _trail()
    assert trail["CloudWatchLogsLogGroupArn"] == {"Fn::GetAtt": ["TrailLogGroup", "Arn"]}
    assert trail["CloudWatchLogsRoleArn"] == {"Fn::GetAtt": ["TrailToLogsRole", "Arn"]}


def check_trail_bucket_private_and_logged() -> None:
    assert _trail()["S3BucketName"] == {"Ref": "AuditBucket"}
    audit = _all("AWS::S3::Bucket")["stacks/foundation.yaml:AuditBucket"]["Properties"]
    assert all(audit["PublicAccessBlockConfiguration"].values())
    assert audit["LoggingConfiguration"]["DestinationBucketName"] == {"Ref": "AccessLogsBucket"}


# ---------------------------------------------------------------- SNS, SQS


def check_sns_kms() -> None:
    topics = _all("AWS::SNS::Topic")
    assert len(topics) >= 2
    for rid, topic in topics.items():
        assert "KmsMasterKeyId" in topic["Properties"], rid


def check_sns_not_public() -> None:
    for rid, policy in _all("AWS::SNS::TopicPolicy").items():
        for st in _as_list(policy["Properties"]["PolicyDocument"]["Statement"]):
            if st["Effect"] == "Allow":
                assert st["Principal"] != "*", rid
                assert "AWS" not in st["Principal"], rid
                assert "aws:SourceAccount" in str(st.get("Condition")), rid


def check_sqs_kms() -> None:
    queues = _all("AWS::SQS::Queue")
    assert queues
    for rid, queue in queues.items():
        assert "KmsMasterKeyId" in queue["Properties"], rid


# ---------------------------------------------------------------- Lambda


def _functions() -> dict[str, dict[str, Any]]:
    return _all("AWS::Serverless::Function")


def check_lambda_not_public() -> None:
    # Written permissions: a service principal, pinned to a source ARN and this account.
    for rid, perm in _all("AWS::Lambda::Permission").items():
        props = perm["Properties"]
        assert props["Principal"].endswith(".amazonaws.com"), rid
        assert "SourceArn" in props, rid
    # SAM-generated permissions: only from event sources SAM scopes to the source's ARN (this API's
    # stage, or the named EventBridge rule); no function URL, no public principal.
    for rid, fn in _functions().items():
        assert "FunctionUrlConfig" not in fn["Properties"], rid
        for event in fn["Properties"].get("Events", {}).values():
            assert event["Type"] in ("Api", "EventBridgeRule"), rid
            if event["Type"] == "Api":
                assert event["Properties"]["RestApiId"] == {"Ref": "InferenceApi"}, rid


def check_lambda_runtimes() -> None:
    for rid, fn in _functions().items():
        props = fn["Properties"]
        if props.get("PackageType") == "Image":
            dockerfile = ROOT / fn["Metadata"]["Dockerfile"]
            default = re.search(r"ARG BASE_IMAGE=(\S+)", dockerfile.read_text())
            base = fn["Metadata"].get("DockerBuildArgs", {}).get("BASE_IMAGE") or (default and default.group(1))
            version = re.fullmatch(r"public\.ecr\.aws/lambda/python:(\d+\.\d+)", str(base))
            assert version, f"{rid}: base image {base} is not an AWS Lambda Python base image"
            assert f"python{version.group(1)}" in SUPPORTED_RUNTIMES, rid
        else:
            assert props["Runtime"] in SUPPORTED_RUNTIMES, rid


def check_lambda_vpc_optional() -> None:
    props = _inference()["Resources"]["InferenceFunction"]["Properties"]
    assert props["VpcConfig"]["Fn::If"][0] == "UseVpc"
    params = _inference()["Parameters"]
    assert params["VpcSubnetIds"]["Type"] == "CommaDelimitedList"
    for rid, fn in _functions().items():
        if "VpcConfig" not in fn["Properties"]:
            skips = {s["id"] for s in fn.get("Metadata", {}).get("checkov", {}).get("skip", [])}
            assert "CKV_AWS_117" in skips, f"{rid}: outside a VPC without a stated reason"


def check_lambda_hardening() -> None:
    for rid, fn in _functions().items():
        props = fn["Properties"]
        assert props["Tracing"] == "Active", rid
        assert "KmsKeyArn" in props, rid
        assert "LogGroup" in props["LoggingConfig"], rid


# ---------------------------------------------------------------- API Gateway


def check_apigw_execution_logging() -> None:
    (settings,) = _api_props()["MethodSettings"]
    # ERROR unless the operator turns API logging off (ApiGatewayLogging=none: no account logging role).
    assert settings["LoggingLevel"] == {"Fn::If": ["ApiLogging", "ERROR", "OFF"]}
    assert settings["DataTraceEnabled"] is False  # never bodies: they carry contract text
    assert settings["MetricsEnabled"] is True
    condition, access_logs, _off = _api_props()["AccessLogSetting"]["Fn::If"]
    assert condition == "ApiLogging"
    assert "DestinationArn" in access_logs


def check_apigw_backend_is_lambda() -> None:
    """Every route is a Lambda proxy integration (no HTTP backend that a client certificate would guard)."""
    paths = _api_props()["DefinitionBody"]["paths"]
    events = _inference()["Resources"]["InferenceFunction"]["Properties"]["Events"]
    routes = {(e["Properties"]["Path"], e["Properties"]["Method"]) for e in events.values() if e["Type"] == "Api"}
    assert routes == {(path, method) for path, ops in paths.items() for method in ops}
    for path, ops in paths.items():
        for op in ops.values():
            integration = op.get("x-amazon-apigateway-integration")
            assert integration is None or integration["type"] == "aws_proxy", path


def check_apigw_xray() -> None:
    assert _api_props()["TracingEnabled"] is True


def check_apigw_waf() -> None:
    tpl = _inference()
    param = tpl["Parameters"]["WebAclArn"]
    assert param["Default"] == ""
    assert re.fullmatch(param["AllowedPattern"], "")
    arn = "arn:aws:wafv2:eu-west-1:123456789012:regional/webacl/dq/1234abcd"
    assert re.fullmatch(param["AllowedPattern"], arn)
    assert not re.fullmatch(param["AllowedPattern"], arn.replace("regional", "global"))
    assert tpl["Conditions"]["HasWebAcl"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "WebAclArn"}, ""]}]}
    assoc = tpl["Resources"]["ApiWebAclAssociation"]
    assert assoc["Type"] == "AWS::WAFv2::WebACLAssociation"
    assert assoc["Condition"] == "HasWebAcl"
    assert assoc["Properties"]["WebACLArn"] == {"Ref": "WebAclArn"}
    prefix, stage = assoc["Properties"]["ResourceArn"]["Fn::Join"][1]
    assert prefix == {"Fn::Sub": "arn:${AWS::Partition}:apigateway:${AWS::Region}::/restapis/${InferenceApi}/stages/"}
    assert stage == {"Ref": "InferenceApi.Stage"}


def check_apigw_no_cache() -> None:
    props = _api_props()
    assert props.get("CacheClusterEnabled", False) is False
    assert all(not s.get("CachingEnabled", False) for s in props["MethodSettings"])


def check_apigw_rest_only() -> None:
    assert _all("AWS::Serverless::HttpApi") == {}
    assert _all("AWS::ApiGatewayV2::Api") == {}


# ---------------------------------------------------------------- Step Functions, SSM, ECR, Glue, IAM


def check_sfn_logging() -> None:
    machines = _all("AWS::Serverless::StateMachine")
    assert machines
    for rid, machine in machines.items():
        logging = machine["Properties"]["Logging"]
        assert logging["Level"] in ("ALL", "ERROR"), rid
        assert logging["IncludeExecutionData"] is False, rid
        assert logging["Destinations"], rid
        assert machine["Properties"]["Tracing"] == {"Enabled": True}, rid


def check_ssm_not_applicable() -> None:
    for rtype in ("AWS::EC2::Instance", "AWS::SSM::Document", "AWS::SSM::Association"):
        assert _all(rtype) == {}, rtype
    params = _all("AWS::SSM::Parameter")
    assert len(params) == 3
    for rid, param in params.items():
        props = param["Properties"]
        assert props["Type"] == "String", rid  # configuration, never secrets
        assert props["Name"]["Fn::Sub"].startswith("/${ProjectPrefix}/${EnvName}/"), rid
    role = _all("AWS::IAM::Role")["stacks/foundation.yaml:InferenceFunctionRole"]
    statements = role["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
    ssm = next(st for st in statements if st["Sid"] == "ReadOwnParameters")
    assert ssm["Resource"]["Fn::Sub"].endswith(":parameter/${ProjectPrefix}/${EnvName}/*")
    assert all(a.startswith("ssm:Get") for a in ssm["Action"])


def check_ecr_repos_by_sam() -> None:
    assert _all("AWS::ECR::Repository") == {}
    config = tomllib.loads((ROOT / "samconfig.toml").read_text())
    for env in ("default", "prod"):
        assert config[env]["deploy"]["parameters"]["resolve_image_repos"] is True
    images = [fn for fn in _functions().values() if fn["Properties"].get("PackageType") == "Image"]
    assert len(images) == 2


def check_glue_supported_version() -> None:
    jobs = _all("AWS::Glue::Job")
    assert jobs
    for rid, job in jobs.items():
        assert job["Properties"]["GlueVersion"] in ("4.0", "5.0"), rid


def check_glue_no_ml_transforms_and_encrypted() -> None:
    assert _all("AWS::Glue::MLTransform") == {}
    (config,) = _all("AWS::Glue::SecurityConfiguration").values()
    enc = config["Properties"]["EncryptionConfiguration"]
    assert enc["S3Encryptions"][0]["S3EncryptionMode"] == "SSE-KMS"
    assert enc["JobBookmarksEncryption"]["JobBookmarksEncryptionMode"] == "CSE-KMS"
    # Logs: encrypted by the two groups Glue 5.0 writes under --custom-logGroup-prefix, not by the
    # configuration (whose CloudWatchEncryption would send them to groups Glue names itself).
    assert "CloudWatchEncryption" not in enc
    groups = _all("AWS::Logs::LogGroup")
    for rid, job in _all("AWS::Glue::Job").items():
        assert job["Properties"]["SecurityConfiguration"] == {"Ref": "GlueSecurityConfiguration"}, rid
        prefix = job["Properties"]["DefaultArguments"]["--custom-logGroup-prefix"]["Fn::Sub"]
        for suffix in ("/error", "/output"):
            (group,) = [g for g in groups.values() if g["Properties"]["LogGroupName"] == {"Fn::Sub": prefix + suffix}]
            assert group["Properties"]["KmsKeyId"] == {"Ref": "KmsKeyArn"}, rid


def check_glue_tagged() -> None:
    for rid, job in _all("AWS::Glue::Job").items():
        assert set(job["Properties"]["Tags"]) >= {"project", "env"}, rid


def check_iam_no_admin() -> None:
    n = 0
    for rid, st in _identity_statements():
        n += 1
        if st["Effect"] != "Allow":
            continue
        actions = _as_list(st["Action"])
        assert "*" not in actions, f"{rid} {st.get('Sid')}: Action '*'"
    assert n >= 20


def check_iam_no_service_wildcards() -> None:
    for rid, st in _identity_statements():
        if st["Effect"] != "Allow":
            continue
        for action in _as_list(st["Action"]):
            assert not action.endswith(":*"), f"{rid} {st.get('Sid')}: {action}"


def check_iam_no_users() -> None:
    for rtype in ("AWS::IAM::User", "AWS::IAM::AccessKey", "AWS::IAM::Group"):
        assert _all(rtype) == {}, rtype


def check_logs_encrypted_and_retained() -> None:
    groups = _all("AWS::Logs::LogGroup")
    assert len(groups) >= 8
    for rid, group in groups.items():
        assert "KmsKeyId" in group["Properties"], rid
        assert "RetentionInDays" in group["Properties"], rid


def check_account_level_settings_documented() -> None:
    """Account-level controls (S3.1, IAM users and root) are the operator's: the document says how."""
    text = DOC.read_text()
    assert "put-public-access-block" in text
    assert "put-registry-scanning-configuration" in text
    assert "WebAclArn" in text


# ---------------------------------------------------------------- the table

CONTROLS: dict[str, Callable[[], None]] = {
    "APIGateway.1": check_apigw_execution_logging,
    "APIGateway.2": check_apigw_backend_is_lambda,
    "APIGateway.3": check_apigw_xray,
    "APIGateway.4": check_apigw_waf,
    "APIGateway.5": check_apigw_no_cache,
    "APIGateway.8": check_apigw_rest_only,
    "APIGateway.9": check_apigw_rest_only,
    "CloudTrail.1": check_trail_multi_region,
    "CloudTrail.2": check_trail_kms,
    "CloudTrail.4": check_trail_validation,
    "CloudTrail.5": check_trail_cloudwatch,
    "CloudTrail.6": check_trail_bucket_private_and_logged,
    "CloudTrail.7": check_trail_bucket_private_and_logged,
    "CloudWatch.16": check_logs_encrypted_and_retained,
    "ECR.1": check_ecr_repos_by_sam,
    "ECR.2": check_ecr_repos_by_sam,
    "ECR.3": check_ecr_repos_by_sam,
    "Glue.1": check_glue_tagged,
    "Glue.3": check_glue_no_ml_transforms_and_encrypted,
    "Glue.4": check_glue_supported_version,
    "IAM.1": check_iam_no_admin,
    "IAM.2": check_iam_no_users,
    "IAM.21": check_iam_no_service_wildcards,
    "KMS.1": check_kms_no_decrypt_on_all_keys,
    "KMS.2": check_kms_no_decrypt_on_all_keys,
    "KMS.3": check_kms_deletion_window,
    "KMS.4": check_kms_rotation,
    "Lambda.1": check_lambda_not_public,
    "Lambda.2": check_lambda_runtimes,
    "Lambda.3": check_lambda_vpc_optional,
    "Lambda.5": check_lambda_vpc_optional,
    "Lambda.7": check_lambda_hardening,
    "S3.1": check_account_level_settings_documented,
    "S3.2": check_s3_no_public_policy,
    "S3.3": check_s3_no_public_policy,
    "S3.5": check_s3_tls_only,
    "S3.6": check_s3_no_public_policy,
    "S3.8": check_s3_block_public_access,
    "S3.9": check_s3_access_logging,
    "S3.12": check_s3_no_acls,
    "S3.13": check_s3_lifecycle,
    "S3.14": check_s3_versioning,
    "S3.15": check_s3_object_lock_compensated,
    "S3.17": check_s3_kms,
    "SNS.1": check_sns_kms,
    "SNS.4": check_sns_not_public,
    "SQS.1": check_sqs_kms,
    "SSM.1": check_ssm_not_applicable,
    "SSM.4": check_ssm_not_applicable,
    "StepFunctions.1": check_sfn_logging,
}


def _doc_ids() -> list[str]:
    return re.findall(r"^\| \[([A-Za-z0-9]+\.\d+)\] ", DOC.read_text(), flags=re.MULTILINE)


def test_document_and_checks_cover_the_same_controls() -> None:
    ids = _doc_ids()
    assert len(ids) == len(set(ids)), "a control is listed twice"
    assert set(ids) == set(CONTROLS)


def test_every_service_the_issue_names_is_covered() -> None:
    services = {cid.split(".")[0] for cid in CONTROLS}
    assert services >= {
        "S3",
        "Lambda",
        "APIGateway",
        "CloudTrail",
        "KMS",
        "SNS",
        "StepFunctions",
        "SSM",
        "ECR",
        "Glue",
        "IAM",
    }


@pytest.mark.parametrize("control", sorted(CONTROLS), ids=sorted(CONTROLS))
def test_claim_holds_in_the_templates(control: str) -> None:
    CONTROLS[control]()


# ---------------------------------------------------------------- access control (issue 8, item 6)


def test_api_auth_defaults_to_api_key_everywhere() -> None:
    for tpl in (load_template("template.yaml"), _inference()):
        param = tpl["Parameters"]["ApiAuth"]
        assert param["Default"] == "API_KEY"
        assert param["AllowedValues"] == ["API_KEY", "IAM"]
    root = load_template("template.yaml")["Resources"]["Inference"]["Properties"]["Parameters"]
    assert root["ApiAuth"] == {"Ref": "ApiAuth"}


def test_every_route_requires_the_chosen_auth() -> None:
    body = _api_props()["DefinitionBody"]
    schemes = body["components"]["securitySchemes"]
    assert schemes["api_key"] == {"type": "apiKey", "name": "x-api-key", "in": "header"}
    assert schemes["sigv4"]["x-amazon-apigateway-authtype"] == "awsSigv4"
    assert body["x-amazon-apigateway-api-key-source"] == "HEADER"
    operations = [(p, m, op) for p, ops in body["paths"].items() for m, op in ops.items()]
    assert {(p, m) for p, m, _ in operations} == {("/health", "get"), ("/models", "get"), ("/predict", "post")}
    for path, _, op in operations:
        assert op["security"] == {"Fn::If": ["UseIam", [{"sigv4": []}], [{"api_key": []}]]}, path


def test_api_key_comes_with_a_throttled_usage_plan_and_quota() -> None:
    tpl = _inference()
    assert tpl["Conditions"]["UseApiKey"] == {"Fn::Equals": [{"Ref": "ApiAuth"}, "API_KEY"]}
    res = tpl["Resources"]
    plan = res["ApiUsagePlan"]
    assert plan["Condition"] == "UseApiKey"
    assert plan["Properties"]["Throttle"] == {
        "RateLimit": {"Ref": "ThrottleRateLimit"},
        "BurstLimit": {"Ref": "ThrottleBurstLimit"},
    }
    assert plan["Properties"]["Quota"] == {"Limit": {"Ref": "DailyQuota"}, "Period": "DAY"}
    assert plan["Properties"]["ApiStages"] == [
        {"ApiId": {"Ref": "InferenceApi"}, "Stage": {"Ref": "InferenceApi.Stage"}}
    ]
    assert res["ApiKey"]["Condition"] == "UseApiKey"
    assert res["ApiKey"]["Properties"]["Enabled"] is True
    assert "Value" not in res["ApiKey"]["Properties"], "let API Gateway generate the key; never a literal"
    assert res["ApiUsagePlanKey"]["Properties"] == {
        "KeyId": {"Ref": "ApiKey"},
        "KeyType": "API_KEY",
        "UsagePlanId": {"Ref": "ApiUsagePlan"},
    }
    (settings,) = _api_props()["MethodSettings"]
    # Stage-wide throttling applies under IAM auth too, where there is no usage plan.
    assert settings["ThrottlingRateLimit"] == {"Ref": "ThrottleRateLimit"}
    assert settings["ThrottlingBurstLimit"] == {"Ref": "ThrottleBurstLimit"}
    params = tpl["Parameters"]
    assert (params["ThrottleRateLimit"]["Default"], params["ThrottleBurstLimit"]["Default"]) == (50, 100)


def test_request_size_is_limited_at_the_edge() -> None:
    schema = _api_props()["DefinitionBody"]["components"]["schemas"]["PredictRequest"]
    assert schema["additionalProperties"] is False
    assert schema["properties"]["text"]["maxLength"] == 20_000
    predict = _api_props()["DefinitionBody"]["paths"]["/predict"]["post"]
    assert predict["x-amazon-apigateway-request-validator"] == "body"


def test_ab_dashboard_is_the_snippet_verbatim() -> None:
    body = _inference()["Resources"]["AbDashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    assert body[0] == (ROOT / "stacks" / "snippets" / "ab-dashboard.json").read_text()
    assert body[1] == {"FunctionName": {"Fn::Sub": "${ProjectPrefix}-${EnvName}-ml-infer"}}
