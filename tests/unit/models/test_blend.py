"""The offline blend experiment: logistic calibration of the two models' log-odds on validation."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from dq_platform.cli import app
from dq_platform.models.artifacts import Manifest
from dq_platform.models.blend import BLEND, fit_blend
from dq_platform.sample_data import generate_clauses
from tests.unit.models.support import write_csv

pytestmark = pytest.mark.unit


def test_fit_blend_weights_the_informative_model_and_tunes_a_threshold() -> None:
    rng = np.random.default_rng(0)
    y = rng.random(400) < 0.2
    informative = np.where(y, rng.uniform(0.55, 0.99, 400), rng.uniform(0.01, 0.6, 400))
    noise = rng.uniform(0.01, 0.99, 400)
    blend = fit_blend(informative, noise, y)
    assert blend.coef_baseline > 5 * abs(blend.coef_transformer)
    assert 0.05 <= blend.threshold <= 0.95
    p = np.asarray(blend.proba(informative, noise))
    assert p.shape == (400,)
    assert ((p >= blend.threshold) == y).mean() > 0.9


def test_blend_cli_scores_blend_and_both_models(tiny_models: tuple[Path, dict[str, Manifest]], tmp_path: Path) -> None:
    root, _ = tiny_models
    data = write_csv(tmp_path / "clauses.csv", generate_clauses(300, seed=5), ["text", "label", "source_doc"])
    out = tmp_path / "blend.json"
    args = ["blend", "--models", str(root), "--validation", f"{data}#split=validation"]
    result = CliRunner().invoke(app, [*args, "--data", f"{data}#split=test", "--out", str(out)])
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    results = report["datasets"]["clauses[test]"]["results"]
    assert set(results) == {BLEND, "baseline", "transformer"}
    assert all(0.0 <= m["f1"] <= 1.0 for m in results.values())
    assert "logit(baseline)" in result.output
    result = CliRunner().invoke(app, ["blend", "--models", str(tmp_path / "none"), "--validation", str(data)])
    assert result.exit_code != 0
