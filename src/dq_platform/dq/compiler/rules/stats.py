"""Statistics over a numeric column: Mean, Sum, StandardDeviation, Variance, ColumnCorrelation."""

from __future__ import annotations

from dq_platform.dq.compiler.builder import RuleBuilder
from dq_platform.dq.compiler.model import Node
from dq_platform.dq.dqdl.ast import Rule


def _stat(b: RuleBuilder, node: Node, rule: Rule, fn: str, metric: str) -> None:
    (name,), cond = b.dataset_condition(rule, 1)
    expr = b.numeric(name)
    node.metrics = {"x": f"{fn}(CASE WHEN {b.filt(rule)} THEN {expr} END)"}
    node.decide = b.metric_decider(f"Column.{name}.{metric}", cond, lambda v: v.get("x"))


def mean(b: RuleBuilder, node: Node, rule: Rule) -> None:
    _stat(b, node, rule, "AVG", "Mean")


def sum_(b: RuleBuilder, node: Node, rule: Rule) -> None:
    _stat(b, node, rule, "SUM", "Sum")


def standard_deviation(b: RuleBuilder, node: Node, rule: Rule) -> None:
    _stat(b, node, rule, "STDDEV_POP", "StandardDeviation")


def variance(b: RuleBuilder, node: Node, rule: Rule) -> None:
    _stat(b, node, rule, "VAR_POP", "Variance")


def column_correlation(b: RuleBuilder, node: Node, rule: Rule) -> None:
    (first, second), cond = b.dataset_condition(rule, 2)
    a, c = b.numeric(first), b.numeric(second)
    f = b.filt(rule)
    node.metrics = {"x": f"CORR(CASE WHEN {f} THEN {a} END, CASE WHEN {f} THEN {c} END)"}
    node.decide = b.metric_decider(f"Multicolumn.{first},{second}.ColumnCorrelation", cond, lambda v: v.get("x"))
