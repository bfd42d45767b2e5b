"""One voice for the CLI's refusals: one line on stderr, what happened (and why), then what to do.

A command that cannot do its job on the defaults (no models yet, no input yet, nothing listening) says so
in one line that names the command providing what is missing, and exits non-zero; never a traceback.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import typer

DEFAULT_MODELS = "build/models"
SAMPLE_MODELS_FIX = (
    "train the sample models with `make sample-models` (or `dqp train --sample --out build/models`), "
    "or pass --models a folder written by `dqp train`"
)


def refuse(what: str, fix: str, code: int = 2) -> typer.Exit:
    """Print `error: <what>; <fix>` on stderr and return the Exit to raise."""
    typer.secho(f"error: {what}; {fix}", err=True, fg=typer.colors.RED)
    return typer.Exit(code=code)


def missing_models(root: str | Path, names: Iterable[str]) -> list[str]:
    """The model names with no manifest under a local served-layout root (none for an s3:// root)."""
    text = str(root)
    if text.startswith("s3://"):
        return []
    return [name for name in names if not (Path(text) / name / "manifest.json").is_file()]


def no_models(root: str | Path, names: Iterable[str], doing: str) -> typer.Exit:
    """The refusal for a model root that holds none of the models a command needs."""
    manifests = " or ".join(f"{name}/manifest.json" for name in names)
    return refuse(f"no model to {doing} in {root} (no {manifests})", SAMPLE_MODELS_FIX)
