"""Rules carrying SQL or another dataset: CustomSql (a number, or the rows a query keeps) and
ReferentialIntegrity (keys found in a reference dataset)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from dq_platform.dq.compiler.builder import RuleBuilder, pass_fail_metrics, status
from dq_platform.dq.compiler.literals import ratio
from dq_platform.dq.compiler.model import PRIMARY_VIEW, Decision, Node, RuleError
from dq_platform.dq.dqdl.ast import DQDLError, Rule

_PRIMARY_WORD = re.compile(r"\bprimary\b", re.IGNORECASE)
_ROW_SQL = re.compile(
    r"^\s*select\s+(?P<cols>.+?)\s+from\s+primary\b(?:\s+where\s+(?P<pred>.+?))?\s*;?\s*$",
    re.IGNORECASE | re.DOTALL,
)


def custom_sql(b: RuleBuilder, node: Node, rule: Rule) -> None:
    (sql,) = b.params(rule, 1)
    b.no_where(rule)
    adapted = b.d.user_sql(sql)
    if rule.condition is not None:
        b.no_threshold(rule)
        node.scalar_sql = _PRIMARY_WORD.sub(PRIMARY_VIEW, adapted)
        node.decide = b.metric_decider("Dataset.*.CustomSQL", rule.condition, lambda v: v.get("scalar"))
        return
    shape = _ROW_SQL.match(adapted)
    if shape is None:
        raise DQDLError(
            "row-level CustomSql must read 'select <columns> from primary [where <condition>]' "
            "(add a condition such as '> 0' to use any query that returns one number)",
            rule.pos.line,
            rule.pos.column,
        )
    pred = _PRIMARY_WORD.sub(PRIMARY_VIEW, shape.group("pred") or "TRUE")
    b.row_rule(node, rule, f"COALESCE(({pred}), FALSE)", "Dataset.*.CustomSQL.Compliance")


def _reference_columns(rule: Rule, cols_text: str, ref_text: str) -> tuple[list[str], str, list[str]]:
    """("a,b", "alias.{x,y}") -> (["a", "b"], "alias", ["x", "y"])."""
    names = [c.strip() for c in cols_text.split(",") if c.strip()]
    alias, _, ref_part = ref_text.partition(".")
    ref_part = ref_part.strip()
    if ref_part.startswith("{") and ref_part.endswith("}"):
        ref_names = [c.strip() for c in ref_part[1:-1].split(",") if c.strip()]
    else:
        ref_names = [ref_part] if ref_part else []
    if not alias or len(ref_names) != len(names):
        raise DQDLError(
            'ReferentialIntegrity needs "cols" "alias.{refcols}" with as many reference columns as columns',
            rule.pos.line,
            rule.pos.column,
        )
    return names, alias, ref_names


def referential_integrity(b: RuleBuilder, node: Node, rule: Rule) -> None:
    (cols_text, ref_text), cond = b.dataset_condition(rule, 2)
    b.no_where(rule)
    names, alias, ref_names = _reference_columns(rule, cols_text, ref_text)
    if alias not in b.ctx.references:
        raise RuleError(f"reference dataset '{alias}' was not provided")
    view, ref_cols = b.ctx.references[alias]
    for r in ref_names:
        if r not in ref_cols:
            raise RuleError(f"column '{r}' not found in reference dataset '{alias}'")
    exprs = [b.col(n)[0] for n in names]
    j = f"ri{node.idx}"
    picks = ", ".join(f"{b.d.ident(r)} AS {j}_{k}" for k, r in enumerate(ref_names))
    ons = " AND ".join(f"{e} = {j}.{j}_{k}" for k, e in enumerate(exprs))
    node.joins.append(f"LEFT JOIN (SELECT DISTINCT {picks}, 1 AS {j}_m FROM {view}) {j} ON {ons}")  # noqa: S608 - compiled from the ruleset
    node.filter_sql = b.filt(rule)
    node.status_sql = status(node.filter_sql, f"{j}.{j}_m IS NOT NULL")
    node.metrics = pass_fail_metrics(node)
    metric = f"Column.{','.join(names)}.ReferentialIntegrity"
    ratio_decide = b.metric_decider(metric, cond, lambda v: ratio(v, "pass", "total"))

    def decide(v: Mapping[str, Any]) -> Decision:
        failed = int(v.get("fail") or 0)
        out = ratio_decide({**v, "total": int(v.get("pass") or 0) + failed})
        out.rows_failed = failed
        return out

    node.decide = decide
