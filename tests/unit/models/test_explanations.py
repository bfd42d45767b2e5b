from __future__ import annotations

import json
from pathlib import Path

import pytest

from dq_platform.models.artifacts import Manifest, PrecomputedExplanation
from dq_platform.models.explain import Document, ExplainError, explain_to_storage, read_documents
from dq_platform.models.runtime import MAX_OCCLUSION_UNITS, BaselineModel, TransformerModel, load_models
from dq_platform.sample_data import generate_clauses
from dq_platform.storage import open_storage

pytestmark = pytest.mark.unit

TEXT = generate_clauses(1, seed=11)[0]["text"]


@pytest.fixture(scope="module")
def models(tiny_models: tuple[Path, dict[str, Manifest]]) -> dict[str, object]:
    loaded, errors = load_models(tiny_models[0], threads=1)
    assert errors == {}
    return dict(loaded)


def test_baseline_explanation_shape_and_determinism(models: dict[str, object]) -> None:
    model = models["baseline"]
    assert isinstance(model, BaselineModel)
    first = model.explain(TEXT, top_k=5)
    assert first.type == "linear-contributions"
    assert 0 < len(first.top_terms) <= 5
    magnitudes = [abs(t.weight) for t in first.top_terms]
    assert magnitudes == sorted(magnitudes, reverse=True)
    assert model.explain(TEXT, top_k=5) == first
    empty = model.explain("zzqx qqzx", top_k=5)
    assert empty.top_terms == []
    assert empty.reason is not None


def test_occlusion_explanation_is_bounded_and_deterministic(models: dict[str, object]) -> None:
    model = models["transformer"]
    assert isinstance(model, TransformerModel)
    first = model.explain(TEXT, top_k=4, budget_s=30)
    assert first.type == "occlusion"
    assert 0 < len(first.top_terms) <= 4
    assert first.reason is None
    assert model.explain(TEXT, top_k=4, budget_s=30) == first
    # a zero budget still answers: with a reason, never an error
    partial = model.explain(TEXT, budget_s=0.0)
    assert partial.type == "occlusion"
    assert partial.reason is not None
    assert "budget" in partial.reason
    # very long text: only words inside max_length, in at most MAX_OCCLUSION_UNITS groups
    long_text = " ".join(f"word{i}" for i in range(2000))
    bounded = model.explain(long_text, top_k=1000, budget_s=60)
    assert 0 < len(bounded.top_terms) <= MAX_OCCLUSION_UNITS
    assert all(int(t.term.split()[0][4:]) < 64 for t in bounded.top_terms)


def test_shap_batch_explanations_written_once_per_version(models: dict[str, object], tmp_path: Path) -> None:
    model = models["transformer"]
    assert isinstance(model, TransformerModel)
    storage = open_storage(tmp_path)
    docs = [Document("doc/1", TEXT), Document("doc-2", generate_clauses(2, seed=12)[1]["text"])]
    summary = explain_to_storage(model, docs, storage, max_evals=40)
    assert (summary.written, summary.skipped, summary.complete) == (2, 0, True)
    record = PrecomputedExplanation.model_validate_json(storage.read_bytes("explanations/transformer/doc%2F1.json"))
    assert record.doc_id == "doc/1"
    assert record.model_version == model.version
    assert record.type == "shap-partition"
    assert record.html_key == "explanations/transformer/doc%2F1.html"
    assert 0 < len(record.top_terms) <= 10
    html = storage.read_bytes(record.html_key).decode()
    assert html.startswith("<!doctype html>")
    assert record.top_terms[0].term.split()[0] in html
    again = explain_to_storage(model, docs, storage, max_evals=40)
    assert (again.written, again.skipped) == (0, 2)
    # same input, same model: same SHAP values (the Partition explainer is deterministic)
    forced = explain_to_storage(model, docs[:1], storage, max_evals=40, force=True)
    assert forced.written == 1
    assert (
        PrecomputedExplanation.model_validate_json(storage.read_bytes("explanations/transformer/doc%2F1.json"))
        == record
    )
    stopped = explain_to_storage(model, docs, storage, force=True, deadline=lambda: True)
    assert stopped.pending == ["doc/1", "doc-2"]


def test_read_documents_requires_doc_id_and_text(tmp_path: Path) -> None:
    (tmp_path / "docs.jsonl").write_text(
        json.dumps({"doc_id": "a", "text": "hello"}) + "\n" + json.dumps({"text": "x"})
    )
    with pytest.raises(ExplainError, match=r"line 2: empty 'doc_id'"):
        read_documents(str(tmp_path / "docs.jsonl"))
    (tmp_path / "docs.jsonl").write_text(json.dumps({"id": "a", "body": "hello"}) + "\n")
    with pytest.raises(ExplainError, match="missing required column"):
        read_documents(str(tmp_path / "docs.jsonl"))
