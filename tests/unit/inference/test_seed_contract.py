"""The seed's /predict response, compared with ours value by value.

The seed's deployment guide documents one example response (issues 5 and 20 quote it): the example below
keeps its keys, types and fixed values. Values the model decides (label, confidence, terms, timings) are
compared by type and range; fixed values (`explanation.type`) by equality.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.unit.inference.support import build_handler, invoke, predict_event

pytestmark = pytest.mark.unit

SEED_EXAMPLE: dict[str, Any] = {
    "model": "baseline",
    "label": "HighRisk",
    "confidence": 0.93,
    "explanation": {"type": "tokens", "top_terms": ["indemnify", "liability"], "html_url": None},
    "timings_ms": {"pre": 0.4, "infer": 1.2, "post": 0.3},
}
TEXT = "The Customer shall indemnify the Supplier and accepts unlimited liability for all losses."


def _same_shape(seed: Any, ours: Any, path: str = "") -> list[str]:
    """Differences between the seed's value and ours: keys, JSON types, list item types."""
    if isinstance(seed, dict):
        if not isinstance(ours, dict):
            return [f"{path or 'body'}: object expected, got {type(ours).__name__}"]
        problems = [f"{path}.{k}: missing" for k in seed.keys() - ours.keys()]
        problems += [f"{path}.{k}: not in the seed's response" for k in ours.keys() - seed.keys()]
        for key in seed.keys() & ours.keys():
            problems += _same_shape(seed[key], ours[key], f"{path}.{key}")
        return problems
    if isinstance(seed, list):
        if not isinstance(ours, list):
            return [f"{path}: list expected"]
        return [p for item in ours for p in _same_shape(seed[0], item, f"{path}[]")] if seed else []
    if seed is None:  # html_url: a link or null
        return [] if ours is None or isinstance(ours, str) else [f"{path}: string or null expected"]
    if isinstance(seed, float):
        return [] if isinstance(ours, int | float) and not isinstance(ours, bool) else [f"{path}: number expected"]
    return [] if type(ours) is type(seed) else [f"{path}: {type(seed).__name__} expected, got {ours!r}"]


@pytest.mark.parametrize("model", ["baseline", "transformer", "auto"])
def test_predict_answers_the_seeds_example_field_for_field(models_root: Any, model: str) -> None:
    handler, _ = build_handler(model_dir=models_root)
    status, body = invoke(handler, predict_event({"text": TEXT, "model": model, "explain": True}))
    assert status == 200, body
    assert _same_shape(SEED_EXAMPLE, body) == []
    assert body["explanation"]["type"] == SEED_EXAMPLE["explanation"]["type"]
    assert body["model"] in {"baseline", "transformer"}
    assert 0.0 <= body["confidence"] <= 1.0
    assert body["explanation"]["top_terms"]


def test_the_baseline_names_the_seeds_terms_for_the_seeds_kind_of_clause(models_root: Any) -> None:
    handler, _ = build_handler(model_dir=models_root)
    _, body = invoke(handler, predict_event({"text": TEXT, "model": "baseline", "explain": True}))
    terms = " ".join(body["explanation"]["top_terms"])
    assert "indemnify" in terms or "liability" in terms, body["explanation"]


def test_without_explain_the_explanation_is_null_as_in_the_seed(models_root: Any) -> None:
    handler, _ = build_handler(model_dir=models_root)
    _, body = invoke(handler, predict_event({"text": TEXT, "model": "baseline"}))
    assert body["explanation"] is None
    assert set(body) == set(SEED_EXAMPLE)


def test_explain_detail_adds_weights_and_method_without_changing_the_seed_fields(models_root: Any) -> None:
    handler, _ = build_handler(model_dir=models_root)
    request = {"text": TEXT, "model": "baseline", "explain": True}
    _, plain = invoke(handler, predict_event(request))
    _, rich = invoke(handler, predict_event({**request, "explain_detail": True}))
    detail = rich["explanation"].pop("detail")
    assert rich["explanation"] == plain["explanation"]
    assert detail["method"] == "linear-contributions"
    assert [t["term"] for t in detail["terms"]] == plain["explanation"]["top_terms"]
    assert all(isinstance(t["weight"], float) for t in detail["terms"])
