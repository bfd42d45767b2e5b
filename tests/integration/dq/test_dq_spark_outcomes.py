"""Spark's outcome columns joined per distinct pattern equal the ones built per row in SQL, schema included."""

from __future__ import annotations

import threading
from datetime import datetime
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from dq_platform.dq.dqdl import parse
from dq_platform.dq.engines.spark_engine import SparkEngine
from dq_platform.dq.pipeline import evaluate, write_outputs, write_rows
from dq_platform.dq.readers import read_inputs
from dq_platform.dq.schema import ROW_ID
from dq_platform.sample_data import generate_records, write_records

pytestmark = [pytest.mark.integration, pytest.mark.spark]

ROOT = Path(__file__).resolve().parents[3]
NOW = datetime(2025, 6, 1, 12, 0, 0)


@pytest.mark.parametrize(
    "ruleset",
    [
        (ROOT / "glue/rulesets/contracts.dqdl").read_text(),
        'Rules = [ RowCount > 0, Mean "value_amount" > 0 ]',  # no row-level rule: empty lists on every row
    ],
    ids=["shipped", "dataset-level-only"],
)
@pytest.mark.parametrize("row_outcomes", ["compact", "full"])
def test_joined_outcomes_equal_sql_outcomes(spark: Any, tmp_path: Path, ruleset: str, row_outcomes: str) -> None:
    records = generate_records(200, seed=3, defect_rate=0.3, today=NOW.date())
    src = write_records(tmp_path / "in.csv", records, "csv", malformed_lines=2, seed=3)
    engine = SparkEngine(spark)
    try:
        ev = evaluate(engine, parse(ruleset), read_inputs([src]), NOW, tmp_path / "stage")
        for quarantined in (False, True):
            rows = ev.rows_quarantined if quarantined else ev.rows_in - ev.rows_quarantined
            coded = write_rows(engine, ev, quarantined, tmp_path / f"coded-{quarantined}", "part", rows, row_outcomes)
            sql = ev.compiled.output_sql("evaluated", ev.errored, quarantined, ordered=False, row_outcomes=row_outcomes)
            plain = engine.write_parquet(sql, tmp_path / f"sql-{quarantined}", "part", rows, order_by=ROW_ID)
            a, b = pq.read_table(coded[0]), pq.read_table(plain[0])
            assert a.num_rows == rows
            assert a.equals(b, check_metadata=True), quarantined
            assert a.column(ROW_ID).to_pylist() == sorted(a.column(ROW_ID).to_pylist())
    finally:
        engine.close()


def test_both_outputs_are_written_side_by_side_and_equal_one_at_a_time(spark: Any, tmp_path: Path) -> None:
    """`concurrent_writes`: the quarantine job runs while the processed one does (a one-partition input
    makes each write one task, and the second job takes the idle core); the files are the same as
    written one after the other."""
    records = generate_records(300, seed=5, defect_rate=0.3, today=NOW.date())
    src = write_records(tmp_path / "in.csv", records, "csv", malformed_lines=2, seed=5)
    engine = SparkEngine(spark)
    try:
        ev = evaluate(
            engine, parse((ROOT / "glue/rulesets/contracts.dqdl").read_text()), read_inputs([src]), NOW, tmp_path
        )
        assert engine.concurrent_writes
        both_inside = threading.Barrier(2, timeout=60)  # broken unless both writes are in flight at once
        write = engine.write_parquet

        def meeting(*args: Any, **kwargs: Any) -> list[str]:
            both_inside.wait()
            return write(*args, **kwargs)

        engine.write_parquet = meeting  # type: ignore[method-assign]
        together = write_outputs(engine, ev, {"processed": tmp_path / "p2", "quarantine": tmp_path / "q2"}, "part")
        engine.write_parquet = write  # type: ignore[method-assign]
        engine.concurrent_writes = False
        alone = write_outputs(engine, ev, {"processed": tmp_path / "p1", "quarantine": tmp_path / "q1"}, "part")
    finally:
        engine.close()
    assert sorted(together) == sorted(alone) == ["processed", "quarantine"]
    for kind in alone:
        a, b = (pq.read_table(files[kind][0]) for files in (together, alone))
        assert a.num_rows == (ev.rows_quarantined if kind == "quarantine" else ev.rows_in - ev.rows_quarantined)
        assert a.equals(b, check_metadata=True), kind
