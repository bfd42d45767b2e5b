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


from dq_platform.cli import inference as _inference  # noqa: E402

for _name, _command in (
    ("serve", _inference.serve),
    ("smoke", _inference.smoke),
    ("openapi", _inference.openapi),
    ("events", _inference.events),
):
    app.command(_name)(_command)


# Sub-command groups, one per domain (each module owns its commands).
from dq_platform.cli import sample as _sample  # noqa: E402  (registered after `app` exists)

app.add_typer(_sample.app, name="sample")

from dq_platform.cli import models as _models  # noqa: E402  (train, evaluate, explain)

_models.register(app)

from dq_platform.cli import dq as _dq  # noqa: E402  (check, run)

app.add_typer(_dq.app, name="dq")

from dq_platform.cli import abtest as _abtest  # noqa: E402

app.command("ab-report")(_abtest.ab_report)

from dq_platform.cli import demo as _demo  # noqa: E402

app.command("demo")(_demo.demo)
