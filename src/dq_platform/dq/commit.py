"""Commit a run's outputs: stage both Parquet outputs, count their rows, then publish them.

Why outputs survive a killed run: every output file is first written under a staging location, named
from the run's content hash (inputs + ruleset + ingest date), and only then published file by file with
atomic renames/PUTs (results.json last, by the pipeline). A run killed before publishing leaves the
previous outputs untouched; a re-run of the same input produces the same names and the same bytes, so a
partially published run is completed, never duplicated.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pyarrow.parquet as pq

from dq_platform.dq.engines.base import Engine
from dq_platform.dq.evaluation import Evaluation
from dq_platform.dq.outcomes import OutcomeColumns
from dq_platform.dq.readers import ParsedInput
from dq_platform.dq.schema import ROW_ID, full_rule_lists
from dq_platform.storage import is_s3_uri, open_storage

Progress = Callable[[str], None]


@dataclass
class RunOutputs:
    processed_uri: str  # folder/prefix receiving ingest_date=YYYY-MM-DD/*.parquet
    quarantine_uri: str
    results_uri: str  # full location of results.json; "{run_id}" is replaced by the run id
    staging_uri: str | None = None  # where Spark writes before publishing (s3:// for Glue); None: temp dir

    def for_run(self, run_id: str) -> RunOutputs:
        return RunOutputs(
            self.processed_uri, self.quarantine_uri, self.results_uri.replace("{run_id}", run_id), self.staging_uri
        )


class RecordCountError(Exception):
    """The rows a run read, evaluated or wrote are not the records the independent count found."""


def check_read(parsed: ParsedInput) -> None:
    """The reader's rows per file equal the records counted independently in its bytes."""
    wrong = [c for c in parsed.counts if c.rows_read != c.records_counted]
    if wrong:
        detail = "; ".join(f"{c.name}: read {c.rows_read}, counted {c.records_counted}" for c in wrong)
        raise RecordCountError(
            f"record count mismatch: the reader's rows differ from the records counted in the input ({detail})"
        )


def check_evaluated(ev: Evaluation, counted: int) -> None:
    if ev.rows_in != counted:
        raise RecordCountError(
            f"record count mismatch: the engine evaluated {ev.rows_in} rows, the input has {counted} records"
        )


def partition(ingest_date: date) -> str:
    return f"ingest_date={ingest_date.isoformat()}"


def write_rows(
    engine: Engine,
    ev: Evaluation,
    quarantined: bool,
    directory: Path | str,
    stem: str,
    rows: int,
    row_outcomes: str = "compact",
) -> list[str]:
    """Processed (or quarantine) rows in input order with Glue's outcome columns, the way each engine
    writes fastest (its declared capabilities): compact outcome codes expanded once per distinct pattern,
    and the ordering left to an engine that can avoid a global sort (Spark; DuckDB, whose row pass keeps
    the input's order). `row_outcomes`: the processed
    rows' shape (`schema.ROW_OUTCOME_SHAPES`); quarantine rows always get all four columns."""
    presorted = engine.keeps_input_order  # the row pass's rows come in `_row_id` order: no sort
    orders = engine.orders_output or presorted
    order_by = ROW_ID if orders else None
    transform: OutcomeColumns | None = None
    full = full_rule_lists(quarantined, row_outcomes)
    if engine.batch_transforms:
        sql = ev.compiled.coded_output_sql("evaluated", ev.errored, quarantined, ordered=not orders)
        transform = OutcomeColumns(ev.compiled, ev.errored, full=full)
    else:
        sql = ev.compiled.output_sql(
            "evaluated", ev.errored, quarantined, ordered=not orders, row_outcomes="full" if full else "compact"
        )
    return engine.write_parquet(sql, directory, stem, rows, transform=transform, order_by=order_by, presorted=presorted)


def staging_root(outputs: RunOutputs, run_id: str) -> Path:
    """The run's local staging folder: next to the processed output when it is local, else a temp dir."""
    if not is_s3_uri(outputs.processed_uri):
        root = Path(outputs.processed_uri).parent / "_staging" / run_id
        shutil.rmtree(root, ignore_errors=True)
        root.mkdir(parents=True, exist_ok=True)
        return root
    return Path(tempfile.mkdtemp(prefix=f"{run_id}-"))


def remove_staging(staging: Path) -> None:
    shutil.rmtree(staging, ignore_errors=True)
    parent = staging.parent
    if parent.name == "_staging" and parent.exists() and not any(parent.iterdir()):
        parent.rmdir()


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


def _rows_per_output(ev: Evaluation) -> dict[str, int]:
    """The rows each output must hold, by the evaluation: what is written and what the staging must count."""
    return {"processed": ev.rows_in - ev.rows_quarantined, "quarantine": ev.rows_quarantined}


def write_outputs(
    engine: Engine,
    ev: Evaluation,
    targets: dict[str, Path | str],
    stem: str,
    row_outcomes: str = "compact",
) -> dict[str, list[str]]:
    """The processed and quarantine rows (`targets`: "processed"/"quarantine" -> folder) as the pipeline
    writes them: side by side where the engine allows it (`Engine.concurrent_writes`), each alone leaving a
    core idle; an output with no rows is not written."""
    expected = _rows_per_output(ev)

    def write_one(kind: str) -> list[str]:
        return write_rows(engine, ev, kind == "quarantine", targets[kind], stem, expected[kind], row_outcomes)

    kinds = [kind for kind in targets if expected[kind]]
    if engine.concurrent_writes and len(kinds) > 1:
        with ThreadPoolExecutor(max_workers=len(kinds)) as pool:
            futures = {kind: pool.submit(write_one, kind) for kind in kinds}
            return {kind: done.result() for kind, done in futures.items()}
    return {kind: write_one(kind) for kind in kinds}


def _stage(
    engine: Engine, ev: Evaluation, outputs: RunOutputs, staging: Path, run_id: str, day: date, row_outcomes: str
) -> None:
    """Both outputs written into the local staging (through the remote staging prefix when the engine
    writes there), then their rows counted against the evaluation's."""
    expected = _rows_per_output(ev)
    local = {kind: staging / kind / partition(day) for kind in expected}
    remote = bool(outputs.staging_uri and engine.remote_staging)
    targets: dict[str, Path | str] = {
        kind: f"{str(outputs.staging_uri).rstrip('/')}/{run_id}/{kind}/{partition(day)}" if remote else local[kind]
        for kind in expected
    }
    written = write_outputs(engine, ev, targets, f"part-{run_id[3:]}", row_outcomes)
    if remote:
        for kind, files in written.items():
            _fetch(files, local[kind])
    staged = {kind: _staged_rows(staging / kind) for kind in expected}
    if staged != expected:
        raise RecordCountError(
            f"record count mismatch: the outputs hold {staged['processed']} processed and "
            f"{staged['quarantine']} quarantined rows, the evaluation {expected['processed']} and "
            f"{expected['quarantine']}"
        )


def stage_and_publish(
    engine: Engine,
    ev: Evaluation,
    outputs: RunOutputs,
    staging: Path,
    run_id: str,
    ingest_date: date,
    progress: Progress,
    row_outcomes: str = "compact",
) -> list[str]:
    """Stage both outputs, check their row counts, then publish (nothing at all for a halted run)."""
    if ev.halted_by:
        progress("halted: " + "; ".join(ev.halted_by) + " (nothing promoted)")
        return []
    progress("writing processed and quarantine outputs")
    _stage(engine, ev, outputs, staging, run_id, ingest_date, row_outcomes)
    progress("committing outputs")
    files = _publish(staging / "processed", outputs.processed_uri)
    files.extend(_publish(staging / "quarantine", outputs.quarantine_uri))
    return files


def published_location(root: str, key: str) -> str:
    return f"{root.rstrip('/')}/{key}"


__all__ = [
    "RecordCountError",
    "RunOutputs",
    "check_evaluated",
    "check_read",
    "partition",
    "published_location",
    "remove_staging",
    "stage_and_publish",
    "staging_root",
    "write_rows",
]
