"""Bad input to the DQ CLI (`dqp dq run`, `dqp dq check`): each case its own test with its expected error.

"Nothing lost" is checked on the written files, not only on the counts in results.json: every input
record is a row of processed/ or quarantine/ (a broken record keeps its original text in
`_raw_record`), and rows_in == rows_processed + rows_quarantined.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner, Result

from dq_platform.cli import app
from dq_platform.sample_data import generate_records, write_records
from tests.reliability.support import RULESET

pytestmark = [pytest.mark.reliability, pytest.mark.integration]

NOW = ["--now", "2026-06-01T00:00:00", "--ingest-date", "2026-06-01"]


def _run(tmp_path: Path, *inputs: Path, ruleset: Path = RULESET) -> tuple[Result, Path]:
    out = tmp_path / "out"
    args = ["dq", "run", "-r", str(ruleset), "-o", str(out), "-q", *NOW]
    for path in inputs:
        args += ["-i", str(path)]
    return CliRunner().invoke(app, args), out


def _rows(out: Path, kind: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for path in sorted((out / kind).rglob("*.parquet")):
        rows.extend(pq.read_table(path).to_pylist())
    return rows


def _results(out: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((out / "results.json").read_text())
    return data


def _assert_nothing_lost(out: Path, doc_ids: list[str]) -> dict[str, Any]:
    res = _results(out)
    processed, quarantined = _rows(out, "processed"), _rows(out, "quarantine")
    assert res["rows_in"] == res["rows_processed"] + res["rows_quarantined"]
    if res["status"] == "HALTED":
        # A halt promotes nothing: every row counts as held back and the input stays where it was.
        assert (processed, quarantined) == ([], [])
        assert res["rows_quarantined"] == res["rows_in"] == len(doc_ids)
        return res
    assert (len(processed), len(quarantined)) == (res["rows_processed"], res["rows_quarantined"])
    found = {r["doc_id"] for r in processed + quarantined if r["doc_id"]}
    raw = "\n".join(r["_raw_record"] or "" for r in quarantined)
    missing = [d for d in doc_ids if d not in found and d not in raw]
    assert missing == [], f"records lost: {missing}"
    return res


# ---------------------------------------------------------------- empty input


@pytest.mark.parametrize("name", ["empty.csv", "empty.jsonl"])
def test_empty_file_halts_with_rowcount(tmp_path: Path, name: str) -> None:
    empty = tmp_path / name
    empty.write_bytes(b"")
    result, out = _run(tmp_path, empty)
    assert result.exit_code == 3, result.output
    assert "HALTED: rows in 0" in result.output
    res = _results(out)
    assert res["status"] == "HALTED"
    assert "RowCount > 0" in res["halted_by"]
    assert (res["rows_in"], res["rows_processed"], res["rows_quarantined"]) == (0, 0, 0)
    assert _rows(out, "processed") == [] == _rows(out, "quarantine")


def test_header_only_csv_halts_with_rowcount(tmp_path: Path) -> None:
    path = write_records(tmp_path / "header.csv", generate_records(3, seed=1), "csv")
    path.write_text(path.read_text().splitlines()[0] + "\n")
    result, out = _run(tmp_path, path)
    assert result.exit_code == 3
    assert _results(out)["halted_by"] == ["RowCount > 0"]


def test_missing_input_file_is_named(tmp_path: Path) -> None:
    result, out = _run(tmp_path, tmp_path / "nope.csv")
    assert result.exit_code == 1
    assert "nope.csv: input not found" in result.output
    assert not out.exists()


# ---------------------------------------------------------------- CSV with broken quoting


def test_csv_broken_quoting_is_quarantined_and_nothing_lost(tmp_path: Path) -> None:
    """Issue #19: an unclosed quote used to run into the following records (they were renumbered into
    its raw text, or lost); now it costs its own line only, and every other record keeps its number."""
    records = generate_records(60, seed=5, defect_rate=0.0)
    path = write_records(tmp_path / "quotes.csv", records, "csv")
    lines = path.read_text(encoding="utf-8").splitlines()
    lines[6] = lines[6].replace(",", ',"', 1)  # a quote opened and never closed
    lines[30] = lines[30].replace(",", ',"abc"x,', 1)  # junk after a closing quote: one field too many
    lines[45] = lines[45].replace(",", ',ab"c', 1)  # a stray quote inside an unquoted field: still a record
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result, out = _run(tmp_path, path)
    assert result.exit_code == 0, result.output
    res = _assert_nothing_lost(out, [r["doc_id"] for r in records])
    assert (res["rows_in"], res["records_counted"], res["records_check"]) == (60, 60, "PASSED")
    parse_reasons = {k: v for k, v in res["quarantine_reasons"].items() if k.startswith("parse: malformed CSV")}
    assert sum(parse_reasons.values()) == 2, res["quarantine_reasons"]
    broken = {r["_line"]: r for r in _rows(out, "quarantine") if r["_parse_error"]}
    assert sorted(broken) == [7, 31]  # physical lines, the header being line 1
    assert {r["_record"] for r in broken.values()} == {6, 30}
    assert broken[7]["_raw_record"] == lines[6]
    assert broken[7]["_parse_error"] == "malformed CSV record: unterminated quoted field"
    assert broken[31]["_raw_record"] == lines[30]
    assert broken[31]["_parse_error"] == "malformed CSV record: expected 11 fields, found 12"


# ---------------------------------------------------------------- JSON lines with truncated records


def test_jsonl_truncated_records_are_quarantined_and_nothing_lost(tmp_path: Path) -> None:
    records = generate_records(50, seed=6, defect_rate=0.0)
    path = write_records(tmp_path / "cut.jsonl", records, "jsonl")
    lines = path.read_text(encoding="utf-8").splitlines()
    lines[10] = lines[10][: len(lines[10]) // 2]  # cut mid-record
    lines[-1] = lines[-1][:-7]  # the last record cut short, no newline (a writer killed mid-line)
    path.write_text("\n".join(lines), encoding="utf-8")
    result, out = _run(tmp_path, path)
    assert result.exit_code == 0, result.output
    res = _assert_nothing_lost(out, [r["doc_id"] for r in records])
    assert res["rows_in"] == 50
    reasons = [k for k in res["quarantine_reasons"] if k.startswith("parse: malformed JSON record")]
    assert sum(res["quarantine_reasons"][k] for k in reasons) == 2
    broken = sorted(r["_record"] for r in _rows(out, "quarantine") if r["_parse_error"])
    assert broken == [11, 50]


def test_jsonl_wrong_types_are_quarantined_with_the_field_named(tmp_path: Path) -> None:
    records = generate_records(20, seed=7, defect_rate=0.0)
    path = write_records(tmp_path / "types.jsonl", records, "jsonl")
    lines = path.read_text(encoding="utf-8").splitlines()
    bad = json.loads(lines[3])
    bad["value_amount"] = {"nested": [1, 2]}
    lines[3] = json.dumps(bad)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result, out = _run(tmp_path, path)
    assert result.exit_code == 0, result.output
    _assert_nothing_lost(out, [r["doc_id"] for r in records])
    row = next(r for r in _rows(out, "quarantine") if r["doc_id"] == bad["doc_id"])
    assert "value_amount: expected a number" in row["_parse_error"]


# ---------------------------------------------------------------- rulesets


def _ruleset(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "rules.dqdl"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("text", "line", "column", "says"),
    [
        pytest.param(
            'Rules = [\n  IsComplete "doc_id",\n  ColumnValues "value_amount" betwen 1 and 3\n]\n',
            3,
            31,
            "expected ',' or ']'",
            id="misspelt-keyword",
        ),
        pytest.param(
            'Rules = [\n  IsComplete "doc_id",\n  IsCompleet "title"\n]\n', 3, 3, "IsCompleet", id="unknown-rule"
        ),
        pytest.param('Rules = [\n  IsComplete "doc_id",\n', 3, 1, "end of input", id="unclosed-list"),
    ],
)
def test_ruleset_syntax_error_names_line_and_column(
    tmp_path: Path, text: str, line: int, column: int, says: str
) -> None:
    rules = _ruleset(tmp_path, text)
    checked = CliRunner().invoke(app, ["dq", "check", str(rules)])
    assert checked.exit_code == 1
    assert f"line {line}, column {column}" in checked.output
    assert says in checked.output
    data = write_records(tmp_path / "in.csv", generate_records(5, seed=1), "csv")
    result, out = _run(tmp_path, data, ruleset=rules)
    assert result.exit_code == 1
    assert f"line {line}, column {column}" in result.output
    assert not out.exists(), "a bad ruleset must fail before anything is written"


def test_missing_comma_between_rules_fails_check_as_it_fails_run(tmp_path: Path) -> None:
    """DQ defect D1 (fixed): a missing ',' used to make the next rule's type a parameter of this one, so
    `dqp dq check` passed a ruleset that `dqp dq run` refused. Both now refuse it at the second rule."""
    rules = _ruleset(tmp_path, 'Rules = [\n  IsComplete "doc_id"\n  IsUnique "doc_id"\n]\n')
    data = write_records(tmp_path / "in.csv", generate_records(5, seed=1), "csv")
    result, out = _run(tmp_path, data, ruleset=rules)
    assert result.exit_code == 1
    assert "line 3, column 3: expected ',' or ']'" in result.output
    assert not out.exists()
    checked = CliRunner().invoke(app, ["dq", "check", str(rules)])
    assert checked.exit_code == 1, checked.output
    assert "line 3, column 3: expected ',' or ']'" in checked.output


@pytest.mark.parametrize(("action", "exit_code", "status"), [("warn", 0, "SUCCEEDED"), ("halt", 3, "HALTED")])
def test_ruleset_naming_unknown_columns_errors_the_rule(
    tmp_path: Path, action: str, exit_code: int, status: str
) -> None:
    rules = _ruleset(
        tmp_path,
        "Rules = [\n"
        '  IsComplete "doc_id",\n'
        f'  IsComplete "no_such_column" labels=["action"="{action}"],\n'
        '  ColumnValues "valeu_amount" > 3\n'
        "]\n",
    )
    records = generate_records(30, seed=2, defect_rate=0.0)
    data = write_records(tmp_path / "in.csv", records, "csv")
    result, out = _run(tmp_path, data, ruleset=rules)
    assert result.exit_code == exit_code, result.output
    assert "column 'no_such_column' not found in the dataset" in result.output
    assert "column 'valeu_amount' not found in the dataset" in result.output
    res = _assert_nothing_lost(out, [r["doc_id"] for r in records])
    assert res["status"] == status
    errored = {o["Rule"].split(" labels")[0] for o in res["ruleOutcomes"] if o["Outcome"] == "Error"}
    assert errored == {'IsComplete "no_such_column"', 'ColumnValues "valeu_amount" > 3'}
    assert res["score"] == pytest.approx(1 / 3)
