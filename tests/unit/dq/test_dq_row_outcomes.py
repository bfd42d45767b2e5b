"""Processed rows' row-level columns: compact by default, Glue's four with `row_outcomes="full"`; the
compact pass / skip lists rebuild exactly from results.json and the fail list (issue #16)."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from dq_platform.cli import app
from dq_platform.dq.engines.duckdb_engine import DuckDBEngine
from dq_platform.dq.outcomes import rebuild_rule_lists
from dq_platform.dq.pipeline import RunOutputs, run
from dq_platform.sample_data import generate_records, write_records

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[3]
RULESET = (ROOT / "glue" / "rulesets" / "contracts.dqdl").read_text()
NOW = datetime(2025, 6, 1, 12, 0, 0)
DAY = date(2025, 6, 1)
GLUE = ["DataQualityRulesPass", "DataQualityRulesFail", "DataQualityRulesSkip", "DataQualityEvaluationResult"]


def _run(src: Path, out: Path, row_outcomes: str, ruleset: str = RULESET) -> dict[str, Any]:
    outputs = RunOutputs(str(out / "processed"), str(out / "quarantine"), str(out / "results.json"))
    return run(
        ruleset, "contracts", [src], outputs, DuckDBEngine(), now=NOW, ingest_date=DAY, row_outcomes=row_outcomes
    ).results


def _table(folder: Path) -> Any:
    return pq.read_table(sorted(folder.rglob("*.parquet"))[0])


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    records = generate_records(600, seed=11, defect_rate=0.2, today=DAY)
    return write_records(tmp_path_factory.mktemp("in") / "in.csv", records, "csv", malformed_lines=4, seed=5)


def test_shapes_and_rebuild(source: Path, tmp_path: Path) -> None:
    compact = _run(source, tmp_path / "c", "compact")
    full = _run(source, tmp_path / "f", "full")
    assert compact["row_outcomes"]["processed"] == "compact"
    assert full["row_outcomes"]["processed"] == "full"
    same = ("run_id", "started_at", "finished_at", "outputs", "row_outcomes")
    assert {k: v for k, v in compact.items() if k not in same} == {k: v for k, v in full.items() if k not in same}
    c_proc, f_proc = _table(tmp_path / "c/processed"), _table(tmp_path / "f/processed")
    data = [n for n in f_proc.column_names if n not in GLUE]
    assert c_proc.column_names == [*data, "DataQualityRulesFail", "DataQualityEvaluationResult"]
    assert f_proc.column_names == [*data, *GLUE]
    assert c_proc.select(c_proc.column_names).equals(f_proc.select(c_proc.column_names))
    # quarantine rows carry all four in both shapes, byte for byte the same rows
    c_q, f_q = _table(tmp_path / "c/quarantine"), _table(tmp_path / "f/quarantine")
    assert c_q.equals(f_q)
    assert set(GLUE) <= set(c_q.column_names)
    # the compact rows' pass and skip lists rebuild to exactly what `full` writes
    assert compact["row_outcomes"]["processed_skips"] == {}
    for row, want in zip(c_proc.to_pylist(), f_proc.to_pylist(), strict=True):
        passed, skipped = rebuild_rule_lists(compact, row["DataQualityRulesFail"])
        assert (passed, skipped) == (want["DataQualityRulesPass"], want["DataQualityRulesSkip"])


def test_rebuild_with_rules_that_skip_rows(source: Path, tmp_path: Path) -> None:
    """A `where` (or a NULL key) skips rows of a row-level rule: results.json names the rule and counts
    the processed rows it skipped; given the row's skips, the rebuild is exact again."""
    ruleset = (
        'Rules = [ RowCount > 0, ColumnValues "value_amount" > 1000 where "currency = \'USD\'", '
        'IsComplete "doc_id" labels=["action"="quarantine"], IsUnique "title" ]'
    )
    compact = _run(source, tmp_path / "c", "compact", ruleset)
    _run(source, tmp_path / "f", "full", ruleset)
    skips = compact["row_outcomes"]["processed_skips"]
    rule = 'ColumnValues "value_amount" > 1000 where "currency = \'USD\'"'
    assert skips.get(rule, 0) > 0
    c_proc, f_proc = _table(tmp_path / "c/processed"), _table(tmp_path / "f/processed")
    assert sum(1 for r in f_proc.to_pylist() if rule in r["DataQualityRulesSkip"]) == skips[rule]
    for row, want in zip(c_proc.to_pylist(), f_proc.to_pylist(), strict=True):
        own = [r for r in want["DataQualityRulesSkip"] if r in skips]  # what the data says for this row
        assert rebuild_rule_lists(compact, row["DataQualityRulesFail"], own) == (
            want["DataQualityRulesPass"],
            want["DataQualityRulesSkip"],
        )


def test_cli_row_outcomes(source: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    base = ["dq", "run", "--input", str(source), "--now", NOW.isoformat(), "--ingest-date", DAY.isoformat(), "-q"]
    ok = runner.invoke(app, [*base, "--output", str(tmp_path / "o"), "--row-outcomes", "full"])
    assert ok.exit_code == 0, ok.output
    assert set(GLUE) <= set(_table(tmp_path / "o/processed").column_names)
    bad = runner.invoke(app, [*base, "--output", str(tmp_path / "x"), "--row-outcomes", "wide"])
    assert bad.exit_code == 2
    assert "--row-outcomes must be one of compact, full" in bad.output
    assert not (tmp_path / "x").exists()


def test_unknown_shape_fails_before_reading(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="row outcomes must be one of compact, full"):
        _run(tmp_path / "missing.csv", tmp_path / "o", "wide")
