"""Rules on keys and distinct values: IsUnique, IsPrimaryKey, Uniqueness, UniqueValueRatio,
DistinctValuesCount. Key counts come from one GROUP BY of the duplicated keys (`RuleBuilder.key_count`)."""

from __future__ import annotations

from dq_platform.dq.compiler.builder import RuleBuilder, pass_fail_metrics, status
from dq_platform.dq.compiler.literals import ratio
from dq_platform.dq.compiler.model import Node
from dq_platform.dq.dqdl.ast import Rule

MAX_KEY_COLUMNS = 16


def _unique_row(b: RuleBuilder, node: Node, rule: Rule, require_complete: bool) -> None:
    names = b.params(rule, 1, MAX_KEY_COLUMNS)
    b.no_condition(rule)
    b.no_threshold(rule)
    _, not_null = b.key(names)
    f = b.filt(rule)
    n_same = b.key_count(node, rule, names)
    node.filter_sql = f
    if require_complete:
        node.status_sql = status(f, f"{not_null} AND {n_same} = 1")
    else:  # IsUnique: a NULL key is not a value, so it is skipped rather than failed
        node.status_sql = f"CASE WHEN NOT {f} OR NOT ({not_null}) THEN NULL WHEN {n_same} = 1 THEN 1 ELSE 0 END"
    node.metrics = pass_fail_metrics(node)
    node.decide = b.row_decider(f"Column.{','.join(names)}.Uniqueness", None)


def is_unique(b: RuleBuilder, node: Node, rule: Rule) -> None:
    _unique_row(b, node, rule, require_complete=False)


def is_primary_key(b: RuleBuilder, node: Node, rule: Rule) -> None:
    _unique_row(b, node, rule, require_complete=True)


def _unique_helper(b: RuleBuilder, node: Node, rule: Rule, names: list[str]) -> tuple[str, str]:
    """A materialised column: 1 where the row's key occurs once among the filtered rows."""
    _, not_null = b.key(names)
    f = b.filt(rule)
    n_same = b.key_count(node, rule, names)
    helper = f"_h{node.idx}"
    node.helpers[helper] = f"CASE WHEN {f} AND {not_null} AND {n_same} = 1 THEN 1 ELSE 0 END"
    return helper, f


def uniqueness(b: RuleBuilder, node: Node, rule: Rule) -> None:
    names = b.params(rule, 1, MAX_KEY_COLUMNS)
    cond = b.need_condition(rule)
    b.no_threshold(rule)
    helper, f = _unique_helper(b, node, rule, names)
    _, not_null = b.key(names)
    node.metrics = {
        "u": f"SUM({helper})",
        "n": f"SUM(CASE WHEN {f} AND {not_null} THEN 1 ELSE 0 END)",
    }
    metric = f"Column.{','.join(names)}.Uniqueness"
    node.decide = b.metric_decider(metric, cond, lambda v: ratio(v, "u", "n"))


def unique_value_ratio(b: RuleBuilder, node: Node, rule: Rule) -> None:
    (name,), cond = b.dataset_condition(rule, 1)
    helper, f = _unique_helper(b, node, rule, [name])
    expr, _ = b.col(name)
    node.metrics = {"u": f"SUM({helper})", "d": f"COUNT(DISTINCT CASE WHEN {f} THEN {expr} END)"}
    node.decide = b.metric_decider(f"Column.{name}.UniqueValueRatio", cond, lambda v: ratio(v, "u", "d"))


def distinct_values_count(b: RuleBuilder, node: Node, rule: Rule) -> None:
    (name,), cond = b.dataset_condition(rule, 1)
    expr, _ = b.col(name)
    node.metrics = {"d": f"COUNT(DISTINCT CASE WHEN {b.filt(rule)} THEN {expr} END)"}
    node.decide = b.metric_decider(f"Column.{name}.DistinctValuesCount", cond, lambda v: v.get("d") or 0)
