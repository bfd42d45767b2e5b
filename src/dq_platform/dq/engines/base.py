"""The small interface the pipeline needs from an SQL engine."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

import pyarrow as pa

from dq_platform.dq.dialect import Dialect


class EngineError(Exception):
    """The engine could not run; the message names what failed (never record text)."""


def short_error(exc: BaseException) -> str:
    """First line of an engine error, bounded: engine messages can be long but carry no record text."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:300]


class Engine(Protocol):
    name: str
    dialect: Dialect

    def load(self, view: str, table: pa.Table, staging: Path) -> None:
        """Expose `table` as `view` (Spark reads it from Parquet staged under `staging`)."""

    def sql_error(self, sql: str) -> str | None:
        """None when the query analyses/plans; else the error message."""

    def create_view(self, view: str, sql: str) -> None: ...

    def materialize(self, view: str, sql: str) -> None:
        """Run `sql` once and keep the result as `view` for the following queries."""

    def query_row(self, sql: str) -> dict[str, Any]: ...

    def query_rows(self, sql: str) -> list[tuple[Any, ...]]: ...

    def write_parquet(self, sql: str, directory: Path | str, stem: str, rows: int | None = None) -> list[str]:
        """Write the (ordered) query result as Parquet files `stem-NNNNN.parquet` in `directory`.

        Engines that declare `batch_transforms` also take `transform=OutcomeColumns` (the query returns
        outcome codes, see `pipeline.write_rows`); those that declare `orders_output` take `order_by`."""

    def close(self) -> None: ...
