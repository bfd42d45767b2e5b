"""Plots for the report as standalone SVG strings (embedded in the HTML, written beside the Markdown).

matplotlib is imported lazily and only through its object-oriented API (no pyplot global state), and it
is optional: it ships with the `train` extra, and without it the report says the plots were left out.
"""

from __future__ import annotations

import io
import re
from collections import defaultdict
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dq_platform.abtest.analysis import Analysis

# A colour per model that stays the same across plots (baseline first, then candidate, then others).
_COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#8c564b", "#e377c2")


def plots_available() -> str | None:
    """None when plots can be drawn, else the reason they cannot."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return "matplotlib is not installed (pip install 'dq-compliance-platform[train]')"
    return None


def _figure(width: float = 7.0, height: float = 3.6) -> Any:
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def _svg(fig: Any, name: str) -> str:
    import matplotlib

    buffer = io.StringIO()
    # A fixed salt: reproducible output.
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "dqp-ab-report"}):
        fig.savefig(buffer, format="svg", metadata={"Date": None, "Creator": "dqp ab-report"})
    text = buffer.getvalue()
    # Drop the XML prolog/doctype so the SVG can be inlined in HTML, and prefix every element id (and
    # the references to it) with the plot name: ids must be unique across the plots of one page.
    text = text[text.index("<svg") :]
    text = re.sub(r'\bid="([^"]+)"', rf'id="{name}-\1"', text)
    text = re.sub(r"url\(#([^)]+)\)", rf"url(#{name}-\1)", text)
    return re.sub(r'href="#([^"]+)"', rf'href="#{name}-\1"', text)


def _colours(models: list[str]) -> dict[str, str]:
    return {m: _COLOURS[i % len(_COLOURS)] for i, m in enumerate(models)}


def latency_cdf_svg(analysis: Analysis) -> str | None:
    series = {m: v for m, v in analysis.latencies.items() if v}
    if not series:
        return None
    import numpy as np

    colours = _colours(list(series))
    fig = _figure()
    ax = fig.add_subplot()
    for model, values in series.items():
        xs = np.sort(np.asarray(values, dtype=float))
        ys = np.arange(1, len(xs) + 1) / len(xs)
        ax.step(xs, ys, where="post", color=colours[model], label=f"{model} (n={len(xs)})")
    budget = analysis.report.rules.latency_budget_ms
    ax.axvline(budget, color="#555555", linestyle="--", linewidth=1, label=f"p95 budget {budget:g} ms")
    ax.axhline(0.95, color="#999999", linestyle=":", linewidth=1)
    if min(min(v) for v in series.values()) > 0:
        ax.set_xscale("log")
    ax.set_xlabel("latency (ms)")
    ax.set_ylabel("share of requests")
    ax.set_ylim(0, 1.01)
    ax.set_title("Latency CDF per model (successful requests)")
    ax.grid(True, alpha=0.3)
    ax.legend(loc="lower right", fontsize="small")
    return _svg(fig, "latency_cdf")


def label_shares_svg(analysis: Analysis) -> str | None:
    report = analysis.report
    if not report.timeline:
        return None
    per_model: dict[str, list[tuple[Any, float, int]]] = defaultdict(list)
    for bucket in report.timeline:
        per_model[bucket.model].append((bucket.start, bucket.positive / bucket.n, bucket.n))
    colours = _colours(sorted(per_model, key=lambda m: (m not in (report.rules.control, report.rules.candidate), m)))
    fig = _figure()
    ax = fig.add_subplot()
    for model, points in per_model.items():
        xs = [p[0] for p in points]
        ys = [p[1] for p in points]
        sizes = [max(8.0, min(80.0, p[2] * 2.0)) for p in points]
        ax.plot(xs, ys, color=colours[model], linewidth=1, alpha=0.8)
        ax.scatter(xs, ys, s=sizes, color=colours[model], label=model)
    ax.set_ylim(-0.02, 1.02)
    ax.set_ylabel(f"{report.rules.positive_label} share")
    ax.set_xlabel(f"time (UTC), {_width_text(report.timeline_bucket_s)} buckets; marker size ~ requests")
    ax.set_title(f"{report.rules.positive_label} share over time per model")
    ax.grid(True, alpha=0.3)
    ax.legend(loc="best", fontsize="small")
    fig.autofmt_xdate()
    return _svg(fig, "label_shares")


def confidence_svg(analysis: Analysis) -> str | None:
    models = [m for m in analysis.report.models if m.confidence is not None]
    if not models:
        return None
    import numpy as np

    from dq_platform.abtest.analysis import CONFIDENCE_BINS

    colours = _colours([m.model for m in analysis.report.models])
    fig = _figure(7.0, 3.0)
    ax = fig.add_subplot()
    edges = np.linspace(0.0, 1.0, CONFIDENCE_BINS + 1)
    width = (edges[1] - edges[0]) / (len(models) + 1)
    for i, m in enumerate(models):
        assert m.confidence is not None  # filtered above; narrows the type
        total = sum(m.confidence.histogram)
        shares = [c / total for c in m.confidence.histogram]
        ax.bar(edges[:-1] + width * (i + 0.5), shares, width=width, color=colours[m.model], label=m.model)
    ax.set_xlim(0, 1)
    ax.set_xlabel("confidence")
    ax.set_ylabel("share of predictions")
    ax.set_title("Confidence distribution per model")
    ax.grid(True, axis="y", alpha=0.3)
    ax.legend(loc="upper left", fontsize="small")
    return _svg(fig, "confidence")


def _width_text(seconds: int) -> str:
    if seconds < 60:
        return f"{seconds} s"
    if seconds % 86400 == 0:
        return f"{seconds // 86400} d"
    if seconds % 3600 == 0:
        return f"{seconds // 3600} h"
    return f"{seconds // 60} min"


def all_plots(analysis: Analysis) -> dict[str, str]:
    """name -> SVG, for the plots that have data. Empty when matplotlib is missing."""
    if plots_available() is not None:
        return {}
    plots: dict[str, str] = {}
    for name, draw in (
        ("latency_cdf", latency_cdf_svg),
        ("label_shares", label_shares_svg),
        ("confidence", confidence_svg),
    ):
        svg = draw(analysis)
        if svg is not None:
            plots[name] = svg
    return plots
