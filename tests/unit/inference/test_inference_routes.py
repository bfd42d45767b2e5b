"""Every route through the Lambda handler with the events/ files, and every error mapping."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest

from dq_platform.inference.events import EXPECTED_STATUS
from dq_platform.inference.local_server import LocalLambdaContext
from dq_platform.models.artifacts import read_manifest
from tests.unit.inference.support import build_handler, copy_models, invoke, load_event, predict_event

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def handler(models_root: Path) -> Any:
    return build_handler(model_dir=models_root)[0]


@pytest.mark.parametrize("name", sorted(EXPECTED_STATUS))
def test_event_files_answer_as_expected(handler: Any, name: str) -> None:
    status, body = invoke(handler, load_event(name))
    assert status == EXPECTED_STATUS[name], body


def test_health_reports_loaded_versions(handler: Any, models_root: Path) -> None:
    status, body = invoke(handler, load_event("health.json"))
    assert status == 200
    assert body["status"] == "ok"
    assert body["degraded_reasons"] == []
    assert body["models_loaded"] == {
        "baseline": read_manifest(models_root / "baseline").version,
        "transformer": read_manifest(models_root / "transformer").version,
    }


def test_models_lists_metrics_and_default_weights(handler: Any, models_root: Path) -> None:
    status, body = invoke(handler, load_event("models.json"))
    assert status == 200
    by_name = {m["name"]: m for m in body["models"]}
    assert set(by_name) == {"baseline", "transformer"}
    for name, info in by_name.items():
        manifest = read_manifest(models_root / name)
        assert info["loaded"] is True
        assert info["version"] == manifest.version
        assert info["metrics"] == manifest.metrics
        assert info["labels"] == manifest.labels
    assert body["ab_weights"] == {"baseline": 0.9, "transformer": 0.1, "shadow_rate": 0.0, "source": "default"}


@pytest.mark.parametrize("name", ["predict-baseline.json", "predict-transformer.json"])
def test_explicit_model_answers_with_explanation(handler: Any, models_root: Path, name: str) -> None:
    event = load_event(name)
    request = json.loads(event["body"])
    result = handler(event, LocalLambdaContext())
    body = json.loads(result["body"])
    manifest = read_manifest(models_root / request["model"])
    assert body["model"] == request["model"]
    assert body["label"] in manifest.labels
    assert 0.0 <= body["confidence"] <= 1.0
    assert set(body["timings_ms"]) == {"pre", "infer", "post"}
    assert all(v >= 0 for v in body["timings_ms"].values())
    explanation = body["explanation"]
    # The seed's shape: type "tokens", the words only, the link (no detail unless explain_detail).
    assert set(explanation) == {"type", "top_terms", "html_url"}
    assert explanation["type"] == "tokens"
    assert explanation["top_terms"], explanation
    words = set(request["text"].lower().replace(",", " ").replace(".", " ").split())
    for term in explanation["top_terms"]:
        assert set(term.lower().split()) <= words  # terms come from the text itself
    headers = result["multiValueHeaders"]
    assert headers["X-Model"] == [request["model"]]
    assert headers["X-Model-Version"] == [manifest.version]
    assert headers["X-Correlation-Id"] == [event["requestContext"]["requestId"]]


def test_auto_names_the_model_that_answered(handler: Any) -> None:
    status, body = invoke(handler, load_event("predict-auto.json"))
    assert status == 200
    assert body["model"] in ("baseline", "transformer")
    assert body["explanation"] is None


def test_same_text_same_prediction_across_entry_points(handler: Any, models_root: Path) -> None:
    from dq_platform.models.runtime import load_model

    text = "The customer shall indemnify the provider against all claims without limit."
    status, body = invoke(handler, predict_event({"text": text, "model": "transformer"}))
    expected = load_model(models_root / "transformer").predict(text)
    assert status == 200
    assert body["label"] == expected.label
    assert body["confidence"] == pytest.approx(expected.confidence, abs=1e-6)


@pytest.mark.parametrize(
    ("payload", "raw", "status", "code", "field"),
    [
        (None, "{not json", 400, "invalid_json", None),
        ({"model": "baseline"}, None, 422, "validation_error", "text"),
        ({"text": ""}, None, 422, "validation_error", "text"),
        ({"text": "ok", "model": "gpt-9"}, None, 422, "validation_error", "model"),
        ({"text": "ok", "explain": "maybe"}, None, 422, "validation_error", "explain"),
        ({"text": "ok", "doc_id": "../../etc/passwd"}, None, 422, "validation_error", "doc_id"),
        ({"text": "ok", "temperature": 2}, None, 422, "validation_error", "temperature"),
        ({"text": "x" * 20_001}, None, 413, "payload_too_large", "text"),
    ],
)
def test_bad_requests_get_clear_4xx(
    handler: Any, payload: Any, raw: str | None, status: int, code: str, field: str | None
) -> None:
    got, body = invoke(handler, predict_event(payload, raw=raw))
    assert got == status, body
    assert body["error"] == code
    assert body["correlation_id"] == "req-1"
    if field is not None:
        assert field in body["message"] or any(field in d["loc"] for d in body["details"])
    assert "x" * 100 not in json.dumps(body)  # never echoes the text


def test_deployment_text_limit_is_enforced(models_root: Path) -> None:
    handler, _ = build_handler(model_dir=models_root, max_text_chars=50)
    status, body = invoke(handler, predict_event({"text": "y" * 51, "model": "baseline"}))
    assert status == 413
    assert body["error"] == "payload_too_large"
    assert "50" in body["message"]
    assert "y" * 51 not in json.dumps(body)


def test_unknown_route_is_404(handler: Any) -> None:
    from dq_platform.inference.events import proxy_event

    status, body = invoke(handler, proxy_event("GET", "/nope"))
    assert status == 404
    assert body["error"] == "not_found"


def test_missing_model_degrades_health_and_503s_predict(tmp_path: Path, models_root: Path) -> None:
    root = copy_models(models_root / "baseline", tmp_path / "models" / "baseline").parent  # no transformer
    handler, _ = build_handler(model_dir=root)
    status, health = invoke(handler, load_event("health.json"))
    assert status == 200
    assert health["status"] == "degraded"
    assert any(r.startswith("transformer:") for r in health["degraded_reasons"])
    assert set(health["models_loaded"]) == {"baseline"}

    status, body = invoke(handler, load_event("predict-transformer.json"))
    assert status == 503
    assert body["error"] == "model_unavailable"
    assert "transformer" in body["message"]

    # auto still answers, from the model that is there, and says so
    status, body = invoke(handler, predict_event({"text": "Payment is due in 30 days.", "model": "auto"}))
    assert status == 200
    assert body["model"] == "baseline"

    status, models = invoke(handler, load_event("models.json"))
    transformer = next(m for m in models["models"] if m["name"] == "transformer")
    assert transformer["loaded"] is False
    assert transformer["error"]


def test_corrupt_model_file_is_reported_not_crashing(tmp_path: Path, models_root: Path) -> None:
    root = copy_models(models_root, tmp_path / "models")
    manifest = read_manifest(root / "transformer")
    (root / "transformer" / manifest.files["model"]).write_bytes(b"definitely not onnx")
    handler, _ = build_handler(model_dir=root)
    _, health = invoke(handler, load_event("health.json"))
    assert health["status"] == "degraded"
    reason = next(r for r in health["degraded_reasons"] if r.startswith("transformer:"))
    assert "ONNX" in reason
    status, _body = invoke(handler, load_event("predict-transformer.json"))
    assert status == 503
    _, models = invoke(handler, load_event("models.json"))
    transformer = next(m for m in models["models"] if m["name"] == "transformer")
    assert transformer["version"] == manifest.version  # still described from its manifest
    assert transformer["loaded"] is False


def test_no_models_at_all_503s_auto(tmp_path: Path) -> None:
    handler, _ = build_handler(model_dir=tmp_path / "empty")
    status, body = invoke(handler, load_event("predict-auto.json"))
    assert status == 503
    assert body["error"] == "model_unavailable"


class ExplodingModel:
    """Test double: a loaded model whose predict raises, to prove the 500 path hides the details."""

    name = "baseline"
    version = "boom"

    def predict(self, text: str) -> Any:
        raise RuntimeError(f"internal detail that must not leak: {text}")


def test_unexpected_error_is_500_with_correlation_id_only(models_root: Path) -> None:
    logs = io.StringIO()
    handler, service = build_handler(log_stream=logs, model_dir=models_root)
    service.models["baseline"] = ExplodingModel()  # type: ignore[assignment]
    event = predict_event({"text": "secret clause text", "model": "baseline"}, request_id="corr-500")
    status, body = invoke(handler, event)
    assert status == 500
    assert body["error"] == "internal_error"
    assert body["correlation_id"] == "corr-500"
    assert "Traceback" not in json.dumps(body)
    assert "internal detail" not in json.dumps(body)
    records = [json.loads(line) for line in logs.getvalue().splitlines()]
    failure = next(r for r in records if r["message"] == "unhandled error")
    assert failure["correlation_id"] == "corr-500"
    assert failure["error"] == "RuntimeError"
    assert any("predict" in frame for frame in failure["stack"])
    assert "secret clause text" not in logs.getvalue()
    prediction = next(r for r in records if r["message"] == "prediction")
    assert prediction["status_code"] == 500
    assert prediction["error"] == "internal_error"
