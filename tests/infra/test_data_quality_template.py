"""Properties of stacks/data-quality.yaml and the state machine it deploys, asserted on the parsed files."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from tests.infra.cfn import CFN_LINT, ROOT, load_template, resources, run

pytestmark = pytest.mark.infra

T = load_template("stacks/data-quality.yaml")
R = T["Resources"]
KEY = {"Ref": "KmsKeyArn"}
ASL_PATH = (ROOT / "stacks" / R["DataQualityStateMachine"]["Properties"]["DefinitionUri"]).resolve()
ASL = json.loads(ASL_PATH.read_text())
STATES: dict[str, dict[str, Any]] = ASL["States"]


def props(name: str) -> dict[str, Any]:
    return R[name]["Properties"]


def sub_text(value: Any) -> str:
    """The template text of a `!Sub` (either form)."""
    sub = value["Fn::Sub"]
    return sub if isinstance(sub, str) else sub[0]


def test_parameters_follow_the_contracts() -> None:
    p = T["Parameters"]
    assert p["ProjectPrefix"]["Default"] == "enterprise"
    assert p["EnvName"]["Default"] == "production"
    foundation = {
        "KmsKeyArn",
        "RawBucketName",
        "ProcessedBucketName",
        "AnalyticsBucketName",
        "AlertTopicArn",
        "GlueJobRoleArn",
        "DqFunctionRoleArn",
    }
    assert foundation | {"ScoreThreshold", "ArtifactsPrefix"} <= set(p)
    for name in foundation:
        assert "Default" not in p[name], f"{name} must come from the foundation/root stack"
    assert p["ScoreThreshold"]["Type"] == "Number"
    assert 0 < p["ScoreThreshold"]["Default"] <= 1
    assert (p["ScoreThreshold"]["MinValue"], p["ScoreThreshold"]["MaxValue"]) == (0, 1)


def test_glue_security_configuration_encrypts_s3_and_bookmarks_with_the_cmk() -> None:
    enc = props("GlueSecurityConfiguration")["EncryptionConfiguration"]
    assert enc["S3Encryptions"] == [{"S3EncryptionMode": "SSE-KMS", "KmsKeyArn": KEY}]
    # Logs are encrypted by the job's own log groups (next tests): a CloudWatchEncryption here would make
    # Glue pick log groups of its own naming instead.
    assert "CloudWatchEncryption" not in enc
    assert enc["JobBookmarksEncryption"] == {"JobBookmarksEncryptionMode": "CSE-KMS", "KmsKeyArn": KEY}


def test_glue_job_runs_glue5_with_foundation_role_and_security_configuration() -> None:
    job = props("ContractsDqJob")
    assert sub_text(job["Name"]) == "${ProjectPrefix}-${EnvName}-contracts-dq"
    assert job["Role"] == {"Ref": "GlueJobRoleArn"}
    assert job["GlueVersion"] == "5.0"
    assert job["SecurityConfiguration"] == {"Ref": "GlueSecurityConfiguration"}
    assert job["WorkerType"] == {"Ref": "GlueWorkerType"}
    assert job["NumberOfWorkers"] == {"Ref": "GlueNumberOfWorkers"}
    assert job["Command"]["Name"] == "glueetl"
    args = job["DefaultArguments"]
    assert args["--job-bookmark-option"] == "job-bookmark-disable"
    # Glue 5.0 ignores Glue 4.0's continuous-logging arguments; --custom-logGroup-prefix is what it reads,
    # writing <prefix>/error and <prefix>/output, both owned (KMS, retention) by this stack.
    glue4_only = {"--enable-continuous-cloudwatch-log", "--continuous-log-logGroup", "--enable-continuous-log-filter"}
    assert not glue4_only & set(args)
    prefix = sub_text(args["--custom-logGroup-prefix"])
    groups = resources(T, "AWS::Logs::LogGroup")
    names = {sub_text(g["Properties"]["LogGroupName"]) for g in groups.values()}
    assert {prefix + "/error", prefix + "/output"} <= names
    # Script, package and ruleset all come from the artifacts prefix the foundation role may read.
    artifacts = "s3://${AnalyticsBucketName}/${ArtifactsPrefix}"
    assert sub_text(job["Command"]["ScriptLocation"]).startswith(artifacts)
    assert sub_text(args["--extra-py-files"]) == artifacts + "dq_platform.zip"
    assert sub_text(args["--ruleset_uri"]).startswith(artifacts + "rulesets/")
    # The job's own arguments (glue/jobs/contracts_dq.py): outputs fixed here, input/results per run.
    assert sub_text(args["--processed_uri"]) == "s3://${ProcessedBucketName}/contracts"
    assert sub_text(args["--quarantine_uri"]) == "s3://${ProcessedBucketName}/quarantine"
    assert sub_text(args["--staging_uri"]) == "s3://${ProcessedBucketName}/_staging"
    per_run = STATES["StartGlueRun"]["Parameters"]["Arguments"]
    assert per_run == {"--input_uri.$": "$.run.input_uri", "--results_uri.$": "$.run.results_uri"}
    assert T["Parameters"]["ArtifactsPrefix"]["Default"].startswith("artifacts/")


def test_every_log_group_is_kms_encrypted_with_retention() -> None:
    groups = resources(T, "AWS::Logs::LogGroup")
    assert set(groups) == {"GlueJobErrorLogGroup", "GlueJobOutputLogGroup", "DqResultsLogGroup", "StateMachineLogGroup"}
    for name, group in groups.items():
        assert group["Properties"]["KmsKeyId"] == KEY, name
        assert group["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}, name


def test_results_function_uses_foundation_role_layer_and_tracing() -> None:
    fn = props("DqResultsFunction")
    assert fn["Role"] == {"Ref": "DqFunctionRoleArn"}
    assert fn["Runtime"] == "python3.13"
    assert fn["Handler"] == "app.handler"
    assert fn["Layers"] == [{"Ref": "DomainLayer"}]
    layer = T["Resources"]["DomainLayer"]
    assert layer["Properties"]["ContentUri"] == "../layers/domain"
    assert layer["Metadata"]["BuildMethod"] == "makefile"
    assert fn["Tracing"] == "Active"
    assert fn["KmsKeyArn"] == KEY
    assert fn["LoggingConfig"] == {"LogGroup": {"Ref": "DqResultsLogGroup"}}
    env = fn["Environment"]["Variables"]
    assert env["POWERTOOLS_SERVICE_NAME"] == "dq-results"
    assert env["POWERTOOLS_TRACER_CAPTURE_RESPONSE"] == "false"
    assert env["RESULTS_BUCKET"] == {"Ref": "AnalyticsBucketName"}
    assert (ROOT / "stacks" / fn["CodeUri"] / "app.py").resolve().is_file()


def test_state_machine_logs_all_without_execution_data_and_traces() -> None:
    sm = props("DataQualityStateMachine")
    assert sub_text(sm["Name"]) == "${ProjectPrefix}-${EnvName}-data-quality"
    assert sm["Type"] == "STANDARD"
    assert sm["Logging"]["Level"] == "ALL"
    assert sm["Logging"]["IncludeExecutionData"] is False
    assert sm["Logging"]["Destinations"] == [
        {"CloudWatchLogsLogGroup": {"LogGroupArn": {"Fn::GetAtt": ["StateMachineLogGroup", "Arn"]}}}
    ]
    assert sm["Tracing"] == {"Enabled": True}


def test_state_machine_permissions_are_scoped() -> None:
    statements = [s for p in props("DataQualityStateMachine")["Policies"] if "Statement" in p for s in p["Statement"]]
    by_sid = {s["Sid"]: s for s in statements}
    assert sub_text(by_sid["RunDqJob"]["Resource"]).endswith(":job/${ContractsDqJob}")
    assert set(by_sid["RunDqJob"]["Action"]) == {"glue:StartJobRun", "glue:GetJobRun"}
    assert by_sid["PublishAlert"]["Resource"] == {"Ref": "AlertTopicArn"}
    assert by_sid["EncryptAlertForKmsTopic"]["Resource"] == KEY
    wildcard = [s["Sid"] for s in statements if s["Resource"] == "*"]
    assert wildcard == ["DeliverExecutionLogs"]  # log-delivery APIs have no resource-level permissions
    assert all(a.startswith("logs:") for a in by_sid["DeliverExecutionLogs"]["Action"])


def test_definition_substitutions_match_the_placeholders_in_the_asl() -> None:
    placeholders = set(re.findall(r"\$\{([A-Za-z0-9]+)\}", ASL_PATH.read_text()))
    subs = props("DataQualityStateMachine")["DefinitionSubstitutions"]
    assert placeholders == set(subs)
    assert subs["GlueJobName"] == {"Ref": "ContractsDqJob"}
    assert subs["ResultsFunctionArn"] == {"Fn::GetAtt": ["DqResultsFunction", "Arn"]}
    assert subs["AlertTopicArn"] == {"Ref": "AlertTopicArn"}
    assert subs["ScoreThreshold"] == {"Ref": "ScoreThreshold"}


def test_eventbridge_rule_starts_on_raw_incoming_object_created() -> None:
    event = props("DataQualityStateMachine")["Events"]["RawObjectCreated"]
    assert event["Type"] == "EventBridgeRule"
    pattern = event["Properties"]["Pattern"]
    assert pattern["source"] == ["aws.s3"]
    assert pattern["detail-type"] == ["Object Created"]
    assert pattern["detail"]["bucket"]["name"] == [{"Ref": "RawBucketName"}]
    assert pattern["detail"]["object"]["key"] == [{"prefix": "incoming/"}]
    # Events that cannot start an execution are kept and alarmed on, not dropped.
    assert event["Properties"]["DeadLetterConfig"] == {"Arn": {"Fn::GetAtt": ["EventsDeadLetterQueue", "Arn"]}}
    assert props("EventsDeadLetterQueue")["KmsMasterKeyId"] == KEY
    rule_name = sub_text(event["Properties"]["RuleName"])
    (allow,) = [
        s for s in props("EventsDeadLetterQueuePolicy")["PolicyDocument"]["Statement"] if s["Effect"] == "Allow"
    ]
    assert sub_text(allow["Condition"]["ArnEquals"]["aws:SourceArn"]).endswith(f":rule/{rule_name}")
    assert props("TriggerDeadLetterAlarm")["AlarmActions"] == [{"Ref": "AlertTopicArn"}]


def test_score_alarm_goes_to_the_alert_topic() -> None:
    alarm = props("ScoreAlarm")
    assert alarm["Namespace"] == "DQPlatform/DataQuality"
    assert alarm["MetricName"] == "Score"
    assert alarm["Dimensions"] == [{"Name": "Ruleset", "Value": {"Ref": "RulesetName"}}]
    assert alarm["Threshold"] == {"Ref": "ScoreThreshold"}
    assert alarm["ComparisonOperator"] == "LessThanThreshold"
    assert alarm["Statistic"] == "Minimum"
    assert alarm["TreatMissingData"] == "notBreaching"
    assert alarm["AlarmActions"] == [{"Ref": "AlertTopicArn"}]


def test_record_count_mismatch_alarm_watches_the_metric_a_failed_record_check_emits() -> None:
    """The alarm's metric and dimension are the ones the results step puts for a FAILED record check."""
    from dq_platform.dq.signals import metrics_from_results

    alarm = props("RecordCountMismatchAlarm")
    failed = {"ruleset": "contracts", "score": 0.0, "records_counted": 10, "records_check": "FAILED"}
    (emitted,) = [m for m in metrics_from_results(failed) if m["MetricName"] == alarm["MetricName"]]
    assert (alarm["Namespace"], alarm["MetricName"]) == ("DQPlatform/DataQuality", "RecordCountMismatch")
    assert [d["Name"] for d in emitted["Dimensions"]] == [d["Name"] for d in alarm["Dimensions"]] == ["Ruleset"]
    assert alarm["Dimensions"][0]["Value"] == {"Ref": "RulesetName"}
    assert emitted["Value"] > alarm["Threshold"] == 0
    assert (alarm["ComparisonOperator"], alarm["Statistic"]) == ("GreaterThanThreshold", "Maximum")
    assert alarm["TreatMissingData"] == "notBreaching"  # runs are event-driven: no data is no breach
    assert alarm["AlarmActions"] == alarm["OKActions"] == [{"Ref": "AlertTopicArn"}]


def test_dashboard_shows_score_rows_and_failures_per_rule() -> None:
    body_template, variables = props("DataQualityDashboard")["DashboardBody"]["Fn::Sub"]
    values = {"RulesetName": "contracts", "ScoreThreshold": "0.9", "AWS::Region": "eu-west-1"}
    values.update(dict.fromkeys(variables, "arn:aws:states:eu-west-1:123456789012:stateMachine:x"))
    body = json.loads(re.sub(r"\$\{([^}]+)\}", lambda m: values[m.group(1)], body_template))
    metrics = json.dumps([w["properties"]["metrics"] for w in body["widgets"]])
    for name in ("Score", "RowsIn", "RowsProcessed", "RowsQuarantined", "ExecutionsFailed"):
        assert f'"{name}"' in metrics, name
    (per_rule,) = [w["properties"] for w in body["widgets"] if w["properties"]["title"] == "Failures per rule"]
    expression = per_rule["metrics"][0][0]["expression"]
    assert expression.startswith('SEARCH(\'{DQPlatform/DataQuality,Ruleset,Rule} MetricName="RuleFailed"')
    assert 'Ruleset="contracts"' in expression


# ---------------------------------------------------------------- the ASL itself
def test_asl_graph_is_closed_and_every_state_reachable() -> None:
    targets: dict[str, set[str]] = {}
    for name, state in STATES.items():
        nxt = {state["Next"]} if "Next" in state else set()
        nxt |= {c["Next"] for c in state.get("Choices", [])}
        nxt |= {state["Default"]} if "Default" in state else set()
        nxt |= {c["Next"] for c in state.get("Catch", [])}
        assert nxt <= set(STATES), f"{name} points at a missing state"
        targets[name] = nxt
    seen, todo = set(), [ASL["StartAt"]]
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo.extend(targets[name])
    assert seen == set(STATES)


def test_asl_polls_glue_instead_of_sync() -> None:
    resources_used = {s["Resource"] for s in STATES.values() if s["Type"] == "Task"}
    assert resources_used == {
        "arn:aws:states:::glue:startJobRun",
        "arn:aws:states:::aws-sdk:glue:getJobRun",
        "arn:aws:states:::lambda:invoke",
        "arn:aws:states:::sns:publish",
    }
    assert STATES["WaitForGlueRun"]["Next"] == "GetGlueRun"
    assert STATES["GlueRunFinished"]["Default"] == "WaitForGlueRun"


def test_every_task_retries_with_backoff_and_failures_are_alerted() -> None:
    for name, state in STATES.items():
        if state["Type"] != "Task":
            continue
        assert state["Retry"], name
        for retry in state["Retry"]:
            assert retry["BackoffRate"] > 1, name
            assert retry["MaxAttempts"] >= 3, name
        if name != "PublishAlert":
            assert [c["Next"] for c in state["Catch"]] == ["PipelineError"], name
    throttling = {e for s in STATES.values() for r in s.get("Retry", []) for e in r["ErrorEquals"]}
    assert {"Glue.ThrottlingException", "Lambda.TooManyRequestsException", "SNS.ThrottledException"} <= throttling


def test_alert_decision_and_message_carry_summary_only() -> None:
    choice = STATES["EvaluateRun"]["Choices"][0]
    assert choice["Next"] == "RunPassed"
    assert {"Variable": "$.summary.status", "StringEquals": "SUCCEEDED"} in choice["And"]
    assert {"Variable": "$.summary.score", "NumericGreaterThanEqualsPath": "$.run.score_threshold"} in choice["And"]
    assert STATES["EvaluateRun"]["Default"] == "PublishAlert"
    publish = STATES["PublishAlert"]["Parameters"]
    assert publish["Message.$"] == "$.summary.message"
    assert publish["Subject.$"] == "$.summary.subject"
    # The function's result is cut down to named summary fields; nothing else travels on.
    selector = STATES["ReadResults"]["ResultSelector"]
    assert all(v.startswith("$.Payload.") for v in selector.values())
    outcomes = {c["StringEquals"]: c["Next"] for c in STATES["AlertOutcome"]["Choices"]}
    assert outcomes == {"HALTED": "RunHalted", "FAILED": "RunFailed", "ERROR": "PipelineFailed"}
    assert STATES["AlertOutcome"]["Default"] == "ScoreBelowThreshold"


def test_asl_passes_the_step_functions_schema(tmp_path: Path) -> None:
    """cfn-lint checks inline definitions against the ASL schema (E3601); DefinitionUri files it skips."""
    subs = props("DataQualityStateMachine")["DefinitionSubstitutions"]
    inline = {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Resources": {
            "Machine": {
                "Type": "AWS::StepFunctions::StateMachine",
                "Properties": {
                    "RoleArn": "arn:aws:iam::123456789012:role/states",
                    "Definition": ASL,
                    "DefinitionSubstitutions": dict.fromkeys(subs, "placeholder"),
                },
            }
        },
    }
    path = tmp_path / "asl.json"
    path.write_text(json.dumps(inline))
    result = run([str(CFN_LINT), str(path)])
    assert result.returncode == 0, result.stdout + result.stderr
