from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dq_platform.cli import app
from dq_platform.models.artifacts import Manifest
from dq_platform.sample_data import generate_clauses
from tests.unit.models.support import write_csv

pytestmark = pytest.mark.unit

FIELDS = ["text", "label", "source_doc"]
runner = CliRunner()


def test_train_rejects_bad_data_with_the_reason(tmp_path: Path) -> None:
    no_label = write_csv(tmp_path / "a.csv", [{"text": "x", "source_doc": "d"}], ["text", "source_doc"])
    result = runner.invoke(
        app, ["train", "--data", str(no_label), "--out", str(tmp_path / "m"), "--models", "baseline"]
    )
    assert result.exit_code == 2
    assert "missing required column(s): label" in result.output
    rows = generate_clauses(4)
    rows[2]["label"] = "Medium"
    bad = write_csv(tmp_path / "b.csv", rows, FIELDS)
    result = runner.invoke(app, ["train", "--data", str(bad), "--out", str(tmp_path / "m")])
    assert result.exit_code == 2
    assert "b.csv line 4: unknown label 'Medium'" in result.output
    empty = write_csv(tmp_path / "c.csv", [], FIELDS)
    result = runner.invoke(app, ["train", "--data", str(empty), "--out", str(tmp_path / "m")])
    assert result.exit_code == 2
    assert "no labelled rows" in result.output
    result = runner.invoke(app, ["train", "--out", str(tmp_path / "m"), "--models", "gpt"])
    assert result.exit_code == 2
    assert not (tmp_path / "m").exists()


def test_train_baseline_from_csv_then_evaluate(tmp_path: Path) -> None:
    train_csv = write_csv(tmp_path / "train.csv", generate_clauses(300, seed=1), FIELDS)
    out = tmp_path / "models"
    result = runner.invoke(app, ["train", "--data", str(train_csv), "--out", str(out), "--models", "baseline"])
    assert result.exit_code == 0, result.output
    manifest = Manifest.model_validate_json((out / "baseline" / "manifest.json").read_text())
    assert manifest.extra["sources"] == [str(train_csv)]

    eval_csv = write_csv(tmp_path / "fresh.csv", generate_clauses(120, seed=2), FIELDS)
    report_dir = tmp_path / "eval"
    result = runner.invoke(
        app,
        [
            "evaluate",
            "--models",
            str(out),
            "--data",
            str(eval_csv),
            "--data",
            f"{eval_csv}#split=test",
            "--out",
            str(report_dir),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "length-only" in result.output
    assert "note: model transformer not evaluated" in result.output
    report = json.loads((report_dir / "evaluation.json").read_text())
    fresh = report["datasets"]["fresh"]
    assert fresh["rows"] == 120
    baseline = fresh["results"]["baseline"]
    assert baseline["tp"] + baseline["fp"] + baseline["fn"] + baseline["tn"] == 120
    assert baseline["confusion"]["HighRisk"]["HighRisk"] == baseline["tp"]
    assert baseline["f1"] > fresh["results"]["length-only"]["f1"]
    assert set(report["datasets"]) == {"fresh", "fresh[test]"}
    assert (report_dir / "pr_curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_explain_cli_writes_json_and_html(tiny_models: tuple[Path, dict[str, Manifest]], tmp_path: Path) -> None:
    root, manifests = tiny_models
    docs = tmp_path / "docs.jsonl"
    docs.write_text(
        "".join(
            json.dumps({"doc_id": f"c-{i}", "text": r["text"]}) + "\n"
            for i, r in enumerate(generate_clauses(2, seed=8))
        )
    )
    out = tmp_path / "analytics"
    args = [
        "explain",
        "--models",
        str(root),
        "--input",
        str(docs),
        "--out",
        str(out),
        "--model",
        "baseline",
        "--max-evals",
        "30",
    ]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    record = json.loads((out / "explanations" / "baseline" / "c-1.json").read_text())
    assert record["model_version"] == manifests["baseline"].version
    assert (out / "explanations" / "baseline" / "c-1.html").is_file()
    result = runner.invoke(app, [*args[:-2], "--max-evals", "30", "--model", "nope"])
    assert result.exit_code == 2
    assert "manifest.json not found" in result.output
