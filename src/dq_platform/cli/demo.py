"""`dqp demo`: run the platform end to end locally (the README's main command)."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path
from types import FrameType

import typer

from dq_platform.demo import DemoConfig, DemoError, run_demo


def demo(
    workdir: Path = typer.Option(Path(".local/demo"), "--workdir", help="Stands in for the buckets."),
    engine: str = typer.Option(
        os.environ.get("ENGINE", "duckdb"), "--engine", help="duckdb (default) or spark; env ENGINE."
    ),
    rows: int = typer.Option(2000, "--rows", min=50, help="Sample contract records to generate."),
    data: list[str] = typer.Option(
        [],
        "--data",
        help="Clause CSVs to train and evaluate on (env DQP_DEMO_DATA, comma-separated), e.g. "
        "../shared/data/contract-clauses/claudette2019_tos_sentences.csv. Default: the shipped real slice "
        "(src/dq_platform/data/claudette2019_slice.csv: train/validation documents to train, test documents "
        "to evaluate).",
    ),
    tiny: bool = typer.Option(False, "--tiny", help="Tiny random transformer instead of MiniLM (fast; tests)."),
    epochs: int = typer.Option(3, "--epochs", min=1, help="Fine-tuning epochs (best on validation kept)."),
    max_length: int = typer.Option(64, "--max-length", min=8, max=512),
    max_train_rows: int | None = typer.Option(None, "--max-train-rows", min=10, help="Subsample training."),
    port: int = typer.Option(3000, "--port", min=1, max=65535, help="API port on 127.0.0.1."),
    serve: bool = typer.Option(True, "--serve/--no-serve", help="Keep serving until Ctrl-C (default) or exit."),
    seed: int = typer.Option(0, "--seed"),
) -> None:
    """Generate data, run the DQ pipeline, train, explain, evaluate, serve and query the API."""
    env_data = [d for d in os.environ.get("DQP_DEMO_DATA", "").split(",") if d.strip()]
    if engine not in ("duckdb", "spark"):
        raise typer.BadParameter("choose duckdb or spark", param_hint="--engine")
    cfg = DemoConfig(
        workdir=workdir,
        engine=engine,
        rows=rows,
        data=data or env_data,
        tiny=tiny,
        epochs=epochs,
        max_length=max_length,
        max_train_rows=max_train_rows,
        port=port,
        serve=serve,
        seed=seed,
    )
    # A SIGTERM (`kill`, a CI timeout, `docker stop`) exits through run_demo's cleanup like Ctrl-C does,
    # instead of leaving the API it started running on the port.
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    try:
        run_demo(cfg, typer.echo)
    except DemoError as exc:
        typer.echo(f"demo failed: {exc}", err=True)
        raise typer.Exit(1) from exc


def _exit_on_sigterm(signum: int, frame: FrameType | None) -> None:
    sys.exit(128 + signum)
