"""Rules about the dataset's shape: RowCount, ColumnCount, ColumnExists, ColumnNamesMatchPattern."""

from __future__ import annotations

import re

from dq_platform.dq.compiler.builder import RuleBuilder
from dq_platform.dq.compiler.deciders import constant_decider
from dq_platform.dq.compiler.model import Node
from dq_platform.dq.dqdl.ast import DQDLError, Rule


def row_count(b: RuleBuilder, node: Node, rule: Rule) -> None:
    _, cond = b.dataset_condition(rule, 0)
    node.metrics = {"n": f"SUM(CASE WHEN {b.filt(rule)} THEN 1 ELSE 0 END)"}
    node.decide = b.metric_decider("Dataset.*.RowCount", cond, lambda v: v.get("n") or 0)


def column_count(b: RuleBuilder, node: Node, rule: Rule) -> None:
    _, cond = b.dataset_condition(rule, 0)
    count = len(b.ctx.source_columns)
    node.decide = b.metric_decider("Dataset.*.ColumnCount", cond, lambda v: count)


def column_exists(b: RuleBuilder, node: Node, rule: Rule) -> None:
    (name,) = b.params(rule, 1)
    b.no_condition(rule)
    present = name in b.ctx.source_columns
    node.decide = constant_decider(present, None if present else f"column '{name}' does not exist in the input", {})


def column_names_match_pattern(b: RuleBuilder, node: Node, rule: Rule) -> None:
    (pattern,) = b.params(rule, 1)
    b.no_condition(rule)
    try:
        regex = re.compile(pattern)
    except re.error as exc:
        raise DQDLError(f"invalid regular expression: {exc}") from exc
    columns = b.ctx.source_columns
    bad = [c for c in columns if not regex.fullmatch(c)]
    ratio = (len(columns) - len(bad)) / max(1, len(columns))
    reason = f"{len(bad)} column name(s) do not match the pattern: {', '.join(bad[:10])}" if bad else None
    node.decide = constant_decider(not bad, reason, {"Dataset.*.ColumnNamesPatternMatchRatio": ratio})
