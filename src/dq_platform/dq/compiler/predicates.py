"""Row predicates for value conditions (`ColumnValues`, `ColumnLength`).

NULL values fail positive conditions and pass negated ones unless the condition names NULL itself.
"""

from __future__ import annotations

import re

from dq_platform.dq.compiler.literals import mentions_now, sql_literal
from dq_platform.dq.compiler.model import Context
from dq_platform.dq.dqdl.ast import BinOp, Condition, DQDLError, Keyword, Now, Number, String, Value, VarRef


def _operands(cond: Condition, ctx: Context) -> list[Value]:
    """The condition's operands, with `in $variable` expanded to the variable's strings."""
    operands = list(cond.operands)
    if cond.op in ("in", "not in") and len(operands) == 1 and isinstance(operands[0], VarRef):
        var = ctx.variables.get(operands[0].name)
        if var is None:
            raise DQDLError(f"unknown variable ${operands[0].name}", cond.pos.line, cond.pos.column)
        operands = [String(v) for v in ([var] if isinstance(var, str) else var)]
    return operands


def _typed(expr: str, col_type: str, operands: list[Value]) -> tuple[str, str]:
    """The expression cast to what its operands compare with: numbers (a string column compared with
    numbers) or timestamps (anything compared with now())."""
    uses_now = any(isinstance(v, Now) or (isinstance(v, BinOp) and mentions_now(v)) for v in operands)
    uses_number = any(isinstance(v, Number | BinOp) for v in operands) and not any(
        isinstance(v, BinOp) and mentions_now(v) for v in operands
    )
    if uses_number and col_type == "string":
        expr, col_type = f"TRY_CAST({expr} AS DOUBLE)", "double"
    if uses_now:
        expr = f"CAST({expr} AS TIMESTAMP)"
    return expr, col_type


def _keyword_pred(expr: str, name: str) -> str:
    if name == "NULL":
        return f"{expr} IS NULL"
    if name == "EMPTY":
        return f"{expr} = ''"
    return f"(length({expr}) > 0 AND trim({expr}) = '')"


def _negated(op: str, pred: str) -> str:
    """`pred` for a positive operator, `NOT COALESCE(pred, FALSE)` for its negation (NULL passes)."""
    return f"NOT COALESCE({pred}, FALSE)" if op.startswith("not ") else pred


def _between(expr: str, col_type: str, cond: Condition, operands: list[Value], ctx: Context) -> str:
    lo, hi = (sql_literal(v, col_type, ctx.dialect, ctx.now) for v in operands)
    return _negated(cond.op, f"({expr} > {lo} AND {expr} < {hi})")


def _in(expr: str, col_type: str, cond: Condition, operands: list[Value], ctx: Context) -> str:
    keywords = {v.name for v in operands if isinstance(v, Keyword)}
    plain = [v for v in operands if not isinstance(v, Keyword)]
    parts = [_keyword_pred(expr, k) for k in sorted(keywords)]
    if plain:
        literals = ", ".join(sql_literal(v, col_type, ctx.dialect, ctx.now) for v in plain)
        parts.insert(0, f"{expr} IN ({literals})")
    return _negated(cond.op, "(" + " OR ".join(parts or ["FALSE"]) + ")")


def _matches(expr: str, col_type: str, cond: Condition, operands: list[Value], ctx: Context) -> str:
    if col_type != "string":
        raise DQDLError("'matches' needs a string column", cond.pos.line, cond.pos.column)
    pattern = operands[0]
    assert isinstance(pattern, String)
    try:
        re.compile(pattern.value)
    except re.error as exc:
        raise DQDLError(f"invalid regular expression: {exc}", cond.pos.line, cond.pos.column) from exc
    return _negated(cond.op, ctx.dialect.regex_full_match(expr, pattern.value))


def _compare(expr: str, col_type: str, cond: Condition, operands: list[Value], ctx: Context) -> str:
    op, value = cond.op, operands[0]
    if isinstance(value, Keyword):
        pred = _keyword_pred(expr, value.name)
        if op == "=":
            return pred
        if op == "!=":
            return f"NOT COALESCE({pred}, FALSE)"
        raise DQDLError(f"'{op}' cannot be used with {value.name}", cond.pos.line, cond.pos.column)
    sql_op = "<>" if op == "!=" else op
    pred = f"{expr} {sql_op} {sql_literal(value, col_type, ctx.dialect, ctx.now)}"
    return f"({expr} IS NULL OR {pred})" if op == "!=" else pred


_BY_OPERATOR = {
    "between": _between,
    "not between": _between,
    "in": _in,
    "not in": _in,
    "matches": _matches,
    "not matches": _matches,
}


def value_pred(expr: str, col_type: str, cond: Condition, ctx: Context) -> str:
    """Row predicate: the value `expr` (a column of `col_type`) meets `cond`."""
    operands = _operands(cond, ctx)
    expr, col_type = _typed(expr, col_type, operands)
    build = _BY_OPERATOR.get(cond.op, _compare)
    return build(expr, col_type, cond, operands, ctx)
