"""Spark's outcome columns joined per distinct pattern equal the ones built per row in SQL, schema included."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from dq_platform.dq.dqdl import parse
from dq_platform.dq.engines.spark_engine import SparkEngine
from dq_platform.dq.pipeline import evaluate, write_rows
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
