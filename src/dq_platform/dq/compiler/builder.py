"""What every rule handler builds with: columns, filters, parameters, statuses and deciders."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from dq_platform.dq.compiler import deciders
from dq_platform.dq.compiler.literals import NUMERIC, sql_literal
from dq_platform.dq.compiler.model import SOURCE_TOKEN, Context, Decider, Node, RuleError
from dq_platform.dq.compiler.predicates import value_pred
from dq_platform.dq.dqdl.ast import Condition, DQDLError, Rule, Value
from dq_platform.dq.schema import PARSE_ERROR


def status(filt: str, pred: str) -> str:
    """Row status: NULL (skipped: filtered out), 1 (the predicate holds) or 0."""
    return f"CASE WHEN NOT {filt} THEN NULL WHEN ({pred}) THEN 1 ELSE 0 END"


def pass_fail_metrics(node: Node) -> dict[str, str]:
    """The aggregates of a row-level rule: rows passing and rows failing."""
    return {
        "pass": f"SUM(CASE WHEN {node.status_col} = 1 THEN 1 ELSE 0 END)",
        "fail": f"SUM(CASE WHEN {node.status_col} = 0 THEN 1 ELSE 0 END)",
    }


class RuleBuilder:
    """Shared state of one compilation (the context and the duplicate-key joins shared between rules)
    and the helpers rule handlers use."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.d = ctx.dialect
        self.key_aliases: dict[tuple[str, str], str] = {}  # (key columns, filter) -> shared join alias

    # ---- rule shape ----------------------------------------------------------------------------
    def col(self, name: str) -> tuple[str, str]:
        if name not in self.ctx.columns:
            raise RuleError(f"column '{name}' not found in the dataset")
        return self.d.ident(name), self.ctx.columns[name]

    def filt(self, rule: Rule) -> str:
        if rule.where is None:
            return f"{PARSE_ERROR} IS NULL"
        return f"({PARSE_ERROR} IS NULL AND COALESCE(({self.d.user_sql(rule.where)}), FALSE))"

    def params(self, rule: Rule, n_min: int, n_max: int | None = None) -> list[str]:
        n_max = n_min if n_max is None else n_max
        if not n_min <= len(rule.params) <= n_max:
            want = str(n_min) if n_min == n_max else f"{n_min} to {n_max}"
            raise DQDLError(
                f"{rule.rule_type} takes {want} parameter(s), found {len(rule.params)}", rule.pos.line, rule.pos.column
            )
        return [self._param(rule, p) for p in rule.params]

    def _param(self, rule: Rule, p: str) -> str:
        if not p.startswith("$"):
            return p
        val = self.ctx.variables.get(p[1:])
        if not isinstance(val, str):
            raise DQDLError(f"unknown string variable {p}", rule.pos.line, rule.pos.column)
        return val

    def need_condition(self, rule: Rule) -> Condition:
        if rule.condition is None:
            raise DQDLError(f"{rule.rule_type} needs a condition", rule.pos.line, rule.pos.column)
        return rule.condition

    def no_condition(self, rule: Rule) -> None:
        if rule.condition is not None:
            raise DQDLError(f"{rule.rule_type} takes no condition", rule.pos.line, rule.pos.column)

    def no_threshold(self, rule: Rule) -> None:
        if rule.threshold is not None:
            raise DQDLError(f"'with threshold' is not supported for {rule.rule_type}", rule.pos.line, rule.pos.column)

    def no_where(self, rule: Rule) -> None:
        if rule.where is not None:
            raise DQDLError(f"{rule.rule_type} does not take a where clause", rule.pos.line, rule.pos.column)

    def dataset_condition(self, rule: Rule, n_params: int) -> tuple[list[str], Condition]:
        """Parameters and condition of a dataset-level rule (no threshold)."""
        names = self.params(rule, n_params)
        cond = self.need_condition(rule)
        self.no_threshold(rule)
        return names, cond

    # ---- SQL -----------------------------------------------------------------------------------
    def lit(self, value: Value, col_type: str) -> str:
        """SQL literal for comparing with a column of `col_type`."""
        return sql_literal(value, col_type, self.d, self.ctx.now)

    def value_pred(self, expr: str, col_type: str, cond: Condition) -> str:
        return value_pred(expr, col_type, cond, self.ctx)

    def numeric(self, name: str) -> str:
        expr, col_type = self.col(name)
        if col_type in NUMERIC:
            return expr
        if col_type == "string":
            return f"TRY_CAST({expr} AS DOUBLE)"
        raise RuleError(f"column '{name}' is not numeric")

    def key(self, names: list[str]) -> tuple[str, str]:
        exprs = [self.col(n)[0] for n in names]
        return ", ".join(exprs), " AND ".join(f"{e} IS NOT NULL" for e in exprs)

    def key_count(self, node: Node, rule: Rule, names: list[str]) -> str:
        """Per-row count of rows sharing the (non-NULL) key and passing the rule's filter.

        A GROUP BY of the duplicated keys only, joined back (broadcast in Spark), instead of a window over
        whole rows: the window shuffled/sorted every column of every row. Only consulted for rows that pass
        the filter with a complete key, whose count is at least 1, so a key not in the join counts 1.
        """
        keys, not_null = self.key(names)
        exprs = [self.col(n)[0] for n in names]
        f = self.filt(rule)
        j = self.key_aliases.setdefault((keys, f), f"u{node.idx}")
        picks = ", ".join(f"{e} AS {j}_k{k}" for k, e in enumerate(exprs))
        ons = " AND ".join(f"{e} = {j}.{j}_k{k}" for k, e in enumerate(exprs))
        count = f"SUM(CASE WHEN {f} THEN 1 ELSE 0 END)"
        node.joins.append(
            f"LEFT JOIN (SELECT {picks}, {count} AS {j}_n FROM {SOURCE_TOKEN} WHERE {not_null} "  # noqa: S608
            f"GROUP BY {keys} HAVING {count} > 1) {j} ON {ons}"
        )
        node.broadcast.append(j)
        return f"COALESCE({j}.{j}_n, 1)"

    # ---- decisions -----------------------------------------------------------------------------
    def row_decider(self, metric: str, threshold: Condition | None) -> Decider:
        return deciders.row_decider(metric, threshold, self.ctx.now)

    def metric_decider(self, metric: str, cond: Condition, compute: Callable[[Mapping[str, Any]], Any]) -> Decider:
        return deciders.metric_decider(metric, cond, compute, self.ctx.now)

    def row_rule(self, node: Node, rule: Rule, pred: str, metric: str) -> None:
        """A row-level rule whose status is `pred` over the rows its filter keeps."""
        node.filter_sql = self.filt(rule)
        node.status_sql = status(node.filter_sql, pred)
        node.metrics = pass_fail_metrics(node)
        node.decide = self.row_decider(metric, rule.threshold)
