"""The compiled rule model: one `Node` per rule (leaf or composite), its `TopRule`, and the decisions.

A node carries the SQL the engines run (a row-level status and/or aggregates) and a `Decider` that turns
the aggregate values back into an outcome in Python, so that DuckDB and Spark share the decision code.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from dq_platform.dq.dialect import Dialect
from dq_platform.dq.schema import PARSE_ERROR

ACTIONS = ("warn", "quarantine", "halt")
PRIMARY_VIEW = "dq_primary"
SOURCE_TOKEN = "__dq_source__"  # noqa: S105 - in joins: replaced by the relation the row pass reads


class RuleError(Exception):
    """A data-dependent problem with one rule (unknown column, missing reference): Outcome Error."""


@dataclass
class Decision:
    passed: bool
    reason: str | None
    metrics: dict[str, float]
    rows_failed: int | None = None


Decider = Callable[[Mapping[str, Any]], Decision]


@dataclass
class Node:
    """One compiled rule (leaf or composite). Aggregates live under `m{idx}_<name>`."""

    idx: int
    text: str
    rule_type: str
    status_sql: str | None = None  # row-level status expression over the base relation
    filter_sql: str = f"{PARSE_ERROR} IS NULL"
    helpers: dict[str, str] = field(default_factory=dict)  # materialised helper columns
    metrics: dict[str, str] = field(default_factory=dict)  # aggregates over the evaluated relation
    scalar_sql: str | None = None  # a query of its own (CustomSql with a condition)
    joins: list[str] = field(default_factory=list)  # may name SOURCE_TOKEN: the relation being evaluated
    broadcast: list[str] = field(default_factory=list)  # join aliases small enough to broadcast (Spark hint)
    decide: Decider | None = None
    error: str | None = None
    children: list[Node] = field(default_factory=list)
    op: str | None = None  # and | or for composites

    @property
    def status_col(self) -> str:
        return f"_r{self.idx}"

    @property
    def row_level(self) -> bool:
        return self.status_sql is not None and self.error is None

    def metric_col(self, name: str) -> str:
        return f"m{self.idx}_{name}"

    def local(self, values: Mapping[str, Any]) -> dict[str, Any]:
        prefix = f"m{self.idx}_"
        out = {k[len(prefix) :]: v for k, v in values.items() if k.startswith(prefix)}
        if self.scalar_sql is not None:
            out["scalar"] = values.get(f"s{self.idx}")
        return out

    def failed_rows(self, values: Mapping[str, Any]) -> int:
        """Rows whose status is 0 (fail), from the aggregate values."""
        return int(self.local(values).get("fail") or 0)

    def walk(self) -> list[Node]:
        out = [self]
        for child in self.children:
            out.extend(child.walk())
        return out

    def evaluate(self, values: Mapping[str, Any]) -> Decision:
        """The rule's decision from the aggregate values: a leaf asks its decider, a composite combines
        its operands' decisions (and: all pass, or: any passes)."""
        if not self.children:
            assert self.decide is not None
            return self.decide(self.local(values))
        kids = [k.evaluate(values) for k in self.children]
        passed = all(k.passed for k in kids) if self.op == "and" else any(k.passed for k in kids)
        metrics: dict[str, float] = {}
        for k in kids:
            metrics.update(k.metrics)
        failing = [c.text for c, k in zip(self.children, kids, strict=True) if not k.passed]
        reason = None if passed else f"{self.op} of operands failed: " + "; ".join(failing)
        rows_failed = self.failed_rows(values) if self.status_sql is not None else None
        return Decision(passed, reason, metrics, rows_failed)


@dataclass
class TopRule:
    text: str
    action: str
    labels: dict[str, str]
    node: Node

    @property
    def row_level(self) -> bool:
        return self.node.row_level


@dataclass
class Context:
    dialect: Dialect
    columns: dict[str, str]  # data column -> type
    source_columns: list[str]  # columns as found in the input (ColumnExists / ColumnCount)
    now: datetime
    variables: dict[str, str | list[str]] = field(default_factory=dict)
    references: dict[str, tuple[str, list[str]]] = field(default_factory=dict)  # alias -> (view, cols)
