"""Positive-class metrics (HighRisk precision/recall/F1/PR-AUC), threshold tuning, length baseline.

Accuracy is meaningless at ~10 % HighRisk, so everything here is about the positive label.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt


def average_precision(y_true: npt.NDArray[np.bool_], scores: npt.NDArray[np.floating]) -> float:
    """Area under the precision-recall curve as the step-wise average precision (scikit-learn's)."""
    from sklearn.metrics import average_precision_score

    if not y_true.any():
        return float("nan")
    return float(average_precision_score(y_true, scores))


def binary_metrics(
    y_true: npt.NDArray[np.bool_], y_pred: npt.NDArray[np.bool_], scores: npt.NDArray[np.floating]
) -> dict[str, float]:
    tp = int(np.sum(y_true & y_pred))
    fp = int(np.sum(~y_true & y_pred))
    fn = int(np.sum(y_true & ~y_pred))
    tn = int(np.sum(~y_true & ~y_pred))
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "pr_auc": average_precision(y_true, scores),
        "tp": float(tp),
        "fp": float(fp),
        "fn": float(fn),
        "tn": float(tn),
        "n": float(len(y_true)),
        "positives": float(tp + fn),
    }


def best_f1_threshold(
    y_true: npt.NDArray[np.bool_], scores: npt.NDArray[np.floating], lo: float = 0.05, hi: float = 0.95
) -> float:
    """Threshold on `scores` maximising F1 (ties -> the higher threshold), clipped to [lo, hi]."""
    if not y_true.any() or y_true.all():
        return 0.5
    order = np.argsort(-scores, kind="stable")
    s = scores[order]
    t = y_true[order].astype(np.int64)
    tp = np.cumsum(t)
    fp = np.cumsum(1 - t)
    f1 = 2 * tp / (tp + fp + t.sum())
    # only cut where the score changes, so the threshold separates the two sides
    last_of_run = np.append(s[1:] != s[:-1], True)
    f1 = np.where(last_of_run, f1, -1.0)
    k = int(np.argmax(f1))
    below = s[k + 1] if k + 1 < len(s) else s[k] - 1e-6
    threshold = float((s[k] + below) / 2)
    return float(min(max(threshold, lo), hi))


def confusion(labels: Sequence[str], y_true: Sequence[str], y_pred: Sequence[str]) -> dict[str, dict[str, int]]:
    """{true_label: {predicted_label: count}}."""
    out = {a: dict.fromkeys(labels, 0) for a in labels}
    for t, p in zip(y_true, y_pred, strict=True):
        out[t][p] += 1
    return out


def word_counts(texts: Sequence[str]) -> npt.NDArray[np.float64]:
    return np.array([len(t.split()) for t in texts], dtype=np.float64)


def length_baseline(y_true: npt.NDArray[np.bool_], texts: Sequence[str]) -> dict[str, float]:
    """Sentence length as the only signal; its F1 threshold is picked on the evaluated set itself.

    That makes it an optimistic (oracle-threshold) length baseline: a model must beat it by a margin.
    """
    counts = word_counts(texts)
    if not y_true.any():
        return binary_metrics(y_true, np.zeros_like(y_true), counts)
    order = np.sort(np.unique(counts))
    best: tuple[float, float] = (-1.0, 0.0)
    for cut in order:
        pred = counts >= cut
        tp = np.sum(y_true & pred)
        denom = pred.sum() + y_true.sum()
        f1 = 2 * tp / denom if denom else 0.0
        if f1 > best[0]:
            best = (float(f1), float(cut))
    metrics = binary_metrics(y_true, counts >= best[1], counts)
    metrics["threshold_words"] = best[1]
    return metrics
