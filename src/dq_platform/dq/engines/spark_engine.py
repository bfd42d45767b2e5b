"""Spark SQL engine: the same compiled SQL as DuckDB, run by the Glue job (or local pyspark 3.5)."""

from __future__ import annotations

import itertools
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from dq_platform.dq.compiler import PARSE_FLAG, CompiledRuleset
from dq_platform.dq.dialect import SPARK
from dq_platform.dq.engines.base import short_error
from dq_platform.dq.outcomes import OutcomeColumns
from dq_platform.dq.schema import (
    EVALUATION_RESULT,
    QUARANTINE_REASONS,
    ROW_ID,
    RULES_FAIL,
    RULES_PASS,
    RULES_SKIP,
)

_ROWS_PER_FILE = 2_000_000


def local_spark_session(app_name: str = "dq-platform") -> Any:
    """A local session tuned for small machines; UTC so date/timestamp literals mean the same as DuckDB."""
    from pyspark.sql import SparkSession

    return (
        SparkSession.builder.appName(app_name)
        .master("local[*]")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.shuffle.partitions", "4")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.parquet.compression.codec", "zstd")
        .config("spark.driver.memory", "4g")
        .getOrCreate()
    )


class SparkEngine:
    name = "spark"
    dialect = SPARK
    orders_output = True  # write_parquet(order_by=...) orders rows itself
    batch_transforms = True  # write_parquet(transform=...) expands outcome codes per distinct pattern
    remote_staging = True  # executors write to an s3:// staging prefix directly (the Glue job)
    keeps_input_order = False  # not needed: write_parquet orders by itself (orders_output)
    # both outputs' jobs submitted at once (PySpark runs each thread's jobs on its own JVM thread): a small
    # input is one partition, so each write is one task and a second job uses the idle core (warm, 1M rows:
    # engine 26.6 -> 23.3 s, docs/dq.md); on a cluster the scheduler shares the executors between the two
    concurrent_writes = True

    def __init__(self, spark: Any = None) -> None:
        self.spark = spark if spark is not None else local_spark_session()
        self.spark.conf.set("spark.sql.session.timeZone", "UTC")
        self._cached: list[Any] = []

    def load(self, view: str, table: pa.Table, staging: Path) -> None:
        """Staged in row-id order (readers keep malformed records last), so that the scan's partitions are
        already in output order and writing needs no global sort (see `write_parquet`)."""
        staging.mkdir(parents=True, exist_ok=True)
        path = staging / f"{view}.parquet"
        if ROW_ID in table.column_names and table.num_rows:
            ids = table.column(ROW_ID).to_numpy()
            if (np.diff(ids) < 0).any():
                table = table.take(pa.array(np.argsort(ids, kind="stable")))
        pq.write_table(table, path, compression="zstd")
        self.load_parquet(view, str(path))

    def load_parquet(self, view: str, location: str) -> None:
        self.spark.read.parquet(location).createOrReplaceTempView(view)

    def lock_down(self) -> None:
        """No such switch in Spark SQL: rule SQL runs with the session's access, as before this method
        existed (in Glue, the job's IAM role bounds it). Declared so the pipeline never probes for it."""

    def sql_error(self, sql: str) -> str | None:
        try:
            _ = self.spark.sql(sql).schema  # analysis only
        except Exception as exc:  # AnalysisException / ParseException come from the JVM
            return short_error(exc)
        return None

    def create_view(self, view: str, sql: str) -> None:
        self.spark.sql(sql).createOrReplaceTempView(view)

    def row_pass(self, view: str, source: str, compiled: CompiledRuleset, errored: set[int]) -> None:
        """Evaluate once and cache: the aggregates and both outputs read the cache, not the input.

        The cache is built uncompressed (the setting is read when the cache is defined, then restored):
        compressing the wide string columns cost twice as much as everything read from the cache saves."""
        key = "spark.sql.inMemoryColumnarStorage.compressed"
        before = self.spark.conf.get(key, "true")
        self.spark.conf.set(key, "false")
        try:
            df = self.spark.sql(compiled.evaluated_sql(source, errored)).persist()
        finally:
            self.spark.conf.set(key, before)
        self._cached.append(df)
        df.createOrReplaceTempView(view)

    def query_row(self, sql: str) -> dict[str, Any]:
        rows = self.spark.sql(sql).collect()
        return rows[0].asDict() if rows else {}

    def query_rows(self, sql: str) -> list[tuple[Any, ...]]:
        return [tuple(r) for r in self.spark.sql(sql).collect()]

    def _probe(self, df: Any, keys: list[str], column: str | None) -> tuple[list[tuple[tuple[int, ...], bool]], bool]:
        """One small job over the rows to write: their distinct outcome keys (`keys`: code columns, then
        the parse flag) and whether each partition's `column` range lies after the previous partition's
        (then sorting within partitions gives the global order without a shuffle)."""
        from pyspark.sql import functions as F  # noqa: N812

        aggs = [F.min(column).alias("_lo"), F.max(column).alias("_hi")] if column else [F.count(F.lit(1))]
        groups = df.groupBy(F.spark_partition_id().alias("_p"), *keys).agg(*aggs).collect()
        found = sorted({(tuple(int(r[k]) for k in keys[:-1]), bool(r[keys[-1]])) for r in groups if keys})
        if column is None:
            return found, False
        ranges: dict[int, tuple[Any, Any]] = {}
        for r in groups:
            if r["_lo"] is None:
                continue
            lo, hi = ranges.get(r["_p"], (r["_lo"], r["_hi"]))
            ranges[r["_p"]] = (min(lo, r["_lo"]), max(hi, r["_hi"]))
        bounds = [ranges[p] for p in sorted(ranges)]
        return found, all(prev[1] < nxt[0] for prev, nxt in itertools.pairwise(bounds))

    def _with_outcomes(self, df: Any, transform: OutcomeColumns, keys: list[tuple[tuple[int, ...], bool]]) -> Any:
        """Glue's list columns and evaluation result joined per row from a small table (one row per distinct
        outcome pattern, broadcast): the same values as building them in SQL, without ~20 strings per row."""
        from pyspark.sql import functions as F  # noqa: N812
        from pyspark.sql.types import ArrayType, BooleanType, LongType, StringType, StructField, StructType

        codes = transform.code_columns
        lists = ArrayType(StringType(), containsNull=True)  # the types `compact_array` has in Spark SQL
        skips = ArrayType(StringType(), containsNull=not transform.skip_is_constant)
        types = {RULES_PASS: lists, RULES_FAIL: lists, RULES_SKIP: skips}
        written = transform.list_columns  # compact processed rows: the fail list only
        schema = StructType(
            [StructField(c, LongType(), False) for c in codes]
            + [StructField(PARSE_FLAG, BooleanType(), False)]
            + [StructField(c, types[c], False) for c in written]
            + [StructField(EVALUATION_RESULT, StringType(), False)]
        )
        position = {RULES_PASS: 0, RULES_FAIL: 1, RULES_SKIP: 2}
        rows = [
            (*code, parse_failed, *(columns[position[c]] for c in written), columns[3])
            for (code, parse_failed), columns in zip(keys, transform.patterns(keys), strict=True)
        ]
        lookup = self.spark.createDataFrame(rows, schema)
        keep = [c for c in df.columns if c not in {*codes, PARSE_FLAG, QUARANTINE_REASONS}]
        tail = [QUARANTINE_REASONS] if QUARANTINE_REASONS in df.columns else []
        joined = df.join(F.broadcast(lookup), on=[*codes, PARSE_FLAG], how="inner")
        return joined.select(*keep, *written, EVALUATION_RESULT, *tail)

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
        """Output in few files renamed to stable names (Spark's own part names are random). `order_by`: the
        engine orders the rows itself (`sql` has no ORDER BY), avoiding a global sort when it can (it finds
        out itself whether the rows are in order, so `presorted` is not needed).
        `transform`: `sql` returns outcome codes (`coded_output_sql`), expanded here per distinct pattern.

        `directory` may be an s3:// prefix (the Glue job): executors write there directly, then the parts
        are renamed through the storage layer.
        """
        from dq_platform.storage import open_storage

        df = self.spark.sql(sql)
        n_files = max(1, -(-(rows or 0) // _ROWS_PER_FILE))
        keys: list[tuple[tuple[int, ...], bool]] = []
        in_order = False  # only ever True for one output file ordered by `order_by`
        probe_order = order_by if n_files == 1 else None
        if transform is not None or probe_order is not None:
            key_cols = [*transform.code_columns, PARSE_FLAG] if transform is not None else []
            keys, in_order = self._probe(df, key_cols, probe_order)
        if in_order:
            df = df.sortWithinPartitions(order_by)  # coalesce(1) concatenates partitions in order
        if transform is not None:
            df = self._with_outcomes(df, transform, keys)  # a broadcast join keeps each partition's order
        if order_by is not None and not in_order:
            df = df.orderBy(order_by)
        root = str(directory).rstrip("/")
        tmp_name = f"_{stem}.spark"
        store = open_storage(root)
        for key in store.list(tmp_name + "/"):
            store.delete(key)
        df.coalesce(n_files).write.mode("overwrite").parquet(f"{root}/{tmp_name}")
        parts = [k for k in store.list(tmp_name + "/") if k.rsplit("/", 1)[-1].startswith("part-")]
        out: list[str] = []
        for k, key in enumerate(sorted(parts)):
            target = f"{stem}-{k:05d}.parquet"
            if root.startswith("s3://"):
                store.write_bytes(target, store.read_bytes(key))
            else:
                (Path(root) / key).replace(Path(root) / target)
            out.append(store.uri(target))
        for key in store.list(tmp_name + "/"):
            store.delete(key)
        if not root.startswith("s3://"):
            shutil.rmtree(Path(root) / tmp_name, ignore_errors=True)
        return out

    def close(self) -> None:
        for df in self._cached:
            df.unpersist()
        self._cached.clear()
