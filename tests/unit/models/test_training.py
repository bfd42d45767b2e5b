from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import onnx
import pytest

from dq_platform.models.artifacts import Manifest, read_manifest
from dq_platform.models.runtime import BaselineModel, TransformerModel, load_model, load_models
from dq_platform.models.train import (
    TrainConfig,
    build_torch_model,
    class_weights,
    export_baseline,
    export_onnx,
    fit_baseline,
    quantize_int8,
)
from dq_platform.sample_data import generate_clauses

pytestmark = pytest.mark.unit

LONG = " ".join(["The Provider may suspend the Services at its sole discretion without notice."] * 12)


def test_training_writes_complete_manifests(tiny_models: tuple[Path, dict[str, Manifest]]) -> None:
    root, manifests = tiny_models
    for name in ("baseline", "transformer"):
        on_disk = read_manifest(root / name)
        assert on_disk == manifests[name]
        assert on_disk.name == name
        assert on_disk.labels == ["HighRisk", "LowRisk"]
        assert on_disk.positive_label == "HighRisk"
        assert len(on_disk.training_data_sha256) == 64
        assert on_disk.runtime == "onnxruntime"
        assert on_disk.version.endswith(on_disk.training_data_sha256[:8])
        assert (datetime.now(UTC) - on_disk.created).total_seconds() < 3600
        assert set(on_disk.metrics) == {"validation", "test"}
        for split in on_disk.metrics.values():
            assert {"precision", "recall", "f1", "pr_auc", "tp", "fp", "fn", "tn"} <= set(split)
        for filename in on_disk.files.values():
            assert (root / name / filename).exists()
    assert manifests["baseline"].training_data_sha256 == manifests["transformer"].training_data_sha256
    baseline, transformer = manifests["baseline"], manifests["transformer"]
    assert baseline.kind == "tfidf-logreg"
    assert baseline.quantization is None
    assert transformer.kind == "minilm-onnx"
    assert transformer.max_length == 64
    agreement = transformer.extra["int8_vs_fp32_label_agreement"]
    assert transformer.quantization == ("int8" if agreement >= 0.99 else "fp32")
    assert transformer.files["model"] == ("model.int8.onnx" if agreement >= 0.99 else "model.fp32.onnx")
    assert transformer.extra["onnx_vs_torch_max_abs_logit_diff"] < 1e-4
    # the published graph carries ONNX Runtime's fusions (contrib ops), applied once at training time
    assert transformer.extra["onnx_graph_optimization"].startswith("extended")
    assert transformer.extra["optimized_vs_exported_max_abs_probability_diff"] < 1e-3
    served_graph = onnx.load(str(root / "transformer" / transformer.files["model"]))
    assert "com.microsoft" in {node.domain for node in served_graph.graph.node}
    # the baseline learns the generated templates well; its numbers are of the served ONNX artifact
    assert baseline.metrics["test"]["f1"] > 0.9


def test_baseline_onnx_matches_scikit_learn(tmp_path: Path) -> None:
    rows = generate_clauses(300, seed=5)
    texts = [r["text"] for r in rows]
    vectorizer, classifier = fit_baseline(texts, [r["label"] for r in rows], TrainConfig())
    files = export_baseline(vectorizer, classifier, tmp_path)
    manifest = Manifest(
        name="baseline",
        version="t",
        created=datetime.now(UTC),
        kind="tfidf-logreg",
        labels=[str(c) for c in classifier.classes_],
        training_data_sha256="0" * 64,
        files=files,
    )
    (tmp_path / "manifest.json").write_text(manifest.to_json())
    model = load_model(tmp_path)
    assert isinstance(model, BaselineModel)
    held_out = [r["text"] for r in generate_clauses(80, seed=99)] + ["", "nothing in the vocabulary zzz", LONG]
    expected = classifier.predict_proba(vectorizer.transform(held_out))
    np.testing.assert_allclose(model.predict_proba(held_out), expected, atol=1e-5)
    # contributions of the served model are the scikit-learn coefficient x tf-idf values
    logreg = classifier.calibrated_classifiers_[0].estimator
    x = vectorizer.transform([held_out[0]]).toarray()[0]
    inverse = {i: t for t, i in vectorizer.vocabulary_.items()}
    label = model.predict(held_out[0]).label
    sign = 1.0 if label == classifier.classes_[1] else -1.0
    explanation = model.explain(held_out[0], top_k=1000)
    expected_terms = {inverse[i]: sign * logreg.coef_[0][i] * x[i] for i in np.nonzero(x)[0]}
    assert {t.term: t.weight for t in explanation.top_terms} == pytest.approx(expected_terms, abs=1e-9)


def test_onnx_logits_match_torch(tmp_path: Path) -> None:
    import torch

    cfg = TrainConfig(tiny=True, max_length=64)
    tokenizer, model = build_torch_model(cfg, ["HighRisk", "LowRisk"])
    model.eval()
    export_onnx(model, tokenizer, tmp_path / "model.onnx", cfg.max_length)
    tokenizer.backend_tokenizer.save(str(tmp_path / "tokenizer.json"))
    manifest = Manifest(
        name="transformer",
        version="t",
        created=datetime.now(UTC),
        kind="minilm-onnx",
        labels=["HighRisk", "LowRisk"],
        training_data_sha256="0" * 64,
        files={"model": "model.onnx", "tokenizer": "tokenizer.json"},
        max_length=64,
    )
    (tmp_path / "manifest.json").write_text(manifest.to_json())
    onnx_model = load_model(tmp_path)
    assert isinstance(onnx_model, TransformerModel)
    texts = ["Short.", generate_clauses(1, seed=1)[0]["text"], LONG]  # 1 token .. truncated at max_length
    enc = tokenizer(texts, truncation=True, max_length=64, padding=True, return_tensors="pt")
    with torch.inference_mode():
        expected = model(**enc).logits.numpy()
    np.testing.assert_allclose(onnx_model.logits(texts), expected, atol=1e-4)
    for i, text in enumerate(texts):  # unpadded single texts too
        np.testing.assert_allclose(onnx_model.logits([text])[0], expected[i], atol=1e-4)
    assert onnx_model.token_count(LONG) == 64
    # traced with eager attention (no per-layer NaN guard from SDPA's decomposition); training's SDPA restored
    ops = {node.op_type for node in onnx.load(str(tmp_path / "model.onnx")).graph.node}
    assert "Softmax" in ops
    assert "IsNaN" not in ops
    assert "BiasGelu" in ops  # fused for ONNX Runtime, still equal to torch
    assert "SkipLayerNormalization" not in ops  # slower than Add + LayerNormalization (runtime.SLOW_FUSIONS)
    assert "Erf" not in ops
    assert model.config._attn_implementation == "sdpa"
    # the int8 graph swaps erf's GELU for the tanh approximation; the fp32 graph keeps erf's
    quantize_int8(tmp_path / "model.onnx", tmp_path / "model.int8.onnx")
    int8_ops = {node.op_type for node in onnx.load(str(tmp_path / "model.int8.onnx")).graph.node}
    assert "FastGelu" in int8_ops
    assert "BiasGelu" not in int8_ops
    int8_files = {**manifest.files, "model": "model.int8.onnx"}
    int8 = TransformerModel(manifest.model_copy(update={"files": int8_files}), tmp_path)
    assert int8.logits(texts).shape == expected.shape


def test_load_models_reports_broken_folders(tiny_models: tuple[Path, dict[str, Manifest]], tmp_path: Path) -> None:
    import shutil

    root, _ = tiny_models
    broken = tmp_path / "models"
    shutil.copytree(root / "baseline", broken / "baseline")
    shutil.copytree(root / "transformer", broken / "transformer")
    loaded, errors = load_models(broken)
    assert set(loaded) == {"baseline", "transformer"}
    assert errors == {}

    model_file = read_manifest(broken / "transformer").files["model"]
    (broken / "transformer" / model_file).write_bytes(b"not an onnx graph")
    (broken / "baseline" / "linear.json").unlink()
    loaded, errors = load_models(broken)
    assert loaded == {}
    assert "is not a loadable ONNX model" in errors["transformer"]
    assert "'linear.json' (linear) is missing" in errors["baseline"]

    (broken / "baseline" / "manifest.json").write_text(json.dumps({"name": "baseline"}))
    shutil.rmtree(broken / "transformer")
    _, errors = load_models(broken)
    assert "is not a valid manifest" in errors["baseline"]
    assert errors["transformer"].startswith("no model folder")


def test_predictions_are_distributions(tiny_models: tuple[Path, dict[str, Manifest]]) -> None:
    root, _ = tiny_models
    loaded, _ = load_models(root, threads=1)
    for model in loaded.values():
        prediction = model.predict(generate_clauses(1, seed=4)[0]["text"])
        assert prediction.label in model.labels
        assert sum(prediction.probabilities.values()) == pytest.approx(1.0, abs=1e-5)
        assert prediction.confidence == prediction.probabilities[prediction.label]
        assert model.predict_batch([]) == []


def test_serving_imports_no_training_stack() -> None:
    import subprocess
    import sys

    code = (
        "import sys, dq_platform.models.runtime, dq_platform.models.artifacts;"
        "heavy = [m for m in ('torch', 'transformers', 'sklearn', 'shap', 'pandas') if m in sys.modules];"
        "print(heavy); sys.exit(1 if heavy else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_balanced_class_weights_follow_scikit_learn() -> None:
    from sklearn.utils.class_weight import compute_class_weight

    labels = ["HighRisk", "LowRisk"]
    train = ["HighRisk"] * 3 + ["LowRisk"] * 27
    ours = class_weights(labels, train, "balanced")
    expected = compute_class_weight("balanced", classes=np.array(labels), y=np.array(train))
    assert ours is not None
    np.testing.assert_allclose(ours, expected)
    assert class_weights(labels, train, "none") is None
    # a label absent from training gets no weight instead of a division by zero
    np.testing.assert_allclose(class_weights(["A", "B", "C"], ["A", "B", "B"], "balanced"), [1.0, 0.5, 0.0])


def test_unknown_class_weight_is_rejected() -> None:
    with pytest.raises(ValueError, match="class weight 'inverse'"):
        TrainConfig(class_weight="inverse")
