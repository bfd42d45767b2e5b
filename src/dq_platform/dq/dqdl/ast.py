"""DQDL syntax tree: what the parser produces and the compiler consumes.

Kept free of evaluation logic so the same tree serves `dqp dq check`, the compiler and the docs.
"""

from __future__ import annotations

from dataclasses import dataclass, field


class DQDLError(Exception):
    """A ruleset problem the user must fix; the message names the line and column."""

    def __init__(self, message: str, line: int | None = None, column: int | None = None) -> None:
        self.line = line
        self.column = column
        self.reason = message
        where = f"line {line}, column {column}: " if line is not None and column is not None else ""
        super().__init__(f"{where}{message}")


class DQDLSyntaxError(DQDLError):
    """The text is not valid DQDL."""


class UnsupportedRuleError(DQDLError):
    """Valid DQDL that this engine cannot evaluate: rejected rather than silently passed."""


@dataclass(frozen=True)
class Pos:
    line: int
    column: int


# ---- values appearing in conditions -------------------------------------------------------------


@dataclass(frozen=True)
class Number:
    value: float


@dataclass(frozen=True)
class String:
    value: str


@dataclass(frozen=True)
class Keyword:
    """NULL, EMPTY or WHITESPACES_ONLY."""

    name: str


@dataclass(frozen=True)
class Now:
    pass


@dataclass(frozen=True)
class Duration:
    amount: float
    unit: str  # days | hours | minutes

    @property
    def seconds(self) -> float:
        return self.amount * {"days": 86400.0, "hours": 3600.0, "minutes": 60.0}[self.unit]


@dataclass(frozen=True)
class Size:
    amount: float
    unit: str


@dataclass(frozen=True)
class BinOp:
    op: str  # + - * /
    left: Value
    right: Value


@dataclass(frozen=True)
class Call:
    """A function call such as `avg(last(10))`: DQDL dynamic (history-based) rules."""

    name: str
    args: tuple[Value, ...]


@dataclass(frozen=True)
class VarRef:
    name: str


Value = Number | String | Keyword | Now | Duration | Size | BinOp | Call | VarRef


@dataclass(frozen=True)
class Condition:
    """`op` is one of: between, not between, =, !=, >, >=, <, <=, in, not in, matches, not matches."""

    op: str
    operands: tuple[Value, ...]
    pos: Pos


# ---- rules ---------------------------------------------------------------------------------------


@dataclass
class Rule:
    rule_type: str
    params: list[str]
    condition: Condition | None
    where: str | None
    threshold: Condition | None
    tags: dict[str, str]
    labels: dict[str, str]
    text: str
    pos: Pos


@dataclass
class CompositeRule:
    op: str  # and | or
    children: list[Rule | CompositeRule]
    labels: dict[str, str]
    text: str
    pos: Pos


AnyRule = Rule | CompositeRule


@dataclass
class Document:
    rules: list[AnyRule]
    variables: dict[str, str | list[str]] = field(default_factory=dict)
    default_labels: dict[str, str] = field(default_factory=dict)
    metadata: dict[str, str | list[str]] = field(default_factory=dict)
    data_sources: dict[str, str | list[str]] = field(default_factory=dict)
    analyzers: list[Rule] = field(default_factory=list)
