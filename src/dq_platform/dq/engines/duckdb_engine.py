"""DuckDB engine: in-process, multi-threaded, zero-copy over the Arrow table the readers produce."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from dq_platform.dq.compiler import CompiledRuleset
from dq_platform.dq.dialect import DUCKDB
from dq_platform.dq.engines.base import short_error
from dq_platform.dq.outcomes import OutcomeColumns
from dq_platform.dq.schema import ROW_ID

_BATCH_ROWS = 128 * 1024
_ROWS_PER_PART = 256 * 1024  # presorted outputs above this are split into parts encoded in parallel
_WRITERS = 2  # parts at most: this project's reference machine has 2 cores
_DICTIONARY_SHARE = 8  # a column gets Parquet dictionary pages if its first batch has <= 1 distinct value in 8


def _unchanged(batch: pa.RecordBatch) -> pa.RecordBatch:
    return batch


class DuckDBEngine:
    name = "duckdb"
    dialect = DUCKDB
    batch_transforms = True  # write_parquet takes a per-batch Arrow transform
    orders_output = False  # the query orders the rows (ORDER BY _row_id), unless `presorted`
    remote_staging = False  # writes local files only (through pyarrow)
    keeps_input_order = False  # until row_pass has checked the input's physical order
    concurrent_writes = True  # each write_parquet queries on its own cursor

    def __init__(self, threads: int | None = None, memory_limit: str | None = None) -> None:
        self.con = duckdb.connect(":memory:")
        if threads:
            self.con.execute(f"SET threads = {int(threads)}")
        if memory_limit:
            self.con.execute("SET memory_limit = ?", [memory_limit])
        self.con.execute("SET preserve_insertion_order = true")
        self._tables: dict[str, pa.Table] = {}
        self._in_order: str | None = None  # the row pass's view, while its table keeps the input's order

    def load(self, view: str, table: pa.Table, staging: Path) -> None:
        self._tables[view] = table  # keep the Arrow data alive while DuckDB scans it
        self.con.register(view, table)

    def lock_down(self) -> None:
        """No file or network access from rule SQL (CustomSql is user text): outputs go through pyarrow."""
        self.con.execute("SET enable_external_access = false")
        self.con.execute("SET lock_configuration = true")

    def sql_error(self, sql: str) -> str | None:
        try:
            self.con.sql(sql).limit(0).fetchall()
        except duckdb.Error as exc:
            return short_error(exc)
        return None

    def create_view(self, view: str, sql: str) -> None:
        self.con.execute(f"CREATE OR REPLACE TEMP VIEW {view} AS {sql}")

    def row_pass(self, view: str, source: str, compiled: CompiledRuleset, errored: set[int]) -> None:
        """The statuses alone (`status_sql`, in whatever order the query makes them) lined up with `source`'s
        Arrow rows (runs of consecutive rows put back in order, `_runs_in_order`, else one `take`), and
        `source`'s table with those columns added registered as `view`: the data stays one zero-copy Arrow
        table in the input's physical order instead of being copied into a DuckDB table.

        Anything but exactly one status row per input row (a join that multiplied or dropped rows) falls
        back to materialising the full row pass, so that the record check sees the rows the query made."""
        table = self._tables.get(source)
        statuses = self.con.sql(compiled.status_sql(source, errored)).to_arrow_table()
        in_order, aligned = False, None
        if table is not None:
            in_order = _in_row_id_order(table)
            aligned = _runs_in_order(statuses, table.num_rows) if in_order else None
            if aligned is None:
                where = _positions(statuses.column(ROW_ID).to_numpy(), table.num_rows)
                aligned = None if where is None else statuses.take(where[table.column(ROW_ID).to_numpy()])
        if table is None or aligned is None:
            self.con.execute(f"CREATE OR REPLACE TEMP TABLE {view} AS {compiled.evaluated_sql(source, errored)}")
            self.keeps_input_order, self._in_order = False, None
            return
        del statuses
        out = table
        for name in aligned.column_names[1:]:
            out = out.append_column(name, aligned.column(name))
        self._tables[view] = out
        self.con.register(view, out)
        self.keeps_input_order = in_order
        self._in_order = view if self.keeps_input_order else None

    def query_row(self, sql: str) -> dict[str, Any]:
        rel = self.con.sql(sql)
        rows = rel.fetchall()
        return dict(zip(rel.columns, rows[0] if rows else (), strict=False))

    def query_rows(self, sql: str) -> list[tuple[Any, ...]]:
        return self.con.sql(sql).fetchall()

    def write_parquet(
        self,
        sql: str,
        directory: Path | str,
        stem: str,
        rows: int | None = None,
        transform: OutcomeColumns | None = None,
        order_by: str | None = None,
        presorted: bool = False,
    ) -> list[str]:
        """Stream the (ordered) query result through `transform` into zstd Parquet files.

        `presorted` (`keeps_input_order`: `sql` filters the row pass's rows, which are in `_row_id`
        order): no sort; large outputs are cut into contiguous slices of the row pass's table, each
        queried and encoded by its own thread (pyarrow's writer encodes on one core; with `_row_id` ranges
        instead, each part scanned every row: 1.48 -> 1.33 s at 913k rows), and each batch's order is
        checked as it is written: rows out of order (DuckDB scanning the Arrow table out of insertion
        order) restart the write sorted. The Arrow schema is not stored:
        dictionary-encoded rule lists are written as Parquet dictionary pages (cheap) and read back as plain
        strings, the same as Spark's output.
        """
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        for old in directory.glob(f"{stem}-*.parquet"):
            old.unlink()
        convert: Callable[[pa.RecordBatch], pa.RecordBatch] = transform or _unchanged
        if order_by is None or not presorted:
            if order_by is not None:
                sql = f"SELECT * FROM ({sql}) ORDER BY {order_by}"  # noqa: S608 - compiled SQL and a column name
            with self._cursor() as cursor:
                return [_write(cursor, sql, directory / f"{stem}-00000.parquet", convert, None)]
        try:
            return self._write_presorted(sql, directory, stem, rows, convert, order_by)
        except _OutOfOrderError:  # the sorted write below clears the partial files first
            return self.write_parquet(sql, directory, stem, rows, transform, order_by, presorted=False)

    def _write_presorted(
        self,
        sql: str,
        directory: Path,
        stem: str,
        rows: int | None,
        convert: Callable[[pa.RecordBatch], pa.RecordBatch],
        order_by: str,
    ) -> list[str]:
        parts = max(1, min(_WRITERS, -(-(rows or 0) // _ROWS_PER_PART)))
        if parts == 1:
            with self._cursor() as cursor:
                return [_write(cursor, sql, directory / f"{stem}-00000.parquet", convert, order_by)]
        table = self._tables.get(self._in_order or "")
        if table is not None:  # the row pass's table in slices: each part's query scans its own rows only
            bounds = [table.num_rows * k // parts for k in range(parts + 1)]
            views = [{self._in_order: table.slice(bounds[k], bounds[k + 1] - bounds[k])} for k in range(parts)]
            jobs = [(sql, directory / f"{stem}-{k:05d}.parquet", views[k]) for k in range(parts)]
        else:  # any other query: contiguous `order_by` ranges of its result
            with self._cursor() as cursor:
                ((low, high),) = cursor.sql(f"SELECT min({order_by}), max({order_by}) FROM ({sql})").fetchall()  # noqa: S608
            cuts = [int(low) + (int(high) + 1 - int(low)) * k // parts for k in range(parts + 1)]
            jobs = [
                (
                    f"SELECT * FROM ({sql}) WHERE {order_by} >= {cuts[k]} AND {order_by} < {cuts[k + 1]}",  # noqa: S608
                    directory / f"{stem}-{k:05d}.parquet",
                    {},
                )
                for k in range(parts)
            ]

        def write_part(job: tuple[str, Path, dict[str, pa.Table]]) -> str:
            part_sql, path, sliced = job
            with self._cursor(sliced) as cursor:
                return _write(cursor, part_sql, path, convert, order_by)

        with ThreadPoolExecutor(max_workers=parts) as pool:
            return list(pool.map(write_part, jobs))

    @contextmanager
    def _cursor(self, instead: dict[str, pa.Table] | None = None) -> Iterator[duckdb.DuckDBPyConnection]:
        """A connection of its own to the same database, with every Arrow view registered (views are per
        connection; `instead`: other tables under some names): one per write, so that writes can run in
        threads side by side (a query on a shared connection blocks the next until it is drained)."""
        cursor = self.con.cursor()
        try:
            for name, table in self._tables.items():
                cursor.register(name, (instead or {}).get(name, table))
            yield cursor
        finally:
            cursor.close()

    def close(self) -> None:
        self.con.close()


class _OutOfOrderError(Exception):
    """A presorted write met a row out of `order_by` order."""


def _positions(ids: np.ndarray, rows: int) -> np.ndarray | None:
    """Where each `_row_id` sits in `ids` (`positions[row_id]`), or None unless `ids` holds each of
    0..rows-1 exactly once (the row ids the readers assign)."""
    if ids.size != rows:
        return None
    if rows and (ids.min() < 0 or ids.max() >= rows):
        return None
    positions = np.full(rows, -1, dtype=np.int64)
    positions[ids] = np.arange(rows, dtype=np.int64)
    return positions if rows == 0 or bool((positions >= 0).all()) else None


_MAX_RUNS = 4096  # runs of consecutive rows reordered as slices; more: one `take` (tiny chunks scan slowly)


def _runs_in_order(statuses: pa.Table, rows: int) -> pa.Table | None:
    """`statuses` in `_row_id` order as zero-copy slices, or None unless its ids are at most `_MAX_RUNS`
    runs of consecutive ids that together hold each of 0..rows-1 exactly once.

    Why: DuckDB's parallel scan returns the rows in their order but in runs handed out of turn (39 runs
    at 1M rows); putting the runs back costs nothing, where a `take` of every status row took 0.1-0.3 s
    on one core, between the status query and the next (docs/dq.md, issue #16)."""
    ids = statuses.column(ROW_ID).to_numpy()
    if ids.size != rows:
        return None
    if rows == 0:
        return statuses
    starts = np.concatenate([np.zeros(1, dtype=np.int64), np.flatnonzero(np.diff(ids) != 1) + 1])
    if starts.size > _MAX_RUNS:
        return None
    lengths = np.diff(np.append(starts, rows))
    order = np.argsort(ids[starts], kind="stable")
    firsts, lengths = ids[starts][order], lengths[order]
    if firsts[0] != 0 or (firsts[1:] != np.cumsum(lengths)[:-1]).any():
        return None  # a gap, an overlap or a row twice: not the readers' dense ids
    return pa.concat_tables([statuses.slice(int(starts[k]), int(lengths[j])) for j, k in enumerate(order)])


def _in_row_id_order(table: pa.Table) -> bool:
    """The rows are in `_row_id` order physically (the readers place every record, malformed ones
    included, by its record number: `readers._in_record_order`)."""
    ids = table.column(ROW_ID).to_numpy()
    return bool(ids.size < 2 or (np.diff(ids) > 0).all())


def _parquet_writer(path: Path, first: pa.RecordBatch) -> pq.ParquetWriter:
    """zstd, no stored Arrow schema, and dictionary pages only where `first` says they pay
    (`_dictionary_columns`)."""
    return pq.ParquetWriter(
        path, first.schema, compression="zstd", store_schema=False, use_dictionary=_dictionary_columns(first)
    )


def _dictionary_columns(batch: pa.RecordBatch) -> list[str]:
    """The Parquet columns worth a dictionary: Arrow dictionaries and lists of them (the rule lists), and
    columns whose first batch repeats its values (at most one distinct value in `_DICTIONARY_SHARE` rows).

    Why: pyarrow tries a dictionary for every column and falls back to plain pages only once the
    dictionary outgrows its page limit, so near-unique columns (ids, amounts, free text) paid for the
    attempt: at 913,516 processed rows the encode took 1.9 s with dictionaries everywhere, 1.47 s with
    them only here, and the file shrank 48 -> 40 MB (docs/dq.md, issue #16). The list leaf is named
    `<column>.list.element`, as pyarrow's writer names it."""
    out: list[str] = []
    for field, column in zip(batch.schema, batch.columns, strict=True):
        kind = field.type
        if pa.types.is_dictionary(kind):
            out.append(field.name)
        elif pa.types.is_list(kind) or pa.types.is_large_list(kind):
            if _is_text(kind.value_type) or pa.types.is_dictionary(kind.value_type):
                out.append(f"{field.name}.list.element")
        elif (pa.types.is_primitive(kind) or _is_text(kind)) and _repeats(column):
            out.append(field.name)
    return out


def _is_text(kind: pa.DataType) -> bool:
    return bool(pa.types.is_string(kind) or pa.types.is_large_string(kind))


def _repeats(column: pa.Array) -> bool:
    return len(column) > 0 and pc.count_distinct(column).as_py() * _DICTIONARY_SHARE <= len(column)


def _write(
    con: duckdb.DuckDBPyConnection,
    sql: str,
    path: Path,
    convert: Callable[[pa.RecordBatch], pa.RecordBatch],
    check_order: str | None,
) -> str:
    """One Parquet file from the query's batches; `check_order`: raise `_OutOfOrderError` unless that column
    ascends strictly across the whole file."""
    reader = con.sql(sql).to_arrow_reader(_BATCH_ROWS)
    writer: pq.ParquetWriter | None = None
    last: int | None = None
    try:
        for batch in reader:
            if check_order is not None and batch.num_rows:
                ids = batch.column(check_order).to_numpy()
                if (last is not None and ids[0] <= last) or (np.diff(ids) <= 0).any():
                    raise _OutOfOrderError(check_order)
                last = int(ids[-1])
            out = convert(batch)
            if writer is None:
                writer = _parquet_writer(path, out)
            writer.write_batch(out)
        if writer is None:
            empty = convert(pa.RecordBatch.from_pylist([], schema=reader.schema))
            writer = _parquet_writer(path, empty)
    finally:
        reader.close()  # an abandoned result would block the connection's next query
        if writer is not None:
            writer.close()
    return str(path)
