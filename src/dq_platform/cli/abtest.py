"""`dqp ab-report`: is the candidate model better, faster and safe to promote? Read from the API's logs."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, cast

import typer

if TYPE_CHECKING:
    from collections.abc import Sequence

    from dq_platform.abtest.analysis import Report, Traffic
    from dq_platform.abtest.sources import CloudWatchApi

DEFAULT_OUT = Path("build/ab-report")
DEFAULT_CW_SINCE = "24h"


def _fail(message: str, code: int = 2) -> typer.Exit:
    typer.secho(f"error: {message}", err=True, fg=typer.colors.RED)
    return typer.Exit(code=code)


def _checked_choices(
    logs: list[Path] | None,
    log_group: str | None,
    formats: str,
    cw_api: str,
    traffic: str,
    known_formats: Sequence[str],
) -> list[str]:
    """The requested formats, once the source and the choices are valid (else exit 2 naming the option)."""
    if not logs and not log_group:
        raise _fail(
            "no logs to read; give --logs FILE (what `dqp serve --log-file FILE` writes; the demo's is "
            ".local/demo/logs/serve.log) or --log-group NAME (CloudWatch)"
        )
    if logs and log_group:
        raise _fail("both --logs and --log-group given; the report reads one source, give only one")
    fmt = [f.strip().lower() for f in formats.split(",") if f.strip()]
    if not fmt or any(f not in known_formats for f in fmt):
        raise _fail(f"--format takes a comma-separated list of {', '.join(known_formats)}, got {formats!r}")
    if cw_api not in ("auto", "insights", "filter"):
        raise _fail(f"--cw-api must be auto, insights or filter, got {cw_api!r}")
    if traffic not in ("auto", "all"):
        raise _fail(f"--traffic must be auto or all, got {traffic!r}")
    return fmt


def _warn_about_input(report: Report, strict: bool) -> None:
    """Malformed lines and source notes on stderr; with `strict`, malformed lines fail the run."""
    if report.parse.skipped_total:
        typer.echo(f"warning: {report.parse.skipped_total} malformed log line(s) skipped:", err=True)
        for problem in report.parse.problems:
            typer.echo(f"  {problem}", err=True)
        if strict:
            raise _fail("malformed log lines and --strict is set")
    for note in report.notes:
        typer.echo(f"note: {note}", err=True)


def ab_report(
    logs: Annotated[
        list[Path] | None,
        typer.Option(
            "--logs",
            metavar="PATH",
            help="Log file or folder (repeatable): `dqp serve` output, CloudWatch exports (.gz fine). "
            "Mixed Powertools JSON/EMF/plain lines are fine; malformed lines are counted and skipped.",
        ),
    ] = None,
    log_group: Annotated[
        str | None,
        typer.Option(
            "--log-group", metavar="NAME", help="CloudWatch log group, e.g. /aws/lambda/enterprise-production-ml-infer."
        ),
    ] = None,
    since: Annotated[
        str | None,
        typer.Option(
            "--since",
            metavar="WHEN",
            help="Window start: ISO 8601 (UTC if no offset) or a duration back (30m, 24h, 7d).",
        ),
    ] = None,
    until: Annotated[
        str | None, typer.Option("--until", metavar="WHEN", help="Window end (exclusive), same forms; default now.")
    ] = (None),
    cw_api: Annotated[
        str,
        typer.Option(
            "--cw-api",
            metavar="auto|insights|filter",
            help="CloudWatch API: insights (Logs Insights), filter (FilterLogEvents), "
            "auto (Insights, FilterLogEvents if Insights fails).",
        ),
    ] = "auto",
    region: Annotated[str | None, typer.Option("--region", help="AWS region (default: the AWS config).")] = None,
    out: Annotated[Path, typer.Option("--out", help="Folder for ab-report.md/.html/.json and plots.")] = DEFAULT_OUT,
    formats: Annotated[
        str, typer.Option("--format", metavar="md,html,json", help="Comma-separated: md, html, json.")
    ] = "md,html",
    control: Annotated[str, typer.Option("--control", help="Model in production now.")] = "baseline",
    candidate: Annotated[str, typer.Option("--candidate", help="Model under test.")] = "transformer",
    positive_label: Annotated[str, typer.Option("--positive-label", help="Label whose rate is compared.")] = (
        "HighRisk"
    ),
    traffic: Annotated[
        str,
        typer.Option(
            "--traffic", metavar="auto|all", help="auto: only A/B-assigned requests (randomised); all: every request."
        ),
    ] = "auto",
    alpha: Annotated[float, typer.Option("--alpha", min=0.0001, max=0.5, help="Significance level.")] = 0.05,
    min_requests: Annotated[int, typer.Option("--min-requests", min=1, help="Requests each arm needs.")] = 200,
    max_error_rate: Annotated[
        float, typer.Option("--max-error-rate", min=0.0, max=1.0, help="Candidate 5xx budget (fraction).")
    ] = 0.01,
    latency_budget_ms: Annotated[
        float, typer.Option("--latency-budget-ms", min=0.001, help="Candidate p95 latency budget.")
    ] = 1000.0,
    max_label_shift: Annotated[
        float, typer.Option("--max-label-shift", min=0.0, max=1.0, help="Tolerated positive-rate shift (fraction).")
    ] = 0.05,
    min_shadow_agreement: Annotated[
        float, typer.Option("--min-shadow-agreement", min=0.0, max=1.0, help="Required shadow agreement.")
    ] = 0.90,
    strict: Annotated[bool, typer.Option("--strict", help="Fail (exit 2) if any line is malformed.")] = False,
    fail_on_rollback: Annotated[
        bool, typer.Option("--fail-on-rollback", help="Exit 3 when the recommendation is roll back (CI gates).")
    ] = False,
) -> None:
    """Per-model requests, errors, latency, labels, shadow agreement, significance tests and a recommendation."""
    from pydantic import ValidationError

    from dq_platform.abtest.analysis import analyse
    from dq_platform.abtest.decision import DecisionRules
    from dq_platform.abtest.render import FORMATS, write_report
    from dq_platform.abtest.sources import (
        CloudWatchLogs,
        LocalFiles,
        SourceError,
        Window,
        expand_paths,
        logs_client,
        parse_when,
    )

    fmt = _checked_choices(logs, log_group, formats, cw_api, traffic, FORMATS)
    try:
        rules = DecisionRules(
            control=control,
            candidate=candidate,
            positive_label=positive_label,
            alpha=alpha,
            min_requests=min_requests,
            max_error_rate=max_error_rate,
            latency_budget_ms=latency_budget_ms,
            max_label_shift=max_label_shift,
            min_shadow_agreement=min_shadow_agreement,
        )
        if control == candidate:
            raise ValueError("--control and --candidate must differ")
        if log_group:
            cw_since, cw_until = parse_when(since or DEFAULT_CW_SINCE), parse_when(until or "now")
            window = Window(cw_since, cw_until)
        else:
            window = Window(parse_when(since) if since else None, parse_when(until) if until else None)
    except (ValueError, ValidationError) as exc:
        raise _fail(str(exc)) from exc

    try:
        if logs:
            files = expand_paths(logs)
            if not files:
                raise _fail("no log files found in " + ", ".join(str(p) for p in logs))
            source: LocalFiles | CloudWatchLogs = LocalFiles(files)
        else:
            source = CloudWatchLogs(
                logs_client(region), str(log_group), cw_since, cw_until, api=cast("CloudWatchApi", cw_api)
            )
        # Streamed: a large local log is never held in memory as a whole.
        analysis = analyse(
            source.events(),
            rules=rules,
            window=window,
            traffic=cast("Traffic", traffic),
            sources=[],
            notes=source.notes,
        )
    except SourceError as exc:
        raise _fail(str(exc)) from exc
    # The description names the API that answered, known only once reading is done.
    analysis.report = analysis.report.model_copy(update={"sources": [source.description]})
    report = analysis.report
    _warn_about_input(report, strict)
    try:
        written = write_report(analysis, out, fmt)
    except OSError as exc:
        raise _fail(f"cannot write the report to {out}: {exc}") from exc
    for path in written:
        typer.echo(f"wrote {path}")
    decision = report.decision
    typer.echo(f"recommendation: {decision.recommendation.upper()} - {decision.summary}")
    typer.echo(f"next step: {decision.next_step}")
    if fail_on_rollback and decision.recommendation == "roll back":
        raise typer.Exit(code=3)
