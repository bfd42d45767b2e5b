from __future__ import annotations

import numpy as np
import pytest

from dq_platform.models.metrics import best_f1_threshold, binary_metrics, confusion, length_baseline

pytestmark = pytest.mark.unit


def test_binary_metrics_counts_and_scores() -> None:
    y = np.array([True, True, False, False, True])
    pred = np.array([True, False, True, False, True])
    m = binary_metrics(y, pred, np.array([0.9, 0.4, 0.6, 0.1, 0.8]))
    assert (m["tp"], m["fp"], m["fn"], m["tn"]) == (2, 1, 1, 1)
    assert m["precision"] == pytest.approx(2 / 3)
    assert m["recall"] == pytest.approx(2 / 3)
    assert m["f1"] == pytest.approx(2 / 3)
    assert m["pr_auc"] == pytest.approx((1 + 1 + 0.75) / 3)


def test_best_threshold_separates_classes_when_possible() -> None:
    y = np.array([False, False, True, True, False])
    scores = np.array([0.1, 0.2, 0.7, 0.9, 0.3])
    t = best_f1_threshold(y, scores)
    assert 0.3 < t < 0.7
    assert binary_metrics(y, scores >= t, scores)["f1"] == 1.0


def test_length_baseline_uses_word_count_only() -> None:
    texts = ["short one", "a much longer clause with many words in it", "tiny", "another long clause with words"]
    y = np.array([False, True, False, True])
    m = length_baseline(y, texts)
    assert m["f1"] == 1.0
    assert m["threshold_words"] == 5.0


def test_confusion_matrix_by_label() -> None:
    c = confusion(["HighRisk", "LowRisk"], ["HighRisk", "LowRisk", "LowRisk"], ["LowRisk", "LowRisk", "HighRisk"])
    assert c == {"HighRisk": {"HighRisk": 0, "LowRisk": 1}, "LowRisk": {"HighRisk": 1, "LowRisk": 1}}
