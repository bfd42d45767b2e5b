"""A self-contained HTML data-quality report for one run, with the trend across earlier runs.

It reads only the results JSON and the quarantine's id and reason columns: record text never reaches
the report, because reports get mailed around and attached to tickets.
"""

from __future__ import annotations

import html
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dq_platform.dq.results import RunResults

QUARANTINE_COLUMNS = ("doc_id", "DataQualityRulesFail", "DataQualityQuarantineReasons")
MAX_EXAMPLES = 50


@dataclass(frozen=True)
class QuarantineExample:
    doc_id: str
    failed_rules: list[str]
    reasons: list[str]


def load_results(path: Path) -> RunResults:
    """A results.json file as `RunResults`; ValueError (a pydantic ValidationError is one) if it is not."""
    data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict) or "ruleOutcomes" not in data:
        raise ValueError(f"{path}: not a data-quality results document (no ruleOutcomes)")
    return RunResults.model_validate(data)


def _typed(results: RunResults | Mapping[str, Any]) -> RunResults:
    return results if isinstance(results, RunResults) else RunResults.model_validate(results)


def _as_list(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value] if value else []
    return [str(v) for v in value]


def load_quarantine_examples(quarantine_dir: Path, limit: int = MAX_EXAMPLES) -> list[QuarantineExample]:
    """Doc ids and reasons of quarantined rows, read column-wise so text is never loaded."""
    import pyarrow.dataset as ds

    files = sorted(quarantine_dir.rglob("*.parquet")) if quarantine_dir.exists() else []
    if not files:
        return []
    dataset = ds.dataset([str(f) for f in files], format="parquet", partitioning="hive")
    cols = [c for c in QUARANTINE_COLUMNS if c in dataset.schema.names]
    table = dataset.head(limit, columns=cols)
    rows = table.to_pylist()
    return [
        QuarantineExample(
            doc_id=str(r.get("doc_id") or "(no doc_id)"),
            failed_rules=_as_list(r.get("DataQualityRulesFail")),
            reasons=_as_list(r.get("DataQualityQuarantineReasons")),
        )
        for r in rows
    ]


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def _trend_svg(history: Sequence[RunResults], width: int = 640, height: int = 180) -> str:
    """An inline SVG line of the score per run (oldest left), so the report needs no plotting library."""
    scores = [float(r.score) for r in history]
    if len(scores) < 2:
        return "<p class='muted'>The trend appears once there are two or more runs.</p>"
    pad = 30
    step = (width - 2 * pad) / (len(scores) - 1)

    def y(v: float) -> float:
        return height - pad - v * (height - 2 * pad)

    points = " ".join(f"{pad + i * step:.1f},{y(s):.1f}" for i, s in enumerate(scores))
    dots = "".join(
        f"<circle cx='{pad + i * step:.1f}' cy='{y(s):.1f}' r='3'><title>{_e(r.run_id)}: {_pct(s)}</title></circle>"
        for i, (s, r) in enumerate(zip(scores, history, strict=True))
    )
    grid = "".join(
        f"<line x1='{pad}' x2='{width - pad}' y1='{y(g):.1f}' y2='{y(g):.1f}' class='grid'/>"
        f"<text x='2' y='{y(g) + 4:.1f}'>{int(g * 100)}%</text>"
        for g in (0.0, 0.5, 1.0)
    )
    return (
        f"<svg viewBox='0 0 {width} {height}' width='{width}' height='{height}' role='img' "
        f"aria-label='score per run'>{grid}<polyline points='{points}' class='line'/>{dots}</svg>"
    )


def _records_card(results: RunResults) -> str:
    """The independent record count, when the results carry it (a mismatch fails the run)."""
    counted, check = results.records_counted, results.records_check
    if not isinstance(counted, int) or check not in ("PASSED", "FAILED"):
        return ""
    label = "matches rows in" if check == "PASSED" else "does not match rows in"
    css = "SUCCEEDED" if check == "PASSED" else "FAILED"
    return f"<div class='card'>records counted<b class='status-{css}'>{_e(counted)}</b>{label}</div>"


def _rule_rows(results: RunResults) -> str:
    rows = []
    for o in results.ruleOutcomes:
        failed = o.RowsFailed
        pass_rate = "" if failed is None or results.rows_in == 0 else _pct(1 - int(failed) / results.rows_in)
        metrics = ", ".join(f"{_e(k)}={float(v):.4g}" for k, v in o.EvaluatedMetrics.items())
        rows.append(
            f"<tr class='{_e(o.Outcome.lower())}'><td><code>{_e(o.Rule)}</code></td>"
            f"<td>{_e(o.Action)}</td><td>{_e(o.Outcome)}</td>"
            f"<td>{'' if failed is None else _e(failed)}</td><td>{pass_rate}</td>"
            f"<td>{_e(o.FailureReason or '')}</td><td class='metrics'>{metrics}</td></tr>"
        )
    return "".join(rows)


def _trend_rows(runs: Sequence[RunResults]) -> str:
    return "".join(
        f"<tr><td>{_e(r.run_id)}</td><td>{_e(r.finished_at or '')}</td><td>{_e(r.status)}</td>"
        f"<td>{_pct(float(r.score))}</td><td>{_e(r.rows_in)}</td>"
        f"<td>{_e(r.rows_processed)}</td><td>{_e(r.rows_quarantined)}</td></tr>"
        for r in runs
    )


def render_dq_report(
    run_results: RunResults | Mapping[str, Any],
    examples: Sequence[QuarantineExample] = (),
    history: Sequence[RunResults | Mapping[str, Any]] = (),
) -> str:
    """HTML for one run. `history` holds earlier results (oldest first); the run itself is appended."""
    results = _typed(run_results)
    rows_in = results.rows_in
    rule_rows = _rule_rows(results)
    reasons = sorted(results.quarantine_reasons.items(), key=lambda kv: -int(kv[1]))
    reason_rows = "".join(f"<tr><td>{_e(k)}</td><td>{_e(v)}</td></tr>" for k, v in reasons)
    example_rows = "".join(
        f"<tr><td>{_e(x.doc_id)}</td><td>{'<br>'.join(_e(r) for r in x.failed_rules)}</td>"
        f"<td>{'<br>'.join(_e(r) for r in x.reasons)}</td></tr>"
        for x in examples
    )
    runs = [*(_typed(r) for r in history), results]
    trend_rows = _trend_rows(runs)
    status = results.status
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>Data-quality report {_e(results.run_id)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2rem; color: #1b1f24; }}
h1 {{ margin-bottom: .2rem; }} .muted {{ color: #667; }}
.cards {{ display: flex; gap: 1rem; flex-wrap: wrap; margin: 1rem 0; }}
.card {{ border: 1px solid #d0d7de; border-radius: 8px; padding: .8rem 1.2rem; min-width: 9rem; }}
.card b {{ display: block; font-size: 1.6rem; }}
table {{ border-collapse: collapse; margin: .5rem 0 1.5rem; }}
th, td {{ border: 1px solid #d0d7de; padding: .3rem .6rem; text-align: left; vertical-align: top; }}
th {{ background: #f6f8fa; }} tr.failed td {{ background: #fff1f0; }} tr.error td {{ background: #fff8e1; }}
td.metrics {{ font-size: .85em; color: #445; }}
.status-HALTED, .status-FAILED {{ color: #b42318; }} .status-SUCCEEDED {{ color: #067647; }}
svg .line {{ fill: none; stroke: #0969da; stroke-width: 2; }} svg circle {{ fill: #0969da; }}
svg .grid {{ stroke: #d0d7de; }} svg text {{ font-size: 10px; fill: #667; }}
</style></head><body>
<h1>Data-quality report</h1>
<p class="muted">run <code>{_e(results.run_id)}</code> · ruleset <code>{_e(results.ruleset)}</code> ·
engine {_e(results.engine)} · finished {_e(results.finished_at or "")}</p>
<div class="cards">
<div class="card">status<b class="status-{_e(status)}">{_e(status)}</b></div>
<div class="card">score<b>{_pct(float(results.score))}</b></div>
<div class="card">rows in<b>{_e(rows_in)}</b></div>
<div class="card">processed<b>{_e(results.rows_processed)}</b></div>
<div class="card">quarantined<b>{_e(results.rows_quarantined)}</b></div>
{_records_card(results)}
</div>
<h2>Rule outcomes</h2>
<table><tr><th>rule</th><th>action</th><th>outcome</th><th>rows failed</th><th>row pass rate</th>
<th>reason</th><th>evaluated metrics</th></tr>{rule_rows}</table>
<h2>Why rows were quarantined</h2>
<table><tr><th>reason</th><th>rows</th></tr>{reason_rows or "<tr><td colspan='2'>none</td></tr>"}</table>
<h2>Quarantined examples</h2>
<p class="muted">Document ids and reasons only; record text is never shown. First {len(examples)} rows.</p>
<table><tr><th>doc_id</th><th>failed rules</th><th>reasons</th></tr>
{example_rows or "<tr><td colspan='3'>none</td></tr>"}</table>
<h2>Trend across runs</h2>
{_trend_svg(runs)}
<table><tr><th>run</th><th>finished</th><th>status</th><th>score</th><th>rows in</th><th>processed</th>
<th>quarantined</th></tr>{trend_rows}</table>
</body></html>
"""


def write_dq_report(
    results_path: Path,
    out: Path,
    quarantine_dir: Path | None = None,
    history_paths: Sequence[Path] = (),
) -> Path:
    """Render the report for `results_path`; earlier runs' results files make the trend."""
    results = load_results(results_path)
    examples = load_quarantine_examples(quarantine_dir) if quarantine_dir else []
    history = [load_results(p) for p in history_paths]
    history.sort(key=lambda r: r.finished_at or "")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render_dq_report(results, examples, history), encoding="utf-8")
    return out
