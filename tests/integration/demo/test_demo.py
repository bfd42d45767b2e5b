"""`dqp demo --no-serve` end to end on a small sample: every step runs and leaves what it promises."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tests.support.aws import free_port

pytestmark = pytest.mark.integration


def _rows(folder: Path) -> int:
    return sum(pq.read_metadata(f).num_rows for f in folder.rglob("*.parquet"))


def test_demo_runs_every_step_and_writes_the_reports(tmp_path: Path) -> None:
    work = tmp_path / "demo"
    cmd = [sys.executable, "-m", "dq_platform", "demo", "--no-serve", "--tiny", "--rows", "300"]
    cmd += ["--workdir", str(work), "--port", str(free_port())]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900, check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]

    # 1-2: sample data through the DQ pipeline; nothing lost, the report written without record text
    results = json.loads((work / "dq" / "results.json").read_text())
    assert results["status"] == "SUCCEEDED"
    assert results["rows_in"] == 300 + 6  # records + the malformed lines the demo splices in
    assert results["rows_in"] == results["rows_processed"] + results["rows_quarantined"]
    assert _rows(work / "dq" / "processed") == results["rows_processed"]
    assert _rows(work / "dq" / "quarantine") == results["rows_quarantined"]
    assert results["rows_quarantined"] > 6  # the defects and the broken lines
    page = (work / "reports" / "dq-report.html").read_text()
    assert results["run_id"] in page
    first_text = pq.read_table(next((work / "dq" / "processed").rglob("*.parquet")), columns=["text"])[0][0]
    assert first_text.as_py() not in page

    # 3-5: both models trained, explained and evaluated
    for name in ("baseline", "transformer"):
        manifest = json.loads((work / "models" / name / "manifest.json").read_text())
        assert manifest["name"] == name
        assert manifest["labels"] == ["HighRisk", "LowRisk"]
    shap_json = sorted((work / "analytics" / "explanations" / "transformer").glob("*.json"))
    assert shap_json
    assert json.loads(shap_json[0].read_text())["type"] == "shap-partition"
    assert (work / "reports" / "evaluation" / "pr_curves.png").stat().st_size > 10_000
    # ... on real clauses: trained on the shipped CLAUDETTE slice, evaluated on its held-out test documents
    for name in ("baseline", "transformer"):
        manifest = json.loads((work / "models" / name / "manifest.json").read_text())
        assert any("claudette2019_slice.csv" in source for source in manifest["extra"]["sources"])
    evaluation = json.loads((work / "reports" / "evaluation" / "evaluation.json").read_text())
    assert list(evaluation["datasets"]) == ["claudette2019_slice[test]"]
    held_out = evaluation["datasets"]["claudette2019_slice[test]"]
    assert (held_out["rows"], held_out["documents"], held_out["positives"]) == (491, 4, 51)
    assert set(held_out["results"]) == {"baseline", "transformer", "length-only"}
    # the real baseline beats sentence length on text nobody on the team wrote, but is far from perfect
    baseline_f1 = held_out["results"]["baseline"]["f1"]
    assert held_out["results"]["length-only"]["f1"] < baseline_f1 < 0.95
    assert "Evaluation on claudette2019_slice[test] (491 sentences, 4 documents, 51 HighRisk" in out
    assert re.search(r"^\s+length-only\s+precision [0-9.]+\s+recall [0-9.]+\s+F1 [0-9.]+\s+PR-AUC", out, re.M)
    assert "CC BY 4.0" in out

    # 6-8: the API answered, the smoke checks passed, the A/B report was written from its logs
    assert "9/9 checks passed" in out
    assert (work / "reports" / "ab" / "ab-report.html").is_file()
    assert "Summary" in out
    assert f"rows in {results['rows_in']} = processed {results['rows_processed']}" in out
    for model in ("baseline", "transformer", "auto"):
        assert f"{model:>11} -> " in out
    # `auto` answered the examples with both models (each example has a doc_id of its own) ...
    examples = re.findall(r"^\s+auto -> (\w+)\s+(DEMO-\d{4}) ", out, re.MULTILINE)
    assert sorted(model for model, _ in examples) == ["baseline", "transformer"]
    assert len({doc_id for _, doc_id in examples}) == 2
    # ... and sent enough `auto` traffic for the A/B report to decide on behaviour, not on a lack of data.
    decision = json.loads((work / "reports" / "ab" / "ab-report.json").read_text())["decision"]
    traffic = next(c for c in decision["checks"] if c["rule"] == "K1")
    assert traffic["outcome"] == "pass", traffic
    assert "not enough traffic" not in decision["summary"]
    assert f"  recommendation: {decision['recommendation'].upper()} - {decision['summary']}" in out
    assert "cannot decide yet" not in out

    # The API served the SHAP explanation the batch step precomputed, for a document that step explained.
    explained = [json.loads(p.read_text())["doc_id"] for p in shap_json]  # the demo takes them in this order
    served = re.search(r"^Served SHAP explanation: (\S+) was explained by the batch step", out, re.MULTILINE)
    assert served, out[-4000:]
    assert served.group(1) == explained[0]
    assert re.search(rf"^\s+transformer -> transformer\s+{re.escape(explained[0])} .* shap-partition: ", out, re.M)
    html_uri = re.search(r"plot: (file://\S+\.html)$", out, re.MULTILINE)
    assert html_uri, out[-4000:]
    assert html_uri.group(1).endswith(f"/explanations/transformer/{explained[0]}.html")
