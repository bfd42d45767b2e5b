"""One DQ run: read -> evaluate the ruleset -> split rows -> commit outputs -> results.

Commit protocol (why outputs survive a killed run): every output file is first written under a staging
location, named from the run's content hash (inputs + ruleset + ingest date), and only then published
file by file with atomic renames/PUTs, results.json last. A run killed before publishing leaves the
previous outputs untouched; a re-run of the same input produces the same names and the same bytes, so a
partially published run is completed, never duplicated.

Record check (why a run can fail with nothing wrong in the ruleset): the rows read, evaluated and staged
must each equal the records counted independently in the input's bytes (`dq.recount`); otherwise
records went missing or were split somewhere, and the run fails before publishing anything.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from dq_platform.dq.compiler import PRIMARY_VIEW, CompiledRuleset, Decision, compile_document
from dq_platform.dq.dqdl import parse
from dq_platform.dq.dqdl.ast import Document
from dq_platform.dq.engines.base import Engine, short_error
from dq_platform.dq.outcomes import OutcomeColumns
from dq_platform.dq.readers import ParsedInput, read_inputs
from dq_platform.dq.records import DEFAULT_MAX_RECORD_LINES
from dq_platform.dq.schema import CONTRACT_SCHEMA, META_COLUMNS, PARSE_ERROR, ROW_ID, RecordSchema
from dq_platform.storage import is_s3_uri, open_storage

Progress = Callable[[str], None]


def _quiet(_: str) -> None:
    return None


@dataclass
class RunOutputs:
    processed_uri: str  # folder/prefix receiving ingest_date=YYYY-MM-DD/*.parquet
    quarantine_uri: str
    results_uri: str  # full location of results.json; "{run_id}" is replaced by the run id
    staging_uri: str | None = None  # where Spark writes before publishing (s3:// for Glue); None: temp dir


@dataclass
class Evaluation:
    compiled: CompiledRuleset
    outcomes: list[dict[str, Any]]
    errored: set[int]
    rows_in: int
    rows_quarantined: int
    quarantine_reasons: dict[str, int]
    halted_by: list[str]

    @property
    def score(self) -> float:
        if not self.outcomes:
            return 1.0
        return sum(1 for o in self.outcomes if o["Outcome"] == "Passed") / len(self.outcomes)


@dataclass
class RunResult:
    results: dict[str, Any]
    evaluation: Evaluation | None = None
    files: list[str] = field(default_factory=list)


def load_ruleset(path_or_uri: str | Path) -> tuple[str, str]:
    """(name, text) of a ruleset file, local or s3://."""
    text_path = str(path_or_uri)
    if is_s3_uri(text_path):
        parent, _, base = text_path.rpartition("/")
        return Path(base).stem, open_storage(parent).read_bytes(base).decode("utf-8")
    path = Path(text_path)
    return path.stem, path.read_text(encoding="utf-8")


def _column_types(names: Sequence[str], schema: RecordSchema) -> dict[str, str]:
    out: dict[str, str] = {}
    for name in names:
        if name in META_COLUMNS:
            continue
        col = schema.get(name)
        out[name] = col.type if col else "string"
    return out


def _outcome(top_text: str, action: str, decision: Decision | None, error: str | None) -> dict[str, Any]:
    if error is not None:
        return {
            "Rule": top_text,
            "Outcome": "Error",
            "FailureReason": error,
            "EvaluatedMetrics": {},
            "Action": action,
            "RowsFailed": None,
        }
    assert decision is not None
    return {
        "Rule": top_text,
        "Outcome": "Passed" if decision.passed else "Failed",
        "FailureReason": None if decision.passed else decision.reason,
        # 12 significant digits: engines sum floats in different orders
        "EvaluatedMetrics": {k: float(f"{float(v):.12g}") for k, v in decision.metrics.items()},
        "Action": action,
        "RowsFailed": decision.rows_failed,
    }


def evaluate(
    engine: Engine,
    doc: Document,
    parsed: ParsedInput,
    now: datetime,
    staging: Path,
    schema: RecordSchema = CONTRACT_SCHEMA,
    references: dict[str, ParsedInput] | None = None,
) -> Evaluation:
    """Load the parsed input (and references) into the engine, then evaluate."""
    engine.load("parsed", parsed.table, staging)
    refs: dict[str, tuple[str, list[str]]] = {}
    for alias, ref in (references or {}).items():
        view = f"dq_ref_{len(refs)}"
        engine.load(view, ref.table, staging)
        refs[alias] = (view, [c for c in ref.table.column_names if c not in META_COLUMNS])
    columns = _column_types(parsed.table.column_names, schema)
    return evaluate_loaded(engine, doc, columns, parsed.source_columns, now, refs)


def evaluate_loaded(
    engine: Engine,
    doc: Document,
    columns: dict[str, str],
    source_columns: list[str],
    now: datetime,
    refs: dict[str, tuple[str, list[str]]] | None = None,
) -> Evaluation:
    """Evaluate over the engine's `parsed` view: validate every rule's SQL, then one row pass (materialised
    as `evaluated`) and one aggregate query; outcomes are decided in Python, identically for all engines."""
    data_cols = ", ".join(engine.dialect.ident(c) for c in columns)
    engine.create_view(PRIMARY_VIEW, f"SELECT {data_cols} FROM parsed WHERE {PARSE_ERROR} IS NULL")  # noqa: S608
    compiled = compile_document(doc, engine.dialect, columns, source_columns, now, refs or {})
    if hasattr(engine, "lock_down"):
        engine.lock_down()

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
            continue
        if node.scalar_sql is not None:
            try:
                row = engine.query_rows(node.scalar_sql)
                value = row[0][0] if row and row[0] else None
                scalars[f"s{node.idx}"] = None if value is None else float(value)
            except (TypeError, ValueError):
                node_errors[node.idx] = "CustomSql must return a single number"
            except Exception as exc:  # engine-specific SQL errors
                node_errors[node.idx] = f"CustomSql failed: {short_error(exc)}"
    errored_top: dict[int, str] = {}
    for top in compiled.rules:
        for node in top.node.walk():
            if node.idx in node_errors:
                errored_top[top.node.idx] = node_errors[node.idx]
                break

    errored = set(errored_top)
    engine.materialize("evaluated", compiled.evaluated_sql("parsed", errored))
    values = engine.query_row(compiled.metrics_sql("evaluated", errored))
    values.update(scalars)

    outcomes: list[dict[str, Any]] = []
    halted_by: list[str] = []
    reasons: dict[str, int] = {}
    for top in compiled.rules:
        error = errored_top.get(top.node.idx)
        decision = None if error else top.node.evaluate(values)
        outcome = _outcome(top.text, top.action, decision, error)
        outcomes.append(outcome)
        if top.action == "halt" and outcome["Outcome"] != "Passed":
            halted_by.append(top.text)
        if top.action == "quarantine" and top.row_level and not error:
            failed = int(top.node.local(values).get("fail") or 0)
            if failed:
                reasons[top.text] = failed
    for reason, count in engine.query_rows(
        f"SELECT {PARSE_ERROR}, COUNT(*) FROM parsed WHERE {PARSE_ERROR} IS NOT NULL GROUP BY {PARSE_ERROR}"  # noqa: S608
    ):
        reasons[f"parse: {reason}"] = int(count)
    return Evaluation(
        compiled,
        outcomes,
        errored,
        int(values.get("rows_in") or 0),
        int(values.get("rows_quarantined") or 0),
        dict(sorted(reasons.items())),
        halted_by,
    )


def write_rows(
    engine: Engine, ev: Evaluation, quarantined: bool, directory: Path | str, stem: str, rows: int
) -> list[str]:
    """Processed (or quarantine) rows in input order with Glue's outcome columns, the way each engine
    writes fastest: compact outcome codes expanded once per distinct pattern, and the ordering left to an
    engine that can avoid a global sort (Spark)."""
    batch = getattr(engine, "batch_transforms", False)
    orders = getattr(engine, "orders_output", False)
    extra: dict[str, Any] = {"order_by": ROW_ID} if orders else {}
    if batch:
        sql = ev.compiled.coded_output_sql("evaluated", ev.errored, quarantined, ordered=not orders)
        extra["transform"] = OutcomeColumns(ev.compiled, ev.errored)
    else:
        sql = ev.compiled.output_sql("evaluated", ev.errored, quarantined, ordered=not orders)
    return engine.write_parquet(sql, directory, stem, rows, **extra)


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


def _publish(staged: Path, target_uri: str) -> list[str]:
    """Copy staged files into the target (atomic per file); returns the published URIs."""
    store = open_storage(target_uri)
    published: list[str] = []
    for path in sorted(p for p in staged.rglob("*.parquet") if p.is_file()):
        key = path.relative_to(staged).as_posix()
        if is_s3_uri(target_uri):
            store.write_bytes(key, path.read_bytes(), content_type="application/vnd.apache.parquet")
        else:
            final = Path(store.uri(key))
            final.parent.mkdir(parents=True, exist_ok=True)
            path.replace(final)  # same filesystem: atomic rename
        published.append(store.uri(key))
    return published


def _fetch(written: list[str], local_dir: Path) -> None:
    """Files an engine wrote elsewhere (Spark's staging prefix) moved into the run's local staging, so
    that every output is counted before anything is published."""
    local_dir.mkdir(parents=True, exist_ok=True)
    for uri in written:
        parent, _, name = uri.rstrip("/").rpartition("/")
        if is_s3_uri(uri):
            store = open_storage(parent)
            (local_dir / name).write_bytes(store.read_bytes(name))
            store.delete(name)
        else:
            shutil.move(uri, local_dir / name)


def _staged_rows(folder: Path) -> int:
    """Rows in the staged Parquet files (from their footers)."""
    return sum(pq.read_metadata(p).num_rows for p in folder.rglob("*.parquet") if p.is_file())


def _staging_root(outputs: RunOutputs, run_id: str) -> Path:
    if not is_s3_uri(outputs.processed_uri):
        root = Path(outputs.processed_uri).parent / "_staging" / run_id
        shutil.rmtree(root, ignore_errors=True)
        root.mkdir(parents=True, exist_ok=True)
        return root
    return Path(tempfile.mkdtemp(prefix=f"{run_id}-"))


class RecordCountError(Exception):
    """The rows a run read, evaluated or wrote are not the records the independent count found."""


def _check_read(parsed: ParsedInput) -> None:
    wrong = [c for c in parsed.counts if c.rows_read != c.records_counted]
    if wrong:
        detail = "; ".join(f"{c.name}: read {c.rows_read}, counted {c.records_counted}" for c in wrong)
        raise RecordCountError(
            f"record count mismatch: the reader's rows differ from the records counted in the input ({detail})"
        )


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
) -> RunResult:
    """Evaluate `inputs` against the ruleset and commit processed/quarantine/results.

    Ruleset errors (syntax, unsupported rules) raise DQDLError before anything is read or written. The
    rows read, evaluated and staged are each checked against the records counted independently in the
    input (`dq.recount`); any difference fails the run (status FAILED) before anything is promoted.
    """
    started = datetime.now(UTC)
    now = now or started.replace(tzinfo=None)
    ingest_date = ingest_date or now.date()
    doc = parse(ruleset_text)
    t0 = time.perf_counter()
    progress("reading input")
    parsed = read_inputs(inputs, schema, max_record_lines)
    ref_parsed = {alias: read_inputs(locs, schema, max_record_lines) for alias, locs in (references or {}).items()}
    counted = parsed.records_counted
    progress(
        f"read {parsed.table.num_rows:,} records ({counted:,} counted independently) in {time.perf_counter() - t0:.1f}s"
    )
    # ruleset problems that need the columns (unsupported rules, bad conditions) surface before any write
    compile_document(doc, engine.dialect, _column_types(parsed.table.column_names, schema), parsed.source_columns, now)
    run_id = run_id_for(parsed, ruleset_text, ingest_date, max_record_lines)
    outputs = RunOutputs(
        outputs.processed_uri,
        outputs.quarantine_uri,
        outputs.results_uri.replace("{run_id}", run_id),
        outputs.staging_uri,
    )
    base: dict[str, Any] = {"run_id": run_id, "ruleset": ruleset_name, "engine": engine.name}
    base.update(started_at=started.isoformat(), max_record_lines=max_record_lines)
    staging = _staging_root(outputs, run_id)
    ev: Evaluation | None = None
    try:
        try:
            _check_read(parsed)
            progress(f"evaluating {len(doc.rules)} rules on {engine.name}")
            ev = evaluate(engine, doc, parsed, now, staging, schema, ref_parsed)
            progress(f"evaluated in {time.perf_counter() - t0:.1f}s")
            if ev.rows_in != counted:
                raise RecordCountError(
                    f"record count mismatch: the engine evaluated {ev.rows_in} rows, the input has {counted} records"
                )
            files = _write_and_publish(engine, ev, outputs, staging, run_id, ingest_date, progress)
        except RecordCountError as exc:
            progress(f"FAILED: {exc} (nothing promoted)")
            results = _mismatch_results(base, parsed, ev, counted, str(exc), outputs.results_uri)
            write_results(outputs.results_uri, results)
            return RunResult(results, ev, [])
        halted = bool(ev.halted_by)
        partition = f"ingest_date={ingest_date.isoformat()}"
        rows_quarantined = ev.rows_in if halted else ev.rows_quarantined
        results = {
            **base,
            "finished_at": datetime.now(UTC).isoformat(),
            "status": "HALTED" if halted else "SUCCEEDED",
            "score": round(ev.score, 6),
            "rows_in": ev.rows_in,
            "rows_processed": ev.rows_in - rows_quarantined,
            "rows_quarantined": rows_quarantined,
            "records_counted": counted,
            "records_check": "PASSED",
            "ruleOutcomes": ev.outcomes,
            "halted_by": ev.halted_by,
            "quarantine_reasons": ev.quarantine_reasons,
            "outputs": {
                "processed": None if halted else _join(outputs.processed_uri, partition),
                "quarantine": None if halted else _join(outputs.quarantine_uri, partition),
                "results": outputs.results_uri,
            },
        }
        results = _ordered(results)
        write_results(outputs.results_uri, results)
        return RunResult(results, ev, files)
    finally:
        engine.close()
        shutil.rmtree(staging, ignore_errors=True)
        parent = staging.parent
        if parent.name == "_staging" and parent.exists() and not any(parent.iterdir()):
            parent.rmdir()


_FIELD_ORDER = (
    "run_id",
    "ruleset",
    "engine",
    "started_at",
    "finished_at",
    "status",
    "score",
    "rows_in",
    "rows_processed",
    "rows_quarantined",
    "records_counted",
    "records_check",
    "max_record_lines",
)


def _ordered(results: dict[str, Any]) -> dict[str, Any]:
    """Counts first, next to each other, as users read the file."""
    head = {k: results[k] for k in _FIELD_ORDER if k in results}
    return {**head, **{k: v for k, v in results.items() if k not in head}}


def _write_and_publish(
    engine: Engine,
    ev: Evaluation,
    outputs: RunOutputs,
    staging: Path,
    run_id: str,
    ingest_date: date,
    progress: Progress,
) -> list[str]:
    """Stage both outputs, check their row counts, then publish (nothing at all for a halted run)."""
    if ev.halted_by:
        progress("halted: " + "; ".join(ev.halted_by) + " (nothing promoted)")
        return []
    partition = f"ingest_date={ingest_date.isoformat()}"
    stem = f"part-{run_id[3:]}"
    expected = {"processed": ev.rows_in - ev.rows_quarantined, "quarantine": ev.rows_quarantined}
    progress("writing processed and quarantine outputs")
    for kind, rows in expected.items():
        if rows == 0:
            continue
        local_dir = staging / kind / partition
        target_dir: Path | str = local_dir
        if outputs.staging_uri and engine.name == "spark":
            target_dir = f"{outputs.staging_uri.rstrip('/')}/{run_id}/{kind}/{partition}"
        written = write_rows(engine, ev, kind == "quarantine", target_dir, stem, rows)
        if target_dir is not local_dir:
            _fetch(written, local_dir)
    staged = {kind: _staged_rows(staging / kind) for kind in expected}
    if staged != expected:
        raise RecordCountError(
            f"record count mismatch: the outputs hold {staged['processed']} processed and "
            f"{staged['quarantine']} quarantined rows, the evaluation {expected['processed']} and "
            f"{expected['quarantine']}"
        )
    progress("committing outputs")
    files = _publish(staging / "processed", outputs.processed_uri)
    files.extend(_publish(staging / "quarantine", outputs.quarantine_uri))
    return files


def _mismatch_results(
    base: dict[str, Any],
    parsed: ParsedInput,
    ev: Evaluation | None,
    counted: int,
    error: str,
    results_uri: str,
) -> dict[str, Any]:
    """A run whose row counts disagree with the independent count: FAILED, everything held back."""
    rows_in = ev.rows_in if ev is not None else parsed.table.num_rows
    return _ordered(
        {
            **base,
            "finished_at": datetime.now(UTC).isoformat(),
            "status": "FAILED",
            "score": round(ev.score, 6) if ev is not None else 0.0,
            "rows_in": rows_in,
            "rows_processed": 0,
            "rows_quarantined": rows_in,
            "records_counted": counted,
            "records_check": "FAILED",
            "ruleOutcomes": ev.outcomes if ev is not None else [],
            "halted_by": ev.halted_by if ev is not None else [],
            "quarantine_reasons": {},
            "outputs": {"processed": None, "quarantine": None, "results": results_uri},
            "error": error,
        }
    )


def _join(root: str, key: str) -> str:
    return f"{root.rstrip('/')}/{key}"


def write_results(results_uri: str, results: dict[str, Any]) -> None:
    parent, _, name = results_uri.rstrip("/").rpartition("/")
    store = open_storage(parent or ".")
    body = json.dumps(results, indent=2, sort_keys=False).encode("utf-8") + b"\n"
    store.write_bytes(name, body, content_type="application/json")


def failed_results(
    run_id: str, ruleset_name: str, engine: str, started: datetime, error: str, results_uri: str
) -> dict[str, Any]:
    """Results for a run that could not complete (unreadable input...): status FAILED, nothing promoted."""
    return {
        "run_id": run_id,
        "ruleset": ruleset_name,
        "engine": engine,
        "started_at": started.isoformat(),
        "finished_at": datetime.now(UTC).isoformat(),
        "status": "FAILED",
        "score": 0.0,
        "rows_in": 0,
        "rows_processed": 0,
        "rows_quarantined": 0,
        "records_counted": None,
        "records_check": "NOT_RUN",
        "ruleOutcomes": [],
        "halted_by": [],
        "quarantine_reasons": {},
        "outputs": {"processed": None, "quarantine": None, "results": results_uri},
        "error": error,
    }
