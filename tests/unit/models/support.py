"""Helpers for the model tests: tiny real models trained on the project's generated clauses."""

from __future__ import annotations

import csv
from collections.abc import Iterable, Mapping
from pathlib import Path

from dq_platform.models.artifacts import Manifest
from dq_platform.models.sample import sample_dataset
from dq_platform.models.train import TrainConfig, train

TINY_CFG = {"tiny": True, "epochs": 2, "learning_rate": 1e-3, "max_length": 64, "keep_checkpoint": False}


def train_tiny(out: Path, n: int = 320, seed: int = 0, **overrides: object) -> dict[str, Manifest]:
    """Both models on `n` generated clauses: tiny random BERT (2 layers, hidden 32) + the real baseline."""
    cfg = TrainConfig(**{**TINY_CFG, "seed": seed, **overrides})  # type: ignore[arg-type]
    return train([sample_dataset(n, seed=seed)], out, cfg, echo=lambda _msg: None)


def write_csv(path: Path, rows: Iterable[Mapping[str, object]], fields: list[str]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields)
        writer.writeheader()
        for row in rows:
            writer.writerow({k: row.get(k, "") for k in fields})
    return path
