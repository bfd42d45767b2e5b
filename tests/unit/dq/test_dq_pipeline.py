"""Whole runs on DuckDB: nothing lost or duplicated, deterministic outputs, halt, atomic commit, CLI."""

from __future__ import annotations

import json
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from dq_platform.cli import app
from dq_platform.dq.dqdl import DQDLError
from dq_platform.dq.engines.duckdb_engine import DuckDBEngine
from dq_platform.dq.pipeline import RunOutputs, run
from dq_platform.sample_data import generate_records, write_records

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[3]
RULESET = (ROOT / "glue" / "rulesets" / "contracts.dqdl").read_text()
NOW = datetime(2025, 6, 1, 12, 0, 0)
DAY = date(2025, 6, 1)


def _run(inputs: list[Path], out: Path, ruleset: str = RULESET, row_outcomes: str = "compact") -> dict[str, Any]:
    outputs = RunOutputs(str(out / "processed"), str(out / "quarantine"), str(out / "results.json"))
    return run(
        ruleset, "contracts", inputs, outputs, DuckDBEngine(), now=NOW, ingest_date=DAY, row_outcomes=row_outcomes
    ).results


def _rows(folder: Path) -> list[dict[str, Any]]:
    files = sorted(folder.rglob("*.parquet"))
    return [r for f in files for r in pq.read_table(f).to_pylist()]


@pytest.fixture(scope="module")
def records() -> list[dict[str, Any]]:
    return generate_records(400, seed=7, defect_rate=0.2, today=DAY)


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_nothing_lost_nothing_duplicated(fmt: str, records: list[dict[str, Any]], tmp_path: Path) -> None:
    src = write_records(tmp_path / f"in.{fmt}", records, fmt, malformed_lines=6, seed=3)
    res = _run([src], tmp_path / "out")
    assert res["status"] == "SUCCEEDED"
    assert res["rows_in"] == len(records) + 6
    assert res["rows_in"] == res["rows_processed"] + res["rows_quarantined"]
    processed, quarantine = _rows(tmp_path / "out/processed"), _rows(tmp_path / "out/quarantine")
    assert len(processed) == res["rows_processed"]
    assert len(quarantine) == res["rows_quarantined"]
    ids = [r["_row_id"] for r in processed + quarantine]
    assert sorted(ids) == list(range(res["rows_in"]))  # each record exactly once
    assert [r["_row_id"] for r in processed] == sorted(r["_row_id"] for r in processed)  # stable order
    # every malformed line is kept verbatim in quarantine with its parse reason
    lines = src.read_text().splitlines()
    bad = [r for r in quarantine if r["_parse_error"] and r["_parse_error"].startswith("malformed")]
    assert bad
    for r in bad:
        assert r["_raw_record"] in lines
        assert r["DataQualityQuarantineReasons"] == [f"parse: {r['_parse_error']}"]
        assert r["DataQualityEvaluationResult"] == "Failed"
    # wrong types keep the original text too
    typed = [r for r in quarantine if r["_parse_error"] and "not a" in r["_parse_error"]]
    assert typed
    assert all(r["_raw_record"] for r in typed)
    # reasons are counted per rule / parse reason
    assert sum(v for k, v in res["quarantine_reasons"].items() if k.startswith("parse: ")) == sum(
        1 for r in quarantine if r["_parse_error"]
    )
    # row-level outcome columns: compact on processed rows, Glue's four on quarantine rows
    for r in processed:
        assert r["DataQualityEvaluationResult"] in ("Passed", "Failed")
        assert not set(r["DataQualityRulesFail"]) & {
            o["Rule"] for o in res["ruleOutcomes"] if o["Action"] == "quarantine"
        }
        assert "DataQualityRulesPass" not in r
        assert "DataQualityRulesSkip" not in r
    assert all("RowCount > 0" in r["DataQualityRulesSkip"] for r in quarantine)
    dup = [r for r in quarantine if 'IsUnique "doc_id"' in r["DataQualityRulesFail"]]
    assert all('IsUnique "doc_id"' in r["DataQualityQuarantineReasons"] for r in dup)


def test_rerun_gives_identical_outputs(records: list[dict[str, Any]], tmp_path: Path) -> None:
    src = write_records(tmp_path / "in.csv", records, "csv", malformed_lines=2)
    first = _run([src], tmp_path / "out")
    snapshot = {p.relative_to(tmp_path): p.read_bytes() for p in sorted((tmp_path / "out").rglob("*.parquet"))}
    second = _run([src], tmp_path / "out")
    again = {p.relative_to(tmp_path): p.read_bytes() for p in sorted((tmp_path / "out").rglob("*.parquet"))}
    assert snapshot == again
    assert len(snapshot) == 2
    assert first["run_id"] == second["run_id"]
    assert {k: v for k, v in first.items() if not k.endswith("_at")} == {
        k: v for k, v in second.items() if not k.endswith("_at")
    }
    assert not (tmp_path / "out" / "_staging").exists()


def test_halt_promotes_nothing(records: list[dict[str, Any]], tmp_path: Path) -> None:
    src = write_records(tmp_path / "in.csv", records, "csv")
    ruleset = 'Rules = [ RowCount > 100000 labels=["action"="halt"], IsComplete "doc_id" ]'
    res = _run([src], tmp_path / "out", ruleset)
    assert res["status"] == "HALTED"
    assert res["halted_by"] == ["RowCount > 100000"]
    assert (res["rows_processed"], res["rows_quarantined"]) == (0, res["rows_in"])
    assert not list((tmp_path / "out").rglob("*.parquet"))
    assert json.loads((tmp_path / "out/results.json").read_text())["status"] == "HALTED"


def test_failed_run_leaves_previous_outputs_intact(
    records: list[dict[str, Any]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    good = write_records(tmp_path / "a.csv", records[:200], "csv")
    _run([good], tmp_path / "out")
    before = {p: p.read_bytes() for p in (tmp_path / "out").rglob("*") if p.is_file()}

    calls = {"n": 0}
    original = DuckDBEngine.write_parquet

    def dying(self: DuckDBEngine, *args: Any, **kwargs: Any) -> list[str]:
        calls["n"] += 1
        if calls["n"] == 2:  # processed staged, then the process "dies" writing quarantine
            raise KeyboardInterrupt
        return original(self, *args, **kwargs)

    monkeypatch.setattr(DuckDBEngine, "write_parquet", dying)
    other = write_records(tmp_path / "b.csv", records[200:], "csv", malformed_lines=3)
    with pytest.raises(KeyboardInterrupt):
        _run([other], tmp_path / "out")
    after = {p: p.read_bytes() for p in (tmp_path / "out").rglob("*") if p.is_file()}
    assert after == before
    assert not (tmp_path / "out" / "_staging").exists()


def test_empty_file_and_header_only(tmp_path: Path) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    res = _run([empty], tmp_path / "out1")
    assert (res["rows_in"], res["status"]) == (0, "HALTED")
    assert set(res["halted_by"]) == {"RowCount > 0", 'ColumnExists "doc_id"', 'ColumnExists "text"'}
    header_only = write_records(tmp_path / "h.csv", [], "csv")
    res = _run([header_only], tmp_path / "out2")
    assert (res["rows_in"], res["status"], res["halted_by"]) == (0, "HALTED", ["RowCount > 0"])


def test_missing_column_quarantines_every_row(records: list[dict[str, Any]], tmp_path: Path) -> None:
    src = tmp_path / "no_currency.csv"
    trimmed = [{k: v for k, v in r.items() if k != "currency"} for r in records[:20]]
    import csv

    with src.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(trimmed[0]))
        writer.writeheader()
        writer.writerows(trimmed)
    res = _run([src], tmp_path / "out")
    assert res["rows_quarantined"] == res["rows_in"] == 20
    assert res["quarantine_reasons"] == {"parse: missing column: currency": 20}


def test_unknown_rule_fails_before_any_output(records: list[dict[str, Any]], tmp_path: Path) -> None:
    src = write_records(tmp_path / "in.csv", records[:10], "csv")
    with pytest.raises(DQDLError, match="line 1, column 11: unsupported rule type 'Entropy'"):
        _run([src], tmp_path / "out", 'Rules = [ Entropy "text" > 1 ]')
    assert not (tmp_path / "out").exists()


def test_cli_check_and_run(records: list[dict[str, Any]], tmp_path: Path) -> None:
    runner = CliRunner()
    ok = runner.invoke(app, ["dq", "check", str(ROOT / "glue/rulesets/contracts.dqdl")])
    assert ok.exit_code == 0, ok.output
    assert "20 rules" in ok.output
    assert "quarantine IsUnique" in ok.output
    bad = tmp_path / "bad.dqdl"
    bad.write_text('Rules = [\n  IsComplete "a",\n  ColumnValues "b" in ["x" "y"]\n]\n')
    res = runner.invoke(app, ["dq", "check", str(bad)])
    assert res.exit_code == 1
    assert "line 3, column 28: expected ',' or ']' in the list of values" in res.output
    src = write_records(tmp_path / "in.jsonl", records[:50], "jsonl", malformed_lines=2)
    out = tmp_path / "out"
    res = runner.invoke(
        app,
        [
            "dq",
            "run",
            "--ruleset",
            str(ROOT / "glue/rulesets/contracts.dqdl"),
            "--input",
            str(src),
            "--output",
            str(out),
            "--ingest-date",
            "2025-06-01",
            "--now",
            "2025-06-01T12:00:00",
        ],
    )
    assert res.exit_code == 0, res.output
    summary = json.loads((out / "results.json").read_text())
    assert f"rows in {summary['rows_in']:,}, processed {summary['rows_processed']:,}" in res.output
    assert "[" in res.output
    assert "reading input" in res.output
    assert (out / "processed/ingest_date=2025-06-01").is_dir()
    missing = runner.invoke(
        app,
        [
            "dq",
            "run",
            "-r",
            str(ROOT / "glue/rulesets/contracts.dqdl"),
            "-i",
            str(tmp_path / "nope.csv"),
            "-o",
            str(out),
        ],
    )
    assert missing.exit_code == 1
    assert "input not found" in missing.output


@pytest.mark.parametrize(
    ("text", "says"),
    [
        (
            'Rules = [\n  IsComplete "doc_id" labels=["action"="explode"]\n]\n',
            "line 2, column 3: unknown action 'explode'",
        ),
        (
            'Rules = [\n  RowCount > 0 labels=["action"="quarantine"]\n]\n',
            "line 2, column 3: action 'quarantine' needs a row-level rule",
        ),
        (
            'Rules = [\n  IsComplete "doc_id",\n  Entropy "text" > 1\n]\n',
            "line 3, column 3: unsupported rule type 'Entropy'",
        ),
    ],
)
def test_cli_check_refuses_what_run_refuses(
    records: list[dict[str, Any]], tmp_path: Path, text: str, says: str
) -> None:
    """`dq check` and `dq run` share one ruleset check (`compiler.check_ruleset`)."""
    rules = tmp_path / "rules.dqdl"
    rules.write_text(text)
    checked = CliRunner().invoke(app, ["dq", "check", str(rules)])
    assert checked.exit_code == 1, checked.output
    assert says in checked.output
    src = write_records(tmp_path / "in.csv", records[:10], "csv")
    with pytest.raises(DQDLError, match=says.replace("(", r"\(")):
        _run([src], tmp_path / "out", text)
    assert not (tmp_path / "out").exists()


def test_engines_declare_their_capabilities(tmp_path: Path) -> None:
    """The pipeline reads capabilities, never probes for them; DuckDB honours `order_by` as well."""
    import pyarrow as pa

    from dq_platform.dq.engines.spark_engine import SparkEngine

    for cls in (DuckDBEngine, SparkEngine):
        flags = ("batch_transforms", "orders_output", "remote_staging", "keeps_input_order")
        assert {type(getattr(cls, c)) for c in flags} == {bool}
        assert callable(cls.lock_down)
    engine = DuckDBEngine()
    engine.load("t", pa.table({"_row_id": [3, 1, 2]}), tmp_path)
    (path,) = engine.write_parquet("SELECT _row_id FROM t", tmp_path / "out", "part", 3, order_by="_row_id")
    assert pq.read_table(path).column("_row_id").to_pylist() == [1, 2, 3]
    engine.close()


def test_duckdb_presorted_write_checks_the_order_and_splits_large_outputs(tmp_path: Path) -> None:
    """`presorted` skips the sort only while the rows really come in order: a table out of order is
    written sorted all the same; a large ordered output is cut into contiguous parts, in file-name order."""
    import pyarrow as pa

    engine = DuckDBEngine()
    engine.load("shuffled", pa.table({"_row_id": [2, 0, 1], "v": ["c", "a", "b"]}), tmp_path)
    paths = engine.write_parquet(
        "SELECT * FROM shuffled", tmp_path / "s", "part", 3, order_by="_row_id", presorted=True
    )
    assert [pq.read_table(p).column("v").to_pylist() for p in paths] == [["a", "b", "c"]]
    n = 600_000
    engine.load("big", pa.table({"_row_id": pa.array(range(n), pa.int64())}), tmp_path)
    paths = engine.write_parquet(
        "SELECT * FROM big WHERE _row_id % 10 <> 3", tmp_path / "b", "part", n, order_by="_row_id", presorted=True
    )
    assert [Path(p).name for p in paths] == ["part-00000.parquet", "part-00001.parquet"]
    ids = [i for p in paths for i in pq.read_table(p).column("_row_id").to_pylist()]
    assert ids == [i for i in range(n) if i % 10 != 3]
    engine.close()


def test_duckdb_row_pass_keeps_one_copy_in_input_order(tmp_path: Path) -> None:
    """The row pass adds the statuses to the input's own Arrow table (rows in input order, malformed rows
    after the good ones), so processed rows need no sort; outputs are in `_row_id` order either way."""
    src = tmp_path / "in.csv"
    write_records(src, generate_records(300, seed=5, defect_rate=0.2), "csv", malformed_lines=3, seed=5)
    engine = DuckDBEngine()
    out = tmp_path / "out"
    outputs = RunOutputs(str(out / "processed"), str(out / "quarantine"), str(out / "results.json"))
    res = run(RULESET, "contracts", [src], outputs, engine, now=NOW, ingest_date=DAY).results
    assert engine.keeps_input_order
    assert res["rows_in"] == res["rows_processed"] + res["rows_quarantined"] == 303
    for kind in ("processed", "quarantine"):
        ids = [r["_row_id"] for r in _rows(out / kind)]
        assert ids
        assert ids == sorted(ids)
