"""The API when its dependencies fail: S3 and SSM down and back, the model store unreachable at cold start.

The moto server stands in for S3 and SSM. Stopping it is an outage (connections refused); starting it
again on the same port, with the same state, is the recovery. Subprocesses get bounded botocore retries
(AWS_MAX_ATTEMPTS=2) so an outage shows as an error within seconds, as a Lambda's short timeout would.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dq_platform.models.artifacts import publish, read_manifest
from tests.reliability.support import ROOT, MotoServer, Served, aws_env, call, dqp_serve, free_port, post_json

pytestmark = [pytest.mark.reliability, pytest.mark.integration]

BUCKET = "enterprise-test-analytics"
WEIGHTS_PARAM = "/enterprise/test/ab-weights"
TTL_S = 1
DOC_ID = "CTR-FAULT-0001"
TEXT = "The Supplier may terminate this Agreement at any time without notice or liability."
STATS = ROOT / "build" / "reliability" / "faults_api.json"


def _record(section: str, facts: dict[str, Any]) -> None:
    stats = json.loads(STATS.read_text()) if STATS.exists() else {}
    stats[section] = facts
    STATS.parent.mkdir(parents=True, exist_ok=True)
    STATS.write_text(json.dumps(stats, indent=2, sort_keys=True) + "\n")


@pytest.fixture
def moto() -> Iterator[MotoServer]:
    server = MotoServer().start()
    server.reset()  # moto keeps its state per process, across servers
    try:
        yield server
    finally:
        server.stop()


def _seed(moto: MotoServer, models_root: Path) -> str:
    """Weights that differ from the built-in default, and a precomputed explanation for DOC_ID."""
    moto.client("ssm").put_parameter(
        Name=WEIGHTS_PARAM,
        Type="String",
        Value=json.dumps({"baseline": 0.0, "transformer": 1.0, "shadow_rate": 0.0}),
        Overwrite=True,
    )
    s3 = moto.client("s3")
    s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    version = read_manifest(models_root / "transformer").version
    stored = {
        "doc_id": DOC_ID,
        "model": "transformer",
        "model_version": version,
        "type": "shap-partition",
        "top_terms": [{"term": "terminate", "weight": 0.4}, {"term": "notice", "weight": -0.1}],
        "html_key": f"explanations/transformer/{DOC_ID}.html",
    }
    s3.put_object(Bucket=BUCKET, Key=f"explanations/transformer/{DOC_ID}.json", Body=json.dumps(stored).encode())
    s3.put_object(Bucket=BUCKET, Key=f"explanations/transformer/{DOC_ID}.html", Body=b"<div>shap</div>")
    return version


def _explained(served: Served) -> tuple[int, dict[str, Any], float]:
    started = time.monotonic()
    reply = post_json(
        served.url, {"text": TEXT, "model": "transformer", "explain": True, "explain_detail": True, "doc_id": DOC_ID}
    )
    return reply.status, reply.json(), time.monotonic() - started


def _weights(served: Served) -> dict[str, Any]:
    reply = call(served.url, "GET", "/models")
    assert reply.status == 200
    weights: dict[str, Any] = reply.json()["ab_weights"]
    return weights


def _auto_model(served: Served) -> str:
    reply = post_json(served.url, {"text": TEXT, "model": "auto", "doc_id": "CTR-AUTO-1"})
    assert reply.status == 200
    return str(reply.headers["x-model"])


def test_s3_and_ssm_outage_degrades_then_recovers(moto: MotoServer, models_root: Path, tmp_path: Path) -> None:
    _seed(moto, models_root)
    env = aws_env(
        moto.endpoint,
        AB_WEIGHTS_PARAM=WEIGHTS_PARAM,
        AB_WEIGHTS_TTL_SECONDS=str(TTL_S),
        ANALYTICS_BUCKET=BUCKET,
        EXPLAIN_BUDGET_SECONDS="0.5",
    )
    with dqp_serve(models_root, tmp_path, env=env) as served:
        # ---- healthy: weights from SSM, precomputed SHAP from S3 with a pre-signed link
        assert _weights(served) == {"baseline": 0.0, "transformer": 1.0, "shadow_rate": 0.0, "source": WEIGHTS_PARAM}
        assert _auto_model(served) == "transformer"
        status, body, _ = _explained(served)
        assert status == 200
        assert body["explanation"]["detail"]["method"] == "shap-partition"
        assert body["explanation"]["html_url"].startswith(moto.endpoint)

        # ---- outage: both services refuse connections
        moto.stop()
        time.sleep(TTL_S + 0.2)
        outage_weights = _weights(served)
        # The last good weights keep serving, and /models says where they came from.
        assert outage_weights == {"baseline": 0.0, "transformer": 1.0, "shadow_rate": 0.0, "source": "last-good"}
        assert _auto_model(served) == "transformer"
        status, body, seconds = _explained(served)
        assert status == 200, body
        outage = {"explain_seconds": round(seconds, 2), "explanation": body["explanation"]["detail"]["method"]}
        # Without S3 the answer falls back to the bounded on-the-fly explanation instead of failing.
        assert body["explanation"]["detail"]["method"] in ("occlusion", "unavailable")
        assert seconds < 10, f"a request during the outage took {seconds:.1f}s"
        assert call(served.url, "GET", "/health").json()["status"] == "ok"
        logs = served.json_lines()
        warnings = {(r.get("message"), r.get("error")) for r in logs if r.get("level") == "WARNING"}
        assert ("configuration parameter unusable; serving fallback", "GetParameterError") in warnings
        assert any(m == "precomputed explanation unreadable" for m, _ in warnings), warnings

        # ---- recovery: the same server comes back; the next read after the TTL uses it again
        moto.start()
        deadline = time.monotonic() + 15
        while _weights(served)["source"] != WEIGHTS_PARAM:
            assert time.monotonic() < deadline, "weights never came back from SSM"
            time.sleep(0.3)
        recovered_after = time.monotonic() - deadline + 15
        status, body, _ = _explained(served)
        assert status == 200
        assert body["explanation"]["detail"]["method"] == "shap-partition"
        assert served.proc.poll() is None
        _record(
            "s3_ssm_outage",
            {**outage, "weights_during_outage": "last-good", "recovered_within_s": round(recovered_after, 2)},
        )
    errors = [r for r in served.json_lines() if r.get("level") == "ERROR"]
    assert errors == [], errors


def test_model_store_unreachable_at_cold_start_is_degraded_not_a_crash_loop(models_root: Path, tmp_path: Path) -> None:
    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens here: every S3 call is refused
    env = aws_env(dead, MODEL_S3_URI=f"s3://{BUCKET}/models", MODEL_CACHE_DIR=str(tmp_path / "cache"))
    started = time.monotonic()
    with dqp_serve(tmp_path / "no-baked-models", tmp_path, env=env) as served:
        cold_start = time.monotonic() - started
        health = call(served.url, "GET", "/health")
        assert health.status == 200
        body = health.json()
        assert body["status"] == "degraded"
        assert body["models_loaded"] == {}
        assert len(body["degraded_reasons"]) == 2
        for reason in body["degraded_reasons"]:
            assert f"could not fetch models from s3://{BUCKET}/models" in reason
            assert "EndpointConnectionError" in reason or "Could not connect" in reason
        models = call(served.url, "GET", "/models").json()["models"]
        assert [m["loaded"] for m in models] == [False, False]
        for _ in range(20):  # the process keeps answering: no exception escapes, no restart needed
            reply = post_json(served.url, {"text": TEXT, "model": "auto"})
            assert reply.status == 503
            assert reply.json()["error"] == "model_unavailable"
        assert served.proc.poll() is None
    assert cold_start < 60
    _record("model_store_down", {"cold_start_to_health_s": round(cold_start, 2), "predict_503s": 20})
    assert "model fetch failed" in served.stdout()


def test_lambda_init_survives_an_unreachable_model_store(tmp_path: Path) -> None:
    """The Lambda module itself (what the image runs): init completes, /health answers degraded."""
    dead = f"http://127.0.0.1:{free_port()}"
    env = aws_env(
        dead,
        MODEL_S3_URI=f"s3://{BUCKET}/models",
        MODEL_DIR=str(tmp_path / "none"),
        MODEL_CACHE_DIR=str(tmp_path / "cache"),
    )
    script = (
        "import json\n"
        "from dq_platform.inference import handler as h\n"
        "from dq_platform.inference.events import proxy_event\n"
        "from dq_platform.inference.local_server import LocalLambdaContext\n"
        "r = h.handler(proxy_event('GET', '/health'), LocalLambdaContext())\n"
        "print('RESULT ' + json.dumps({'status': r['statusCode'], 'body': json.loads(r['body'])}))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, check=False, timeout=120
    )
    assert done.returncode == 0, done.stderr
    line = next(x for x in done.stdout.splitlines() if x.startswith("RESULT "))
    result = json.loads(line.removeprefix("RESULT "))
    assert result["status"] == 200
    assert result["body"]["status"] == "degraded"


def test_models_load_from_the_store_when_it_is_up(
    moto: MotoServer, models_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The positive control of the test above: the same settings with the store up serve both models."""
    moto.client("s3").create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    for var, value in aws_env(moto.endpoint).items():
        if var.startswith("AWS_"):
            monkeypatch.setenv(var, value)
    for name in ("baseline", "transformer"):
        publish(models_root / name, f"s3://{BUCKET}/models")  # what `dqp train --out s3://...` does
    env = aws_env(moto.endpoint, MODEL_S3_URI=f"s3://{BUCKET}/models", MODEL_CACHE_DIR=str(tmp_path / "cache"))
    with dqp_serve(tmp_path / "no-baked-models", tmp_path, env=env) as served:
        body = call(served.url, "GET", "/health").json()
        assert body["status"] == "ok"
        assert body["models_loaded"] == {
            name: read_manifest(models_root / name).version for name in ("baseline", "transformer")
        }
