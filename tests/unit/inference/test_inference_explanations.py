"""Explanations: precomputed SHAP when it matches the served model, else bounded occlusion, else a reason."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from dq_platform.models.artifacts import read_manifest
from tests.unit.inference.support import build_handler, invoke, predict_event

pytestmark = pytest.mark.unit
TEXT = "The licensee waives all claims and accepts unlimited liability for any indirect damages."


def _store(analytics: Path, model: str, version: str, doc_id: str, html_key: str | None = None) -> None:
    folder = analytics / "explanations" / model
    folder.mkdir(parents=True, exist_ok=True)
    key = html_key if html_key is not None else f"explanations/{model}/{doc_id}.html"
    record = {
        "doc_id": doc_id,
        "model": model,
        "model_version": version,
        "type": "shap-partition",
        "top_terms": [{"term": "unlimited liability", "weight": 0.41}, {"term": "waives", "weight": 0.22}],
        "html_key": key,
    }
    (folder / f"{doc_id}.json").write_text(json.dumps(record), encoding="utf-8")
    (analytics / key).parent.mkdir(parents=True, exist_ok=True)
    (analytics / key).write_text("<div>shap</div>", encoding="utf-8")


def _explain(handler: Any, doc_id: str | None, model: str = "transformer") -> dict[str, Any]:
    # explain_detail: these tests check how the terms were found (detail.method), not only which.
    payload: dict[str, Any] = {"text": TEXT, "model": model, "explain": True, "explain_detail": True}
    if doc_id:
        payload["doc_id"] = doc_id
    status, body = invoke(handler, predict_event(payload))
    assert status == 200, body
    explanation: dict[str, Any] = body["explanation"]
    return explanation


def test_precomputed_shap_for_the_served_version(tmp_path: Path, models_root: Path) -> None:
    version = read_manifest(models_root / "transformer").version
    _store(tmp_path, "transformer", version, "DOC-1")
    handler, _ = build_handler(model_dir=models_root, analytics_dir=tmp_path)
    explanation = _explain(handler, "DOC-1")
    assert explanation["detail"]["method"] == "shap-partition"
    assert explanation["detail"]["terms"][0] == {"term": "unlimited liability", "weight": 0.41}
    assert explanation["top_terms"][:2] == ["unlimited liability", "waives"]  # the seed's shape: words only
    assert explanation["type"] == "tokens"
    assert explanation["html_url"] == (tmp_path / "explanations/transformer/DOC-1.html").resolve().as_uri()


def test_stale_precomputed_falls_back_to_occlusion(tmp_path: Path, models_root: Path) -> None:
    _store(tmp_path, "transformer", "an-older-version", "DOC-2")
    handler, _ = build_handler(model_dir=models_root, analytics_dir=tmp_path)
    explanation = _explain(handler, "DOC-2")
    assert explanation["detail"]["method"] == "occlusion"
    assert explanation["html_url"] is None
    assert explanation["top_terms"]


def test_no_precomputed_uses_bounded_occlusion(tmp_path: Path, models_root: Path) -> None:
    handler, _ = build_handler(model_dir=models_root, analytics_dir=tmp_path)
    assert _explain(handler, "DOC-missing")["detail"]["method"] == "occlusion"
    assert _explain(handler, None)["detail"]["method"] == "occlusion"


def test_html_key_outside_the_models_prefix_is_never_linked(tmp_path: Path, models_root: Path) -> None:
    version = read_manifest(models_root / "transformer").version
    _store(tmp_path, "transformer", version, "DOC-3", html_key="dq-results/run-1/results.json")
    handler, _ = build_handler(model_dir=models_root, analytics_dir=tmp_path)
    explanation = _explain(handler, "DOC-3")
    assert explanation["detail"]["method"] == "shap-partition"
    assert explanation["html_url"] is None


def test_malformed_precomputed_is_ignored(tmp_path: Path, models_root: Path) -> None:
    folder = tmp_path / "explanations" / "transformer"
    folder.mkdir(parents=True)
    (folder / "DOC-4.json").write_text("{not json", encoding="utf-8")
    handler, _ = build_handler(model_dir=models_root, analytics_dir=tmp_path)
    assert _explain(handler, "DOC-4")["detail"]["method"] == "occlusion"


def test_baseline_always_gets_exact_linear_contributions(tmp_path: Path, models_root: Path) -> None:
    version = read_manifest(models_root / "baseline").version
    _store(tmp_path, "baseline", version, "DOC-5")
    handler, _ = build_handler(model_dir=models_root, analytics_dir=tmp_path)
    explanation = _explain(handler, "DOC-5", model="baseline")
    assert explanation["detail"]["method"] == "linear-contributions"


class FailingExplainer:
    """Test double wrapping a real model: predicts for real, but its explainer raises."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self.name, self.version, self.manifest = inner.name, inner.version, inner.manifest

    def predict(self, text: str) -> Any:
        return self._inner.predict(text)

    def explain(self, text: str, top_k: int = 10, budget_s: float = 2.0) -> Any:
        raise MemoryError("explainer ran out of memory")


def test_explainer_failure_gives_unavailable_with_reason(models_root: Path) -> None:
    handler, service = build_handler(model_dir=models_root)
    service.models["transformer"] = FailingExplainer(service.models["transformer"])  # type: ignore[assignment]
    status, body = invoke(
        handler, predict_event({"text": TEXT, "model": "transformer", "explain": True, "explain_detail": True})
    )
    assert status == 200  # the prediction still stands
    assert body["explanation"]["detail"]["method"] == "unavailable"
    assert "MemoryError" in body["explanation"]["detail"]["reason"]


def test_occlusion_respects_a_tiny_budget(models_root: Path) -> None:
    handler, _ = build_handler(model_dir=models_root, explain_budget_s=1e-9)
    long_text = " ".join(f"clause{i} obligations apply" for i in range(60))
    status, body = invoke(
        handler, predict_event({"text": long_text, "model": "transformer", "explain": True, "explain_detail": True})
    )
    assert status == 200
    explanation = body["explanation"]
    assert explanation["detail"]["method"] == "occlusion"
    assert "budget" in (explanation["detail"]["reason"] or "")
