"""The `dqp` command line: one entry point, one sub-command group per domain."""

from __future__ import annotations

import typer

from dq_platform import __version__

app = typer.Typer(
    name="dqp",
    help="dq-compliance-platform: data-quality pipeline, model training and the inference API, run locally.",
    no_args_is_help=True,
    add_completion=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(__version__)
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
) -> None:
    """Local-first: every command runs without an AWS account unless given s3:// locations."""


def main() -> None:
    app()


# Sub-command groups, one per domain (each module owns its commands).
from dq_platform.cli import sample as _sample  # noqa: E402  (registered after `app` exists)

app.add_typer(_sample.app, name="sample")
