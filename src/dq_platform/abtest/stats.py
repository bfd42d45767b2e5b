"""Small, dependency-free statistics for comparing two proportions.

The report must run wherever the CLI runs (the core install has no scipy), so the few tests it needs are
written out here with the standard library; tests check them against scipy where scipy is installed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist
from typing import Literal

from pydantic import BaseModel, ConfigDict

_STD_NORMAL = NormalDist()
# Tables whose probability is within this relative margin of the observed one count as "as extreme"
# (guards against floating-point noise; the same margin R and scipy use).
_FISHER_REL_TOL = 1e-7
# Fisher's exact test replaces the z-test when any expected cell count is below this (Cochran's rule).
MIN_EXPECTED_CELL = 5.0


@dataclass(frozen=True)
class Interval:
    low: float
    high: float


def z_quantile(confidence: float) -> float:
    """Two-sided critical value, e.g. 1.95996 for 0.95."""
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    return _STD_NORMAL.inv_cdf(0.5 + confidence / 2.0)


def two_sided_normal_p(z: float) -> float:
    # erfc keeps precision in the far tail, where 1 - cdf would round to 0.
    return math.erfc(abs(z) / math.sqrt(2.0))


def wilson_interval(successes: int, n: int, confidence: float = 0.95) -> Interval:
    """Wilson score interval: sensible at 0 or n successes, unlike the Wald interval."""
    _check_counts(successes, n)
    if n == 0:
        return Interval(0.0, 1.0)
    z = z_quantile(confidence)
    p = successes / n
    denom = 1.0 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    # Exact bounds at the edges (rounding would otherwise give 1e-17 instead of 0).
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    high = 1.0 if successes == n else min(1.0, centre + half)
    return Interval(low, high)


def newcombe_interval(k1: int, n1: int, k2: int, n2: int, confidence: float = 0.95) -> Interval:
    """CI for p1 - p2 by Newcombe's hybrid score method (his method 10): good coverage with rare events."""
    if n1 == 0 or n2 == 0:
        return Interval(-1.0, 1.0)
    p1, p2 = k1 / n1, k2 / n2
    w1, w2 = wilson_interval(k1, n1, confidence), wilson_interval(k2, n2, confidence)
    d = p1 - p2
    low = d - math.sqrt((p1 - w1.low) ** 2 + (w2.high - p2) ** 2)
    high = d + math.sqrt((w1.high - p1) ** 2 + (p2 - w2.low) ** 2)
    return Interval(max(-1.0, low), min(1.0, high))


def two_proportion_z(k1: int, n1: int, k2: int, n2: int) -> tuple[float, float]:
    """Pooled two-proportion z statistic and its two-sided p-value (H0: p1 == p2)."""
    _check_counts(k1, n1)
    _check_counts(k2, n2)
    if n1 == 0 or n2 == 0:
        return 0.0, 1.0
    pooled = (k1 + k2) / (n1 + n2)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    if se == 0.0:  # both groups all-0 or all-1: no evidence of any difference
        return 0.0, 1.0
    z = (k1 / n1 - k2 / n2) / se
    return z, two_sided_normal_p(z)


def _log_comb(n: int, k: int) -> float:
    return math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)


def fisher_exact(k1: int, n1: int, k2: int, n2: int) -> float:
    """Two-sided p-value of Fisher's exact test on [[k1, n1-k1], [k2, n2-k2]].

    Sums the hypergeometric probabilities of every table with the observed margins that is no more
    likely than the observed one (the "minimum likelihood" definition used by R and scipy).
    """
    _check_counts(k1, n1)
    _check_counts(k2, n2)
    if n1 == 0 or n2 == 0:
        return 1.0
    total, col = n1 + n2, k1 + k2
    lo, hi = max(0, col - n2), min(n1, col)
    log_denom = _log_comb(total, col)

    def log_pmf(a: int) -> float:
        return _log_comb(n1, a) + _log_comb(n2, col - a) - log_denom

    threshold = log_pmf(k1) + math.log1p(_FISHER_REL_TOL)
    p = math.fsum(math.exp(lp) for lp in (log_pmf(a) for a in range(lo, hi + 1)) if lp <= threshold)
    return min(1.0, p)


def cohens_h(p1: float, p2: float) -> float:
    """Effect size for two proportions (0.2 small, 0.5 medium, 0.8 large by Cohen's convention)."""
    return 2.0 * math.asin(math.sqrt(p1)) - 2.0 * math.asin(math.sqrt(p2))


def min_expected_cell(k1: int, n1: int, k2: int, n2: int) -> float:
    total = n1 + n2
    if total == 0:
        return 0.0
    col1 = k1 + k2
    col2 = total - col1
    return min(n * c / total for n in (n1, n2) for c in (col1, col2))


def _check_counts(k: int, n: int) -> None:
    if n < 0 or k < 0 or k > n:
        raise ValueError(f"need 0 <= successes <= n, got {k} of {n}")


TestName = Literal["two-proportion z-test (pooled, two-sided)", "Fisher exact test (two-sided)"]


class ProportionTest(BaseModel):
    """One A/B comparison of a rate, with enough context to read it without the code."""

    model_config = ConfigDict(frozen=True)

    metric: str
    group_a: str
    group_b: str
    k_a: int
    n_a: int
    k_b: int
    n_b: int
    rate_a: float | None
    rate_b: float | None
    difference: float | None  # rate_a - rate_b
    ci_low: float | None
    ci_high: float | None
    confidence: float
    test: TestName
    statistic: float | None  # z for the z-test; None for Fisher
    p_value: float
    p_value_z: float
    p_value_fisher: float
    cohens_h: float | None
    alpha: float
    significant: bool

    @property
    def statement(self) -> str:
        if self.rate_a is None or self.rate_b is None or self.difference is None:
            return f"{self.metric}: not tested (no {self.group_a if self.n_a == 0 else self.group_b} requests)."
        verdict = "significant" if self.significant else "not significant"
        stat = f", z = {self.statistic:.2f}" if self.statistic is not None else ""
        return (
            f"{self.metric}: {self.group_a} {self.rate_a:.2%} ({self.k_a}/{self.n_a}) vs {self.group_b} "
            f"{self.rate_b:.2%} ({self.k_b}/{self.n_b}); difference {self.difference * 100:+.2f} pp, "
            f"{self.confidence:.0%} CI [{(self.ci_low or 0) * 100:+.2f}, {(self.ci_high or 0) * 100:+.2f}] pp; "
            f"{self.test}{stat}, p {p_equals(self.p_value)}: {verdict} at alpha = {self.alpha:g}."
        )


def format_p(p: float) -> str:
    return "< 0.0001" if p < 1e-4 else f"{p:.4f}"


def p_equals(p: float) -> str:
    """`= 0.0123` or `< 0.0001`, for running text."""
    text = format_p(p)
    return text if text.startswith("<") else f"= {text}"


def compare_proportions(
    metric: str,
    group_a: str,
    k_a: int,
    n_a: int,
    group_b: str,
    k_b: int,
    n_b: int,
    alpha: float = 0.05,
    confidence: float = 0.95,
) -> ProportionTest:
    """Compare two rates: z-test with enough data, Fisher's exact test when an expected cell is small."""
    z, p_z = two_proportion_z(k_a, n_a, k_b, n_b)
    p_f = fisher_exact(k_a, n_a, k_b, n_b)
    use_fisher = min_expected_cell(k_a, n_a, k_b, n_b) < MIN_EXPECTED_CELL
    p = p_f if use_fisher else p_z
    rate_a = k_a / n_a if n_a else None
    rate_b = k_b / n_b if n_b else None
    both = rate_a is not None and rate_b is not None
    ci = newcombe_interval(k_a, n_a, k_b, n_b, confidence) if both else None
    return ProportionTest(
        metric=metric,
        group_a=group_a,
        group_b=group_b,
        k_a=k_a,
        n_a=n_a,
        k_b=k_b,
        n_b=n_b,
        rate_a=rate_a,
        rate_b=rate_b,
        difference=(rate_a - rate_b) if rate_a is not None and rate_b is not None else None,
        ci_low=ci.low if ci else None,
        ci_high=ci.high if ci else None,
        confidence=confidence,
        test="Fisher exact test (two-sided)" if use_fisher else "two-proportion z-test (pooled, two-sided)",
        statistic=None if use_fisher else z,
        p_value=p,
        p_value_z=p_z,
        p_value_fisher=p_f,
        cohens_h=cohens_h(rate_a, rate_b) if rate_a is not None and rate_b is not None else None,
        alpha=alpha,
        significant=both and p < alpha,
    )
