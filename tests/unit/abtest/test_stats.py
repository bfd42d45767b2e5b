"""The hand-written tests and intervals against textbook values and, where installed, scipy."""

from __future__ import annotations

import math
import random

import pytest

from dq_platform.abtest.stats import (
    cohens_h,
    compare_proportions,
    fisher_exact,
    min_expected_cell,
    newcombe_interval,
    two_proportion_z,
    wilson_interval,
    z_quantile,
)

pytestmark = pytest.mark.unit


def test_z_quantile_and_normal_tail() -> None:
    assert z_quantile(0.95) == pytest.approx(1.959964, abs=1e-6)
    # z for 45/100 vs 300/1000 worked by hand: pooled p = 345/1100.
    pooled = 345 / 1100
    se = math.sqrt(pooled * (1 - pooled) * (1 / 100 + 1 / 1000))
    z, p = two_proportion_z(45, 100, 300, 1000)
    assert z == pytest.approx((0.45 - 0.30) / se)
    assert p == pytest.approx(math.erfc(abs(z) / math.sqrt(2)))
    assert p == pytest.approx(0.0021, abs=1e-4)


def test_z_test_degenerate_groups_give_no_evidence() -> None:
    assert two_proportion_z(0, 50, 0, 80) == (0.0, 1.0)
    assert two_proportion_z(50, 50, 80, 80) == (0.0, 1.0)
    assert two_proportion_z(0, 0, 3, 10) == (0.0, 1.0)


def test_wilson_interval_textbook_value_and_edges() -> None:
    # Newcombe (1998), Table I: 81/263 -> 0.2553 to 0.3662.
    ci = wilson_interval(81, 263)
    assert (round(ci.low, 4), round(ci.high, 4)) == (0.2553, 0.3662)
    zero = wilson_interval(0, 10)
    assert zero.low == 0.0
    assert zero.high == pytest.approx(0.2775, abs=1e-4)
    assert wilson_interval(10, 10).high == 1.0
    assert wilson_interval(0, 0) == wilson_interval(0, 0).__class__(0.0, 1.0)


def test_newcombe_interval_textbook_value() -> None:
    # Newcombe (1998) example (method 10): 56/70 - 48/80 = 0.2, 95% CI 0.0524 to 0.3339.
    ci = newcombe_interval(56, 70, 48, 80)
    assert (round(ci.low, 4), round(ci.high, 4)) == (0.0524, 0.3339)


def test_fisher_exact_textbook_value() -> None:
    # Fisher's tea-tasting table [[3, 1], [1, 3]]: two-sided p = 34/70.
    assert fisher_exact(3, 4, 1, 4) == pytest.approx(34 / 70)
    assert fisher_exact(0, 10, 0, 10) == 1.0
    assert fisher_exact(0, 0, 1, 5) == 1.0


def test_fisher_exact_matches_scipy_on_random_tables() -> None:
    scipy_stats = pytest.importorskip("scipy.stats")
    rng = random.Random(7)
    for _ in range(200):
        n1, n2 = rng.randint(1, 300), rng.randint(1, 300)
        k1, k2 = rng.randint(0, n1), rng.randint(0, n2)
        expected = scipy_stats.fisher_exact([[k1, n1 - k1], [k2, n2 - k2]]).pvalue
        assert fisher_exact(k1, n1, k2, n2) == pytest.approx(expected, rel=1e-9, abs=1e-12)


def test_z_test_matches_scipy_chi_square_without_correction() -> None:
    scipy_stats = pytest.importorskip("scipy.stats")
    for k1, n1, k2, n2 in [(45, 100, 300, 1000), (180, 400, 300, 1000), (12, 400, 10, 1000), (5, 20, 9, 25)]:
        chi2 = scipy_stats.chi2_contingency([[k1, n1 - k1], [k2, n2 - k2]], correction=False)
        z, p = two_proportion_z(k1, n1, k2, n2)
        assert z * z == pytest.approx(chi2.statistic)
        assert p == pytest.approx(chi2.pvalue)


def test_wilson_matches_scipy() -> None:
    scipy_stats = pytest.importorskip("scipy.stats")
    for k, n in [(0, 7), (3, 10), (99, 100), (250, 1000)]:
        ref = scipy_stats.binomtest(k, n).proportion_ci(confidence_level=0.9, method="wilson")
        ci = wilson_interval(k, n, confidence=0.9)
        assert (ci.low, ci.high) == (pytest.approx(ref.low), pytest.approx(ref.high))


def test_compare_uses_fisher_for_small_expected_counts() -> None:
    rare = compare_proportions("errors", "transformer", 3, 100, "baseline", 0, 900)
    assert min_expected_cell(3, 100, 0, 900) < 5
    assert rare.test.startswith("Fisher")
    assert rare.statistic is None
    assert rare.p_value == rare.p_value_fisher
    common = compare_proportions("HighRisk rate", "transformer", 180, 400, "baseline", 300, 1000)
    assert common.test.startswith("two-proportion z-test")
    assert common.p_value == common.p_value_z
    assert common.difference == pytest.approx(0.15)
    assert common.cohens_h == pytest.approx(cohens_h(0.45, 0.30))
    assert common.significant
    assert common.ci_low is not None
    assert common.ci_high is not None
    assert common.ci_low < 0.15 < common.ci_high


def test_compare_null_difference_is_not_significant_and_says_so() -> None:
    same = compare_proportions("HighRisk rate", "transformer", 120, 400, "baseline", 300, 1000)
    assert same.difference == pytest.approx(0.0)
    assert same.p_value == pytest.approx(1.0)
    assert not same.significant
    assert "not significant at alpha = 0.05" in same.statement
    missing = compare_proportions("HighRisk rate", "transformer", 0, 0, "baseline", 30, 100)
    assert not missing.significant
    assert missing.difference is None
    assert missing.statement == "HighRisk rate: not tested (no transformer requests)."


def test_bad_counts_are_rejected() -> None:
    with pytest.raises(ValueError, match="successes"):
        wilson_interval(5, 3)
    with pytest.raises(ValueError, match="confidence"):
        z_quantile(1.0)
