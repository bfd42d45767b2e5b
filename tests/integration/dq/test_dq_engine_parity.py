"""DuckDB and Spark give identical outcomes: rule results, counts and row-level outputs."""

from __future__ import annotations

import json
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from dq_platform.dq.dqdl import parse
from dq_platform.dq.engines.duckdb_engine import DuckDBEngine
from dq_platform.dq.engines.spark_engine import SparkEngine
from dq_platform.dq.pipeline import RunOutputs, evaluate, run
from dq_platform.dq.readers import InputFile, parse_files
from dq_platform.sample_data import generate_records, write_records

pytestmark = [pytest.mark.integration, pytest.mark.spark]

ROOT = Path(__file__).resolve().parents[3]
NOW = datetime(2025, 6, 1, 12, 0, 0)
DAY = date(2025, 6, 1)

# every supported rule type, on top of the shipped ruleset
EXTRA_RULES = """
  ColumnCount = 11,
  ColumnNamesMatchPattern "[a-z_]+",
  Completeness "label" >= 0.9 where "value_amount > 0",
  IsPrimaryKey "doc_id",
  UniqueValueRatio "currency" < 0.5,
  Sum "value_amount" > 0,
  StandardDeviation "value_amount" > 0,
  Variance "value_amount" > 0,
  ColumnCorrelation "value_amount" "value_amount" > 0.99,
  CustomSql "select count(*) from primary where currency = 'USD'" > 0,
  ReferentialIntegrity "currency" "iso.{code}" >= 0.9,
  ColumnValues "currency" != EMPTY with threshold > 0.9,
  ColumnValues "effective_date" between "2020-01-01" and now(),
  (IsComplete "title") and (ColumnLength "title" between 1 and 300),
  (RowCount > 1000000) or (ColumnValues "label" in ["HighRisk", "LowRisk"])
"""


def _ruleset() -> str:
    base = (ROOT / "glue/rulesets/contracts.dqdl").read_text().rstrip()
    assert base.endswith("]")
    return base[:-1].rstrip() + "," + EXTRA_RULES + "]\n"


def _run(engine: Any, src: list[Path], ref: Path, out: Path, row_outcomes: str = "compact") -> dict[str, Any]:
    outputs = RunOutputs(str(out / "processed"), str(out / "quarantine"), str(out / "results.json"))
    return run(
        _ruleset(),
        "contracts",
        src,
        outputs,
        engine,
        now=NOW,
        ingest_date=DAY,
        references={"iso": [ref]},
        row_outcomes=row_outcomes,
    ).results


def _rows(folder: Path) -> list[dict[str, Any]]:
    return [r for f in sorted(folder.rglob("*.parquet")) for r in pq.read_table(f).to_pylist()]


@pytest.mark.parametrize("row_outcomes", ["compact", "full"])
def test_engines_agree_on_whole_ruleset(spark: Any, tmp_path: Path, row_outcomes: str) -> None:
    records = generate_records(300, seed=11, defect_rate=0.25, today=DAY)
    src = [
        write_records(tmp_path / "a.csv", records[:150], "csv", malformed_lines=3, seed=1),
        write_records(tmp_path / "b.jsonl", records[150:], "jsonl", malformed_lines=3, seed=2),
    ]
    ref = tmp_path / "iso.jsonl"
    ref.write_text("".join(f'{{"code": "{c}"}}\n' for c in ["USD", "EUR", "GBP", "CHF", "JPY", "CAD", "AUD", "SGD"]))
    duck = _run(DuckDBEngine(), src, ref, tmp_path / "duck", row_outcomes)
    sprk = _run(SparkEngine(spark), src, ref, tmp_path / "spark", row_outcomes)

    assert len(duck["ruleOutcomes"]) == 35
    assert {o["Outcome"] for o in duck["ruleOutcomes"]} == {"Passed", "Failed"}  # no Error: all rules ran
    for a, b in zip(duck["ruleOutcomes"], sprk["ruleOutcomes"], strict=True):
        assert a == b
    keys = ("status", "score", "rows_in", "rows_processed", "rows_quarantined", "quarantine_reasons", "halted_by")
    for key in (*keys, "row_outcomes"):
        assert duck[key] == sprk[key], key
    assert duck["rows_in"] == 306
    for kind in ("processed", "quarantine"):
        d_rows, s_rows = _rows(tmp_path / "duck" / kind), _rows(tmp_path / "spark" / kind)
        assert d_rows == s_rows, kind
        assert ("DataQualityRulesPass" in d_rows[0]) == (kind == "quarantine" or row_outcomes == "full")
    assert duck["run_id"] == sprk["run_id"]


def test_engines_agree_on_multibyte_text_lengths(spark: Any, tmp_path: Path) -> None:
    """ColumnLength checks a byte count before counting characters; both engines must still count
    characters (1-4 bytes each), at and around every bound."""
    texts = ["\u00e9" * 20, "a" * 20, "\U0001f600" * 20, "ab" * 10, "\U0001f600" * 5, "x" * 90, None, ""]
    body = "".join(f'{{"doc_id": "D{i}", "text": {json.dumps(t)}}}\n' for i, t in enumerate(texts)).encode()
    rules = ", ".join(
        f'ColumnLength "text" {cond}'
        for cond in ("between 19 and 21", "between 4 and 20", "between 1 and 100", "> 20", ">= 20", "<= 20", "< 21")
    )
    doc = parse(f"Rules = [ {rules} ]")
    results = []
    for name, engine in (("duck", DuckDBEngine()), ("spark", SparkEngine(spark))):
        data = parse_files([InputFile("t.jsonl", "jsonl", body)])
        results.append(evaluate(engine, doc, data, NOW, tmp_path / name).outcomes)
    duck, sprk = results
    assert duck == sprk
    compliance = [o["EvaluatedMetrics"]["Column.text.ColumnLength.Compliance"] for o in duck]
    # characters per row: 20, 20, 20, 20, 5, 90, NULL, 0 (NULL fails every rule)
    assert compliance == [4 / 8, 1 / 8, 6 / 8, 1 / 8, 5 / 8, 6 / 8, 6 / 8]
