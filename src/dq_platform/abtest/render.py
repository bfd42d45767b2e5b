"""Markdown and self-contained HTML renderings of one report, built from the same list of blocks.

Both formats say the same things in the same order; only the markup differs. The HTML page carries its
CSS and its SVG plots inline, so it can be attached to a ticket or opened offline.
"""

from __future__ import annotations

import html
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from dq_platform.abtest.analysis import CONFIDENCE_BINS, Analysis, GroupStats, RateStats, Report
from dq_platform.abtest.plots import all_plots, plots_available
from dq_platform.abtest.records import CATEGORY_TEXT
from dq_platform.abtest.stats import format_p

DASH = "-"


@dataclass(frozen=True)
class Heading:
    level: int
    text: str


@dataclass(frozen=True)
class Para:
    text: str
    css: str | None = None


@dataclass(frozen=True)
class Bullets:
    items: list[str]


@dataclass(frozen=True)
class Table:
    headers: list[str]
    rows: list[list[str]]
    numeric: set[int] = field(default_factory=set)  # right-aligned columns


@dataclass(frozen=True)
class Figure:
    name: str
    caption: str


Block = Heading | Para | Bullets | Table | Figure

PLOT_CAPTIONS = {
    "latency_cdf": "Latency CDF per model (successful requests; dashed line: p95 budget)",
    "label_shares": "Share of the positive label over time per model",
    "confidence": "Confidence distribution per model",
}


# ---- formatting --------------------------------------------------------------------------------


def _pct(x: float | None, digits: int = 2) -> str:
    return DASH if x is None else f"{x * 100:.{digits}f}%"


def _rate(r: RateStats) -> str:
    if r.rate is None:
        return DASH
    return f"{_pct(r.rate)} [{_pct(r.ci_low, 1)}, {_pct(r.ci_high, 1)}]"


def _ms(x: float | None) -> str:
    return DASH if x is None else f"{x:.1f}"


def _when(x: datetime | None) -> str:
    return "open" if x is None else x.strftime("%Y-%m-%d %H:%M:%S UTC")


def _num(x: float | None, fmt: str = ".3f") -> str:
    return DASH if x is None else format(x, fmt)


# ---- the document ------------------------------------------------------------------------------


def build_blocks(report: Report, plots: set[str], plots_missing: str | None) -> list[Block]:
    return [
        *_summary_blocks(report),
        *_traffic_blocks(report),
        *_per_model_blocks(report),
        *_significance_blocks(report),
        *_labels_blocks(report, plots),
        *_latency_blocks(report, plots),
        *_share_over_time_blocks(report, plots),
        *_shadow_blocks(report),
        *_versions_blocks(report),
        *_emf_blocks(report),
        *_input_blocks(report, plots_missing),
        *_method_blocks(report),
    ]


def _summary_blocks(report: Report) -> list[Block]:
    r = report.rules
    d = report.decision
    compared = (
        "`auto` requests (randomised by the A/B split) and failed requests that carry no variant"
        if report.traffic == "auto"
        else "all requests"
    )
    blocks: list[Block] = [
        Heading(1, f"A/B report: {r.candidate} vs {r.control}"),
        Para(
            f"Generated {_when(report.generated_at)}. Window: {_when(report.since)} to {_when(report.until)}; "
            f"events from {_when(report.first_event)} to {_when(report.last_event)}. "
            f"Compared traffic: {compared}."
        ),
        Bullets([f"Source: {s}" for s in report.sources] + [f"Note: {n}" for n in report.notes]),
        Heading(2, f"Recommendation: {d.recommendation.upper()}"),
        Para(d.summary, css=f"decision {d.recommendation.replace(' ', '-')}"),
        Para(f"Next step: {d.next_step}"),
        Table(
            ["Check", "Measured", "Needed to pass", "Outcome", "If it fails"],
            [[c.check, c.measured, c.threshold, c.outcome, c.consequence] for c in d.checks],
        ),
        Para(
            "Roll back when an error or latency check fails. Otherwise keep the current split when the requests "
            f"per arm or the {r.positive_label} rate check fails or cannot be evaluated yet, or when the models "
            "disagree on shadowed inputs; otherwise promote. Shadow agreement is skipped without shadow traffic. "
            "The significance tests below give the full statistics; the method section lists the thresholds."
        ),
    ]
    return blocks


def _traffic_blocks(report: Report) -> list[Block]:
    blocks: list[Block] = [Heading(2, "Traffic")]
    variants = sorted({v for counts in report.requests_by_variant.values() for v in counts})
    blocks.append(
        Table(
            ["Model", *variants, "Total"],
            [
                [m, *(str(c.get(v, 0)) for v in variants), str(sum(c.values()))]
                for m, c in report.requests_by_variant.items()
            ],
            numeric=set(range(1, len(variants) + 2)),
        )
        if report.requests_by_variant
        else Para("No prediction records in the window.")
    )
    if report.unattributed:
        details = ", ".join(f"{k}: {v}" for k, v in report.unattributed.items() if k != "requests")
        blocks.append(
            Para(
                f"{report.unattributed.get('requests', 0)} request(s) failed before a model answered and name no "
                f"model, so they are left out of the per-model numbers ({details})."
            )
        )
    return blocks


def _per_model_blocks(report: Report) -> list[Block]:
    r = report.rules
    blocks: list[Block] = [Heading(2, "Per model")]
    if report.models:
        blocks.append(
            Table(
                [
                    "Model",
                    "Source",
                    "Requests",
                    "5xx",
                    "Error rate [95% CI]",
                    "4xx",
                    "p50 ms",
                    "p95 ms",
                    "p99 ms",
                    "max ms",
                    f"{r.positive_label} rate [95% CI]",
                    "Mean confidence",
                    "Model versions",
                ],
                [
                    [
                        m.model,
                        m.source,
                        str(m.requests),
                        str(m.server_errors),
                        _rate(m.error_rate),
                        str(m.client_errors),
                        _ms(m.latency.p50 if m.latency else None),
                        _ms(m.latency.p95 if m.latency else None),
                        _ms(m.latency.p99 if m.latency else None),
                        _ms(m.latency.max if m.latency else None),
                        _rate(m.positive_rate),
                        _num(m.confidence.mean if m.confidence else None),
                        ", ".join(f"{v} ({n})" for v, n in m.model_versions.items()) or DASH,
                    ]
                    for m in report.models
                ],
                numeric={2, 3, 5, 6, 7, 8, 9, 11},
            )
        )
        fallbacks = [f"{m.model}: {m.fallbacks}" for m in report.models if m.fallbacks]
        if fallbacks:
            blocks.append(
                Para("Served as a fallback because the assigned model was not loaded: " + ", ".join(fallbacks) + ".")
            )
    else:
        blocks.append(Para("No model answered a request in the compared traffic."))
    return blocks


def _significance_blocks(report: Report) -> list[Block]:
    r = report.rules
    blocks: list[Block] = [Heading(2, "Significance tests")]
    blocks.append(
        Table(
            [
                "Metric",
                f"{r.candidate} (A)",
                f"{r.control} (B)",
                "A - B [95% CI]",
                "Test used",
                "p-value",
                "z-test p",
                "Fisher p",
                "Cohen's h",
                "Verdict",
            ],
            [
                [
                    t.metric,
                    f"{_pct(t.rate_a)} ({t.k_a}/{t.n_a})",
                    f"{_pct(t.rate_b)} ({t.k_b}/{t.n_b})",
                    DASH
                    if t.difference is None
                    else f"{t.difference * 100:+.2f} pp [{(t.ci_low or 0) * 100:+.2f}, {(t.ci_high or 0) * 100:+.2f}]",
                    t.test + (f", z = {t.statistic:.2f}" if t.statistic is not None else ""),
                    format_p(t.p_value),
                    format_p(t.p_value_z),
                    format_p(t.p_value_fisher),
                    _num(t.cohens_h),
                    "not tested" if t.difference is None else ("significant" if t.significant else "not significant"),
                ]
                for t in report.tests
            ],
            numeric={5, 6, 7, 8},
        )
    )
    blocks.append(Bullets([t.statement for t in report.tests]))
    return blocks


def _labels_blocks(report: Report, plots: set[str]) -> list[Block]:
    blocks: list[Block] = [Heading(2, "Labels and confidence")]
    labelled = [m for m in report.models if m.labels]
    if labelled:
        labels = sorted({lb for m in labelled for lb in m.labels})
        blocks.append(
            Table(
                ["Model", *labels],
                [
                    [
                        m.model,
                        *(
                            f"{m.labels.get(lb, 0)} ({_pct(m.labels.get(lb, 0) / sum(m.labels.values()), 1)})"
                            for lb in labels
                        ),
                    ]
                    for m in labelled
                ],
                numeric=set(range(1, len(labels) + 1)),
            )
        )
    with_conf = [m for m in report.models if m.confidence]
    if with_conf:
        step = 1.0 / CONFIDENCE_BINS
        rows = []
        for i in range(CONFIDENCE_BINS):
            low, high = i * step, (i + 1) * step
            cells = []
            for m in with_conf:
                assert m.confidence is not None  # filtered above; narrows the type
                cells.append(_pct(m.confidence.histogram[i] / m.confidence.n, 1))
            rows.append([f"[{low:.1f}, {high:.1f}{']' if i == CONFIDENCE_BINS - 1 else ')'}", *cells])
        blocks.append(
            Table(["Confidence", *(m.model for m in with_conf)], rows, numeric=set(range(1, len(with_conf) + 1)))
        )
        blocks.append(
            Para(
                "Median confidence: "
                + ", ".join(f"{m.model} {m.confidence.median:.3f}" for m in with_conf if m.confidence)
                + "."
            )
        )
    if "confidence" in plots:
        blocks.append(Figure("confidence", PLOT_CAPTIONS["confidence"]))
    if not labelled and not with_conf:
        blocks.append(Para("No labelled predictions."))
    return blocks


def _latency_blocks(report: Report, plots: set[str]) -> list[Block]:
    blocks: list[Block] = [Heading(2, "Latency")]
    if "latency_cdf" in plots:
        blocks.append(Figure("latency_cdf", PLOT_CAPTIONS["latency_cdf"]))
    blocks.append(Para("Percentiles are over successful requests (HTTP < 400), linear interpolation between samples."))
    return blocks


def _share_over_time_blocks(report: Report, plots: set[str]) -> list[Block]:
    r = report.rules
    blocks: list[Block] = [Heading(2, f"{r.positive_label} share over time")]
    if "label_shares" in plots:
        blocks.append(Figure("label_shares", PLOT_CAPTIONS["label_shares"]))
    if report.timeline:
        stamp = "%Y-%m-%d %H:%M:%S" if report.timeline_bucket_s < 60 else "%Y-%m-%d %H:%M"
        blocks.append(
            Table(
                ["Bucket start (UTC)", "Model", "Predictions", r.positive_label, "Share"],
                [
                    [b.start.strftime(stamp), b.model, str(b.n), str(b.positive), _pct(b.positive / b.n, 1)]
                    for b in report.timeline
                ],
                numeric={2, 3, 4},
            )
        )
    else:
        blocks.append(Para("No timestamped predictions."))
    return blocks


def _shadow_blocks(report: Report) -> list[Block]:
    blocks: list[Block] = [Heading(2, "Shadow agreement")]
    if report.shadow:
        blocks.append(
            Table(
                ["Served by", "Shadow", "Compared", "Agree", "Agreement [95% CI]", "Disagreements (served -> shadow)"],
                [
                    [
                        s.primary,
                        s.shadow,
                        str(s.agreement.n),
                        str(s.agreement.k),
                        _rate(s.agreement),
                        ", ".join(f"{k}: {v}" for k, v in s.disagreements.items()) or DASH,
                    ]
                    for s in report.shadow
                ],
                numeric={2, 3},
            )
        )
    else:
        blocks.append(Para("No shadow predictions (shadow_rate is 0 in the ab-weights parameter)."))
    return blocks


def _versions_blocks(report: Report) -> list[Block]:
    r = report.rules
    blocks: list[Block] = [Heading(2, "Per version")]
    blocks.append(_group_table("Model version", report.by_model_version, r.positive_label))
    if report.by_lambda_version:
        blocks.append(
            Para(
                "Lambda version that executed each request (from the log stream name): "
                "canary vs live during a deployment."
            )
        )
        blocks.append(_group_table("Lambda version", report.by_lambda_version, r.positive_label))
    else:
        blocks.append(Para("No Lambda version information (local logs carry none; CloudWatch log streams do)."))
    return blocks


def _emf_blocks(report: Report) -> list[Block]:
    blocks: list[Block] = [Heading(2, "EMF metrics cross-check")]
    if report.emf:
        blocks.append(
            Table(
                ["Model dimension", "Invocations", "Predictions", "Errors", "p95 ms", "Shadow agreement"],
                [
                    [
                        e.model,
                        str(e.invocations),
                        f"{e.predictions:g}",
                        f"{e.errors:g}",
                        _ms(e.latency_p95),
                        _pct(e.shadow_agreement, 1),
                    ]
                    for e in report.emf
                ],
                numeric={1, 2, 3, 4, 5},
            )
        )
        blocks.append(
            Para(
                f"Cold starts: {report.cold_starts}. EMF counts cover every variant, "
                "so they can exceed the compared traffic."
            )
        )
    else:
        blocks.append(Para("No EMF metric blobs in the input."))
    return blocks


def _input_blocks(report: Report, plots_missing: str | None) -> list[Block]:
    p = report.parse
    blocks: list[Block] = [Heading(2, "Input")]
    rows = [[CATEGORY_TEXT[c], "used", str(n)] for c, n in p.used.items()]
    rows += [[CATEGORY_TEXT[c], "ignored", str(n)] for c, n in p.ignored.items()]
    rows += [[CATEGORY_TEXT[c], "skipped (malformed)", str(n)] for c, n in p.skipped.items()]
    blocks.append(Para(f"{p.events} log events read; {p.skipped_total} skipped as malformed."))
    if rows:
        blocks.append(Table(["Kind", "Treatment", "Events"], rows, numeric={2}))
    if p.problems:
        blocks.append(Bullets(["First malformed lines: ", *p.problems]))
    if plots_missing:
        blocks.append(Para(f"Plots left out: {plots_missing}."))
    return blocks


def _method_blocks(report: Report) -> list[Block]:
    r = report.rules
    blocks: list[Block] = [Heading(2, "Method")]
    blocks.append(
        Bullets(
            [
                f"A = candidate ({r.candidate}), B = control ({r.control}). Error rate = HTTP 5xx / requests; 4xx are "
                "the caller's errors and are shown but not counted.",
                f"{r.positive_label} rate = share of successful predictions labelled {r.positive_label}.",
                "Tests: pooled two-proportion z-test; Fisher's exact test instead when an expected cell count is "
                f"below 5. Two-sided, alpha = {r.alpha:g}. Both p-values are shown.",
                f"Intervals: Wilson score ({r.confidence:.0%}) for rates, Newcombe's hybrid score interval for "
                "differences. Effect size: difference in percentage points and Cohen's h.",
                "Thresholds: "
                + ", ".join(
                    [
                        f"min requests per arm {r.min_requests}",
                        f"error budget {r.max_error_rate:.2%}",
                        f"p95 latency budget {r.latency_budget_ms:g} ms (from {r.min_latency_samples} samples)",
                        f"max {r.positive_label} shift {r.max_label_shift * 100:g} pp",
                        f"min shadow agreement {r.min_shadow_agreement:.0%} (from {r.min_shadow_samples} samples)",
                    ]
                )
                + ".",
                "Two metrics are tested at the same alpha without correction: a borderline p-value deserves more data.",
            ]
        )
    )
    return blocks


def _group_table(title: str, rows: list[GroupStats], positive_label: str) -> Table:
    return Table(
        ["Model", title, "Requests", "5xx", "Error rate", "p95 ms", f"{positive_label} rate"],
        [
            [
                g.model,
                g.version,
                str(g.requests),
                str(g.server_errors),
                _pct(g.error_rate),
                _ms(g.p95_ms),
                _pct(g.positive_rate, 1),
            ]
            for g in rows
        ],
        numeric={2, 3, 4, 5, 6},
    )


# ---- Markdown ----------------------------------------------------------------------------------


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def to_markdown(blocks: list[Block], figure_files: dict[str, str]) -> str:
    out: list[str] = []
    for block in blocks:
        if isinstance(block, Heading):
            out.append(f"{'#' * block.level} {block.text}")
        elif isinstance(block, Para):
            out.append(f"**{block.text}**" if block.css and block.css.startswith("decision") else block.text)
        elif isinstance(block, Bullets):
            if block.items:
                out.append("\n".join(f"- {item}" for item in block.items))
        elif isinstance(block, Table):
            align = ["---:" if i in block.numeric else "---" for i in range(len(block.headers))]
            lines = [
                "| " + " | ".join(_md_cell(h) for h in block.headers) + " |",
                "| " + " | ".join(align) + " |",
            ]
            lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in block.rows]
            out.append("\n".join(lines))
        elif isinstance(block, Figure) and block.name in figure_files:
            out.append(f"![{block.caption}]({figure_files[block.name]})")
    return "\n\n".join(out) + "\n"


# ---- HTML --------------------------------------------------------------------------------------

_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2rem auto; max-width: 72rem;
       padding: 0 1rem; color: #1d1d1f; line-height: 1.45; }
h1 { font-size: 1.6rem; } h2 { font-size: 1.25rem; margin-top: 2rem; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; margin: 0.75rem 0; font-size: 0.9rem; }
th, td { border: 1px solid #d0d0d0; padding: 0.3rem 0.55rem; vertical-align: top; }
th { background: #f3f3f5; text-align: left; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
.decision { padding: 0.8rem 1rem; border-radius: 6px; font-weight: 600; }
.decision.promote { background: #e6f4ea; border: 1px solid #34a853; }
.decision.keep { background: #fef7e0; border: 1px solid #f9ab00; }
.decision.roll-back { background: #fce8e6; border: 1px solid #d93025; }
figure { margin: 1rem 0; } figure svg { max-width: 100%; height: auto; }
figcaption { font-size: 0.85rem; color: #555; }
"""


def to_html(blocks: list[Block], plots: dict[str, str], title: str) -> str:
    esc = html.escape
    body: list[str] = []
    for block in blocks:
        if isinstance(block, Heading):
            body.append(f"<h{block.level}>{esc(block.text)}</h{block.level}>")
        elif isinstance(block, Para):
            css = f' class="{esc(block.css)}"' if block.css else ""
            body.append(f"<p{css}>{esc(block.text)}</p>")
        elif isinstance(block, Bullets):
            if block.items:
                body.append("<ul>" + "".join(f"<li>{esc(i)}</li>" for i in block.items) + "</ul>")
        elif isinstance(block, Table):
            head = "".join(f"<th>{esc(h)}</th>" for h in block.headers)
            rows = "".join(
                "<tr>"
                + "".join(
                    f'<td class="num">{esc(c)}</td>' if i in block.numeric else f"<td>{esc(c)}</td>"
                    for i, c in enumerate(row)
                )
                + "</tr>"
                for row in block.rows
            )
            body.append(f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>")
        elif isinstance(block, Figure) and block.name in plots:
            # matplotlib escapes the text it puts in the SVG (model names and labels come from logs).
            body.append(f"<figure>{plots[block.name]}<figcaption>{esc(block.caption)}</figcaption></figure>")
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{esc(title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n"
        + "\n".join(body)
        + "\n</body>\n</html>\n"
    )


FORMATS = ("md", "html", "json")


def write_report(analysis: Analysis, out: Path, formats: Iterable[str]) -> list[Path]:
    """Write the report in each format to `out` (created); returns the files written."""
    wanted = list(dict.fromkeys(formats))
    unknown = [f for f in wanted if f not in FORMATS]
    if unknown or not wanted:
        raise ValueError(f"formats must be among {', '.join(FORMATS)}, got {', '.join(wanted) or 'none'}")
    report = analysis.report
    title = f"A/B report: {report.rules.candidate} vs {report.rules.control}"
    drawn = wanted != ["json"]
    plots = all_plots(analysis) if drawn else {}
    missing = plots_available() if drawn else None
    blocks = build_blocks(report, set(plots), missing)
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    if "md" in wanted:
        figure_files: dict[str, str] = {}
        for name, svg in plots.items():
            path = out / f"{name}.svg"
            path.write_text(svg, encoding="utf-8")
            figure_files[name] = path.name
            written.append(path)
        md = out / "ab-report.md"
        md.write_text(to_markdown(blocks, figure_files), encoding="utf-8")
        written.append(md)
    if "html" in wanted:
        page = out / "ab-report.html"
        page.write_text(to_html(blocks, plots, title), encoding="utf-8")
        written.append(page)
    if "json" in wanted:
        data = out / "ab-report.json"
        data.write_text(report.model_dump_json(indent=2) + "\n", encoding="utf-8")
        written.append(data)
    return written
