"""Small in-memory datasets and a one-call evaluator for rule tests (DuckDB, real engine)."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

from dq_platform.dq.dqdl import parse
from dq_platform.dq.engines.duckdb_engine import DuckDBEngine
from dq_platform.dq.pipeline import evaluate
from dq_platform.dq.readers import InputFile, ParsedInput, parse_files

NOW = datetime(2025, 6, 1, 12, 0, 0)


def parsed(rows: list[dict[str, Any]], name: str = "t.jsonl") -> ParsedInput:
    body = "".join(json.dumps(r) + "\n" for r in rows).encode()
    return parse_files([InputFile(name, "jsonl", body)])


def outcomes(
    rules: str, rows: list[dict[str, Any]], tmp: Path, refs: dict[str, list[dict[str, Any]]] | None = None
) -> list[dict[str, Any]]:
    doc = parse(rules if "Rules =" in rules else f"Rules = [ {rules} ]")
    references = {k: parsed(v, f"{k}.jsonl") for k, v in (refs or {}).items()}
    ev = evaluate(DuckDBEngine(), doc, parsed(rows), NOW, tmp, references=references)
    return ev.outcomes


def rows4(**overrides: list[Any]) -> list[dict[str, Any]]:
    base = {
        "doc_id": ["A1", "A2", "A3", "A4"],
        "title": ["t1", "t2", "t3", "t4"],
        "currency": ["USD", "EUR", "USD", "GBP"],
        "value_amount": [10.0, 20.0, 30.0, 40.0],
        "effective_date": ["2025-05-31", "2025-05-30", "2025-05-01", "2024-01-01"],
        "expiry_date": ["2026-01-01", "2026-01-01", "2026-01-01", "2026-01-01"],
        "text": ["clause one", "clause two", "clause three", ""],
    }
    base.update(overrides)
    return [{k: v[i] for k, v in base.items()} for i in range(4)]
