"""DQDL (AWS Glue Data Quality Definition Language): syntax tree and parser."""

from dq_platform.dq.dqdl.ast import (
    CompositeRule,
    Condition,
    Document,
    DQDLError,
    DQDLSyntaxError,
    Rule,
    UnsupportedRuleError,
)
from dq_platform.dq.dqdl.parser import parse

__all__ = [
    "CompositeRule",
    "Condition",
    "DQDLError",
    "DQDLSyntaxError",
    "Document",
    "Rule",
    "UnsupportedRuleError",
    "parse",
]
