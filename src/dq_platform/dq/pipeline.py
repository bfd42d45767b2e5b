"""One DQ run: read -> check the ruleset -> evaluate -> commit outputs -> results.json.

The steps live in their own modules, called in this order by `run`:
`readers.read_inputs` (records, with an independent count), `compiler.check_ruleset` (compiled once, for
the input's columns, before anything is written), `evaluation.evaluate_compiled`, `commit.stage_and_publish`
(staged, counted, then published) and `results.write_results` (last).

Record check (why a run can fail with nothing wrong in the ruleset): the rows read, evaluated and staged
must each equal the records counted independently in the input's bytes (`dq.recount`); otherwise
records went missing or were split somewhere, and the run fails before publishing anything.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from dq_platform.dq.arrow_memory import arrow_pool
from dq_platform.dq.commit import (
    RecordCountError,
    RunOutputs,
    check_evaluated,
    check_read,
    partition,
    published_location,
    remove_staging,
    stage_and_publish,
    staging_root,
    write_outputs,
    write_rows,
)
from dq_platform.dq.compiler import CompiledRuleset, check_ruleset
from dq_platform.dq.dqdl import parse
from dq_platform.dq.engines.base import Engine
from dq_platform.dq.evaluation import (
    Evaluation,
    column_types,
    evaluate,
    evaluate_compiled,
    evaluate_loaded,
    load_inputs,
    reference_views,
)
from dq_platform.dq.readers import ParsedInput, read_inputs
from dq_platform.dq.records import DEFAULT_MAX_RECORD_LINES
from dq_platform.dq.results import OutputLocations, RowOutcomes, RunResults, write_results
from dq_platform.dq.schema import CONTRACT_SCHEMA, RecordSchema, full_rule_lists
from dq_platform.storage import is_s3_uri, open_storage

__all__ = [
    "Evaluation",
    "RecordCountError",
    "RunOutputs",
    "RunResult",
    "column_types",
    "evaluate",
    "evaluate_loaded",
    "load_ruleset",
    "run",
    "run_id_for",
    "write_outputs",
    "write_results",
    "write_rows",
]

Progress = Callable[[str], None]


def _quiet(_: str) -> None:
    return None


@dataclass
class RunResult:
    run_results: RunResults
    evaluation: Evaluation | None = None
    files: list[str] = field(default_factory=list)

    @property
    def results(self) -> dict[str, Any]:
        """The results document as written to results.json."""
        return self.run_results.to_document()


def load_ruleset(path_or_uri: str | Path) -> tuple[str, str]:
    """(name, text) of a ruleset file, local or s3://."""
    text_path = str(path_or_uri)
    if is_s3_uri(text_path):
        parent, _, base = text_path.rpartition("/")
        return Path(base).stem, open_storage(parent).read_bytes(base).decode("utf-8")
    path = Path(text_path)
    return path.stem, path.read_text(encoding="utf-8")


def run_id_for(
    parsed: ParsedInput, ruleset_text: str, ingest_date: date, max_record_lines: int = DEFAULT_MAX_RECORD_LINES
) -> str:
    digest = hashlib.sha256()
    digest.update(parsed.content_sha256.encode())
    digest.update(hashlib.sha256(ruleset_text.encode("utf-8")).hexdigest().encode())
    digest.update(ingest_date.isoformat().encode())
    if max_record_lines != DEFAULT_MAX_RECORD_LINES:  # it moves record boundaries, so it names the outputs
        digest.update(f"max_record_lines={max_record_lines}".encode())
    return "dq-" + digest.hexdigest()[:16]


@dataclass
class _Run:
    """What one run knows once its input is read and its ruleset compiled."""

    run_id: str
    header: dict[str, Any]  # run_id, ruleset, engine, started_at, max_record_lines
    parsed: ParsedInput
    references: dict[str, ParsedInput]
    compiled: CompiledRuleset
    outputs: RunOutputs
    ingest_date: date
    row_outcomes: str = "compact"  # the processed rows' shape (schema.ROW_OUTCOME_SHAPES)


def _read(
    inputs: Sequence[str | Path],
    references: dict[str, Sequence[str | Path]] | None,
    schema: RecordSchema,
    max_record_lines: int,
    progress: Progress,
) -> tuple[ParsedInput, dict[str, ParsedInput]]:
    t0 = time.perf_counter()
    progress("reading input")
    parsed = read_inputs(inputs, schema, max_record_lines)
    refs = {alias: read_inputs(locs, schema, max_record_lines) for alias, locs in (references or {}).items()}
    progress(
        f"read {parsed.table.num_rows:,} records ({parsed.records_counted:,} counted independently) "
        f"in {time.perf_counter() - t0:.1f}s"
    )
    return parsed, refs


@arrow_pool()  # the run's Arrow buffers from jemalloc: see dq.arrow_memory
def run(
    ruleset_text: str,
    ruleset_name: str,
    inputs: Sequence[str | Path],
    outputs: RunOutputs,
    engine: Engine,
    now: datetime | None = None,
    ingest_date: date | None = None,
    references: dict[str, Sequence[str | Path]] | None = None,
    schema: RecordSchema = CONTRACT_SCHEMA,
    progress: Progress = _quiet,
    max_record_lines: int = DEFAULT_MAX_RECORD_LINES,
    row_outcomes: str = "compact",
) -> RunResult:
    """Evaluate `inputs` against the ruleset and commit processed/quarantine/results.

    `row_outcomes`: "compact" (processed rows carry DataQualityRulesFail and DataQualityEvaluationResult)
    or "full" (Glue's four row-level columns on every row); quarantine rows always carry all four.

    Ruleset errors (syntax, unsupported rules) raise DQDLError before anything is written. The rows
    read, evaluated and staged are each checked against the records counted independently in the input
    (`dq.recount`); any difference fails the run (status FAILED) before anything is promoted.
    """
    full_rule_lists(False, row_outcomes)  # an unknown shape fails before anything is read
    started = datetime.now(UTC)
    now = now or started.replace(tzinfo=None)
    day = ingest_date or now.date()
    doc = parse(ruleset_text)
    t0 = time.perf_counter()
    parsed, refs = _read(inputs, references, schema, max_record_lines, progress)
    # ruleset problems that need the columns (unsupported rules, bad conditions) surface before any write
    columns = column_types(parsed.table.column_names, schema)
    compiled = check_ruleset(doc, columns, parsed.source_columns, now, engine.dialect, reference_views(refs))
    run_id = run_id_for(parsed, ruleset_text, day, max_record_lines)
    header: dict[str, Any] = {"run_id": run_id, "ruleset": ruleset_name, "engine": engine.name}
    header.update(started_at=started.isoformat(), max_record_lines=max_record_lines)
    job = _Run(run_id, header, parsed, refs, compiled, outputs.for_run(run_id), day, row_outcomes)
    staging = staging_root(job.outputs, run_id)
    try:
        return _evaluate_and_commit(job, engine, staging, progress, t0)
    finally:
        engine.close()
        remove_staging(staging)


def _evaluate_and_commit(job: _Run, engine: Engine, staging: Path, progress: Progress, t0: float) -> RunResult:
    counted = job.parsed.records_counted
    ev: Evaluation | None = None
    try:
        check_read(job.parsed)
        progress(f"evaluating {len(job.compiled.rules)} rules on {engine.name}")
        load_inputs(engine, job.parsed, staging, job.references)
        ev = evaluate_compiled(engine, job.compiled)
        progress(f"evaluated in {time.perf_counter() - t0:.1f}s")
        check_evaluated(ev, counted)
        files = stage_and_publish(
            engine, ev, job.outputs, staging, job.run_id, job.ingest_date, progress, job.row_outcomes
        )
    except RecordCountError as exc:
        progress(f"FAILED: {exc} (nothing promoted)")
        results = _mismatch_results(job, ev, str(exc))
        write_results(job.outputs.results_uri, results)
        return RunResult(results, ev, [])
    results = _finished_results(job, ev)
    write_results(job.outputs.results_uri, results)
    return RunResult(results, ev, files)


def _finished_results(job: _Run, ev: Evaluation) -> RunResults:
    """A run that evaluated and committed (or, halted, promoted nothing)."""
    halted = bool(ev.halted_by)
    key = partition(job.ingest_date)
    rows_quarantined = ev.rows_in if halted else ev.rows_quarantined
    return RunResults(
        **job.header,
        finished_at=datetime.now(UTC).isoformat(),
        status="HALTED" if halted else "SUCCEEDED",
        score=round(ev.score, 6),
        rows_in=ev.rows_in,
        rows_processed=ev.rows_in - rows_quarantined,
        rows_quarantined=rows_quarantined,
        records_counted=job.parsed.records_counted,
        records_check="PASSED",
        ruleOutcomes=ev.rule_outcomes,
        halted_by=ev.halted_by,
        quarantine_reasons=ev.quarantine_reasons,
        outputs=OutputLocations(
            processed=None if halted else published_location(job.outputs.processed_uri, key),
            quarantine=None if halted else published_location(job.outputs.quarantine_uri, key),
            results=job.outputs.results_uri,
        ),
        row_outcomes=_row_outcomes(job, ev),
    )


def _row_outcomes(job: _Run, ev: Evaluation) -> RowOutcomes:
    """What rebuilds a compact processed row's pass and skip lists (`outcomes.rebuild_rule_lists`)."""
    return RowOutcomes(
        processed="full" if job.row_outcomes == "full" else "compact",
        row_level_rules=[t.text for t in ev.compiled.row_level_rules(ev.errored)],
        processed_skips=ev.processed_skips,
    )


def _mismatch_results(job: _Run, ev: Evaluation | None, error: str) -> RunResults:
    """A run whose row counts disagree with the independent count: FAILED, everything held back."""
    rows_in = ev.rows_in if ev is not None else job.parsed.table.num_rows
    return RunResults(
        **job.header,
        finished_at=datetime.now(UTC).isoformat(),
        status="FAILED",
        score=round(ev.score, 6) if ev is not None else 0.0,
        rows_in=rows_in,
        rows_processed=0,
        rows_quarantined=rows_in,
        records_counted=job.parsed.records_counted,
        records_check="FAILED",
        ruleOutcomes=ev.rule_outcomes if ev is not None else [],
        halted_by=ev.halted_by if ev is not None else [],
        quarantine_reasons={},
        outputs=OutputLocations(processed=None, quarantine=None, results=job.outputs.results_uri),
        error=error,
    )
