"""`dqp ab-report` on local files: outputs, the rendered report's content, exit codes and bad input."""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dq_platform.cli import app

from .logfactory import Arm, make_lines, write_log

pytestmark = pytest.mark.unit
runner = CliRunner()
LAT = tuple(float(v) for v in range(1, 101))


@pytest.fixture
def null_log(tmp_path: Path) -> Path:
    lines = make_lines(
        [
            Arm("baseline", n=800, positive=240, latencies=LAT, shadow_every=4, shadow_disagree_every=25),
            Arm("transformer", n=300, positive=90, latencies=LAT, shadow_every=4, shadow_disagree_every=25),
        ]
    )
    return write_log(tmp_path / "serve.log", lines)


def _run(*args: str) -> object:
    return runner.invoke(app, ["ab-report", *args])


def test_writes_markdown_html_json_and_plots(tmp_path: Path, null_log: Path) -> None:
    out = tmp_path / "report"
    result = _run("--logs", str(null_log), "--out", str(out), "--format", "md,html,json")
    assert result.exit_code == 0, result.output
    assert "recommendation: PROMOTE" in result.output
    md = (out / "ab-report.md").read_text()
    assert md.startswith("# A/B report: transformer vs baseline")
    assert "## Recommendation: PROMOTE" in md
    assert "| HighRisk rate | 30.00% (90/300) | 30.00% (240/800) | +0.00 pp" in md
    assert "| transformer | logs | 300 | 0 | 0.00% [0.0%, 1.3%] | 0 | 50.5 | 95.1 | 99.0 | 100.0 |" in md
    # Each check by what it checks, its measured value and its threshold; the internal ids stay in the JSON.
    assert "| Check | Measured | Needed to pass | Outcome | If it fails |" in md
    assert "| requests per arm | baseline 800, transformer 300 | at least 200 each | pass | keep |" in md
    assert not re.search(r"\b[RK][1-3]\b", md)
    data = json.loads((out / "ab-report.json").read_text())
    assert data["decision"]["recommendation"] == "promote"
    assert [c["rule"] for c in data["decision"]["checks"]] == ["R1", "R2", "R3", "K1", "K2", "K3"]
    assert [t["metric"] for t in data["tests"]] == ["HighRisk rate", "server-error rate"]
    page = (out / "ab-report.html").read_text()
    assert page.startswith("<!DOCTYPE html>")
    assert '<p class="decision promote">' in page
    if (out / "latency_cdf.svg").exists():  # matplotlib installed (train extra)
        assert "![Latency CDF per model" in md
        assert page.count("<svg") == 3
        assert (out / "label_shares.svg").read_text().startswith("<svg")
    # Self-contained: no external scripts, stylesheets or images.
    assert not re.search(r"<(script|link)\b", page)
    assert not re.search(r"""(src|href)=["']https?://""", page)


def test_html_only_and_json_only(tmp_path: Path, null_log: Path) -> None:
    result = _run("--logs", str(null_log), "--out", str(tmp_path / "j"), "--format", "json")
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "j").iterdir()) == ["ab-report.json"]


def test_folder_of_logs_with_gzip_and_mixed_lines(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    lines = make_lines([Arm("baseline", n=300, positive=90), Arm("transformer", n=300, positive=180)])
    half = len(lines) // 2
    write_log(logs / "a.log", ["START RequestId: 1 Version: 3", *lines[:half], "", "END RequestId: 1"])
    with gzip.open(logs / "b.jsonl.gz", "wt") as handle:
        handle.write("\r\n".join(lines[half:]) + "\r\n")
    (logs / "notes.md").write_text("not a log")
    out = tmp_path / "r"
    result = _run("--logs", str(logs), "--out", str(out), "--format", "json")
    assert result.exit_code == 0, result.output
    data = json.loads((out / "ab-report.json").read_text())
    assert data["parse"]["used"] == {"prediction": 600, "emf": 600}
    assert data["parse"]["ignored"] == {"blank": 1, "non_json": 2}
    assert data["decision"]["recommendation"] == "keep"  # 30% vs 60% HighRisk: significant shift


def test_truncated_log_is_reported_and_strict_fails(tmp_path: Path) -> None:
    lines = make_lines([Arm("baseline", n=50, positive=10)])
    log = tmp_path / "cut.log"
    log.write_text("\n".join(lines) + "\n" + lines[0][: len(lines[0]) // 2])  # crashed mid-write
    out = tmp_path / "r"
    result = _run("--logs", str(log), "--out", str(out), "--format", "json")
    assert result.exit_code == 0, result.output
    assert "1 malformed log line(s) skipped" in result.output
    assert f"{log}:101" in result.output
    data = json.loads((out / "ab-report.json").read_text())
    assert data["parse"]["skipped"] == {"truncated_json": 1}
    assert data["parse"]["used"]["prediction"] == 50
    strict = _run("--logs", str(log), "--out", str(out), "--strict")
    assert strict.exit_code == 2
    assert "--strict" in strict.output


def test_empty_log_gives_a_report_that_says_so(tmp_path: Path) -> None:
    log = tmp_path / "empty.log"
    log.write_text("")
    out = tmp_path / "r"
    result = _run("--logs", str(log), "--out", str(out))
    assert result.exit_code == 0, result.output
    assert "recommendation: KEEP" in result.output
    md = (out / "ab-report.md").read_text()
    assert "0 log events read; 0 skipped as malformed." in md
    assert "No prediction records in the window." in md


def test_rollback_exit_code_for_ci(tmp_path: Path) -> None:
    lines = make_lines([Arm("baseline", n=600, positive=180), Arm("transformer", n=300, positive=90, errors=15)])
    log = write_log(tmp_path / "bad.log", lines)
    result = _run("--logs", str(log), "--out", str(tmp_path / "r"), "--format", "json", "--fail-on-rollback")
    assert result.exit_code == 3
    assert "recommendation: ROLL BACK" in result.output


def test_since_until_window_on_local_files(tmp_path: Path) -> None:
    lines = make_lines([Arm("baseline", n=120, positive=30)], duration_s=120)  # 12:00:00 .. 12:02:00 UTC
    log = write_log(tmp_path / "w.log", lines)
    out = tmp_path / "r"
    result = _run(
        "--logs",
        str(log),
        "--since",
        "2024-05-01T12:01:00Z",
        "--until",
        "2024-05-01T13:00:00",
        "--format",
        "json",
        "--out",
        str(out),
    )
    assert result.exit_code == 0, result.output
    data = json.loads((out / "ab-report.json").read_text())
    kept = data["models"][0]["requests"]
    assert 50 <= kept <= 70
    assert data["parse"]["ignored"]["outside_window"] == 2 * (120 - kept)


def test_rule_options_change_the_call(tmp_path: Path, null_log: Path) -> None:
    result = _run("--logs", str(null_log), "--out", str(tmp_path / "r"), "--format", "json", "--min-requests", "5000")
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[-2:] == [
        "recommendation: KEEP - Keep the current split: not enough traffic yet (baseline arm: 800 requests, "
        "transformer arm: 300 requests, 5000 each needed).",
        "next step: Leave the weights as they are and re-run the report once each arm has at least 5000 requests.",
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "no logs to read; give --logs FILE"),
        (("--logs", "x.log", "--log-group", "g"), "both --logs and --log-group given"),
        (("--logs", "does-not-exist.log"), "no such log file or folder: does-not-exist.log"),
        (("--logs", "{log}", "--format", "pdf"), "--format takes"),
        (("--logs", "{log}", "--since", "yesterday"), "not a time: 'yesterday'"),
        (("--logs", "{log}", "--since", "2024-06-01", "--until", "2024-05-01"), "must be before --until"),
        (("--logs", "{log}", "--control", "baseline", "--candidate", "baseline"), "must differ"),
        (("--logs", "{log}", "--traffic", "some"), "--traffic must be auto or all"),
        (("--log-group", "g", "--cw-api", "sql"), "--cw-api must be"),
    ],
)
def test_bad_input_is_refused_with_a_reason(
    tmp_path: Path, null_log: Path, args: tuple[str, ...], message: str
) -> None:
    result = _run(*(a.format(log=null_log) for a in args), "--out", str(tmp_path / "r"))
    assert result.exit_code == 2
    assert message in result.output


def test_plots_are_reproducible_and_ids_do_not_clash(null_log: Path) -> None:
    pytest.importorskip("matplotlib")
    from dq_platform.abtest.analysis import analyse
    from dq_platform.abtest.plots import all_plots
    from dq_platform.abtest.sources import LocalFiles

    analysis = analyse(LocalFiles([null_log]).events())
    first, second = all_plots(analysis), all_plots(analysis)
    assert set(first) == {"latency_cdf", "label_shares", "confidence"}
    assert first == second
    ids = [set(re.findall(r'id="([^"]+)"', svg)) for svg in first.values()]
    assert len(set().union(*ids)) == sum(len(i) for i in ids)  # unique across the plots of one page
    for svg, defined in zip(first.values(), ids, strict=True):
        refs = set(re.findall(r"url\(#([^)]+)\)", svg)) | set(re.findall(r'href="#([^"]+)"', svg))
        assert refs <= defined
