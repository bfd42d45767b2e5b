"""Rule handlers, one module per rule family, registered by DQDL rule type.

A handler fills in a `Node` for one rule: its row-level status and/or aggregate SQL and its decider. It
raises `DQDLError` for a ruleset problem (the user must fix the text) and `RuleError` for a problem with
the data (an unknown column: that rule's outcome is Error).
"""

from __future__ import annotations

from collections.abc import Callable

from dq_platform.dq.compiler.builder import RuleBuilder
from dq_platform.dq.compiler.model import Node
from dq_platform.dq.compiler.rules import dataset, keys, sql, stats, values
from dq_platform.dq.dqdl.ast import Rule

Handler = Callable[[RuleBuilder, Node, Rule], None]

HANDLERS: dict[str, Handler] = {
    "RowCount": dataset.row_count,
    "ColumnCount": dataset.column_count,
    "ColumnExists": dataset.column_exists,
    "ColumnNamesMatchPattern": dataset.column_names_match_pattern,
    "IsComplete": values.is_complete,
    "Completeness": values.completeness,
    "IsUnique": keys.is_unique,
    "Uniqueness": keys.uniqueness,
    "UniqueValueRatio": keys.unique_value_ratio,
    "IsPrimaryKey": keys.is_primary_key,
    "ColumnValues": values.column_values,
    "ColumnLength": values.column_length,
    "DistinctValuesCount": keys.distinct_values_count,
    "Mean": stats.mean,
    "Sum": stats.sum_,
    "StandardDeviation": stats.standard_deviation,
    "Variance": stats.variance,
    "ColumnCorrelation": stats.column_correlation,
    "CustomSql": sql.custom_sql,
    "DataFreshness": values.data_freshness,
    "ReferentialIntegrity": sql.referential_integrity,
}
SUPPORTED_RULE_TYPES = tuple(HANDLERS)
