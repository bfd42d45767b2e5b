from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from dq_platform.models.linear import LinearArtifactError, LinearTerms
from dq_platform.models.train import TrainConfig, fit_baseline, linear_terms
from dq_platform.sample_data import generate_clauses

pytestmark = pytest.mark.unit

# Edge cases for the analyzer: case, digits, unicode word characters, punctuation, a one-letter word.
EXTRA = [
    "Ünïcode Straße naïve café — the SUPPLIER\u2019s rights (Section 4.2) apply.",
    "a b c 12 345 x-y_z foo--bar",
    "",
    "Termination termination TERMINATION without notice without notice.",
]


@pytest.fixture(scope="module")
def fitted() -> tuple[object, object, list[str]]:
    rows = generate_clauses(240, seed=3)
    texts = [r["text"] for r in rows]
    vectorizer, classifier = fit_baseline(texts, [r["label"] for r in rows], TrainConfig(models=("baseline",)))
    return vectorizer, classifier, texts[:60] + EXTRA


def test_vectorize_equals_scikit_learn(fitted: tuple[object, object, list[str]]) -> None:
    vectorizer, classifier, texts = fitted
    linear = linear_terms(vectorizer, classifier)
    expected = vectorizer.transform(texts).toarray()  # type: ignore[attr-defined]
    ours = np.zeros_like(expected)
    for row, text in enumerate(texts):
        idx, values = linear.vectorize(text)
        ours[row, idx] = values
    np.testing.assert_allclose(ours, expected, rtol=0, atol=1e-12)
    assert linear.analyze(EXTRA[0])[:3] == vectorizer.build_analyzer()(EXTRA[0])[:3]  # type: ignore[attr-defined]


def test_contributions_are_coefficient_times_tfidf(fitted: tuple[object, object, list[str]]) -> None:
    vectorizer, classifier, texts = fitted
    linear = linear_terms(vectorizer, classifier)
    logreg = classifier.calibrated_classifiers_[0].estimator  # type: ignore[attr-defined]
    inverse = {i: t for t, i in vectorizer.vocabulary_.items()}  # type: ignore[attr-defined]
    for text in texts[:20]:
        x = vectorizer.transform([text]).toarray()[0]  # type: ignore[attr-defined]
        toward_second = {inverse[i]: float(logreg.coef_[0][i] * x[i]) for i in np.nonzero(x)[0]}
        ours = dict(linear.contributions(text, linear.classes[1]))
        assert ours.keys() == toward_second.keys()
        for term, weight in toward_second.items():
            assert ours[term] == pytest.approx(weight, abs=1e-12)
        # toward the other label the sign flips; the sum plus intercept is the decision function
        flipped = dict(linear.contributions(text, linear.classes[0]))
        assert all(flipped[t] == pytest.approx(-w, abs=1e-12) for t, w in ours.items())
        decision = sum(ours.values()) + float(logreg.intercept_[0])
        assert decision == pytest.approx(float(logreg.decision_function([x])[0]), abs=1e-9)


def test_save_load_round_trip(fitted: tuple[object, object, list[str]], tmp_path: Path) -> None:
    vectorizer, classifier, texts = fitted
    linear = linear_terms(vectorizer, classifier)
    linear.save(tmp_path / "linear.json")
    loaded = LinearTerms.load(tmp_path / "linear.json")
    np.testing.assert_array_equal(loaded.transform(texts), linear.transform(texts))
    assert loaded.contributions(texts[0], "HighRisk") == linear.contributions(texts[0], "HighRisk")


def test_unknown_label_and_bad_files_fail_clearly(fitted: tuple[object, object, list[str]], tmp_path: Path) -> None:
    vectorizer, classifier, _ = fitted
    linear = linear_terms(vectorizer, classifier)
    with pytest.raises(LinearArtifactError, match="unknown label 'Medium'"):
        linear.contributions("text", "Medium")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(LinearArtifactError, match="not valid JSON"):
        LinearTerms.load(tmp_path / "bad.json")
    (tmp_path / "other.json").write_text('{"format": "something-else"}')
    with pytest.raises(LinearArtifactError, match="is not a dqp-tfidf-linear/1 file"):
        LinearTerms.load(tmp_path / "other.json")
    with pytest.raises(LinearArtifactError, match="not found"):
        LinearTerms.load(tmp_path / "missing.json")
