"""Deciders: turn a rule's aggregate values into a `Decision` (pass/fail, reason, metrics)."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from dq_platform.dq.compiler.literals import check_number, condition_text, fmt, numbers
from dq_platform.dq.compiler.model import Decider, Decision
from dq_platform.dq.dqdl.ast import Condition


def row_decider(metric: str, threshold: Condition | None, now: datetime) -> Decider:
    """A row-level rule: every row passes (no threshold), or the passing fraction meets the threshold."""
    if threshold is not None:
        numbers(threshold, now)  # reject bad thresholds at compile time, with the rule's line

    def decide(v: Mapping[str, Any]) -> Decision:
        passed, failed = int(v.get("pass") or 0), int(v.get("fail") or 0)
        total = passed + failed
        if total == 0:
            return Decision(False, "no rows to evaluate (empty dataset or filter)", {}, 0)
        ratio = passed / total
        metrics = {metric: ratio}
        if threshold is None:
            if failed == 0:
                return Decision(True, None, metrics, 0)
            return Decision(False, f"{failed} of {total} rows did not satisfy the rule", metrics, failed)
        if check_number(threshold, ratio, now):
            return Decision(True, None, metrics, failed)
        return Decision(
            False,
            f"Value: {fmt(ratio)} does not meet the threshold {condition_text(threshold)} "
            f"({failed} of {total} rows failed)",
            metrics,
            failed,
        )

    return decide


def metric_decider(metric: str, cond: Condition, compute: Callable[[Mapping[str, Any]], Any], now: datetime) -> Decider:
    """A dataset-level rule: one number computed from the aggregates meets the condition."""
    numbers(cond, now)  # reject non-numeric or dynamic conditions at compile time

    def decide(v: Mapping[str, Any]) -> Decision:
        value = compute(v)
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return Decision(False, "no values to evaluate (empty dataset, filter or all NULL)", {})
        value = float(value)
        metrics = {metric: value}
        if check_number(cond, value, now):
            return Decision(True, None, metrics)
        return Decision(False, f"Value: {fmt(value)} does not meet the constraint {condition_text(cond)}", metrics)

    return decide


def constant_decider(passed: bool, reason: str | None, metrics: dict[str, float]) -> Decider:
    """A rule decided at compile time from the input's columns (ColumnExists, ColumnNamesMatchPattern)."""

    def decide(v: Mapping[str, Any]) -> Decision:
        return Decision(passed, reason, dict(metrics))

    return decide
