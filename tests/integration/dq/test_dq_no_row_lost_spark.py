"""No row lost on Spark either (issue #19): the broken files of tests/unit/dq/test_dq_no_row_lost.py give
Spark and DuckDB the same counts and the same quarantined lines, and every record is in one output."""

from __future__ import annotations

import os
import tempfile
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dq_platform.dq.engines.duckdb_engine import DuckDBEngine
from dq_platform.dq.engines.spark_engine import SparkEngine
from dq_platform.dq.pipeline import RunOutputs, run
from tests.unit.dq.broken_inputs import (
    CSV_DEFECTS,
    JSONL_DEFECTS,
    BrokenFile,
    assert_every_record_once,
    build,
    output_rows,
)

pytestmark = [pytest.mark.integration, pytest.mark.spark]

ROOT = Path(__file__).resolve().parents[3]
RULESET = (ROOT / "glue" / "rulesets" / "contracts.dqdl").read_text()
NOW = datetime(2025, 6, 1, 12, 0, 0)
DAY = date(2025, 6, 1)
EXAMPLES = int(os.environ.get("DQP_SPARK_FUZZ_EXAMPLES", "3"))
COUNTS = ("status", "rows_in", "rows_processed", "rows_quarantined", "records_counted", "records_check")


def _run(engine: Any, inputs: list[Path], out: Path) -> dict[str, Any]:
    outputs = RunOutputs(str(out / "processed"), str(out / "quarantine"), str(out / "results.json"))
    return run(RULESET, "contracts", inputs, outputs, engine, now=NOW, ingest_date=DAY).results


def _malformed(out: Path) -> list[tuple[str, int, str, str]]:
    _, quarantine = output_rows(out)
    return sorted(
        (r["_source"], r["_line"], r["_parse_error"], r["_raw_record"]) for r in quarantine if r["_parse_error"]
    )


def _both(spark: Any, files: list[BrokenFile], root: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    duck = _run(DuckDBEngine(), [f.path for f in files], root / "duck")
    sprk = _run(SparkEngine(spark), [f.path for f in files], root / "spark")
    assert {k: duck[k] for k in COUNTS} == {k: sprk[k] for k in COUNTS}
    assert duck["quarantine_reasons"] == sprk["quarantine_reasons"]
    assert _malformed(root / "duck") == _malformed(root / "spark")
    assert output_rows(root / "duck") == output_rows(root / "spark")
    return duck, sprk


def test_the_issue_case_on_spark(spark: Any, tmp_path: Path) -> None:
    defects = [(2, "unterminated-quote"), (300, "too-few-fields"), (700, "too-many-fields"), (1100, "wrong-delimiter")]
    defects += [(1500, "binary-junk"), (1800, "bad-date"), (1999, "quote-to-end")]
    f = build(tmp_path / "contracts.csv", "csv", 2000, defects, seed=19, multiline_every=250)
    g = build(tmp_path / "contracts.jsonl", "jsonl", 200, [(3, "truncated"), (4, "unbalanced-brace")], seed=20)
    _, sprk = _both(spark, [f, g], tmp_path)
    assert_every_record_once([f, g], sprk, tmp_path / "spark")
    assert sprk["rows_in"] == 2209
    lines = {(src, line) for src, line, reason, _ in _malformed(tmp_path / "spark") if reason.startswith("malformed")}
    assert lines == {(x.path.name, e.line) for x in (f, g) for e in x.malformed}


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    n=st.integers(1, 25),
    csv_defects=st.lists(st.tuples(st.integers(0, 25), st.sampled_from(CSV_DEFECTS)), min_size=1, max_size=6),
    jsonl_defects=st.lists(st.tuples(st.integers(0, 25), st.sampled_from(JSONL_DEFECTS)), min_size=1, max_size=6),
    multiline_every=st.sampled_from([0, 3]),
    seed=st.integers(0, 10_000),
)
def test_random_broken_files_agree_on_both_engines(
    spark: Any,
    n: int,
    csv_defects: list[tuple[int, str]],
    jsonl_defects: list[tuple[int, str]],
    multiline_every: int,
    seed: int,
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        a = build(root / "a.csv", "csv", n, csv_defects, seed, multiline_every)
        b = build(root / "b.jsonl", "jsonl", n, jsonl_defects, seed + 1)
        _, sprk = _both(spark, [a, b], root)
        assert_every_record_once([a, b], sprk, root / "spark")
