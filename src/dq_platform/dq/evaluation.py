"""Evaluate a compiled ruleset on an engine: validate every rule's SQL, one row pass (materialised as
`evaluated`), one aggregate query, then each rule's outcome decided in Python (`Node.evaluate`),
identically for all engines."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from dq_platform.dq.compiler import PRIMARY_VIEW, CompiledRuleset, Decision, TopRule, compile_document
from dq_platform.dq.compiler.ruleset import skip_metric
from dq_platform.dq.dqdl.ast import Document
from dq_platform.dq.engines.base import Engine, short_error
from dq_platform.dq.readers import ParsedInput
from dq_platform.dq.results import RuleOutcome
from dq_platform.dq.schema import CONTRACT_SCHEMA, META_COLUMNS, PARSE_ERROR, RecordSchema

References = dict[str, tuple[str, list[str]]]  # alias -> (engine view, data columns)


@dataclass
class Evaluation:
    compiled: CompiledRuleset
    rule_outcomes: list[RuleOutcome]
    errored: set[int]  # top rules (node idx) whose outcome is Error: left out of the row pass
    rows_in: int
    rows_quarantined: int
    quarantine_reasons: dict[str, int]
    halted_by: list[str]
    # row-level rules (text) that skipped some processed rows: a compact processed row cannot tell these
    # skips from passes by itself (`outcomes.rebuild_rule_lists`); rule text -> processed rows skipped
    processed_skips: dict[str, int] = field(default_factory=dict)

    @property
    def outcomes(self) -> list[dict[str, Any]]:
        """The outcomes as `results.json` holds them."""
        return [o.model_dump() for o in self.rule_outcomes]

    @property
    def score(self) -> float:
        """Passed rules / all rules (Glue's definition); 1.0 without rules."""
        if not self.rule_outcomes:
            return 1.0
        return sum(1 for o in self.rule_outcomes if o.Outcome == "Passed") / len(self.rule_outcomes)


def column_types(names: Sequence[str], schema: RecordSchema = CONTRACT_SCHEMA) -> dict[str, str]:
    """Data columns (metadata left out) and their types: the schema's, else string."""
    out: dict[str, str] = {}
    for name in names:
        if name in META_COLUMNS:
            continue
        col = schema.get(name)
        out[name] = col.type if col else "string"
    return out


def reference_views(references: Mapping[str, ParsedInput] | None) -> References:
    """The engine views reference datasets are loaded as (`load_inputs`), and their data columns."""
    return {
        alias: (f"dq_ref_{k}", [c for c in ref.table.column_names if c not in META_COLUMNS])
        for k, (alias, ref) in enumerate((references or {}).items())
    }


def load_inputs(
    engine: Engine, parsed: ParsedInput, staging: Path, references: Mapping[str, ParsedInput] | None = None
) -> None:
    """The parsed input as the engine's `parsed` view and each reference as its `reference_views` view."""
    engine.load("parsed", parsed.table, staging)
    views = reference_views(references)
    for alias, ref in (references or {}).items():
        engine.load(views[alias][0], ref.table, staging)


def evaluate(
    engine: Engine,
    doc: Document,
    parsed: ParsedInput,
    now: datetime,
    staging: Path,
    schema: RecordSchema = CONTRACT_SCHEMA,
    references: dict[str, ParsedInput] | None = None,
) -> Evaluation:
    """Compile `doc` for the parsed input, load it (and references) into the engine, then evaluate."""
    columns = column_types(parsed.table.column_names, schema)
    refs = reference_views(references)
    compiled = compile_document(doc, engine.dialect, columns, parsed.source_columns, now, refs)
    load_inputs(engine, parsed, staging, references)
    return evaluate_compiled(engine, compiled)


def evaluate_loaded(
    engine: Engine,
    doc: Document,
    columns: dict[str, str],
    source_columns: list[str],
    now: datetime,
    refs: References | None = None,
) -> Evaluation:
    """Compile `doc` and evaluate it over the engine's `parsed` view (already loaded)."""
    return evaluate_compiled(engine, compile_document(doc, engine.dialect, columns, source_columns, now, refs or {}))


def evaluate_compiled(engine: Engine, compiled: CompiledRuleset) -> Evaluation:
    """Evaluate over the engine's `parsed` view (and reference views, loaded by `load_inputs`)."""
    data_cols = ", ".join(engine.dialect.ident(c) for c in compiled.data_columns)
    engine.create_view(PRIMARY_VIEW, f"SELECT {data_cols} FROM parsed WHERE {PARSE_ERROR} IS NULL")  # noqa: S608
    engine.lock_down()
    node_errors, scalars = _validate(engine, compiled)
    errored_top = _errored_tops(compiled, node_errors)
    errored = set(errored_top)
    engine.row_pass("evaluated", "parsed", compiled, errored)
    values = engine.query_row(compiled.metrics_sql("evaluated", errored))
    values.update(scalars)
    outcomes = [_outcome(top, values, errored_top.get(top.node.idx)) for top in compiled.rules]
    halted_by = [o.Rule for top, o in zip(compiled.rules, outcomes, strict=True) if _halts(top, o)]
    reasons = _rule_reasons(compiled, values, errored)
    reasons.update(_parse_reasons(engine))
    return Evaluation(
        compiled,
        outcomes,
        errored,
        int(values.get("rows_in") or 0),
        int(values.get("rows_quarantined") or 0),
        dict(sorted(reasons.items())),
        halted_by,
        _processed_skips(compiled, values, errored),
    )


def _processed_skips(compiled: CompiledRuleset, values: Mapping[str, Any], errored: set[int]) -> dict[str, int]:
    out: dict[str, int] = {}
    for top in compiled.row_level_rules(errored):
        skipped = int(values.get(skip_metric(top)) or 0)
        if skipped:
            out[top.text] = out.get(top.text, 0) + skipped
    return out


def _validate(engine: Engine, compiled: CompiledRuleset) -> tuple[dict[int, str], dict[str, Any]]:
    """Errors per node (compile-time errors, invalid SQL, failed CustomSql) and the CustomSql numbers.

    All rules' SQL is checked in one zero-row query; only if that fails, rule by rule."""
    node_errors: dict[int, str] = {}
    scalars: dict[str, Any] = {}
    valid = [n for n in compiled.nodes if n.error is None]
    all_valid = engine.sql_error(compiled.combined_validation_sql(valid, "parsed")) is None
    for node in compiled.nodes:
        if node.error is not None:
            node_errors[node.idx] = node.error
            continue
        err = None if all_valid else engine.sql_error(compiled.validation_sql(node, "parsed"))
        if err is not None:
            node_errors[node.idx] = f"rule SQL failed: {err}"
        elif node.scalar_sql is not None:
            _scalar(engine, node.idx, node.scalar_sql, scalars, node_errors)
    return node_errors, scalars


def _scalar(engine: Engine, idx: int, sql: str, scalars: dict[str, Any], node_errors: dict[int, str]) -> None:
    """Run a CustomSql number query: its value under `s{idx}`, or the node's error."""
    try:
        row = engine.query_rows(sql)
        value = row[0][0] if row and row[0] else None
        scalars[f"s{idx}"] = None if value is None else float(value)
    except (TypeError, ValueError):
        node_errors[idx] = "CustomSql must return a single number"
    except Exception as exc:  # engine-specific SQL errors
        node_errors[idx] = f"CustomSql failed: {short_error(exc)}"


def _errored_tops(compiled: CompiledRuleset, node_errors: dict[int, str]) -> dict[int, str]:
    """Top rules with an errored node anywhere in them, and the first such error."""
    out: dict[int, str] = {}
    for top in compiled.rules:
        error = next((node_errors[n.idx] for n in top.node.walk() if n.idx in node_errors), None)
        if error is not None:
            out[top.node.idx] = error
    return out


def _outcome(top: TopRule, values: Mapping[str, Any], error: str | None) -> RuleOutcome:
    if error is not None:
        return RuleOutcome(
            Rule=top.text,
            Outcome="Error",
            FailureReason=error,
            EvaluatedMetrics={},
            Action=top.action,
            RowsFailed=None,
        )
    decision: Decision = top.node.evaluate(values)
    return RuleOutcome(
        Rule=top.text,
        Outcome="Passed" if decision.passed else "Failed",
        FailureReason=None if decision.passed else decision.reason,
        # 12 significant digits: engines sum floats in different orders
        EvaluatedMetrics={k: float(f"{float(v):.12g}") for k, v in decision.metrics.items()},
        Action=top.action,
        RowsFailed=decision.rows_failed,
    )


def _halts(top: TopRule, outcome: RuleOutcome) -> bool:
    return top.action == "halt" and outcome.Outcome != "Passed"


def _rule_reasons(compiled: CompiledRuleset, values: Mapping[str, Any], errored: set[int]) -> dict[str, int]:
    """Rows quarantined per quarantine rule."""
    out: dict[str, int] = {}
    for top in compiled.rules:
        if top.action == "quarantine" and top.row_level and top.node.idx not in errored:
            failed = top.node.failed_rows(values)
            if failed:
                out[top.text] = failed
    return out


def _parse_reasons(engine: Engine) -> dict[str, int]:
    """Rows quarantined per parse error."""
    rows = engine.query_rows(
        f"SELECT {PARSE_ERROR}, COUNT(*) FROM parsed WHERE {PARSE_ERROR} IS NOT NULL GROUP BY {PARSE_ERROR}"  # noqa: S608
    )
    return {f"parse: {reason}": int(count) for reason, count in rows}
