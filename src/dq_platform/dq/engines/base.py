"""The small interface the pipeline needs from an SQL engine."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import pyarrow as pa

from dq_platform.dq.dialect import Dialect

if TYPE_CHECKING:
    from dq_platform.dq.compiler import CompiledRuleset
    from dq_platform.dq.outcomes import OutcomeColumns


class EngineError(Exception):
    """The engine could not run; the message names what failed (never record text)."""


def short_error(exc: BaseException) -> str:
    """First line of an engine error, bounded: engine messages can be long but carry no record text."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:300]


class Engine(Protocol):
    """What the pipeline needs from an SQL engine. Capabilities are declared, never probed:

    - `batch_transforms`: `write_parquet` applies `transform` (the query returns compact outcome codes,
      `CompiledRuleset.coded_output_sql`, expanded per distinct pattern by `OutcomeColumns`);
    - `orders_output`: `write_parquet` orders the rows by `order_by` itself (the query has no ORDER BY);
    - `remote_staging`: `write_parquet` can write to a remote (s3://) staging prefix, from which the
      pipeline fetches the files into its local staging to count them before publishing;
    - `keeps_input_order` (known once `row_pass` ran): a query over the row pass without ORDER BY returns
      its rows in `_row_id` order (the processed and quarantine rows then need no sort);
    - `concurrent_writes`: `write_parquet` may run in two threads at once (the pipeline then writes the
      processed and quarantine outputs side by side).
    """

    name: str
    dialect: Dialect
    batch_transforms: bool
    orders_output: bool
    remote_staging: bool
    keeps_input_order: bool
    concurrent_writes: bool

    def load(self, view: str, table: pa.Table, staging: Path) -> None:
        """Expose `table` as `view` (Spark reads it from Parquet staged under `staging`)."""

    def lock_down(self) -> None:
        """Forbid rule SQL (user text) any file or network access from here on; a no-op where the engine's
        SQL has none."""

    def sql_error(self, sql: str) -> str | None:
        """None when the query analyses/plans; else the error message."""

    def create_view(self, view: str, sql: str) -> None: ...

    def row_pass(self, view: str, source: str, compiled: CompiledRuleset, errored: set[int]) -> None:
        """Evaluate every active rule's row status over `source` once and keep the rows with their statuses
        as `view` (`CompiledRuleset.evaluated_sql`'s columns) for the aggregates and the outputs."""

    def query_row(self, sql: str) -> dict[str, Any]: ...

    def query_rows(self, sql: str) -> list[tuple[Any, ...]]: ...

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
        """Write the query result as Parquet files `stem-NNNNN.parquet` in `directory`; returns their paths.

        `rows`: the rows expected (sizes the files); `transform`: see `batch_transforms`; `order_by`: the
        column to order by (engines that do not declare `orders_output` get an ordered query instead);
        `presorted`: the unordered query already returns the rows in `order_by` order
        (`keeps_input_order`): an engine may then skip the sort, checking the order as it writes."""

    def close(self) -> None: ...
