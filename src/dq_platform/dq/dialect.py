"""The few SQL spellings that differ between DuckDB and Spark SQL; everything else is shared text."""

from __future__ import annotations

import re
from dataclasses import dataclass

_BACKTICK_IDENT = re.compile(r"`([^`]*)`")


@dataclass(frozen=True)
class Dialect:
    name: str  # duckdb | spark

    def ident(self, name: str) -> str:
        if self.name == "spark":
            return "`" + name.replace("`", "``") + "`"
        return '"' + name.replace('"', '""') + '"'

    def string(self, value: str) -> str:
        if self.name == "spark":  # Spark parses backslash escapes and joins adjacent literals
            return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
        return "'" + value.replace("'", "''") + "'"

    def regex_full_match(self, expr: str, pattern: str) -> str:
        if self.name == "spark":
            return f"({expr} RLIKE {self.string('^(?:' + pattern + ')' + chr(92) + 'z')})"
        return f"regexp_full_match({expr}, {self.string(pattern)})"

    def byte_length(self, expr: str) -> str:
        """UTF-8 byte count: stored with the string, so free, where `length()` walks every byte."""
        return f"octet_length({expr})" if self.name == "spark" else f"strlen({expr})"

    def aggregate_apart(self, expr: str, source: str) -> str:
        """One aggregate of the metrics query, as DuckDB computes a DISTINCT one cheaply: in its own scalar
        subquery. Why: a single DISTINCT aggregate turned DuckDB's whole ungrouped aggregate (40-odd sums)
        into its distinct-aware plan, 5x slower per column, and it kept ~0.4 GB at 5M rows (docs/dq.md,
        issue #16). Spark plans distinct aggregates its own way: unchanged there."""
        if self.name == "spark" or "DISTINCT" not in expr.upper():
            return expr
        return f"(SELECT {expr} FROM {source})"  # noqa: S608 - compiled from the ruleset

    def compact_array(self, items: list[str]) -> str:
        """Array of the non-null items, in order (row-level rule lists)."""
        if not items:
            return "CAST(array() AS ARRAY<STRING>)" if self.name == "spark" else "CAST([] AS VARCHAR[])"
        body = ", ".join(items)
        if self.name == "spark":
            # array_except keeps order and drops NULLs; unlike filter() (a lambda, never code-generated)
            # it is compiled. It also drops duplicates, which these lists never have (rule texts are unique).
            return f"array_except(array({body}), array(CAST(NULL AS STRING)))"
        return f"list_filter([{body}], lambda x: x IS NOT NULL)"

    def user_sql(self, sql: str) -> str:
        """Users write Glue (Spark) SQL in `where` and CustomSql; DuckDB quotes identifiers differently."""
        if self.name == "duckdb":
            return _BACKTICK_IDENT.sub(lambda m: '"' + m.group(1).replace('"', '""') + '"', sql)
        return sql


DUCKDB = Dialect("duckdb")
SPARK = Dialect("spark")
