"""A unique canary string sent through every route, every error path and a DQ run that raises an alert.

Captured: stdout and stderr of every process (Powertools JSON logs, EMF metric blobs, tracebacks), the
`--log-file` copy, every X-Ray segment (a UDP listener on 127.0.0.1:2000 standing in for the daemon;
the SDK is switched on with a faked Lambda environment and trace header), the CloudWatch metrics the
DQ step publishes and the SNS alert (delivered to an SQS queue on a moto server). The canary must
appear in none of them, in any common encoding. Each sink is also checked to hold what it should (the
requests were logged, traced and measured), so an empty capture cannot pass for a clean one.
"""

from __future__ import annotations

import base64
import json
import shutil
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dq_platform.inference.audit import sha256_hex
from dq_platform.sample_data import generate_records, write_records
from tests.infra.cfn import load_template
from tests.reliability.leaky_serve import CRASH_MARKER
from tests.reliability.support import (
    DQP,
    ROOT,
    RULESET,
    MotoServer,
    Served,
    UdpSink,
    aws_env,
    call,
    dqp_serve,
)

pytestmark = [pytest.mark.reliability, pytest.mark.integration]

CANARY = f"CANARY{uuid.uuid4().hex}"
BUCKET = "enterprise-test-analytics"
WEIGHTS_PARAM = "/enterprise/test/ab-weights"
STATS = ROOT / "build" / "reliability" / "privacy.json"
TRACE_ID = "1-67a1b2c3-0123456789abcdef01234567"


def _template_powertools_env() -> dict[str, str]:
    """The function's own Powertools settings, read from stacks/inference.yaml (plain values only)."""
    template = load_template("stacks/inference.yaml")
    variables = template["Resources"]["InferenceFunction"]["Properties"]["Environment"]["Variables"]
    return {k: v for k, v in variables.items() if k.startswith("POWERTOOLS_") and isinstance(v, str)}


def _traced_env(moto: MotoServer, sink: UdpSink, **extra: str) -> dict[str, str]:
    """Tracing on, as in Lambda: the SDK needs a task root, a sampled trace header and the daemon."""
    return aws_env(
        moto.endpoint,
        **_template_powertools_env(),
        POWERTOOLS_TRACE_DISABLED="false",
        POWERTOOLS_SERVICE_NAME="privacy-canary",
        LAMBDA_TASK_ROOT=str(ROOT),
        AWS_LAMBDA_FUNCTION_NAME="enterprise-test-ml-infer",
        _X_AMZN_TRACE_ID=f"Root={TRACE_ID};Parent=53995c3f42cd8ad8;Sampled=1",
        AWS_XRAY_DAEMON_ADDRESS=sink.address,
        AWS_XRAY_CONTEXT_MISSING="LOG_ERROR",
        **extra,
    )


def _forms(value: str) -> set[bytes]:
    """The canary as raw, case-folded, hex and base64 (all three alignments) bytes."""
    raw = value.encode()
    forms = {raw, raw.lower(), raw.upper(), raw.hex().encode()}
    for pad in range(3):
        encoded = base64.b64encode(b"x" * pad + raw)
        forms.add(encoded[4 : len(encoded) - 4])  # the part that depends on the canary alone
    return forms


def _leaks(captured: dict[str, bytes]) -> list[str]:
    return [f"{name}: {form[:24]!r}" for name, data in captured.items() for form in _forms(CANARY) if form in data]


def _record(section: str, facts: dict[str, Any]) -> None:
    stats = json.loads(STATS.read_text()) if STATS.exists() else {}
    stats[section] = facts
    STATS.parent.mkdir(parents=True, exist_ok=True)
    STATS.write_text(json.dumps(stats, indent=2, sort_keys=True) + "\n")


@pytest.mark.parametrize("prefix", ["", "a", "ab", "abc"])
def test_leak_detector_finds_the_canary_in_every_form(prefix: str) -> None:
    """The positive control: a capture holding the canary, plainly or encoded, is reported."""
    value = f"{prefix}{CANARY} tail"
    for encoded in (value, value.upper(), value.encode().hex(), base64.b64encode(value.encode()).decode()):
        assert _leaks({"sink": f"log line {encoded} end".encode()}), encoded
    assert _leaks({"sink": sha256_hex(value).encode()}) == []


@pytest.fixture(scope="module")
def moto() -> Iterator[MotoServer]:
    server = MotoServer().start()
    server.reset()
    server.client("ssm").put_parameter(
        Name=WEIGHTS_PARAM,
        Type="String",
        Value=json.dumps({"baseline": 0.5, "transformer": 0.5, "shadow_rate": 1.0}),  # every auto call shadowed
        Overwrite=True,
    )
    server.client("s3").create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def sink() -> Iterator[UdpSink]:
    listener = UdpSink(2000)
    try:
        yield listener
    finally:
        listener.close()


def _json(payload: Any) -> bytes:
    return json.dumps(payload).encode()


JSON = {"Content-Type": "application/json"}


def _routes_and_errors(url: str) -> list[int]:
    """Every route and error path of the main server, the canary in every free-form place."""
    text = f"The Supplier shall indemnify the Customer under schedule {CANARY} without limit."
    doc = "CTR-PRIV-0001"
    cases: list[tuple[str, str, bytes | None, dict[str, str]]] = [
        ("GET", f"/health?note={CANARY}", None, {"User-Agent": CANARY, "X-Correlation-Id": f"{CANARY} !"}),
        ("GET", "/models", None, {"X-Api-Key": CANARY, "Cookie": f"session={CANARY}", "Referer": CANARY}),
        ("GET", f"/{CANARY}", None, {}),
        ("PUT", "/predict", _json({"text": text}), JSON),
        ("POST", f"/predict?q={CANARY}", _json({"text": text, "model": "baseline", "explain": True}), JSON),
        ("POST", "/predict", _json({"text": text, "model": "transformer", "explain": True, "doc_id": doc}), JSON),
        ("POST", "/predict", _json({"text": text, "model": "transformer"}), JSON),
        ("POST", "/predict", _json({"text": text, "model": "auto", "doc_id": doc, "explain": True}), JSON),
        ("POST", "/predict", _json({"text": text, "model": "auto", "doc_id": "CTR-PRIV-0002"}), JSON),
        ("POST", "/predict", _json({"text": text}), {**JSON, "X-Correlation-Id": "corr-ok-1"}),
        # ---- 4xx paths
        ("POST", "/predict", b'{"text": "' + text.encode(), JSON),
        ("POST", "/predict", _json({"text": text, "model": CANARY}), JSON),
        ("POST", "/predict", _json({"text": text, CANARY: True}), JSON),
        ("POST", "/predict", _json({"text": text, "doc_id": f"{CANARY} x"}), JSON),
        ("POST", "/predict", _json({"text": [text]}), JSON),
        ("POST", "/predict", _json({"text": text + "x" * 20_001}), JSON),
        ("POST", "/predict", _json({"text": text, "explain": CANARY}), JSON),
        # ---- paths that ended in 5xx before defects B1, B2, B3, B5 were fixed (now 415/400/422): no leak here
        ("POST", "/predict", _json({"text": text}), {"Content-Type": "text/plain"}),
        ("POST", "/predict", b'{"text": "' + text.encode() + b'\xff\xfe"}', JSON),
        ("POST", "/predict", b'{"text": "\\ud800 ' + text.encode() + b'"}', JSON),
        ("POST", "/predict", b"[" * 50_000 + _json({"text": text}) + b"]" * 50_000, JSON),
    ]
    statuses = [call(url, method, path, body, headers).status for method, path, body, headers in cases]
    statuses.append(_oversized(url, text))
    return statuses


def _oversized(url: str, text: str) -> int:
    """A body over the 10 MB cap, refused from its headers (the canary is in the part that is sent)."""
    port = int(url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        head = (
            f"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {11 << 20}\r\n\r\n"
        )
        sock.sendall(head.encode() + _json({"text": text})[:-1])
        return int(sock.recv(4096).split(b" ", 2)[1])


def _leaky_paths(url: str) -> list[int]:
    text = f"Termination for convenience by {CANARY} is excluded."
    cases = [
        ("GET", "/health", None, {}),
        ("POST", "/predict", _json({"text": f"{CRASH_MARKER} {text}", "model": "baseline"}), JSON),  # 500
        ("POST", "/predict", _json({"text": f"{CRASH_MARKER} {text}", "model": "auto"}), JSON),  # 500 (fallback)
        ("POST", "/predict", _json({"text": text, "model": "transformer"}), JSON),  # 503: not loaded
        ("POST", "/predict", _json({"text": text, "model": "baseline", "explain": True}), JSON),  # explainer fails
    ]
    return [call(url, method, path, body, headers).status for method, path, body, headers in cases]


def _corrupt_transformer(models_root: Path, dest: Path) -> Path:
    shutil.copytree(models_root / "baseline", dest / "baseline")
    shutil.copytree(models_root / "transformer", dest / "transformer")
    for onnx in (dest / "transformer").glob("*.onnx"):
        onnx.write_bytes(onnx.read_bytes()[:100])
    return dest


def _captured(served: Served, log_file: Path | None = None) -> dict[str, bytes]:
    out = {"stdout": served.stdout_path.read_bytes(), "stderr": served.stderr_path.read_bytes()}
    if log_file is not None:
        out["log-file"] = log_file.read_bytes()
    return out


def test_canary_never_leaves_the_api(models_root: Path, tmp_path: Path, moto: MotoServer, sink: UdpSink) -> None:
    log_file = tmp_path / "api.log"
    env = _traced_env(moto, sink, AB_WEIGHTS_PARAM=WEIGHTS_PARAM, ANALYTICS_BUCKET=BUCKET, EXPLAIN_BUDGET_SECONDS="0.5")
    with dqp_serve(models_root, tmp_path / "main", env=env, args=["--log-file", str(log_file)]) as served:
        statuses = _routes_and_errors(served.url)
    leaky_models = _corrupt_transformer(models_root, tmp_path / "leaky-models")
    leaky_cmd = [sys.executable, "-m", "tests.reliability.leaky_serve", "serve", "--models", str(leaky_models)]
    with dqp_serve(leaky_models, tmp_path / "leaky", env=env, command=leaky_cmd) as leaky:
        leaky_statuses = _leaky_paths(leaky.url)

    # every route and error class was exercised
    assert {200, 400, 404, 413, 422} <= set(statuses), statuses
    assert leaky_statuses == [200, 500, 500, 503, 200], leaky_statuses

    captured = {**_captured(served, log_file), **{f"leaky {k}": v for k, v in _captured(leaky).items()}}
    captured["x-ray"] = b"\n".join(sink.datagrams)
    assert _leaks(captured) == []

    # ... and the captures are not empty: the requests were logged, measured and traced
    records = [json.loads(x) for x in log_file.read_text().splitlines() if x.startswith("{")]
    predictions = [r for r in records if r.get("message") == "prediction"]
    # 18 requests reach /predict's handler, each now logging its record (B3 and B5 used to raise out of it).
    assert len(predictions) >= 16
    text = f"The Supplier shall indemnify the Customer under schedule {CANARY} without limit."
    assert sha256_hex(text) in {r.get("text_sha256") for r in predictions}
    assert any("_aws" in r and "Latency" in r for r in records), "no EMF metrics captured"
    assert log_file.read_bytes() in served.stdout_path.read_bytes()  # the tee copies stdout exactly
    segments = sink.segments()
    handlers = [s for s in segments if s.get("name") == "## handler" and s.get("trace_id") == TRACE_ID]
    assert len(handlers) >= len(statuses) + len(leaky_statuses) - 2, len(handlers)
    assert any(s.get("namespace") == "aws" for s in segments), "no AWS SDK subsegments (SSM/S3) traced"
    assert any("Model" in s.get("annotations", {}) for s in handlers)
    stdout = leaky.stdout()
    assert '"unhandled error"' in stdout
    assert '"model not loaded"' in stdout
    _record(
        "api",
        {
            "requests": len(statuses) + len(leaky_statuses),
            "statuses": sorted(set(statuses + leaky_statuses)),
            "bytes_captured": {k: len(v) for k, v in captured.items()},
            "prediction_records": len(predictions),
            "emf_blobs": sum("_aws" in r for r in records),
            "xray_segments": len(segments),
            "leaks": 0,
        },
    )


# ---------------------------------------------------------------- a DQ run that raises an alert


def _canary_records(path: Path) -> tuple[Path, int]:
    records = generate_records(300, seed=31, defect_rate=0.1)
    for i, rec in enumerate(records[:40]):
        field = ("text", "title", "counterparty", "currency", "jurisdiction", "contract_type", "value_amount")[i % 7]
        rec[field] = f"{CANARY} {rec[field]}" if field != "value_amount" else CANARY
    write_records(path, records, "csv")
    with path.open("a", encoding="utf-8") as fh:  # a broken record holding the canary too
        fh.write(f'CTR-9999999,"{CANARY} unterminated,{CANARY}\n')
    return path, len(records) + 1


def test_canary_never_leaves_a_dq_run_and_its_alert(tmp_path: Path, moto: MotoServer, sink: UdpSink) -> None:
    data, n_records = _canary_records(tmp_path / "contracts.csv")
    run = subprocess.run(
        [str(DQP), "dq", "run", "-r", str(RULESET), "-i", str(data), "-o", str(tmp_path / "out")],
        cwd=ROOT,
        env=aws_env(moto.endpoint),
        capture_output=True,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    results_bytes = (tmp_path / "out" / "results.json").read_bytes()
    results = json.loads(results_bytes)
    assert results["rows_in"] == n_records == results["rows_processed"] + results["rows_quarantined"]

    s3, sns, sqs = moto.client("s3"), moto.client("sns"), moto.client("sqs")
    key = f"dq-results/{results['run_id']}/results.json"
    s3.put_object(Bucket=BUCKET, Key=key, Body=results_bytes)
    topic = sns.create_topic(Name="enterprise-test-alerts")["TopicArn"]
    queue = sqs.create_queue(QueueName="privacy-alert-inbox")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)

    event = {
        "run_id": "exec-privacy-1",
        "input_uri": "s3://enterprise-test-raw/incoming/contracts.csv",
        "results_uri": f"s3://{BUCKET}/{key}",
        "score_threshold": 0.99,
        "glue_job_run_id": "jr_privacy",
        "glue_job_run_state": "SUCCEEDED",
    }
    env = _traced_env(moto, sink, RESULTS_BUCKET=BUCKET, ALERT_PREFIX="enterprise-test")
    before = len(sink.datagrams)
    step = subprocess.run(
        [sys.executable, "-m", "tests.reliability.dq_results_invoke", json.dumps(event)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        check=False,
        timeout=120,
    )
    assert step.returncode == 0, step.stderr
    summary = json.loads(next(x for x in step.stdout.decode().splitlines() if x.startswith("SUMMARY "))[8:])
    assert summary["below_threshold"] is True  # this run must raise an alert
    # The state machine's PublishAlert step, with the same parameters (statemachines/data_quality.asl.json).
    sns.publish(
        TopicArn=topic,
        Subject=summary["subject"],
        Message=summary["message"],
        MessageAttributes={
            "status": {"DataType": "String", "StringValue": summary["status"]},
            "run_id": {"DataType": "String", "StringValue": event["run_id"]},
        },
    )
    delivered = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=2).get("Messages", [])
    assert len(delivered) == 1
    alert = json.loads(delivered[0]["Body"])
    assert results["run_id"] in alert["Message"]
    assert "Failed rules" in alert["Message"]

    metrics = moto.client("cloudwatch").list_metrics(Namespace="DQPlatform/DataQuality")["Metrics"]
    assert {m["MetricName"] for m in metrics} >= {"Score", "RowsIn", "RowsQuarantined", "RuleFailed"}
    captured = {
        "dq run stdout": run.stdout,
        "dq run stderr": run.stderr,
        "results.json": results_bytes,
        "dq_results stdout": step.stdout,
        "dq_results stderr": step.stderr,
        "x-ray (dq_results)": b"\n".join(sink.datagrams[before:]),
        "sns alert": json.dumps(alert).encode(),
        "cloudwatch metrics": json.dumps(metrics).encode(),
    }
    assert _leaks(captured) == []
    assert len(sink.datagrams) > before, "the dq_results step sent no X-Ray segment"
    assert b'"dq run summarised"' in step.stdout
    _record(
        "dq",
        {
            "records": n_records,
            "records_with_canary": 41,
            "rows_quarantined": results["rows_quarantined"],
            "alert_messages": len(delivered),
            "metrics": len(metrics),
            "xray_datagrams": len(sink.datagrams) - before,
            "bytes_captured": {k: len(v) for k, v in captured.items()},
            "leaks": 0,
        },
    )
    # the canary is really in the data that was processed: it reached the quarantine output
    quarantine = b"".join(p.read_bytes() for p in (tmp_path / "out" / "quarantine").rglob("*.parquet"))
    assert CANARY.encode() in quarantine
