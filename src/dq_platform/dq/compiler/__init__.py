"""Compile a DQDL document to SQL once, for both engines.

Every rule becomes (a) a row-level status expression (1 pass, 0 fail, NULL skip) when the rule has a
row-level meaning, materialised in one pass over the data, and/or (b) aggregate expressions evaluated
together in a single query over that pass. Outcomes are then decided in Python from the aggregate
values (`Node.evaluate`), so DuckDB and Spark share not only the SQL text but the decision logic.

Modules: `model` (nodes, rules, decisions), `literals` (values and SQL literals), `predicates` (value
conditions as row predicates), `deciders`, `builder` (what handlers build with), `rules/` (one module per
rule family and the `{rule_type: handler}` table), `compile` (document -> `CompiledRuleset`, and
`check_ruleset`), `ruleset` (the compiled ruleset's SQL).
"""

from __future__ import annotations

from dq_platform.dq.compiler.compile import check_ruleset, compile_document, resolve_action
from dq_platform.dq.compiler.literals import check_number, condition_text
from dq_platform.dq.compiler.model import ACTIONS, PRIMARY_VIEW, Context, Decision, Node, RuleError, TopRule
from dq_platform.dq.compiler.rules import HANDLERS, SUPPORTED_RULE_TYPES
from dq_platform.dq.compiler.ruleset import CODE_COLUMN, CODE_DIGITS, PARSE_FLAG, CompiledRuleset

__all__ = [
    "ACTIONS",
    "CODE_COLUMN",
    "CODE_DIGITS",
    "HANDLERS",
    "PARSE_FLAG",
    "PRIMARY_VIEW",
    "SUPPORTED_RULE_TYPES",
    "CompiledRuleset",
    "Context",
    "Decision",
    "Node",
    "RuleError",
    "TopRule",
    "check_number",
    "check_ruleset",
    "compile_document",
    "condition_text",
    "resolve_action",
]
