"""The recommendation: promote, keep or roll back the candidate model, by explicit rules.

Rules are deliberately simple and printed with the report, so a reviewer can check the call by hand.
Without ground-truth labels in the logs, "better" cannot be measured online: the rules protect against
harm (errors, latency) and against unexplained behaviour change (HighRisk rate shift, disagreement
with the control on the same inputs); quality itself comes from the offline metrics in the manifests.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from dq_platform.abtest.stats import ProportionTest, p_equals, wilson_interval

Recommendation = Literal["promote", "keep", "roll back"]
Outcome = Literal["pass", "fail", "not evaluated"]


class DecisionRules(BaseModel):
    """Thresholds of the rules; every one is a `dqp ab-report` option."""

    model_config = ConfigDict(frozen=True)

    control: str = "baseline"
    candidate: str = "transformer"
    positive_label: str = "HighRisk"
    alpha: float = Field(default=0.05, gt=0.0, lt=1.0)
    confidence: float = Field(default=0.95, gt=0.0, lt=1.0)
    min_requests: int = Field(default=200, ge=1)
    max_error_rate: float = Field(default=0.01, ge=0.0, le=1.0)
    latency_budget_ms: float = Field(default=1000.0, gt=0.0)
    min_latency_samples: int = Field(default=30, ge=1)
    max_label_shift: float = Field(default=0.05, ge=0.0, le=1.0)
    min_shadow_agreement: float = Field(default=0.90, ge=0.0, le=1.0)
    min_shadow_samples: int = Field(default=50, ge=1)


# Stable ids of the checks, for JSON consumers and tests; reports name each check by what it checks.
ERROR_RATE, ERROR_BUDGET, LATENCY = "R1", "R2", "R3"
TRAFFIC, LABEL_SHIFT, SHADOW_AGREEMENT = "K1", "K2", "K3"


class RuleCheck(BaseModel):
    """One check of the decision: what it checks, what was measured, what passing needs, and the finding."""

    model_config = ConfigDict(frozen=True)

    rule: str  # stable id (R1-R3 roll back, K1-K3 keep); never shown to readers of the report
    check: str  # what it checks, in plain words
    measured: str
    threshold: str  # what passing needs
    finding: str  # one sentence: the measured value against the threshold
    consequence: Literal["roll back", "keep"]
    outcome: Outcome
    detail: str  # the full statement behind the measurement (test used, interval, p-value)


class Decision(BaseModel):
    model_config = ConfigDict(frozen=True)

    recommendation: Recommendation
    summary: str
    reasons: list[str]
    next_step: str
    checks: list[RuleCheck]


class ArmFacts(BaseModel):
    """What the rules need to know about one arm (computed by `analysis`)."""

    model_config = ConfigDict(frozen=True)

    requests: int
    server_errors: int
    latency_n: int
    latency_p95_ms: float | None


def decide(
    rules: DecisionRules,
    control: ArmFacts,
    candidate: ArmFacts,
    error_test: ProportionTest,
    label_test: ProportionTest,
    shadow_n: int,
    shadow_agree: int,
) -> Decision:
    c, k = rules.control, rules.candidate
    checks = [
        _error_rate_check(rules, error_test),
        _error_budget_check(rules, candidate),
        _latency_check(rules, candidate),
        _traffic_check(rules, control, candidate),
        _label_shift_check(rules, label_test),
        _shadow_check(rules, shadow_n, shadow_agree),
    ]

    failed_rollback = [ch for ch in checks if ch.consequence == "roll back" and ch.outcome == "fail"]
    # Shadow agreement may go unmeasured (shadowing is optional); traffic and label shift must pass to promote.
    blocking_keep = [
        ch
        for ch in checks
        if ch.consequence == "keep"
        and (ch.outcome == "fail" or (ch.outcome == "not evaluated" and ch.rule != SHADOW_AGREEMENT))
    ]
    if failed_rollback:
        recommendation: Recommendation = "roll back"
        reasons = [ch.finding for ch in failed_rollback]
        summary = f"Roll back {k}: " + "; ".join(reasons) + "."
        next_step = (
            f"Set {k}'s weight to 0 in the ab-weights SSM parameter (e.g. "
            f'{{"{c}": 1.0, "{k}": 0.0, "shadow_rate": 0.0}}); it takes effect within the cache TTL, no redeploy.'
        )
    elif blocking_keep:
        recommendation = "keep"
        reasons = [ch.finding for ch in blocking_keep]
        summary = "Keep the current split: " + "; ".join(reasons) + "."
        if all(ch.rule == TRAFFIC for ch in blocking_keep):
            next_step = (
                f"Leave the weights as they are and re-run the report once each arm has at least "
                f"{rules.min_requests} requests."
            )
        else:
            next_step = (
                "Leave the weights as they are and re-run the report when more traffic has arrived; a significant "
                f"{rules.positive_label}-rate shift needs a labelled review before {k} can be promoted."
            )
    else:
        recommendation = "promote"
        reasons = [ch.finding for ch in checks]
        lt = label_test
        summary = (
            f"Promote {k}: no error or latency regression, {rules.positive_label} rate "
            f"{(lt.difference or 0) * 100:+.2f} pp vs {c} (p {p_equals(lt.p_value)}), "
            f"{candidate.requests} {k} and {control.requests} {c} requests."
        )
        next_step = (
            f"Raise {k}'s weight in the ab-weights SSM parameter step by step (e.g. "
            f'{{"{c}": 0.5, "{k}": 0.5}}), then to 1.0, re-running this report at each step.'
        )
    return Decision(recommendation=recommendation, summary=summary, reasons=reasons, next_step=next_step, checks=checks)


def _pf(ok: bool) -> Outcome:
    return "pass" if ok else "fail"


def _missing_arm(test: ProportionTest) -> str:
    return test.group_a if test.n_a == 0 else test.group_b


def _error_rate_check(rules: DecisionRules, test: ProportionTest) -> RuleCheck:
    """The candidate fails more often than the control, beyond chance."""
    k, c = rules.candidate, rules.control
    check = f"{k}'s server-error rate compared with {c}'s"
    threshold = f"not significantly higher (alpha {rules.alpha:g})"
    if test.rate_a is None or test.rate_b is None:
        measured = f"no {_missing_arm(test)} requests"
        finding = f"{k}'s server-error rate cannot be compared yet: no {_missing_arm(test)} requests"
        outcome: Outcome = "not evaluated"
    else:
        worse = test.significant and (test.difference or 0.0) > 0
        rates = f"{k} {test.rate_a:.2%} ({test.k_a}/{test.n_a}), {c} {test.rate_b:.2%} ({test.k_b}/{test.n_b})"
        measured = f"{rates}, p {p_equals(test.p_value)}"
        verdict = "significantly higher" if worse else "not significantly higher"
        finding = f"{k}'s server-error rate is {verdict} than {c}'s ({rates}, p {p_equals(test.p_value)})"
        outcome = _pf(not worse)
    return RuleCheck(
        rule=ERROR_RATE,
        check=check,
        measured=measured,
        threshold=threshold,
        finding=finding,
        consequence="roll back",
        outcome=outcome,
        detail=test.statement,
    )


def _error_budget_check(rules: DecisionRules, candidate: ArmFacts) -> RuleCheck:
    """The candidate's error rate is confidently above the absolute budget."""
    k = rules.candidate
    budget = f"{rules.max_error_rate:.2%}"
    bound = f"lower {rules.confidence:.0%} bound"
    ci = wilson_interval(candidate.server_errors, candidate.requests, rules.confidence)
    if candidate.requests == 0:
        measured = f"no {k} requests"
        outcome: Outcome = "not evaluated"
        finding = f"{k}'s error budget cannot be checked yet: no {k} requests"
        detail = f"no {k} requests"
    else:
        over = ci.low > rules.max_error_rate
        errors = f"{candidate.server_errors}/{candidate.requests} errors, {bound} {ci.low:.2%}"
        measured = errors
        outcome = _pf(not over)
        finding = f"{k}'s server-error rate is {'over' if over else 'within'} the {budget} budget ({errors})"
        detail = (
            f"{candidate.server_errors}/{candidate.requests} errors, {rules.confidence:.0%} CI "
            f"[{ci.low:.2%}, {ci.high:.2%}]"
        )
    return RuleCheck(
        rule=ERROR_BUDGET,
        check=f"{k}'s server-error rate against the budget",
        measured=measured,
        threshold=f"{bound} at most {budget}",
        finding=finding,
        consequence="roll back",
        outcome=outcome,
        detail=detail,
    )


def _latency_check(rules: DecisionRules, candidate: ArmFacts) -> RuleCheck:
    """The candidate's tail latency is over the budget."""
    k, budget, n = rules.candidate, f"{rules.latency_budget_ms:g} ms", candidate.latency_n
    p95 = candidate.latency_p95_ms
    if n >= rules.min_latency_samples and p95 is not None:
        within = p95 <= rules.latency_budget_ms
        measured = f"p95 {p95:.1f} ms over {n} successful requests"
        finding = f"{k}'s p95 latency is {p95:.1f} ms, {'within' if within else 'over'} the {budget} budget"
        outcome = _pf(within)
    else:
        measured = f"{n} successful requests"
        finding = f"{k}'s latency cannot be checked yet: {n} successful requests, {rules.min_latency_samples} needed"
        outcome = "not evaluated"
    return RuleCheck(
        rule=LATENCY,
        check=f"{k}'s p95 latency",
        measured=measured,
        threshold=f"at most {budget} (from {rules.min_latency_samples} requests)",
        finding=finding,
        consequence="roll back",
        outcome=outcome,
        detail=measured if outcome != "not evaluated" else f"{n} latency samples (< {rules.min_latency_samples})",
    )


def _traffic_check(rules: DecisionRules, control: ArmFacts, candidate: ArmFacts) -> RuleCheck:
    """Enough data in both arms for the comparisons to mean something."""
    need = rules.min_requests
    arms = [(rules.control, control.requests), (rules.candidate, candidate.requests)]
    short = [(name, n) for name, n in arms if n < need]
    if short:
        counts = ", ".join(f"{name} arm: {n} requests" for name, n in short)
        finding = f"not enough traffic yet ({counts}, {need}{' each' if len(short) > 1 else ''} needed)"
    else:
        counts = ", ".join(f"{name} arm: {n} requests" for name, n in arms)
        finding = f"enough traffic ({counts}, {need} each needed)"
    return RuleCheck(
        rule=TRAFFIC,
        check="requests per arm",
        measured=", ".join(f"{name} {n}" for name, n in arms),
        threshold=f"at least {need} each",
        finding=finding,
        consequence="keep",
        outcome=_pf(not short),
        detail=", ".join(f"{name}: {n}" for name, n in arms),
    )


def _label_shift_check(rules: DecisionRules, test: ProportionTest) -> RuleCheck:
    """The candidate labels inputs like the control, within the tolerated shift."""
    k, c, label = rules.candidate, rules.control, rules.positive_label
    tolerated = f"{rules.max_label_shift * 100:g} pp"
    shift = test.difference
    if test.rate_a is None or test.rate_b is None or shift is None:
        measured = f"no successful {_missing_arm(test)} predictions"
        finding = f"the {label} rate cannot be compared yet: no successful {_missing_arm(test)} predictions"
        outcome: Outcome = "not evaluated"
    else:
        rates = f"{k} {test.rate_a:.2%} vs {c} {test.rate_b:.2%}"
        measured = f"{shift * 100:+.2f} pp ({rates}), p {p_equals(test.p_value)}"
        too_far = abs(shift) > rules.max_label_shift
        if test.significant and too_far:
            finding = (
                f"the {label} rate shifted by {shift * 100:+.2f} pp ({rates}, significant), "
                f"more than the {tolerated} tolerated"
            )
        else:
            why = f"within the {tolerated} tolerated" if not too_far else "not significant"
            finding = f"the {label} rate shifted by {shift * 100:+.2f} pp ({rates}), {why}"
        outcome = _pf(not (test.significant and too_far))
    return RuleCheck(
        rule=LABEL_SHIFT,
        check=f"{label} rate of {k} against {c}",
        measured=measured,
        threshold=f"a shift of at most {tolerated}, or not significant (alpha {rules.alpha:g})",
        finding=finding,
        consequence="keep",
        outcome=outcome,
        detail=test.statement,
    )


def _shadow_check(rules: DecisionRules, shadow_n: int, shadow_agree: int) -> RuleCheck:
    """On the same inputs (shadow runs) the two models mostly agree. Optional: needs shadow traffic."""
    c, k, need = rules.control, rules.candidate, f"{rules.min_shadow_agreement:.0%}"
    if shadow_n >= rules.min_shadow_samples:
        rate = shadow_agree / shadow_n
        measured = f"{shadow_agree}/{shadow_n} agree ({rate:.1%})"
        finding = f"{c} and {k} agree on {rate:.1%} of shadowed inputs ({shadow_agree}/{shadow_n}), {need} needed"
        outcome: Outcome = _pf(rate >= rules.min_shadow_agreement)
        detail = f"{shadow_agree}/{shadow_n} shadow predictions agree ({rate:.1%})"
    else:
        measured = f"{shadow_n} shadow comparisons"
        finding = (
            f"shadow agreement not measured: {shadow_n} shadow comparisons, {rules.min_shadow_samples} needed "
            "(set shadow_rate in the ab-weights to collect them)"
        )
        outcome = "not evaluated"
        detail = f"{shadow_n} shadow comparisons (< {rules.min_shadow_samples}); set shadow_rate to collect more"
    return RuleCheck(
        rule=SHADOW_AGREEMENT,
        check=f"agreement of {c} and {k} on shadowed inputs",
        measured=measured,
        threshold=f"at least {need} (from {rules.min_shadow_samples} comparisons; skipped without shadow traffic)",
        finding=finding,
        consequence="keep",
        outcome=outcome,
        detail=detail,
    )
