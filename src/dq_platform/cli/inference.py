"""`dqp serve`, `dqp smoke`, `dqp openapi` and `dqp events`: the inference API from the command line."""

from __future__ import annotations

import contextlib
import sys
from enum import StrEnum
from pathlib import Path
from typing import IO, Annotated, cast

import typer

from dq_platform.cli._errors import SAMPLE_MODELS_FIX, refuse
from dq_platform.inference.local_server import LOOPBACK

DEFAULT_MODELS = Path("build/models")
DEFAULT_URL = f"http://{LOOPBACK}:3000"
MODEL_FOLDERS = ("baseline", "transformer")
HOOK_EVENTS = Path("functions/codedeploy_hook/events")


class SmokeAuth(StrEnum):
    api_key = "api-key"
    iam = "iam"


def serve(
    port: Annotated[int, typer.Option("--port", min=1, max=65535, help="Port on 127.0.0.1.")] = 3000,
    models: Annotated[
        Path,
        typer.Option(
            "--models",
            help="Served-layout model folder (a `dqp train` output); `make sample-models` fills the default.",
        ),
    ] = DEFAULT_MODELS,
    analytics: Annotated[
        Path | None,
        typer.Option("--analytics", help="Local folder standing in for the analytics bucket (explanations)."),
    ] = None,
    log_file: Annotated[
        Path | None,
        typer.Option(
            "--log-file",
            dir_okay=False,
            help="Also append the JSON logs and EMF metrics to this file (for `dqp ab-report --logs`).",
        ),
    ] = None,
    ab_weights: Annotated[
        str | None,
        typer.Option(
            "--ab-weights",
            help='A/B weights for model "auto", overriding AB_WEIGHTS_PARAM, e.g. '
            '\'{"baseline": 0.8, "transformer": 0.2, "shadow_rate": 0.25}\'.',
        ),
    ] = None,
) -> None:
    """Serve the API handler on 127.0.0.1 (no Docker, no AWS): GET /health, GET /models, POST /predict.

    Refuses to start when the model folder holds no model at all (run `make sample-models` first); with
    one model missing or broken it serves the other and /health says degraded, as the function does.
    """
    from dq_platform.inference.api import make_handler
    from dq_platform.inference.local_server import FixedABWeights, TeeStream, make_server, parse_ab_weights
    from dq_platform.inference.observability import Observability
    from dq_platform.inference.routes import create_app
    from dq_platform.inference.service import InferenceService
    from dq_platform.inference.settings import InferenceSettings

    try:  # refuse a bad override before loading models: a typo must not serve the wrong split
        weights = parse_ab_weights(ab_weights) if ab_weights is not None else None
    except ValueError as exc:
        raise refuse(str(exc), 'give the weights as JSON, e.g. \'{"baseline": 0.9, "transformer": 0.1}\'') from exc
    update: dict[str, object] = {"model_dir": models}
    if analytics is not None:
        update["analytics_dir"] = analytics
    settings = InferenceSettings().model_copy(update=update)
    with contextlib.ExitStack() as stack:
        log_stream: IO[str] | None = None
        if log_file is not None:
            try:
                log_file.parent.mkdir(parents=True, exist_ok=True)
                handle = stack.enter_context(log_file.open("a", encoding="utf-8", buffering=1))
            except OSError as exc:
                raise refuse(f"cannot write {log_file} ({exc.strerror})", "pass a writable --log-file") from exc
            log_stream = cast(IO[str], TeeStream(sys.stdout, handle))  # a TextIOBase is an IO[str] at run time
            # EMF blobs are printed to stdout by Powertools Metrics: route them through the tee too.
            stack.enter_context(contextlib.redirect_stdout(log_stream))
        if settings.model_s3_uri is None and not any((models / name).is_dir() for name in MODEL_FOLDERS):
            # A fresh clone: nothing to serve. Say so instead of answering every /predict with 503.
            folders = " or ".join(f"{name}/" for name in MODEL_FOLDERS)
            raise refuse(f"no model to serve in {models} (no {folders} folder)", SAMPLE_MODELS_FIX)
        obs = Observability.from_settings(settings, log_stream=log_stream)
        service = InferenceService.from_settings(settings, obs.logger)
        if weights is not None:
            service.weights = FixedABWeights(weights, obs.logger)
        for name, reason in sorted(service.load_errors.items()):
            typer.echo(f"warning: {name} not loaded ({reason}); /health says degraded until it is fixed", err=True)
        handler = make_handler(create_app(service, obs), obs)
        try:
            server = make_server(handler, port=port)
        except OSError as exc:
            raise refuse(
                f"cannot listen on {LOOPBACK}:{port} ({exc.strerror})", "stop what holds the port, or pass --port"
            ) from exc
        notes = f"models: {sorted(service.models)}"
        if weights is not None:
            notes += f"; ab weights: {weights.model_dump_json()}"
        if log_file is not None:
            notes += f"; logs also to {log_file}"
        typer.echo(f"serving http://{LOOPBACK}:{server.server_port} ({notes}); Ctrl+C stops", err=True)
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            server.server_close()


def smoke(
    url: Annotated[
        str,
        typer.Option(
            "--url",
            help="Base URL: `dqp serve`'s by default, or a stage, e.g. https://id.execute-api.region.amazonaws.com/prod",
        ),
    ] = DEFAULT_URL,
    api_key: Annotated[
        str | None, typer.Option("--api-key", envvar="DQP_API_KEY", help="x-api-key for the stage.")
    ] = None,
    timeout: Annotated[float, typer.Option("--timeout", min=1.0, help="Seconds per request.")] = 30.0,
    auth: Annotated[
        SmokeAuth,
        typer.Option(
            "--auth",
            help="api-key: send --api-key (ApiAuth=API_KEY); iam: sign with SigV4 (ApiAuth=IAM), default credentials.",
        ),
    ] = SmokeAuth.api_key,
    region: Annotated[
        str | None,
        typer.Option("--region", help="Region to sign for with --auth iam (default: from the execute-api URL)."),
    ] = None,
) -> None:
    """Check /health, /models and /predict (each model, with and without explain, and an invalid request)."""
    from dq_platform.inference.smoke import SigV4Signer, format_results, iam_signer, run_smoke

    signer: SigV4Signer | None = None
    if auth is SmokeAuth.iam:
        try:
            signer = iam_signer(url, region)
        except ValueError as exc:
            raise refuse(
                str(exc), "configure credentials (`aws configure sso`, AWS_PROFILE=...) or use --auth api-key"
            ) from exc
    try:
        results = run_smoke(url, api_key=api_key, timeout_s=timeout, signer=signer)
    except ValueError as exc:
        raise refuse(str(exc), "pass the API's base URL") from exc
    if results and all(r.status is None for r in results):  # not one HTTP answer: nothing is listening there
        fix = (
            "start the API with `dqp serve` (or `make demo`), or pass --url"
            if url == DEFAULT_URL
            else "check the URL and that the API is up (`dqp serve`, or the deployed stage)"
        )
        raise refuse(f"nothing answers at {url} ({_why_unreachable(results[0].detail)})", fix, code=1)
    typer.echo(format_results(results))
    if not all(r.ok for r in results):
        raise typer.Exit(1)


def _why_unreachable(detail: str) -> str:
    """`URLError: <urlopen error [Errno 111] Connection refused>; ...` -> `connection refused`."""
    first = detail.split("; ")[0]
    for known in ("Connection refused", "timed out", "Name or service not known"):
        if known in first:
            return known.lower()
    return first


def openapi(
    out: Annotated[Path, typer.Option("--out", help="Where the document goes.")] = Path("docs/openapi.json"),
    check: Annotated[bool, typer.Option("--check", help="Fail if the committed document is out of date.")] = False,
) -> None:
    """Regenerate the OpenAPI document from the resolver (or check it for drift)."""
    from dq_platform.inference.openapi import openapi_is_current, write_openapi

    if check:
        if not openapi_is_current(out):
            raise refuse(f"{out} is out of date (the resolver changed)", "run `dqp openapi` and commit it", code=1)
        typer.echo(f"{out} is current")
        return
    typer.echo(f"wrote {write_openapi(out)}")


def events(
    out: Annotated[Path, typer.Option("--out", help="Folder for the sample API Gateway events.")] = Path("events"),
    check: Annotated[bool, typer.Option("--check", help="Fail if the stored events are out of date.")] = False,
) -> None:
    """Regenerate events/*.json and the pre-traffic hook's copy of them (or check both for drift)."""
    from dq_platform.inference.events import stale_events, write_events

    folders = (out, HOOK_EVENTS)
    if check:
        stale = stale_events(*folders)
        if stale:
            what = "out of date: " + ", ".join(str(p) for p in stale)
            raise refuse(what, "run `dqp events` and commit them", code=1)
        typer.echo("events are current")
        return
    for path in write_events(*folders):
        typer.echo(f"wrote {path}")
