"""One DQ run: read -> evaluate the ruleset -> split rows -> commit outputs -> results.

Commit protocol (why outputs survive a killed run): every output file is first written under a staging
location, named from the run's content hash (inputs + ruleset + ingest date), and only then published
file by file with atomic renames/PUTs, results.json last. A run killed before publishing leaves the
previous outputs untouched; a re-run of the same input produces the same names and the same bytes, so a
partially published run is completed, never duplicated.
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

from dq_platform.dq.compiler import PRIMARY_VIEW, CompiledRuleset, Decision, Node, compile_document
from dq_platform.dq.dqdl import parse
from dq_platform.dq.dqdl.ast import Document
from dq_platform.dq.engines.base import Engine, short_error
from dq_platform.dq.outcomes import OutcomeColumns
from dq_platform.dq.readers import ParsedInput, read_inputs
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


def _decide(node: Node, values: dict[str, Any]) -> Decision:
    if not node.children:
        assert node.decide is not None
        return node.decide(node.local(values))
    kids = [_decide(k, values) for k in node.children]
    passed = all(k.passed for k in kids) if node.op == "and" else any(k.passed for k in kids)
    metrics: dict[str, float] = {}
    for k in kids:
        metrics.update(k.metrics)
    failing = [c.text for c, k in zip(node.children, kids, strict=True) if not k.passed]
    reason = None if passed else f"{node.op} of operands failed: " + "; ".join(failing)
    rows_failed = None
    if node.status_sql is not None:
        rows_failed = int(node.local(values).get("fail") or 0)
    return Decision(passed, reason, metrics, rows_failed)


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
        decision = None if error else _decide(top.node, values)
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


def run_id_for(parsed: ParsedInput, ruleset_text: str, ingest_date: date) -> str:
    digest = hashlib.sha256()
    digest.update(parsed.content_sha256.encode())
    digest.update(hashlib.sha256(ruleset_text.encode("utf-8")).hexdigest().encode())
    digest.update(ingest_date.isoformat().encode())
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


def _staging_root(outputs: RunOutputs, run_id: str) -> Path:
    if not is_s3_uri(outputs.processed_uri):
        root = Path(outputs.processed_uri).parent / "_staging" / run_id
        shutil.rmtree(root, ignore_errors=True)
        root.mkdir(parents=True, exist_ok=True)
        return root
    return Path(tempfile.mkdtemp(prefix=f"{run_id}-"))


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
) -> RunResult:
    """Evaluate `inputs` against the ruleset and commit processed/quarantine/results.

    Ruleset errors (syntax, unsupported rules) raise DQDLError before anything is read or written.
    """
    started = datetime.now(UTC)
    now = now or started.replace(tzinfo=None)
    ingest_date = ingest_date or now.date()
    doc = parse(ruleset_text)
    t0 = time.perf_counter()
    progress("reading input")
    parsed = read_inputs(inputs, schema)
    ref_parsed = {alias: read_inputs(locs, schema) for alias, locs in (references or {}).items()}
    progress(f"read {parsed.table.num_rows:,} records in {time.perf_counter() - t0:.1f}s")
    # ruleset problems that need the columns (unsupported rules, bad conditions) surface before any write
    compile_document(doc, engine.dialect, _column_types(parsed.table.column_names, schema), parsed.source_columns, now)
    run_id = run_id_for(parsed, ruleset_text, ingest_date)
    outputs = RunOutputs(
        outputs.processed_uri,
        outputs.quarantine_uri,
        outputs.results_uri.replace("{run_id}", run_id),
        outputs.staging_uri,
    )
    staging = _staging_root(outputs, run_id)
    try:
        progress(f"evaluating {len(doc.rules)} rules on {engine.name}")
        ev = evaluate(engine, doc, parsed, now, staging, schema, ref_parsed)
        progress(f"evaluated in {time.perf_counter() - t0:.1f}s")
        halted = bool(ev.halted_by)
        partition = f"ingest_date={ingest_date.isoformat()}"
        stem = f"part-{run_id[3:]}"
        rows_quarantined = ev.rows_in if halted else ev.rows_quarantined
        files: list[str] = []
        if not halted:
            progress("writing processed and quarantine outputs")
            spark_stage = outputs.staging_uri
            for kind, rows in (
                ("processed", ev.rows_in - ev.rows_quarantined),
                ("quarantine", ev.rows_quarantined),
            ):
                if rows == 0:
                    continue
                quarantined = kind == "quarantine"
                target_dir: Path | str = staging / kind / partition
                if spark_stage and engine.name == "spark":
                    target_dir = f"{spark_stage.rstrip('/')}/{run_id}/{kind}/{partition}"
                written = write_rows(engine, ev, quarantined, target_dir, stem, rows)
                if isinstance(target_dir, str) and is_s3_uri(target_dir):
                    _publish_s3_prefix(target_dir, written, outputs, kind, partition)
                    files.extend(_final_uris(outputs, kind, partition, written))
            progress("committing outputs")
            files.extend(_publish(staging / "processed", outputs.processed_uri))
            files.extend(_publish(staging / "quarantine", outputs.quarantine_uri))
        else:
            progress("halted: " + "; ".join(ev.halted_by) + " (nothing promoted)")
        finished = datetime.now(UTC)
        results = {
            "run_id": run_id,
            "ruleset": ruleset_name,
            "engine": engine.name,
            "started_at": started.isoformat(),
            "finished_at": finished.isoformat(),
            "status": "HALTED" if halted else "SUCCEEDED",
            "score": round(ev.score, 6),
            "rows_in": ev.rows_in,
            "rows_processed": ev.rows_in - rows_quarantined,
            "rows_quarantined": rows_quarantined,
            "ruleOutcomes": ev.outcomes,
            "halted_by": ev.halted_by,
            "quarantine_reasons": ev.quarantine_reasons,
            "outputs": {
                "processed": None if halted else _join(outputs.processed_uri, partition),
                "quarantine": None if halted else _join(outputs.quarantine_uri, partition),
                "results": outputs.results_uri,
            },
        }
        write_results(outputs.results_uri, results)
        return RunResult(results, ev, files)
    finally:
        engine.close()
        shutil.rmtree(staging, ignore_errors=True)
        parent = staging.parent
        if parent.name == "_staging" and parent.exists() and not any(parent.iterdir()):
            parent.rmdir()


def _join(root: str, key: str) -> str:
    return f"{root.rstrip('/')}/{key}"


def _publish_s3_prefix(stage_dir: str, written: list[str], outputs: RunOutputs, kind: str, partition: str) -> None:
    target_root = outputs.processed_uri if kind == "processed" else outputs.quarantine_uri
    src = open_storage(stage_dir)
    dst = open_storage(_join(target_root, partition))
    for uri in written:
        name = uri.rsplit("/", 1)[-1]
        dst.write_bytes(name, src.read_bytes(name), content_type="application/vnd.apache.parquet")
        src.delete(name)


def _final_uris(outputs: RunOutputs, kind: str, partition: str, written: list[str]) -> list[str]:
    root = outputs.processed_uri if kind == "processed" else outputs.quarantine_uri
    return [_join(_join(root, partition), uri.rsplit("/", 1)[-1]) for uri in written]


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
        "ruleOutcomes": [],
        "halted_by": [],
        "quarantine_reasons": {},
        "outputs": {"processed": None, "quarantine": None, "results": results_uri},
        "error": error,
    }
