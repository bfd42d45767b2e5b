"""Request text never reaches logs or metrics: only its sha256 and length (docs/security.md)."""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import pytest

from dq_platform.inference.events import EXPECTED_STATUS
from tests.unit.inference.support import build_handler, invoke, load_event, predict_event

pytestmark = pytest.mark.unit

MARKER = "Zanzibar-7731 confidential indemnity clause"
DOC_ID = "DOC-secret-42"


def _records(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]


def test_text_never_logged_only_hashed(models_root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    logs = io.StringIO()
    handler, _ = build_handler(log_stream=logs, model_dir=models_root)
    requests = [
        {"text": MARKER, "model": "baseline", "explain": True, "doc_id": DOC_ID},
        {"text": MARKER, "model": "transformer", "explain": True, "doc_id": DOC_ID},
        {"text": MARKER, "model": "auto", "doc_id": DOC_ID},
        {"text": MARKER, "model": "not-a-model"},  # rejected: still hashed, never echoed
        {"text": MARKER * 600},  # over the limit
    ]
    for n, payload in enumerate(requests):
        invoke(handler, predict_event(payload, request_id=f"log-{n}"))
    for name in EXPECTED_STATUS:
        invoke(handler, load_event(name))

    out = logs.getvalue() + capsys.readouterr().out  # JSON logs + EMF metrics
    assert "Zanzibar" not in out
    assert DOC_ID not in out
    for event_name in ("predict-baseline.json", "predict-invalid.json"):
        text = json.loads(load_event(event_name)["body"])["text"]
        if text:
            assert text not in out

    predictions = [r for r in _records(logs) if r["message"] == "prediction"]
    assert len(predictions) == len(requests) + 4  # one record per /predict call
    digest = hashlib.sha256(MARKER.encode()).hexdigest()
    first = predictions[0]
    assert first["text_sha256"] == digest
    assert first["text_length"] == len(MARKER)
    assert first["doc_id_sha256"] == hashlib.sha256(DOC_ID.encode()).hexdigest()
    for key in (
        "request_id",
        "correlation_id",
        "model",
        "model_version",
        "variant",
        "label",
        "confidence",
        "latency_ms",
        "status_code",
    ):
        assert key in first, key
    assert first["request_id"] == "log-0"
    assert first["variant"] == "explicit"
    rejected = predictions[3]
    assert rejected["status_code"] == 422
    assert rejected["text_sha256"] == digest
    too_long = predictions[4]
    assert too_long["status_code"] == 413
    assert too_long["text_length"] == len(MARKER) * 600


def test_metrics_carry_the_model_dimension(models_root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    handler, _ = build_handler(model_dir=models_root)
    capsys.readouterr()
    invoke(handler, predict_event({"text": "Fees are payable monthly.", "model": "transformer"}))
    emf = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith('{"_aws"')]
    blob = next(m for m in emf if "Latency" in m)
    assert blob["Model"] == "transformer"
    assert blob["Predictions"] == [1.0]
    directive = blob["_aws"]["CloudWatchMetrics"][0]
    assert directive["Namespace"] == "DQPlatform/Inference"
    assert ["Model", "service"] in [sorted(d) for d in directive["Dimensions"]]
