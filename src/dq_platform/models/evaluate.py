"""`dqp evaluate`: every served model on every dataset, next to a sentence-length-only baseline.

Scores come from the served artifacts (ONNX through `runtime`), so they are the numbers the API gives.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from dq_platform.models.data import Dataset
from dq_platform.models.metrics import binary_metrics, confusion, length_baseline, word_counts
from dq_platform.models.runtime import LoadedModel, load_models

LENGTH_BASELINE = "length-only"


class EvaluationError(Exception):
    """Nothing to evaluate (no loadable model, or a model lacks the positive label)."""


def run_evaluation(
    models_root: Path, datasets: Sequence[Dataset], out_dir: Path, positive_label: str = "HighRisk"
) -> dict[str, Any]:
    loaded, errors = load_models(models_root)
    if not loaded:
        detail = "; ".join(f"{k}: {v}" for k, v in errors.items())
        raise EvaluationError(f"no loadable model under {models_root} ({detail})")
    for model in loaded.values():
        if positive_label not in model.labels:
            raise EvaluationError(f"model {model.name} has no label {positive_label!r} ({model.labels})")
    report: dict[str, Any] = {
        "positive_label": positive_label,
        "models": {
            name: {"version": m.version, "quantization": m.manifest.quantization, "kind": m.manifest.kind}
            for name, m in loaded.items()
        },
        "model_errors": errors,
        "datasets": {},
    }
    curves: dict[str, dict[str, tuple[np.ndarray, np.ndarray]]] = {}
    for ds in datasets:
        frame = ds.frame
        texts = frame["text"].tolist()
        y_true = np.asarray(frame["label"].to_numpy() == positive_label, dtype=np.bool_)
        entry: dict[str, Any] = {
            "rows": len(frame),
            "documents": int(frame["doc"].nunique()),
            "positives": int(y_true.sum()),
            "results": {},
        }
        curves[ds.name] = {}
        for name, model in loaded.items():
            started = time.perf_counter()
            probs = model.predict_proba_many(texts)
            seconds = time.perf_counter() - started
            pos = model.labels.index(positive_label)
            predicted = model.decide(probs)
            y_pred = np.asarray([p == positive_label for p in predicted], dtype=np.bool_)
            metrics: dict[str, Any] = binary_metrics(y_true, y_pred, probs[:, pos])
            metrics["confusion"] = confusion(model.labels, frame["label"].tolist(), predicted)
            metrics["threshold"] = model.manifest.decision_threshold
            metrics["ms_per_text"] = 1000 * seconds / max(len(texts), 1)
            entry["results"][name] = metrics
            curves[ds.name][name] = (y_true, probs[:, pos])
        length = length_baseline(y_true, texts)
        cut = length.get("threshold_words", 0.0)
        length_pred = [positive_label if c >= cut else _other(loaded, positive_label) for c in word_counts(texts)]
        length_metrics: dict[str, Any] = dict(length)
        length_metrics["confusion"] = confusion(
            next(iter(loaded.values())).labels, frame["label"].tolist(), length_pred
        )
        entry["results"][LENGTH_BASELINE] = length_metrics
        curves[ds.name][LENGTH_BASELINE] = (y_true, word_counts(texts))
        report["datasets"][ds.name] = entry
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "evaluation.json").write_text(json.dumps(report, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    _plot(curves, out_dir / "pr_curves.png", positive_label)
    return report


def _other(loaded: dict[str, LoadedModel], positive: str) -> str:
    labels = next(iter(loaded.values())).labels
    return next(lab for lab in labels if lab != positive)


def _plot(curves: dict[str, dict[str, tuple[np.ndarray, np.ndarray]]], path: Path, positive: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.metrics import average_precision_score, precision_recall_curve

    fig, axes = plt.subplots(1, len(curves), figsize=(6 * len(curves), 5), squeeze=False)
    for ax, (dataset, by_model) in zip(axes[0], curves.items(), strict=True):
        for name, (y_true, scores) in by_model.items():
            if not y_true.any():
                continue
            precision, recall, _ = precision_recall_curve(y_true, scores)
            ap = average_precision_score(y_true, scores)
            ax.plot(
                recall, precision, label=f"{name} (AP {ap:.3f})", linestyle="--" if name == LENGTH_BASELINE else "-"
            )
        ax.axhline(float(next(iter(by_model.values()))[0].mean()), color="grey", linewidth=0.8, label="prevalence")
        ax.set_title(dataset, fontsize=10)
        ax.set_xlabel(f"recall ({positive})")
        ax.set_ylabel("precision")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1.02)
        ax.legend(loc="lower left", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def format_report(report: dict[str, Any]) -> str:
    positive = report["positive_label"]
    lines = []
    for dataset, entry in report["datasets"].items():
        lines.append(
            f"\n{dataset}: {entry['rows']} rows, {entry['documents']} documents, {entry['positives']} {positive}"
        )
        lines.append(
            f"  {'model':<14} {'precision':>9} {'recall':>7} {'F1':>6} {'PR-AUC':>7}   confusion (TP FP FN TN)"
        )
        for name, m in entry["results"].items():
            lines.append(
                f"  {name:<14} {m['precision']:>9.3f} {m['recall']:>7.3f} {m['f1']:>6.3f} {m['pr_auc']:>7.3f}"
                f"   {int(m['tp'])} {int(m['fp'])} {int(m['fn'])} {int(m['tn'])}"
            )
    for name, error in report["model_errors"].items():
        lines.append(f"note: model {name} not evaluated: {error}")
    return "\n".join(lines)


RECORD_PREFIX = "eval:"
_RECORDED = ("precision", "recall", "f1", "pr_auc", "tp", "fp", "fn", "tn", "n")


def record_in_manifests(models_root: Path, report: dict[str, Any]) -> list[Path]:
    """Write each dataset's numbers into the manifest of every model evaluated on it.

    `metrics["eval:<dataset>"]` gets the served artifact's HighRisk precision, recall, F1, PR-AUC and
    confusion counts, plus the length-only baseline's F1 and PR-AUC on the same rows, so a published model
    carries the evaluation it was released on. Earlier `eval:` entries for the same dataset are replaced.
    """
    from dq_platform.models.artifacts import read_manifest

    written = []
    for name in report["models"]:
        model_dir = models_root / name
        manifest = read_manifest(model_dir)
        for dataset, entry in report["datasets"].items():
            result = entry["results"].get(name)
            if result is None:
                continue
            numbers = {k: float(result[k]) for k in _RECORDED if k in result}
            numbers["n"] = float(entry["rows"])
            numbers["documents"] = float(entry["documents"])
            length = entry["results"].get(LENGTH_BASELINE) or {}
            numbers["length_only_f1"] = float(length.get("f1", 0.0))
            numbers["length_only_pr_auc"] = float(length.get("pr_auc", 0.0))
            manifest.metrics[f"{RECORD_PREFIX}{dataset}"] = numbers
        path = model_dir / "manifest.json"
        path.write_text(manifest.to_json(), encoding="utf-8")
        written.append(path)
    return written
