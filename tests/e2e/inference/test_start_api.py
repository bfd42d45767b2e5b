"""`sam local start-api --warm-containers EAGER` answering real HTTP requests on 127.0.0.1.

The API runs the built container image behind SAM's local API Gateway; requests go over TCP exactly as
a user's curl would. Predictions must equal the in-process predictions of the same sample models.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dq_platform.inference.events import HIGH_RISK_TEXT, LOW_RISK_TEXT
from tests.e2e import samlocal

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def api(sam_app: Path, docker_network: str, timings: samlocal.Timings) -> Iterator[str]:
    server = samlocal.StartApi(docker_network)
    try:
        with timings.step("start-api --warm-containers EAGER until /health"):
            server.start()
        yield server.url
    finally:
        with timings.step("start-api stop (SIGTERM)"):
            rc = server.stop()
        # SAM removes its warm containers on SIGTERM, best effort; whatever is left is removed here, by id.
        leftovers = samlocal.remove_containers(docker_network)
        samlocal.LOGS.joinpath("start-api-leftovers.txt").write_text("\n".join(leftovers) + "\n", encoding="utf-8")
        assert rc is not None, f"start-api did not stop:\n{server.tail()}"


def test_health(api: str, local_models: dict[str, Any], timings: samlocal.Timings) -> None:
    with timings.step("HTTP GET /health (first after EAGER start)"):
        reply = samlocal.http("GET", api + "/health")
    assert reply.status == 200, reply.body
    assert reply.body["status"] == "ok", reply.body
    assert reply.body["models_loaded"] == {name: m.version for name, m in local_models.items()}


def test_models(api: str, local_models: dict[str, Any]) -> None:
    reply = samlocal.http("GET", api + "/models")
    assert reply.status == 200, reply.body
    served = {m["name"]: m for m in reply.body["models"]}
    assert set(served) == set(local_models)
    assert all(info["loaded"] for info in served.values()), served
    assert {"baseline", "transformer", "shadow_rate", "source"} <= set(reply.body["ab_weights"])


@pytest.mark.parametrize("model", ["baseline", "transformer", "auto"])
@pytest.mark.parametrize("text", [HIGH_RISK_TEXT, LOW_RISK_TEXT], ids=["high-risk-text", "low-risk-text"])
def test_predict(api: str, local_models: dict[str, Any], model: str, text: str, timings: samlocal.Timings) -> None:
    from dq_platform.inference.ab import DEFAULT_WEIGHTS, assign

    payload = {"text": text, "model": model, "doc_id": "E2E-0001", "explain": model != "auto"}
    with timings.step(f"HTTP POST /predict model={model}"):
        reply = samlocal.http("POST", api + "/predict", payload)
    assert reply.status == 200, reply.body
    answered = reply.body["model"]
    assert answered == (assign("E2E-0001", DEFAULT_WEIGHTS) if model == "auto" else model)
    assert reply.headers.get("X-Model") == answered
    expected = local_models[answered].predict(text)
    assert reply.body["label"] == expected.label
    assert reply.body["confidence"] == pytest.approx(expected.confidence, abs=1e-4)
    if payload["explain"]:
        assert reply.body["explanation"]["top_terms"], reply.body
    else:
        assert reply.body.get("explanation") is None


def test_the_two_sample_texts_get_different_labels(api: str) -> None:
    """The served models discriminate: the high-risk and low-risk sample clauses are told apart."""
    labels = {
        text: samlocal.http("POST", api + "/predict", {"text": text, "model": "baseline"}).body["label"]
        for text in (HIGH_RISK_TEXT, LOW_RISK_TEXT)
    }
    assert labels == {HIGH_RISK_TEXT: "HighRisk", LOW_RISK_TEXT: "LowRisk"}


@pytest.mark.parametrize(
    ("case", "raw", "status", "error"),
    [
        ("empty text, unknown model", b'{"text": "", "model": "gpt-9"}', 422, "validation_error"),
        ("missing text", b'{"model": "baseline"}', 422, "validation_error"),
        ("unknown field", b'{"text": "a clause", "temperature": 2}', 422, "validation_error"),
        ("bad doc_id", b'{"text": "a clause", "doc_id": "../../etc/passwd"}', 422, "validation_error"),
        ("not JSON", b'{"text": "a clause",', 400, "invalid_json"),
        ("text over the limit", b'{"text": "' + b"x" * 20_001 + b'"}', 413, "payload_too_large"),
    ],
    ids=lambda v: v if isinstance(v, str) and " " in v else "",
)
def test_invalid_input_is_a_4xx_with_a_reason(api: str, case: str, raw: bytes, status: int, error: str) -> None:
    reply = samlocal.http("POST", api + "/predict", raw=raw)
    assert reply.status == status, (case, reply.status, reply.body)
    assert reply.body["error"] == error, reply.body
    assert reply.body["message"], reply.body
    assert b"etc/passwd" not in str(reply.body).encode(), "error echoes the input"


def test_unknown_route_is_a_4xx(api: str) -> None:
    reply = samlocal.http("GET", api + "/nope")
    assert 400 <= reply.status < 500, reply.body


def test_product_smoke_check_passes_against_sam_local(api: str) -> None:
    """`dqp smoke --url` (the deployed-stage smoke check) passes against the local container too."""
    from dq_platform.inference.smoke import format_results, run_smoke

    results = run_smoke(api, timeout_s=60)
    assert all(r.ok for r in results), format_results(results)


def test_warm_requests_are_served(api: str, timings: samlocal.Timings) -> None:
    """Warm containers answer repeated requests (latency is recorded in the timings, not asserted)."""
    for i in range(5):
        with timings.step(f"HTTP POST /predict baseline, warm #{i + 1}"):
            reply = samlocal.http("POST", api + "/predict", {"text": LOW_RISK_TEXT, "model": "baseline"})
        assert reply.status == 200, reply.body
