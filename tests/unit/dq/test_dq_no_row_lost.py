"""No row lost, ever (issue #19), on DuckDB: files with malformed lines of every kind at random places;
every record is in exactly one output at its line, malformed lines alone are quarantined. The same
files run on Spark in tests/integration/dq/test_dq_no_row_lost_spark.py."""

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
from dq_platform.dq.pipeline import RunOutputs, run
from tests.unit.dq.broken_inputs import CSV_DEFECTS, JSONL_DEFECTS, assert_every_record_once, build

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[3]
RULESET = (ROOT / "glue" / "rulesets" / "contracts.dqdl").read_text()
NOW = datetime(2025, 6, 1, 12, 0, 0)
DAY = date(2025, 6, 1)
EXAMPLES = int(os.environ.get("DQP_DQ_FUZZ_EXAMPLES", "25"))


def _run(inputs: list[Path], out: Path) -> dict[str, Any]:
    outputs = RunOutputs(str(out / "processed"), str(out / "quarantine"), str(out / "results.json"))
    return run(RULESET, "contracts", inputs, outputs, DuckDBEngine(), now=NOW, ingest_date=DAY).results


def test_the_issue_case_one_unterminated_quote_early_in_2000_records(tmp_path: Path) -> None:
    """2,012 records, an unterminated quote on line 4 and other broken lines after it: only those lines
    are quarantined as malformed; the 2,000 records after the quote are all there."""
    defects = [(2, "unterminated-quote"), (300, "too-few-fields"), (700, "too-many-fields"), (1100, "wrong-delimiter")]
    defects += [(1500, "binary-junk"), (1800, "bad-date"), (1999, "quote-to-end")]
    defects += [(40, "unterminated-quote"), (41, "unterminated-quote"), (900, "quote-to-end"), (1300, "binary-junk")]
    defects += [(600, "bad-date")]
    f = build(tmp_path / "contracts.csv", "csv", 2000, defects, seed=19)
    res = _run([f.path], tmp_path / "out")
    assert_every_record_once([f], res, tmp_path / "out")
    assert res["rows_in"] == 2012
    parse = {k: v for k, v in res["quarantine_reasons"].items() if k.startswith("parse: malformed")}
    assert sum(parse.values()) == len(f.malformed) == 10
    assert parse["parse: malformed CSV record: unterminated quoted field"] >= 3  # lines 4, 43, 44 at least
    assert res["rows_processed"] >= 1900


@pytest.mark.parametrize("kind", CSV_DEFECTS)
def test_each_csv_defect_class_costs_its_line_only(kind: str, tmp_path: Path) -> None:
    f = build(tmp_path / "in.csv", "csv", 40, [(1, kind), (20, kind), (40, kind)], seed=3, multiline_every=7)
    res = _run([f.path], tmp_path / "out")
    assert_every_record_once([f], res, tmp_path / "out")


@pytest.mark.parametrize("kind", JSONL_DEFECTS)
def test_each_jsonl_defect_class_costs_its_line_only(kind: str, tmp_path: Path) -> None:
    f = build(tmp_path / "in.jsonl", "jsonl", 40, [(0, kind), (20, kind), (40, kind)], seed=4)
    res = _run([f.path], tmp_path / "out")
    assert_every_record_once([f], res, tmp_path / "out")


def test_crlf_files_and_quoted_line_breaks(tmp_path: Path) -> None:
    f = build(tmp_path / "in.csv", "csv", 30, [(5, "unterminated-quote"), (6, "binary-junk")], 5, 3, crlf=True)
    res = _run([f.path], tmp_path / "out")
    assert_every_record_once([f], res, tmp_path / "out")
    multi = [b - a for a, b in zip([e.line for e in f.expected], [e.line for e in f.expected][1:], strict=False)]
    assert 2 in multi  # some records do span two lines


def _defects(n: int, kinds: tuple[str, ...]) -> st.SearchStrategy[list[tuple[int, str]]]:
    return st.lists(st.tuples(st.integers(0, n), st.sampled_from(kinds)), max_size=8)


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    n=st.integers(0, 30),
    csv_defects=_defects(30, CSV_DEFECTS),
    jsonl_defects=_defects(30, JSONL_DEFECTS),
    multiline_every=st.sampled_from([0, 2, 5]),
    crlf=st.booleans(),
    seed=st.integers(0, 10_000),
)
def test_random_broken_files_lose_nothing(
    n: int,
    csv_defects: list[tuple[int, str]],
    jsonl_defects: list[tuple[int, str]],
    multiline_every: int,
    crlf: bool,
    seed: int,
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        a = build(root / "a.csv", "csv", n, csv_defects, seed, multiline_every, crlf)
        b = build(root / "b.jsonl", "jsonl", n, jsonl_defects, seed + 1, crlf=crlf)
        if not a.expected and not b.expected:
            return  # an empty input halts on RowCount > 0: covered by the halt tests
        res = _run([a.path, b.path], root / "out")
        if res["status"] == "HALTED":
            assert (res["rows_in"], res["records_counted"]) == (len(a.expected) + len(b.expected),) * 2
            return
        assert_every_record_once([a, b], res, root / "out")
