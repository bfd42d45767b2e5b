"""`dqp sample`: write the project's generated sample data (records with defects, labelled clauses)."""

from __future__ import annotations

import csv
from enum import StrEnum
from pathlib import Path

import typer

from dq_platform import sample_data

app = typer.Typer(help="Generate sample contract records and labelled clauses.", no_args_is_help=True)


class RecordFormat(StrEnum):
    csv = "csv"
    jsonl = "jsonl"


@app.command("records")
def records(
    out: Path = typer.Option(
        Path(".local/raw/incoming/batch.csv"),
        "--out",
        help="File to write (.csv or .jsonl); `dqp dq run` reads its folder.",
    ),
    rows: int = typer.Option(1000, min=0, help="Number of records."),
    fmt: RecordFormat = typer.Option(RecordFormat.csv, "--format", help="csv or jsonl."),
    defect_rate: float = typer.Option(0.08, min=0.0, max=1.0, help="Share of records with one defect."),
    malformed: int = typer.Option(0, min=0, help="Broken lines to splice in (bad quoting, truncation...)."),
    seed: int = typer.Option(0, help="Same seed, same file."),
) -> None:
    """Contract records with realistic defects, as they land in the raw bucket."""
    recs = sample_data.generate_records(rows, seed=seed, defect_rate=defect_rate)
    path = sample_data.write_records(out, recs, fmt.value, malformed_lines=malformed, seed=seed)
    typer.echo(f"wrote {rows} records (+{malformed} malformed lines) to {path}")


@app.command("clauses")
def clauses(
    out: Path = typer.Option(Path(".local/clauses.csv"), "--out", help="CSV file with text,label,source_doc."),
    rows: int = typer.Option(2000, min=1, help="Number of clauses."),
    seed: int = typer.Option(0, help="Same seed, same file."),
) -> None:
    """Labelled clauses (HighRisk/LowRisk) for training the sample models."""
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=["text", "label", "source_doc"], lineterminator="\n")
        writer.writeheader()
        writer.writerows(sample_data.generate_clauses(rows, seed=seed))
    typer.echo(f"wrote {rows} clauses to {out}")
