"""`dqp dq`: check a DQDL ruleset, run it over CSV / JSON-lines files."""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from datetime import date, datetime
from pathlib import Path

import typer

from dq_platform.cli._errors import refuse
from dq_platform.dq.compiler import check_ruleset
from dq_platform.dq.dqdl import DQDLError, parse
from dq_platform.dq.dqdl.ast import Rule
from dq_platform.dq.engines import EngineError, make_engine
from dq_platform.dq.pipeline import RunOutputs, load_ruleset, run
from dq_platform.dq.readers import InputError
from dq_platform.dq.records import DEFAULT_MAX_RECORD_LINES
from dq_platform.dq.results import RunResults
from dq_platform.dq.schema import ROW_OUTCOME_SHAPES
from dq_platform.storage import StorageError

app = typer.Typer(help="Data quality: DQDL rulesets on DuckDB (default) or Spark.", no_args_is_help=True)

# The walkthrough's paths: `dqp sample records` writes DEFAULT_INPUT, `dqp dq run` reads it on its defaults.
DEFAULT_RULESET = "glue/rulesets/contracts.dqdl"
DEFAULT_INPUT = ".local/raw/incoming"
DEFAULT_OUTPUT = ".local/dq"


@app.command("check")
def check(
    ruleset: Path = typer.Argument(Path(DEFAULT_RULESET), help="DQDL ruleset file (default: the shipped one)."),
) -> None:
    """Parse and compile a ruleset and list its rules; exits 1 with line and column on the first error.

    The same check `dq run` makes before it evaluates or writes anything (`compiler.check_ruleset`), over the
    contract schema's columns: what passes here passes there."""
    try:
        text = ruleset.read_text(encoding="utf-8")
    except OSError as exc:
        raise refuse(f"cannot read {ruleset} ({exc.strerror})", _ruleset_fix(str(ruleset)), code=1) from exc
    try:
        doc = parse(text)
        compiled = check_ruleset(doc)
    except DQDLError as exc:
        typer.echo(f"{ruleset}: {exc}", err=True)
        raise typer.Exit(1) from exc
    typer.echo(f"{ruleset}: {len(doc.rules)} rules")
    for i, (rule, top) in enumerate(zip(doc.rules, compiled.rules, strict=True), start=1):
        kind = rule.rule_type if isinstance(rule, Rule) else f"Composite ({rule.op})"
        typer.echo(f"{i:3d}. line {rule.pos.line:<4d} {top.action:<10s} {kind:<22s} {rule.text}")


def _ruleset_fix(ruleset: str) -> str:
    if ruleset == DEFAULT_RULESET:
        return "run from the repository root (the shipped ruleset is there), or give a ruleset file"
    return "give an existing DQDL ruleset file"


@app.command("run")
def run_cmd(
    ruleset: str = typer.Option(DEFAULT_RULESET, "--ruleset", "-r", help="DQDL ruleset file (local or s3://)."),
    inputs: list[str] = typer.Option(
        [DEFAULT_INPUT], "--input", "-i", help="CSV/JSONL file or folder; repeatable (default: `dqp sample records`'s)."
    ),
    output: str = typer.Option(DEFAULT_OUTPUT, "--output", "-o", help="Output folder (or s3:// prefix)."),
    engine: str = typer.Option("duckdb", "--engine", "-e", help="duckdb or spark."),
    reference: list[str] = typer.Option(
        [], "--reference", help="ALIAS=PATH reference dataset for ReferentialIntegrity; repeatable."
    ),
    ingest_date: str | None = typer.Option(None, "--ingest-date", help="Partition date (default: today, UTC)."),
    now: str | None = typer.Option(None, "--now", help="Evaluation time for now() (ISO, default: current UTC)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress lines."),
    max_record_lines: int = typer.Option(
        DEFAULT_MAX_RECORD_LINES,
        "--max-record-lines",
        min=1,
        help="Most physical lines one CSV record may span (quoted line breaks); a quote left open longer "
        "makes its line a malformed record.",
    ),
    row_outcomes: str = typer.Option(
        "compact",
        "--row-outcomes",
        help="compact: processed rows carry DataQualityRulesFail and DataQualityEvaluationResult (pass and skip "
        "lists rebuild from results.json); full: Glue's four row-level columns on every row. Quarantine rows "
        "always carry all four.",
    ),
) -> None:
    """Validate input against a ruleset: writes OUTPUT/processed/, OUTPUT/quarantine/, OUTPUT/results.json."""
    start = time.perf_counter()

    def progress(message: str) -> None:
        if not quiet:
            typer.echo(f"[{time.perf_counter() - start:6.1f}s] {message}", err=True)

    if inputs == [DEFAULT_INPUT] and not Path(DEFAULT_INPUT).exists():
        raise refuse(
            f"nothing to check at {DEFAULT_INPUT} (it does not exist yet)",
            "write sample records there with `dqp sample records`, or pass --input PATH",
        )
    if ruleset == DEFAULT_RULESET and not Path(DEFAULT_RULESET).is_file():
        raise refuse(f"cannot read {ruleset} (no such file)", _ruleset_fix(ruleset))
    refs: dict[str, Sequence[str | Path]] = {}
    for item in reference:
        alias, sep, path = item.partition("=")
        if not sep or not alias or not path:
            typer.echo(f"error: --reference must be ALIAS=PATH, got {item!r}", err=True)
            raise typer.Exit(2)
        refs[alias] = [*refs.get(alias, []), path]
    try:
        when = datetime.fromisoformat(now) if now else None
        day = date.fromisoformat(ingest_date) if ingest_date else None
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    if row_outcomes not in ROW_OUTCOME_SHAPES:
        typer.echo(
            f"error: --row-outcomes must be one of {', '.join(ROW_OUTCOME_SHAPES)}, got {row_outcomes!r}", err=True
        )
        raise typer.Exit(2)
    root = output.rstrip("/")
    outputs = RunOutputs(f"{root}/processed", f"{root}/quarantine", f"{root}/results.json")
    try:
        name, text = load_ruleset(ruleset)
        eng = make_engine(engine)
        result = run(
            text,
            name,
            inputs,
            outputs,
            eng,
            now=when,
            ingest_date=day,
            references=refs,
            progress=progress,
            max_record_lines=max_record_lines,
            row_outcomes=row_outcomes,
        )
    except DQDLError as exc:
        typer.echo(f"{ruleset}: {exc}", err=True)
        raise typer.Exit(1) from exc
    except (InputError, StorageError, EngineError, OSError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    _summary(result.run_results)


def _summary(res: RunResults) -> None:
    """The run's counts, record check, score and each rule that did not pass; exits 4 (record check
    failed) or 3 (halted) unless the run succeeded."""
    typer.echo(
        f"{res.status}: rows in {res.rows_in:,}, processed {res.rows_processed:,}, "
        f"quarantined {res.rows_quarantined:,}; records counted {res.records_counted or 0:,} "
        f"({(res.records_check or '').lower()}); score {res.score:.3f} "
        f"({res.rules_passed}/{len(res.ruleOutcomes)} rules passed)"
    )
    if res.error:
        typer.echo(f"error: {res.error}; nothing promoted", err=True)
    for o in res.ruleOutcomes:
        if o.Outcome != "Passed":
            rows = f" [{o.RowsFailed:,} rows]" if o.RowsFailed else ""
            typer.echo(f"  {o.Outcome:<6s} {o.Action:<10s} {o.Rule}{rows}: {o.FailureReason}")
    typer.echo(f"results: {res.outputs.results}")
    if res.status == "FAILED":
        sys.exit(4)
    if res.status != "SUCCEEDED":
        sys.exit(3)
