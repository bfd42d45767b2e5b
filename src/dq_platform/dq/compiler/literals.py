"""DQDL values: constants evaluated in Python, SQL literals, and the text of a condition."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from dq_platform.dq.dialect import Dialect
from dq_platform.dq.dqdl.ast import (
    BinOp,
    Call,
    Condition,
    DQDLError,
    Duration,
    Keyword,
    Now,
    Number,
    Size,
    String,
    UnsupportedRuleError,
    Value,
    VarRef,
)

DATE_LITERAL = re.compile(r"^\d{4}-\d{2}-\d{2}$")
# column types that behave as numbers / dates in conditions
NUMERIC = ("double", "bigint")
TEMPORAL = ("date", "timestamp")

_ARITHMETIC = {
    "+": lambda a, b: a + b,
    "-": lambda a, b: a - b,
    "*": lambda a, b: a * b,
    "/": lambda a, b: a / b,
}


def const(value: Value, now: datetime) -> float | datetime | timedelta:
    """The value of a constant expression: a number, `now()` (a datetime) or a duration."""
    if isinstance(value, Number):
        return value.value
    if isinstance(value, Now):
        return now
    if isinstance(value, Duration):
        return timedelta(seconds=value.seconds)
    if isinstance(value, Call):
        raise UnsupportedRuleError(
            f"'{value.name}(...)' is a dynamic (history-based) DQDL expression, which needs Glue's "
            "result history; use a fixed threshold"
        )
    if isinstance(value, BinOp):
        left, right = const(value.left, now), const(value.right, now)
        try:
            return _ARITHMETIC.get(value.op, _ARITHMETIC["/"])(left, right)  # type: ignore[no-any-return]
        except (TypeError, ZeroDivisionError) as exc:
            raise DQDLError(f"cannot evaluate expression: {exc}") from exc
    raise DQDLError(f"expected a number, found {type(value).__name__}")


def number(value: Value, now: datetime) -> float:
    out = const(value, now)
    if not isinstance(out, float | int):
        raise DQDLError("expected a numeric value in this condition")
    return float(out)


def numbers(cond: Condition, now: datetime) -> list[float]:
    out: list[float] = []
    for v in cond.operands:
        if isinstance(v, Keyword | String | VarRef):
            raise DQDLError(f"'{cond.op}' needs numbers here", cond.pos.line, cond.pos.column)
        out.append(number(v, now))
    return out


def check_number(cond: Condition, value: float, now: datetime) -> bool:
    ops = numbers(cond, now)
    op = cond.op
    if op in ("between", "not between"):
        inside = ops[0] < value < ops[1]  # DQDL's between is exclusive
        return inside if op == "between" else not inside
    if op in ("in", "not in"):
        found = any(math.isclose(value, o, rel_tol=0, abs_tol=1e-12) for o in ops)
        return found if op == "in" else not found
    target = ops[0]
    return {
        "=": value == target,
        "!=": value != target,
        ">": value > target,
        ">=": value >= target,
        "<": value < target,
        "<=": value <= target,
    }[op]


def show(v: Value) -> str:
    """A value as DQDL writes it."""
    if isinstance(v, Number):
        return f"{v.value:g}"
    if isinstance(v, String):
        return f'"{v.value}"'
    if isinstance(v, Keyword):
        return v.name
    if isinstance(v, Now):
        return "now()"
    if isinstance(v, Duration | Size):
        return f"{v.amount:g} {v.unit}"
    if isinstance(v, VarRef):
        return f"${v.name}"
    if isinstance(v, BinOp):
        return f"({show(v.left)} {v.op} {show(v.right)})"
    return f"{v.name}(...)"


def condition_text(cond: Condition | None) -> str:
    if cond is None:
        return ""
    if cond.op.endswith("between"):
        return f"{cond.op} {show(cond.operands[0])} and {show(cond.operands[1])}"
    if cond.op.endswith("in"):
        return f"{cond.op} [{', '.join(show(v) for v in cond.operands)}]"
    return f"{cond.op} {', '.join(show(v) for v in cond.operands)}"


def fmt(value: float) -> str:
    return f"{value:.6g}"


def mentions_now(v: Value) -> bool:
    if isinstance(v, Now):
        return True
    if isinstance(v, BinOp):
        return mentions_now(v.left) or mentions_now(v.right)
    return False


def ratio(v: Mapping[str, Any], num: str, den: str) -> float | None:
    d = v.get(den) or 0
    return None if not d else float(v.get(num) or 0) / float(d)


def timestamp(t: datetime) -> str:
    return f"TIMESTAMP '{t.strftime('%Y-%m-%d %H:%M:%S')}'"


def _string_literal(value: String, col_type: str, dialect: Dialect) -> str:
    if col_type in NUMERIC:
        try:
            return repr(float(value.value))
        except ValueError as exc:
            raise DQDLError(f'"{value.value}" is not a number') from exc
    if col_type in TEMPORAL:
        if not DATE_LITERAL.match(value.value):
            raise UnsupportedRuleError(f'"{value.value}": dates must be written "YYYY-MM-DD"')
        return f"DATE '{value.value}'"
    return dialect.string(value.value)


def sql_literal(value: Value, col_type: str, dialect: Dialect, now: datetime) -> str:
    """SQL literal for comparing with a column of `col_type`."""
    if isinstance(value, String):
        return _string_literal(value, col_type, dialect)
    out = const(value, now)
    if isinstance(out, datetime):
        if col_type not in TEMPORAL:
            raise DQDLError("now() can only be compared with a date column")
        return timestamp(out)
    if isinstance(out, timedelta):
        raise DQDLError("a duration needs a date to apply to, e.g. (now() - 3 days)")
    if col_type in TEMPORAL:
        raise DQDLError("a date column must be compared with a date or now()")
    return repr(float(out))
