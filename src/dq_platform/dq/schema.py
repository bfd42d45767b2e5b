"""The record schema the readers type input into, and the names of the engine's own columns."""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

# Column types the readers produce; everything else in the input is kept as a string column.
ARROW_TYPES: dict[str, pa.DataType] = {
    "string": pa.string(),
    "double": pa.float64(),
    "date": pa.date32(),
    "bigint": pa.int64(),
}

# Engine-owned columns carried next to the data; never rule inputs.
ROW_ID = "_row_id"
SOURCE = "_source"
RECORD = "_record"  # record number in its file, 1-based
LINE = "_line"  # physical line the record starts on in its file, 1-based (a CSV header is line 1)
PARSE_ERROR = "_parse_error"
RAW_RECORD = "_raw_record"
META_COLUMNS = (ROW_ID, SOURCE, RECORD, LINE, PARSE_ERROR, RAW_RECORD)
# Glue's row-level outcome columns.
RULES_PASS = "DataQualityRulesPass"  # noqa: S105 - a column name
RULES_FAIL = "DataQualityRulesFail"
RULES_SKIP = "DataQualityRulesSkip"
EVALUATION_RESULT = "DataQualityEvaluationResult"
QUARANTINE_REASONS = "DataQualityQuarantineReasons"
OUTCOME_COLUMNS = (RULES_PASS, RULES_FAIL, RULES_SKIP, EVALUATION_RESULT, QUARANTINE_REASONS)
# Shapes of the row-level columns on processed rows (`--row-outcomes`): "compact" (the default) writes
# DataQualityRulesFail and DataQualityEvaluationResult only, "full" Glue's four columns. Quarantine rows
# always carry all four. The compact lists are rebuilt exactly by `outcomes.rebuild_rule_lists`.
ROW_OUTCOME_SHAPES = ("compact", "full")


def full_rule_lists(quarantined: bool, row_outcomes: str) -> bool:
    """Whether an output carries DataQualityRulesPass / DataQualityRulesSkip."""
    if row_outcomes not in ROW_OUTCOME_SHAPES:
        raise ValueError(f"row outcomes must be one of {', '.join(ROW_OUTCOME_SHAPES)}, got {row_outcomes!r}")
    return quarantined or row_outcomes == "full"


@dataclass(frozen=True)
class Column:
    name: str
    type: str  # key of ARROW_TYPES
    required: bool = True


@dataclass(frozen=True)
class RecordSchema:
    columns: tuple[Column, ...]

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    def get(self, name: str) -> Column | None:
        for col in self.columns:
            if col.name == name:
                return col
        return None


CONTRACT_SCHEMA = RecordSchema(
    (
        Column("doc_id", "string"),
        Column("title", "string"),
        Column("counterparty", "string"),
        Column("contract_type", "string"),
        Column("effective_date", "date"),
        Column("expiry_date", "date"),
        Column("value_amount", "double"),
        Column("currency", "string"),
        Column("jurisdiction", "string"),
        Column("text", "string"),
        Column("label", "string", required=False),
    )
)
