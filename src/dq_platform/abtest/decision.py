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


class RuleCheck(BaseModel):
    model_config = ConfigDict(frozen=True)

    rule: str
    description: str
    consequence: Literal["roll back", "keep"]
    outcome: Outcome
    detail: str


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
    checks: list[RuleCheck] = []

    # R1: the candidate fails more often than the control, beyond chance.
    r1_fail = error_test.significant and (error_test.difference or 0.0) > 0
    checks.append(
        RuleCheck(
            rule="R1",
            description=f"{k}'s server-error rate is not significantly higher than {c}'s",
            consequence="roll back",
            outcome="not evaluated" if error_test.rate_a is None or error_test.rate_b is None else _pf(not r1_fail),
            detail=error_test.statement,
        )
    )
    # R2: the candidate's error rate is confidently above the absolute budget.
    ci = wilson_interval(candidate.server_errors, candidate.requests, rules.confidence)
    r2_outcome: Outcome = "not evaluated" if candidate.requests == 0 else _pf(not ci.low > rules.max_error_rate)
    checks.append(
        RuleCheck(
            rule="R2",
            description=f"{k}'s server-error rate is not above the budget of {rules.max_error_rate:.2%} "
            f"(lower {rules.confidence:.0%} bound)",
            consequence="roll back",
            outcome=r2_outcome,
            detail=(
                f"{candidate.server_errors}/{candidate.requests} errors, {rules.confidence:.0%} CI "
                f"[{ci.low:.2%}, {ci.high:.2%}]"
                if candidate.requests
                else f"no {k} requests"
            ),
        )
    )
    # R3: the candidate's tail latency is over the budget.
    enough_latency = candidate.latency_n >= rules.min_latency_samples and candidate.latency_p95_ms is not None
    p95 = candidate.latency_p95_ms
    checks.append(
        RuleCheck(
            rule="R3",
            description=f"{k}'s p95 latency is within {rules.latency_budget_ms:g} ms",
            consequence="roll back",
            outcome=_pf(p95 is not None and p95 <= rules.latency_budget_ms) if enough_latency else "not evaluated",
            detail=(
                f"p95 {p95:.1f} ms over {candidate.latency_n} successful requests"
                if enough_latency and p95 is not None
                else f"{candidate.latency_n} latency samples (< {rules.min_latency_samples})"
            ),
        )
    )
    # K1: enough data in both arms for the comparisons to mean something.
    enough = control.requests >= rules.min_requests and candidate.requests >= rules.min_requests
    checks.append(
        RuleCheck(
            rule="K1",
            description=f"each arm has at least {rules.min_requests} requests",
            consequence="keep",
            outcome=_pf(enough),
            detail=f"{c}: {control.requests}, {k}: {candidate.requests}",
        )
    )
    # K2: the candidate labels inputs like the control, within the tolerated shift.
    shift = label_test.difference
    if shift is None:
        k2_outcome: Outcome = "not evaluated"
    else:
        k2_outcome = _pf(not (label_test.significant and abs(shift) > rules.max_label_shift))
    checks.append(
        RuleCheck(
            rule="K2",
            description=f"{rules.positive_label} rate does not shift by more than "
            f"{rules.max_label_shift * 100:g} pp (significant shifts only)",
            consequence="keep",
            outcome=k2_outcome,
            detail=label_test.statement,
        )
    )
    # K3: on the same inputs (shadow runs) the two models mostly agree. Optional: needs shadow traffic.
    if shadow_n >= rules.min_shadow_samples:
        rate = shadow_agree / shadow_n
        k3_outcome: Outcome = _pf(rate >= rules.min_shadow_agreement)
        k3_detail = f"{shadow_agree}/{shadow_n} shadow predictions agree ({rate:.1%})"
    else:
        k3_outcome = "not evaluated"
        k3_detail = f"{shadow_n} shadow comparisons (< {rules.min_shadow_samples}); set shadow_rate to collect more"
    checks.append(
        RuleCheck(
            rule="K3",
            description=f"{c} and {k} agree on at least {rules.min_shadow_agreement:.0%} of shadowed inputs",
            consequence="keep",
            outcome=k3_outcome,
            detail=k3_detail,
        )
    )

    failed_rollback = [ch for ch in checks if ch.consequence == "roll back" and ch.outcome == "fail"]
    # K3 may be skipped (shadowing is optional); K1 and K2 must pass to promote.
    blocking_keep = [
        ch
        for ch in checks
        if ch.consequence == "keep" and (ch.outcome == "fail" or (ch.outcome == "not evaluated" and ch.rule != "K3"))
    ]
    if failed_rollback:
        recommendation: Recommendation = "roll back"
        reasons = [f"{ch.rule}: {ch.description} - failed: {ch.detail}" for ch in failed_rollback]
        summary = f"Roll back {k}: " + "; ".join(_short(ch) for ch in failed_rollback) + "."
        next_step = (
            f"Set {k}'s weight to 0 in the ab-weights SSM parameter (e.g. "
            f'{{"{c}": 1.0, "{k}": 0.0, "shadow_rate": 0.0}}); it takes effect within the cache TTL, no redeploy.'
        )
    elif blocking_keep:
        recommendation = "keep"
        reasons = [f"{ch.rule}: {ch.description} - {ch.outcome}: {ch.detail}" for ch in blocking_keep]
        summary = "Keep the current split: " + "; ".join(_short(ch) for ch in blocking_keep) + "."
        next_step = (
            "Leave the weights as they are and re-run the report when more traffic has arrived; a significant "
            f"{rules.positive_label}-rate shift needs a labelled review before {k} can be promoted."
        )
    else:
        recommendation = "promote"
        reasons = [f"{ch.rule}: {ch.description} - {ch.outcome}" for ch in checks]
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


def _short(check: RuleCheck) -> str:
    if check.outcome == "not evaluated":
        return f"{check.rule} could not be evaluated ({check.detail})"
    return f"{check.rule} failed ({check.description})"
