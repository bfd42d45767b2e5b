"""Offline experiment: a calibrated blend of the baseline's and the transformer's probabilities.

A logistic regression on the two models' log-odds for the positive label, fit on validation documents
(never on test), with its decision threshold tuned there for best F1. It is evaluated next to the two
served models on the same rows. Not served: serving it would be a third model kind holding both graphs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from dq_platform.models.artifacts import BASELINE, TRANSFORMER
from dq_platform.models.data import Dataset
from dq_platform.models.metrics import best_f1_threshold, binary_metrics
from dq_platform.models.runtime import LoadedModel, load_model

BLEND = "blend"
_EPS = 1e-6


@dataclass(frozen=True)
class Blend:
    coef_baseline: float
    coef_transformer: float
    intercept: float
    threshold: float

    def proba(self, p_baseline: npt.NDArray[np.floating], p_transformer: npt.NDArray[np.floating]) -> Any:
        z = self.coef_baseline * _logit(p_baseline) + self.coef_transformer * _logit(p_transformer) + self.intercept
        return 1.0 / (1.0 + np.exp(-z))


def _logit(p: npt.NDArray[np.floating]) -> Any:
    q = np.clip(np.asarray(p, dtype=np.float64), _EPS, 1 - _EPS)
    return np.log(q / (1 - q))


def fit_blend(
    p_baseline: npt.NDArray[np.floating], p_transformer: npt.NDArray[np.floating], y: npt.NDArray[np.bool_]
) -> Blend:
    from sklearn.linear_model import LogisticRegression

    features = np.c_[_logit(p_baseline), _logit(p_transformer)]
    model = LogisticRegression(C=1.0).fit(features, y)
    coef = model.coef_[0]
    partial = Blend(float(coef[0]), float(coef[1]), float(model.intercept_[0]), 0.5)
    threshold = best_f1_threshold(y, np.asarray(partial.proba(p_baseline, p_transformer)))
    return Blend(partial.coef_baseline, partial.coef_transformer, partial.intercept, threshold)


def _positive_proba(model: LoadedModel, texts: list[str], positive: str) -> npt.NDArray[np.floating]:
    probs = model.predict_proba_many(texts)
    return np.asarray(probs[:, model.labels.index(positive)], dtype=np.float64)


def run_blend(
    models_root: Path, validation: Dataset, datasets: Sequence[Dataset], positive_label: str = "HighRisk"
) -> dict[str, Any]:
    """Fit the blend on `validation`, then score blend, baseline and transformer on each dataset."""
    models = {name: load_model(models_root / name) for name in (BASELINE, TRANSFORMER)}

    def scores(ds: Dataset) -> tuple[dict[str, npt.NDArray[np.floating]], npt.NDArray[np.bool_]]:
        texts = ds.frame["text"].tolist()
        y = np.asarray(ds.frame["label"].to_numpy() == positive_label, dtype=np.bool_)
        return {name: _positive_proba(m, texts, positive_label) for name, m in models.items()}, y

    val_scores, val_y = scores(validation)
    blend = fit_blend(val_scores[BASELINE], val_scores[TRANSFORMER], val_y)
    report: dict[str, Any] = {
        "positive_label": positive_label,
        "validation": {"name": validation.name, "rows": len(validation.frame), "positives": int(val_y.sum())},
        "blend": asdict(blend),
        "models": {name: m.version for name, m in models.items()},
        "datasets": {},
    }
    for ds in datasets:
        by_model, y = scores(ds)
        results: dict[str, Any] = {}
        blended = np.asarray(blend.proba(by_model[BASELINE], by_model[TRANSFORMER]))
        results[BLEND] = binary_metrics(y, blended >= blend.threshold, blended)
        for name, model in models.items():
            cut = model.manifest.decision_threshold or 0.5
            results[name] = binary_metrics(y, by_model[name] >= cut, by_model[name])
        report["datasets"][ds.name] = {"rows": len(ds.frame), "positives": int(y.sum()), "results": results}
    return report


def format_blend(report: dict[str, Any]) -> str:
    b = report["blend"]
    lines = [
        f"blend fit on {report['validation']['name']} ({report['validation']['rows']} rows): "
        f"{b['coef_baseline']:.3f} * logit(baseline) + {b['coef_transformer']:.3f} * logit(transformer) "
        f"{b['intercept']:+.3f}; threshold {b['threshold']:.3f}"
    ]
    for dataset, entry in report["datasets"].items():
        lines.append(f"\n{dataset}: {entry['rows']} rows, {entry['positives']} {report['positive_label']}")
        lines.append(f"  {'model':<12} {'precision':>9} {'recall':>7} {'F1':>6} {'PR-AUC':>7}")
        for name, m in entry["results"].items():
            lines.append(f"  {name:<12} {m['precision']:>9.3f} {m['recall']:>7.3f} {m['f1']:>6.3f} {m['pr_auc']:>7.3f}")
    return "\n".join(lines)
