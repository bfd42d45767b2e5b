"""A/B assignment for model "auto": weights respected within a statistical bound, sticky, shadow mode."""

from __future__ import annotations

import io
import json
import math
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from dq_platform.inference.ab import (
    DEFAULT_WEIGHTS,
    ABWeights,
    ModelVersions,
    SSMJsonConfig,
    assign,
    unit_hash,
    wants_shadow,
)
from tests.unit.inference.support import build_handler, invoke, predict_event

pytestmark = pytest.mark.unit


def _within(count: int, n: int, p: float, sigmas: float = 5.0) -> bool:
    """|count - np| within `sigmas` binomial standard deviations (false-failure odds ~ 1e-6)."""
    return abs(count - n * p) <= sigmas * math.sqrt(n * p * (1 - p))


@pytest.mark.parametrize(("baseline", "transformer"), [(0.9, 0.1), (0.5, 0.5), (1, 3), (0.0, 1.0)])
def test_assignment_follows_weights(baseline: float, transformer: float) -> None:
    weights = ABWeights(baseline=baseline, transformer=transformer)
    n = 20_000
    to_transformer = sum(assign(f"req-{i}", weights) == "transformer" for i in range(n))
    share = transformer / (baseline + transformer)
    if share in (0.0, 1.0):
        assert to_transformer == n * share
    else:
        assert _within(to_transformer, n, share), (to_transformer, n * share)


def test_assignment_is_sticky_and_independent_of_shadow_draw() -> None:
    weights = ABWeights(baseline=0.5, transformer=0.5, shadow_rate=0.5)
    for i in range(200):
        key = f"DOC-{i}"
        assert len({assign(key, weights) for _ in range(5)}) == 1
    # the shadow draw is not the A/B draw in disguise
    pairs = [(assign(f"k{i}", weights), wants_shadow(f"k{i}", weights)) for i in range(4000)]
    both = sum(1 for model, shadow in pairs if model == "transformer" and shadow)
    assert _within(both, 4000, 0.25)


def test_hash_is_uniform() -> None:
    values = [unit_hash(f"x{i}", "ab") for i in range(10_000)]
    assert min(values) >= 0.0
    assert max(values) < 1.0
    assert _within(sum(v < 0.3 for v in values), 10_000, 0.3)


@pytest.mark.parametrize(
    "raw",
    [
        {"baseline": -1, "transformer": 1},
        {"baseline": 0, "transformer": 0},
        {"baseline": 0.9, "transformer": 0.1, "shadow_rate": 1.5},
        {"baseline": 0.9},
        {"baseline": 0.9, "transformer": 0.1, "typo": 1},
    ],
)
def test_bad_weights_rejected(raw: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        ABWeights.model_validate(raw)


def test_default_is_90_10_without_shadow() -> None:
    assert (DEFAULT_WEIGHTS.baseline, DEFAULT_WEIGHTS.transformer, DEFAULT_WEIGHTS.shadow_rate) == (0.9, 0.1, 0.0)


def test_model_versions_pins_only_concrete_versions() -> None:
    versions = ModelVersions.model_validate({"baseline": "LATEST", "transformer": "v7", "other": "*"})
    assert versions.expected() == {"transformer": "v7"}


def _handler_with_weights(models_root: Path, weights: ABWeights, logs: io.StringIO | None = None) -> Any:
    handler, service = build_handler(log_stream=logs, model_dir=models_root)
    service.weights = SSMJsonConfig(None, ABWeights, weights, 60, service.logger)
    return handler


def test_default_split_through_the_handler(models_root: Path) -> None:
    handler, _ = build_handler(model_dir=models_root)
    n = 400
    answered = [
        invoke(
            handler, predict_event({"text": "Invoices are due within 30 days.", "model": "auto"}, request_id=f"r{i}")
        )[1]["model"]
        for i in range(n)
    ]
    assert _within(answered.count("transformer"), n, 0.1)
    assert set(answered) == {"baseline", "transformer"}


def test_doc_id_makes_assignment_sticky_through_the_handler(models_root: Path) -> None:
    handler = _handler_with_weights(models_root, ABWeights(baseline=0.5, transformer=0.5))
    seen: dict[str, set[str]] = {}
    for doc in range(20):
        for attempt in range(4):
            event = predict_event(
                {"text": f"Clause {attempt}.", "model": "auto", "doc_id": f"DOC-{doc}"}, request_id=f"{doc}-{attempt}"
            )
            seen.setdefault(f"DOC-{doc}", set()).add(invoke(handler, event)[1]["model"])
    assert all(len(models) == 1 for models in seen.values())
    assert {m for models in seen.values() for m in models} == {"baseline", "transformer"}


def test_shadow_mode_records_agreement_without_changing_the_answer(
    models_root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = "The vendor may suspend the service at any time without notice or liability."
    plain = _handler_with_weights(models_root, ABWeights(baseline=1, transformer=0))
    _, expected = invoke(plain, predict_event({"text": text, "model": "auto", "doc_id": "D1"}))
    logs = io.StringIO()
    shadowed = _handler_with_weights(models_root, ABWeights(baseline=1, transformer=0, shadow_rate=1.0), logs)
    capsys.readouterr()
    status, body = invoke(shadowed, predict_event({"text": text, "model": "auto", "doc_id": "D1"}))
    assert status == 200
    assert (body["model"], body["label"], body["confidence"]) == (
        expected["model"],
        expected["label"],
        expected["confidence"],
    )
    record = next(json.loads(x) for x in logs.getvalue().splitlines() if '"prediction"' in x)
    assert record["shadow_model"] == "transformer"
    assert record["shadow_agree"] == (record["shadow_label"] == body["label"])
    emf = next(json.loads(x) for x in capsys.readouterr().out.splitlines() if "ShadowAgreement" in x)
    assert emf["ShadowAgreement"] == [100.0 if record["shadow_agree"] else 0.0]
    # explicit requests are never shadowed
    logs.truncate(0)
    logs.seek(0)
    invoke(shadowed, predict_event({"text": text, "model": "baseline"}))
    record = next(json.loads(x) for x in logs.getvalue().splitlines() if '"prediction"' in x)
    assert "shadow_model" not in record
