"""Spark SQL engine: the same compiled SQL as DuckDB, run by the Glue job (or local pyspark 3.5)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from dq_platform.dq.dialect import SPARK
from dq_platform.dq.engines.base import short_error
from dq_platform.dq.schema import ROW_ID

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

    def __init__(self, spark: Any = None) -> None:
        self.spark = spark if spark is not None else local_spark_session()
        self.spark.conf.set("spark.sql.session.timeZone", "UTC")
        self._cached: list[Any] = []

    def load(self, view: str, table: pa.Table, staging: Path) -> None:
        staging.mkdir(parents=True, exist_ok=True)
        path = staging / f"{view}.parquet"
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
        """Cache the result once; sorted by row id when it has one, so that the cached data is range
        partitioned and ordered and the outputs' `ORDER BY _row_id` needs no further shuffle or sort."""
        df = self.spark.sql(sql)
        if ROW_ID in df.columns:
            df = df.orderBy(ROW_ID)
        df = df.persist()
        self._cached.append(df)
        df.createOrReplaceTempView(view)

    def query_row(self, sql: str) -> dict[str, Any]:
        rows = self.spark.sql(sql).collect()
        return rows[0].asDict() if rows else {}

    def query_rows(self, sql: str) -> list[tuple[Any, ...]]:
        return [tuple(r) for r in self.spark.sql(sql).collect()]

    def write_parquet(self, sql: str, directory: Path | str, stem: str, rows: int | None = None) -> list[str]:
        """Sorted output in few files renamed to stable names (Spark's own part names are random).

        `directory` may be an s3:// prefix (the Glue job): executors write there directly, then the parts
        are renamed through the storage layer.
        """
        from dq_platform.storage import open_storage

        df = self.spark.sql(sql)
        n_files = max(1, -(-(rows or 0) // _ROWS_PER_FILE))
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
