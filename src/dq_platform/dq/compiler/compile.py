"""Compile a parsed DQDL document: each rule to a `Node` through the handler table, then the ruleset.

`check_ruleset` is the one ruleset check: `dqp dq check` runs it over the contract schema's columns and
`dqp dq run` over the input's, before anything is written, and the run evaluates what it returns.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from dq_platform.dq.compiler.builder import RuleBuilder
from dq_platform.dq.compiler.model import ACTIONS, Context, Node, RuleError, TopRule
from dq_platform.dq.compiler.rules import HANDLERS, SUPPORTED_RULE_TYPES
from dq_platform.dq.compiler.ruleset import CompiledRuleset
from dq_platform.dq.dialect import DUCKDB, Dialect
from dq_platform.dq.dqdl import parse
from dq_platform.dq.dqdl.ast import AnyRule, CompositeRule, Document, DQDLError, Rule, UnsupportedRuleError
from dq_platform.dq.schema import CONTRACT_SCHEMA


class _Compiler:
    def __init__(self, ctx: Context) -> None:
        self.builder = RuleBuilder(ctx)
        self.next_idx = 0

    def compile(self, rule: AnyRule) -> Node:
        idx = self.next_idx
        self.next_idx += 1
        if isinstance(rule, CompositeRule):
            node = Node(idx, rule.text, "Composite", op=rule.op)
            node.children = [self.compile(c) for c in rule.children]
            _composite(node)
            return node
        return self._leaf(Node(idx, rule.text, rule.rule_type), rule)

    def _leaf(self, node: Node, rule: Rule) -> Node:
        handler = HANDLERS.get(rule.rule_type)
        if handler is None:
            raise UnsupportedRuleError(
                f"unsupported rule type '{rule.rule_type}' (supported: {', '.join(SUPPORTED_RULE_TYPES)})",
                rule.pos.line,
                rule.pos.column,
            )
        if rule.tags:
            raise UnsupportedRuleError(
                f"'with {sorted(rule.tags)[0]}' is not supported for {rule.rule_type}",
                rule.pos.line,
                rule.pos.column,
            )
        try:
            handler(self.builder, node, rule)
        except RuleError as exc:
            node.error = str(exc)
            node.status_sql = None
        except DQDLError as exc:
            if exc.line is None:
                raise type(exc)(exc.reason, rule.pos.line, rule.pos.column) from exc
            raise
        return node


def _composite(node: Node) -> None:
    """A composite's status from its operands' (when all are row-level), or its operand's error."""
    kids = node.children
    if all(k.row_level for k in kids):
        statuses = [f"({k.status_sql})" for k in kids]
        all_skip = " AND ".join(f"{s} IS NULL" for s in statuses)
        if node.op == "and":
            any_fail = " OR ".join(f"{s} = 0" for s in statuses)
            node.status_sql = f"CASE WHEN {any_fail} THEN 0 WHEN {all_skip} THEN NULL ELSE 1 END"
        else:
            any_pass = " OR ".join(f"{s} = 1" for s in statuses)
            node.status_sql = f"CASE WHEN {any_pass} THEN 1 WHEN {all_skip} THEN NULL ELSE 0 END"
        node.metrics = {"fail": f"SUM(CASE WHEN {node.status_col} = 0 THEN 1 ELSE 0 END)"}
    errored = [k for k in kids if k.error]
    if errored:
        node.error = f"operand rule failed to evaluate: {errored[0].error}"
        node.status_sql = None


def resolve_action(labels: dict[str, str], default: dict[str, str], text: str, pos: Any) -> tuple[str, dict[str, str]]:
    merged = {**default, **labels}
    action = merged.get("action", "warn").strip().lower()
    if action not in ACTIONS:
        raise DQDLError(
            f"unknown action '{action}' in labels (expected one of {', '.join(ACTIONS)})", pos.line, pos.column
        )
    return action, merged


def _top_rule(doc: Document, rule: AnyRule, node: Node, seen: dict[str, int]) -> TopRule:
    action, labels = resolve_action(rule.labels, doc.default_labels, rule.text, rule.pos)
    if action == "quarantine" and node.status_sql is None and node.error is None:
        raise DQDLError(
            f"action 'quarantine' needs a row-level rule; '{rule.text}' is evaluated on the whole dataset "
            "(use warn or halt)",
            rule.pos.line,
            rule.pos.column,
        )
    text = rule.text
    if text in seen:  # keep rule names unique in results and row-level lists
        seen[text] += 1
        text = f"{text} #{seen[text]}"
    else:
        seen[text] = 1
    return TopRule(text, action, labels, node)


def compile_document(
    doc: Document,
    dialect: Dialect,
    columns: dict[str, str],
    source_columns: list[str],
    now: datetime,
    references: dict[str, tuple[str, list[str]]] | None = None,
) -> CompiledRuleset:
    """Compile all rules; raises DQDLError/UnsupportedRuleError naming the rule's line for ruleset problems."""
    if doc.analyzers:
        a = doc.analyzers[0]
        raise UnsupportedRuleError("the Analyzers section is not supported (rules only)", a.pos.line, a.pos.column)
    comp = _Compiler(Context(dialect, columns, source_columns, now, doc.variables, references or {}))
    seen: dict[str, int] = {}
    tops = [_top_rule(doc, rule, comp.compile(rule), seen) for rule in doc.rules]
    return CompiledRuleset(tops, dialect, list(columns), now)


def check_ruleset(
    ruleset: str | Document,
    columns: dict[str, str] | None = None,
    source_columns: list[str] | None = None,
    now: datetime | None = None,
    dialect: Dialect = DUCKDB,
    references: dict[str, tuple[str, list[str]]] | None = None,
) -> CompiledRuleset:
    """Parse (when given text) and compile a ruleset: the check `dqp dq check` and `dqp dq run` share.

    Without `columns` it compiles over the contract schema's columns (all of them present in the input),
    as `dqp dq check` does: a rule naming a column outside them compiles to an Error outcome, as it would
    in a run, rather than a ruleset error. Raises DQDLError (line and column) for every ruleset problem:
    syntax, unsupported rule types, bad conditions, unknown actions, quarantine on a dataset-level rule.
    """
    doc = parse(ruleset) if isinstance(ruleset, str) else ruleset
    if columns is None:
        columns = {c.name: c.type for c in CONTRACT_SCHEMA.columns}
    if source_columns is None:
        source_columns = list(columns)
    return compile_document(doc, dialect, columns, source_columns, now or datetime.now(), references)
