"""Engines that run the compiled SQL: DuckDB (local default) and Spark SQL (the Glue job)."""

from __future__ import annotations

from dq_platform.dq.engines.base import Engine, EngineError

__all__ = ["Engine", "EngineError", "make_engine"]


def make_engine(name: str) -> Engine:
    if name == "duckdb":
        from dq_platform.dq.engines.duckdb_engine import DuckDBEngine

        return DuckDBEngine()
    if name == "spark":
        from dq_platform.dq.engines.spark_engine import SparkEngine

        return SparkEngine()
    raise EngineError(f"unknown engine {name!r}: expected 'duckdb' or 'spark'")
