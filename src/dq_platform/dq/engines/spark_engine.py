"""Spark SQL engine: the same compiled SQL as DuckDB, run by the Glue job (or local pyspark 3.5)."""

from __future__ import annotations

import itertools
import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from dq_platform.dq.dialect import SPARK
from dq_platform.dq.engines.base import short_error
from dq_platform.dq.schema import ROW_ID

_ROWS_PER_FILE = 2_000_000
_FROM = re.compile(r"\bFROM\s+(\w+)\s+WHERE\b(?!.*\bFROM\b)", re.IGNORECASE | re.DOTALL)  # output_sql's relation


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

    def __init__(self, spark: Any = None) -> None:
        self.spark = spark if spark is not None else local_spark_session()
        self.spark.conf.set("spark.sql.session.timeZone", "UTC")
        self._cached: list[Any] = []
        self._ordered: dict[str, bool] = {}  # relation -> partitions in row order (see write_parquet)

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

    def sql_error(self, sql: str) -> str | None:
        try:
            _ = self.spark.sql(sql).schema  # analysis only
        except Exception as exc:  # AnalysisException / ParseException come from the JVM
            return short_error(exc)
        return None

    def create_view(self, view: str, sql: str) -> None:
        self.spark.sql(sql).createOrReplaceTempView(view)

    def materialize(self, view: str, sql: str) -> None:
        """Evaluate once and cache: the aggregates and both outputs read the cache, not the input.

        The cache is built uncompressed (the setting is read when the cache is defined, then restored):
        compressing the wide string columns cost twice as much as everything read from the cache saves."""
        key = "spark.sql.inMemoryColumnarStorage.compressed"
        before = self.spark.conf.get(key, "true")
        self.spark.conf.set(key, "false")
        try:
            df = self.spark.sql(sql).persist()
        finally:
            self.spark.conf.set(key, before)
        self._cached.append(df)
        df.createOrReplaceTempView(view)

    def query_row(self, sql: str) -> dict[str, Any]:
        rows = self.spark.sql(sql).collect()
        return rows[0].asDict() if rows else {}

    def query_rows(self, sql: str) -> list[tuple[Any, ...]]:
        return [tuple(r) for r in self.spark.sql(sql).collect()]

    def _partitions_in_order(self, sql: str, column: str) -> bool:
        """True when each partition's `column` range lies after the previous partition's (one small job over
        the relation `sql` reads, checked once per relation); then sorting within partitions gives the global
        order without a shuffle. Filters keep partitions, so a relation's answer holds for its subsets."""
        from pyspark.sql import functions as F  # noqa: N812

        source = _FROM.search(sql)
        name = source.group(1) if source else sql
        if name in self._ordered:
            return self._ordered[name]
        df = self.spark.table(name) if source else self.spark.sql(sql)
        ranges = (
            df.select(F.spark_partition_id().alias("p"), F.col(column).alias("v"))
            .groupBy("p")
            .agg(F.min("v").alias("lo"), F.max("v").alias("hi"))
            .collect()
        )
        bounds = sorted((r["p"], r["lo"], r["hi"]) for r in ranges if r["lo"] is not None)
        self._ordered[name] = all(prev[2] < nxt[1] for prev, nxt in itertools.pairwise(bounds))
        return self._ordered[name]

    def write_parquet(
        self, sql: str, directory: Path | str, stem: str, rows: int | None = None, order_by: str | None = None
    ) -> list[str]:
        """Output in few files renamed to stable names (Spark's own part names are random). `order_by`: the
        engine orders the rows itself (`sql` has no ORDER BY), avoiding a global sort when it can.

        `directory` may be an s3:// prefix (the Glue job): executors write there directly, then the parts
        are renamed through the storage layer.
        """
        from dq_platform.storage import open_storage

        df = self.spark.sql(sql)
        n_files = max(1, -(-(rows or 0) // _ROWS_PER_FILE))
        if order_by is not None:
            if n_files == 1 and self._partitions_in_order(sql, order_by):
                df = df.sortWithinPartitions(order_by)  # coalesce(1) concatenates partitions in order
            else:
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
        self._ordered.clear()
