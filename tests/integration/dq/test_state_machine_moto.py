"""statemachines/data_quality.asl.json executed end to end on a moto server with Step Functions on.

What is real here: the ASL file with the template's DefinitionSubstitutions applied, moto's Step
Functions interpreter, S3, Glue job runs (moto's state manager walks them STARTING -> RUNNING ->
SUCCEEDED, so the poll loop turns), SNS -> SQS delivery, CloudWatch, and the dq_results handler code,
which runs in this process against the moto server to publish the metrics and build the summary.
What is canned (moto has no Lambda runtime without Docker): the Lambda invoke inside the execution
returns that summary through moto's `lambda-simple` canned-response queue.
"""

from __future__ import annotations

import io
import json
import os
import re
import time
import uuid
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import boto3
import pytest
import requests
from cfnlint.decode import cfn_yaml
from moto.server import ThreadedMotoServer

from tests.support.aws import free_port, load_module

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[3]
TEMPLATE = REPO / "stacks" / "data-quality.yaml"
APP = REPO / "functions" / "dq_results" / "app.py"
REGION = "eu-west-1"
ACCOUNT = "123456789012"
PREFIX = "enterprise-test"
RAW = f"{PREFIX}-raw"
ANALYTICS = f"{PREFIX}-analytics"
# Stands in for contract wording in the uploaded file: it must never reach an alert or the history.
RECORD_TEXT = "Sentinel clause 7f3a: the Supplier shall indemnify the Customer against all losses"


# ---------------------------------------------------------------- template loader
def _state_machine_resource(template: dict[str, Any]) -> dict[str, Any]:
    machines = [r for r in template["Resources"].values() if r["Type"] == "AWS::Serverless::StateMachine"]
    assert len(machines) == 1
    return machines[0]["Properties"]


def _resolve(value: Any, names: dict[str, str]) -> str:
    """The intrinsics DefinitionSubstitutions use, resolved against parameters and physical ids."""
    if isinstance(value, str | int | float):
        return str(value)
    if isinstance(value, dict) and len(value) == 1:
        ((fn, arg),) = value.items()
        if fn == "Ref":
            return names[arg]
        if fn == "Fn::GetAtt":
            resource, attribute = arg if isinstance(arg, list) else arg.split(".", 1)
            return names[f"{resource}.{attribute}"]
        if fn == "Fn::Sub" and isinstance(arg, str):
            return re.sub(r"\$\{([^}!]+)\}", lambda m: names[m.group(1)], arg)
    raise AssertionError(f"unsupported intrinsic in DefinitionSubstitutions: {value!r}")


def load_definition(names: dict[str, str]) -> str:
    """The ASL the template deploys, with its DefinitionSubstitutions applied as Step Functions does.

    `names` maps parameters and resources (`Ref` targets, `Resource.Attribute` for GetAtt) to values;
    parameters missing from it fall back to the template's defaults.
    """
    template = json.loads(json.dumps(cfn_yaml.load(str(TEMPLATE))))
    props = _state_machine_resource(template)
    known = {k: str(p["Default"]) for k, p in template["Parameters"].items() if "Default" in p}
    known.update({"AWS::Region": REGION, "AWS::AccountId": ACCOUNT, "AWS::Partition": "aws"})
    known.update(names)
    asl = (TEMPLATE.parent / props["DefinitionUri"]).resolve().read_text()
    for key, value in props["DefinitionSubstitutions"].items():
        asl = asl.replace("${" + key + "}", _resolve(value, known))
    leftover = re.findall(r"\$\{[^}]+\}", asl)
    assert leftover == [], f"placeholders without a substitution: {leftover}"
    return asl


# ---------------------------------------------------------------- moto server
@dataclass
class Moto:
    endpoint: str

    def client(self, service: str) -> Any:
        return boto3.client(service, region_name=REGION, endpoint_url=self.endpoint)

    def api(self, path: str, body: dict[str, Any]) -> None:
        response = requests.post(f"{self.endpoint}/moto-api/{path}", json=body, timeout=10)
        response.raise_for_status()


@pytest.fixture(scope="module")
def moto() -> Iterator[Moto]:
    port = free_port()  # fixed before the server starts: the interpreter is told it through MOTO_PORT
    patch = pytest.MonkeyPatch()
    for name, value in {
        "MOTO_PORT": str(port),  # the interpreter calls services back on localhost:$MOTO_PORT
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
        "RESULTS_BUCKET": ANALYTICS,
        "ALERT_PREFIX": PREFIX,
        "POWERTOOLS_SERVICE_NAME": "dq-results",
        "POWERTOOLS_TRACE_DISABLED": "true",
    }.items():
        patch.setenv(name, value)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield Moto(f"http://127.0.0.1:{port}")
    finally:
        server.stop()
        patch.undo()


@dataclass
class Stack:
    moto: Moto
    app: ModuleType
    names: dict[str, str]
    role_arn: str
    job_name: str
    queue_url: str

    def create_machine(self, **overrides: str) -> str:
        return str(
            self.moto.client("stepfunctions").create_state_machine(
                name=f"{PREFIX}-data-quality",
                definition=load_definition({**self.names, **overrides}),
                roleArn=self.role_arn,
            )["stateMachineArn"]
        )


def _function_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.write(APP, "app.py")
    return buffer.getvalue()


@pytest.fixture
def stack(moto: Moto) -> Stack:
    """Fresh resources per test. moto 5.2 deep-copies the whole regional backend (past executions
    included) on every StartExecution and fails once an execution holds a lock, so each test resets
    the server and runs exactly one execution."""
    moto.api("reset", {})
    moto.api("config", {"stepfunctions": {"execute_state_machine": True}, "lambda": {"use_docker": False}})
    # Each GetJobRun moves a run one step: STARTING -> RUNNING -> SUCCEEDED (two trips round the loop).
    moto.api(
        "state-manager/set-transition",
        {"model_name": "glue::job_run", "transition": {"progression": "manual", "times": 1}},
    )
    s3, sns, sqs, iam = (moto.client(s) for s in ("s3", "sns", "sqs", "iam"))
    for bucket in (RAW, ANALYTICS):
        s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
    topic_arn = sns.create_topic(Name=f"{PREFIX}-alerts")["TopicArn"]
    queue_url = sqs.create_queue(QueueName="alert-inbox")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn)

    trust = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"Service": "x"}, "Action": "sts:AssumeRole"}],
    }
    role_arn = iam.create_role(RoleName="dq-test", AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    job_name = f"{PREFIX}-contracts-dq"
    moto.client("glue").create_job(
        Name=job_name,
        Role=role_arn,
        Command={"Name": "glueetl", "ScriptLocation": f"s3://{ANALYTICS}/artifacts/dq/contracts_dq.py"},
        GlueVersion="5.0",
        ExecutionProperty={"MaxConcurrentRuns": 50},
    )
    function_arn = moto.client("lambda").create_function(
        FunctionName=f"{PREFIX}-dq-results",
        Runtime="python3.11",
        Role=role_arn,
        Handler="app.handler",
        Code={"ZipFile": _function_zip()},
    )["FunctionArn"]

    names = {
        "ProjectPrefix": "enterprise",
        "EnvName": "test",
        "AnalyticsBucketName": ANALYTICS,
        "AlertTopicArn": topic_arn,
        "ScoreThreshold": "0.9",
        "GluePollSeconds": "1",
        "ContractsDqJob": job_name,
        "DqResultsFunction.Arn": function_arn,
    }
    return Stack(moto, load_module("dq_results_app_sfn", APP), names, role_arn, job_name, queue_url)


# ---------------------------------------------------------------- helpers
def object_created_event(key: str) -> dict[str, Any]:
    """The EventBridge "Object Created" event S3 sends for the raw bucket (EventBridge enabled)."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Object Created",
        "source": "aws.s3",
        "account": ACCOUNT,
        "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": REGION,
        "resources": [f"arn:aws:s3:::{RAW}"],
        "detail": {
            "version": "0",
            "bucket": {"name": RAW},
            "object": {"key": key, "size": 512, "etag": "d41d8cd98f00b204e9800998ecf8427e", "sequencer": "0062"},
            "request-id": "N4N7GDK58NMKJ12R",
            "requester": ACCOUNT,
            "source-ip-address": "203.0.113.15",
            "reason": "PutObject",
        },
    }


def results_document(run_id: str, status: str, score: float, failed: int) -> dict[str, Any]:
    now = datetime.now(UTC)
    outcomes = [
        {
            "Rule": f'ColumnLength "text" between {10 + i} and 20000',
            "Outcome": "Passed",
            "FailureReason": None,
            "EvaluatedMetrics": {},
            "Action": "quarantine",
            "RowsFailed": 0,
        }
        for i in range(20 - failed)
    ]
    outcomes += [
        {
            "Rule": f'ColumnValues "currency" in ["EUR", "USD", "Z{i}"]',
            "Outcome": "Failed",
            "FailureReason": "Value not in the allowed set for 4 rows",
            "EvaluatedMetrics": {"Column.currency.ValuesInSet": 0.96},
            "Action": "quarantine",
            "RowsFailed": 4,
        }
        for i in range(failed)
    ]
    return {
        "run_id": run_id,
        "ruleset": "contracts",
        "engine": "spark",
        "started_at": (now - timedelta(minutes=2)).isoformat(),
        "finished_at": now.isoformat(),
        "status": status,
        "score": score,
        "rows_in": 100,
        "rows_processed": 0 if status == "HALTED" else 96,
        "rows_quarantined": 100 if status == "HALTED" else 4,
        "ruleOutcomes": outcomes,
        "halted_by": ['RowCount between 500 and 1000000 with labels=["action"="halt"]'] if status == "HALTED" else [],
        "quarantine_reasons": {'ColumnValues "currency"': 4} if failed else {},
        "outputs": {
            "processed": f"s3://{PREFIX}-processed/contracts/",
            "quarantine": f"s3://{PREFIX}-processed/quarantine/",
            "results": f"s3://{ANALYTICS}/dq-results/{run_id}/results.json",
        },
    }


@dataclass
class Run:
    run_id: str
    status: str
    output: dict[str, Any]
    error: str | None
    history: list[dict[str, Any]]
    summary: dict[str, Any]

    def states(self) -> list[str]:
        return [e["stateEnteredEventDetails"]["name"] for e in self.history if "stateEnteredEventDetails" in e]

    def task_parameters(self, resource_type: str) -> list[dict[str, Any]]:
        return [
            json.loads(e["taskScheduledEventDetails"]["parameters"])
            for e in self.history
            if e.get("taskScheduledEventDetails", {}).get("resourceType") == resource_type
        ]


def run_pipeline(stack: Stack, *, status: str, score: float, failed: int, **substitutions: str) -> Run:
    """Upload a raw file, write the run's results, queue the summary, run the machine to its end."""
    run_id = f"run-{uuid.uuid4().hex[:12]}"
    key = f"incoming/{run_id}.csv"
    s3 = stack.moto.client("s3")
    s3.put_object(Bucket=RAW, Key=key, Body=f'doc_id,text\nD-1,"{RECORD_TEXT}"\n'.encode())
    document = results_document(run_id, status, score, failed)
    s3.put_object(Bucket=ANALYTICS, Key=f"dq-results/{run_id}/results.json", Body=json.dumps(document).encode())

    # The summary comes from the real handler (reading results.json and publishing metrics on the
    # moto server); moto then returns it as the canned result of the Lambda invoke in the execution.
    request = {
        "run_id": run_id,
        "input_uri": f"s3://{RAW}/{key}",
        "results_uri": f"s3://{ANALYTICS}/dq-results/{run_id}/results.json",
        "score_threshold": 0.9,
        "glue_job_run_state": "SUCCEEDED",
    }
    summary = stack.app.summarise_run(
        stack.app.ResultsRequest.model_validate(request),
        stack.app.Settings.from_env(),
        stack.moto.client("s3"),
        stack.moto.client("cloudwatch"),
    ).model_dump()
    stack.moto.api("static/lambda-simple/response", {"results": [json.dumps(summary)], "region": REGION})

    sfn = stack.moto.client("stepfunctions")
    execution_arn = sfn.start_execution(
        stateMachineArn=stack.create_machine(**substitutions), name=run_id, input=json.dumps(object_created_event(key))
    )["executionArn"]
    deadline = time.monotonic() + 30
    while True:
        described = sfn.describe_execution(executionArn=execution_arn)
        if described["status"] != "RUNNING":
            break
        assert time.monotonic() < deadline, "execution did not finish within 30 s"
        time.sleep(0.2)
    history = sfn.get_execution_history(executionArn=execution_arn, maxResults=1000)["events"]
    return Run(
        run_id=run_id,
        status=described["status"],
        output=json.loads(described.get("output") or "{}"),
        error=described.get("error"),
        history=[json.loads(json.dumps(e, default=str)) for e in history],
        summary=summary,
    )


def drain_alerts(stack: Stack, wait_seconds: int) -> list[dict[str, Any]]:
    sqs = stack.moto.client("sqs")
    messages: list[dict[str, Any]] = []
    while True:
        got = sqs.receive_message(QueueUrl=stack.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=wait_seconds)
        batch = got.get("Messages", [])
        if not batch:
            return messages
        for message in batch:
            messages.append(json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=stack.queue_url, ReceiptHandle=message["ReceiptHandle"])
        wait_seconds = 0


def assert_no_record_text(run: Run, alerts: list[dict[str, Any]]) -> None:
    assert RECORD_TEXT not in json.dumps(alerts)
    assert RECORD_TEXT not in json.dumps(run.history)
    assert "Supplier shall indemnify" not in json.dumps(alerts)


# ---------------------------------------------------------------- tests
def test_definition_loader_applies_every_substitution() -> None:
    asl = json.loads(
        load_definition(
            {
                "AlertTopicArn": "arn:aws:sns:eu-west-1:123456789012:t",
                "ContractsDqJob": "job",
                "DqResultsFunction.Arn": "arn:aws:lambda:eu-west-1:123456789012:function:f",
                "AnalyticsBucketName": "analytics",
            }
        )
    )
    assert asl["States"]["StartGlueRun"]["Parameters"]["JobName"] == "job"
    assert asl["States"]["PublishAlert"]["Parameters"]["TopicArn"] == "arn:aws:sns:eu-west-1:123456789012:t"
    run = asl["States"]["PrepareRun"]["Parameters"]["run"]
    assert run["score_threshold.$"] == "States.StringToJson('0.9')"  # the template default
    assert "s3://analytics/dq-results/" in run["results_uri.$"]


def test_passing_run_succeeds_without_alert(stack: Stack) -> None:
    run = run_pipeline(stack, status="SUCCEEDED", score=0.95, failed=1)

    assert run.status == "SUCCEEDED", run.history
    states = run.states()
    assert states[:2] == ["PrepareRun", "StartGlueRun"]
    assert states.count("GetGlueRun") == 2  # RUNNING, then SUCCEEDED
    assert states[-3:] == ["ReadResults", "EvaluateRun", "RunPassed"]
    assert "PublishAlert" not in states

    # The Glue run got this object and this run's results location, and really finished.
    (started,) = stack.moto.client("glue").get_job_runs(JobName=stack.job_name)["JobRuns"][-1:]
    assert started["Arguments"] == {
        "--input_uri": f"s3://{RAW}/incoming/{run.run_id}.csv",
        "--results_uri": f"s3://{ANALYTICS}/dq-results/{run.run_id}/results.json",
    }
    assert started["JobRunState"] == "SUCCEEDED"
    (payload,) = [p["Payload"] for p in run.task_parameters("lambda")]
    assert payload["glue_job_run_id"] == started["Id"]
    assert payload["glue_job_run_state"] == "SUCCEEDED"
    assert payload["score_threshold"] == 0.9

    assert run.output["summary"]["status"] == "SUCCEEDED"
    assert run.output["summary"]["score"] == pytest.approx(0.95)
    assert drain_alerts(stack, wait_seconds=1) == []

    # The handler's metrics are on the (moto) CloudWatch the dashboard and alarm read.
    scores = stack.moto.client("cloudwatch").get_metric_statistics(
        Namespace="DQPlatform/DataQuality",
        MetricName="Score",
        Dimensions=[{"Name": "Ruleset", "Value": "contracts"}],
        StartTime=datetime.now(UTC) - timedelta(minutes=10),
        EndTime=datetime.now(UTC) + timedelta(minutes=5),
        Period=60,
        Statistics=["Minimum"],
    )["Datapoints"]
    assert 0.95 in [pytest.approx(p["Minimum"]) for p in scores]


def test_halted_run_alerts_with_summary_and_fails(stack: Stack) -> None:
    run = run_pipeline(stack, status="HALTED", score=0.6, failed=8)

    assert run.status == "FAILED"
    assert run.error == "DQ.Halted"
    assert run.states()[-4:] == ["EvaluateRun", "PublishAlert", "AlertOutcome", "RunHalted"]
    (alert,) = drain_alerts(stack, wait_seconds=5)
    assert alert["Type"] == "Notification"
    assert alert["Subject"] == "[enterprise-test] DQ HALTED: contracts score 0.600"
    assert alert["Message"] == run.summary["message"]
    assert alert["MessageAttributes"]["status"]["Value"] == "HALTED"
    assert alert["MessageAttributes"]["run_id"]["Value"] == run.run_id
    message = alert["Message"]
    assert f"Data-quality run {run.run_id} on ruleset contracts: HALTED" in message
    assert "Rows: in 100, processed 0, quarantined 100" in message
    assert "Halted by: RowCount between 500 and 1000000" in message
    assert "Failed rules (8):" in message
    assert_no_record_text(run, [alert])


def test_low_score_alerts_and_fails_with_score_error(stack: Stack) -> None:
    run = run_pipeline(stack, status="SUCCEEDED", score=0.8, failed=4)

    assert run.status == "FAILED"
    assert run.error == "DQ.ScoreBelowThreshold"
    (alert,) = drain_alerts(stack, wait_seconds=5)
    assert alert["Subject"] == "[enterprise-test] DQ LOW SCORE: contracts score 0.800"
    assert "Threshold: 0.9000 (below threshold)" in alert["Message"]
    assert "Rows: in 100, processed 96, quarantined 4" in alert["Message"]
    assert_no_record_text(run, [alert])


def test_step_failure_is_caught_and_alerted(stack: Stack) -> None:
    # The template's definition pointed at a job that does not exist: Catch -> PipelineError -> alert.
    run = run_pipeline(stack, status="SUCCEEDED", score=1.0, failed=0, ContractsDqJob="no-such-job")
    assert run.status == "FAILED"
    assert run.error == "DQ.PipelineError"
    assert run.states() == [
        "PrepareRun",
        "StartGlueRun",
        "PipelineError",
        "PublishAlert",
        "AlertOutcome",
        "PipelineFailed",
    ]
    (alert,) = drain_alerts(stack, wait_seconds=5)
    assert alert["Subject"] == "Data-quality pipeline error"
    assert alert["Message"].startswith(
        f"The data-quality pipeline stopped with Glue.EntityNotFoundException in execution {run.run_id}"
    )
    assert alert["MessageAttributes"]["status"]["Value"] == "ERROR"
    assert_no_record_text(run, [alert])


def test_eventbridge_rule_routes_only_raw_incoming(stack: Stack) -> None:
    """The template's rule pattern on moto EventBridge: only raw-bucket incoming/ creations pass."""
    template = json.loads(json.dumps(cfn_yaml.load(str(TEMPLATE))))
    pattern = _state_machine_resource(template)["Events"]["RawObjectCreated"]["Properties"]["Pattern"]
    names = pattern["detail"]["bucket"]["name"]
    pattern["detail"]["bucket"]["name"] = [_resolve(v, {"RawBucketName": RAW}) for v in names]
    events, sqs = stack.moto.client("events"), stack.moto.client("sqs")
    inbox = sqs.create_queue(QueueName="rule-target")["QueueUrl"]
    inbox_arn = sqs.get_queue_attributes(QueueUrl=inbox, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name="dq-raw-incoming", EventPattern=json.dumps(pattern))
    events.put_targets(Rule="dq-raw-incoming", Targets=[{"Id": "sfn-stand-in", "Arn": inbox_arn}])

    other_bucket = object_created_event("incoming/c.csv")
    other_bucket["detail"]["bucket"]["name"] = ANALYTICS
    deleted = object_created_event("incoming/d.csv")
    deleted["detail-type"] = "Object Deleted"
    candidates = [
        object_created_event("incoming/2025/a.csv"),
        object_created_event("archive/b.csv"),
        other_bucket,
        deleted,
    ]
    events.put_events(
        Entries=[
            {
                "Source": e["source"],
                "DetailType": e["detail-type"],
                "Detail": json.dumps(e["detail"]),
                "Resources": e["resources"],
            }
            for e in candidates
        ]
    )
    got = sqs.receive_message(QueueUrl=inbox, MaxNumberOfMessages=10, WaitTimeSeconds=2).get("Messages", [])
    assert [json.loads(m["Body"])["detail"]["object"]["key"] for m in got] == ["incoming/2025/a.csv"]


def test_moto_port_is_what_the_interpreter_uses(moto: Moto) -> None:
    assert moto.endpoint.endswith(":" + os.environ["MOTO_PORT"])
