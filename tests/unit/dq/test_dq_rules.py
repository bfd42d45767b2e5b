"""Every supported rule type: a pass case, a fail case, NULL handling and an empty dataset."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from dq_platform.dq.dqdl import DQDLError, UnsupportedRuleError

from .helpers_dq import outcomes, rows4

pytestmark = pytest.mark.unit

R = rows4()
NULL_CUR = rows4(currency=["USD", None, "USD", "GBP"])
NULL_ID = rows4(doc_id=["A1", None, "A3", "A4"])
DUP_ID = rows4(doc_id=["A1", "A1", "A2", "A3"])
NULL_VAL = rows4(value_amount=[10.0, 20.0, None, 40.0])
BAD_CUR = rows4(currency=["USD", "XXX", "USD", "GBP"])
EXPIRED = rows4(expiry_date=["2026-01-01", "2020-01-01", "2026-01-01", "2026-01-01"])
EMPTY: list[dict[str, Any]] = []
# 20 characters each, in 40, 20, 80 and 20 bytes: the byte-count shortcut must never decide wrongly
TEXT_20_CHARS = rows4(text=["\u00e9" * 20, "a" * 20, "\U0001f600" * 20, "ab" * 10])

CASES = [
    # RowCount
    ("RowCount = 4", R, "Passed"),
    ("RowCount > 10", R, "Failed"),
    ('RowCount = 2 where "value_amount > 20"', R, "Passed"),
    ("RowCount = 0", EMPTY, "Passed"),
    ("RowCount > 0", EMPTY, "Failed"),
    # ColumnCount / ColumnExists
    ("ColumnCount = 7", R, "Passed"),
    ("ColumnCount > 50", R, "Failed"),
    ("ColumnCount = 0", EMPTY, "Passed"),
    ('ColumnExists "currency"', R, "Passed"),
    ('ColumnExists "nope"', R, "Failed"),
    ('ColumnExists "currency"', EMPTY, "Failed"),
    # IsComplete / Completeness
    ('IsComplete "currency"', R, "Passed"),
    ('IsComplete "currency"', NULL_CUR, "Failed"),
    ('IsComplete "currency"', EMPTY, "Failed"),
    ('Completeness "currency" > 0.7', NULL_CUR, "Passed"),
    ('Completeness "currency" > 0.8', NULL_CUR, "Failed"),
    ('Completeness "currency" = 1.0', R, "Passed"),
    ('Completeness "currency" > 0.5', EMPTY, "Failed"),
    # IsUnique / Uniqueness / UniqueValueRatio / IsPrimaryKey
    ('IsUnique "doc_id"', R, "Passed"),
    ('IsUnique "doc_id"', DUP_ID, "Failed"),
    ('IsUnique "doc_id"', NULL_ID, "Passed"),
    ('IsUnique "doc_id"', EMPTY, "Failed"),
    ('IsUnique "currency" "doc_id"', R, "Passed"),
    ('Uniqueness "doc_id" = 1.0', R, "Passed"),
    ('Uniqueness "doc_id" > 0.9', DUP_ID, "Failed"),
    ('Uniqueness "doc_id" = 1.0', NULL_ID, "Passed"),
    ('Uniqueness "doc_id" > 0.5', EMPTY, "Failed"),
    ('UniqueValueRatio "doc_id" = 1.0', R, "Passed"),
    ('UniqueValueRatio "doc_id" > 0.9', DUP_ID, "Failed"),
    ('UniqueValueRatio "doc_id" = 1.0', NULL_ID, "Passed"),
    ('UniqueValueRatio "doc_id" > 0.1', EMPTY, "Failed"),
    ('IsPrimaryKey "doc_id"', R, "Passed"),
    ('IsPrimaryKey "doc_id"', DUP_ID, "Failed"),
    ('IsPrimaryKey "doc_id"', NULL_ID, "Failed"),
    ('IsPrimaryKey "doc_id"', EMPTY, "Failed"),
    # ColumnValues
    ('ColumnValues "currency" in ["USD", "EUR", "GBP"]', R, "Passed"),
    ('ColumnValues "currency" in ["USD", "EUR", "GBP"]', BAD_CUR, "Failed"),
    ('ColumnValues "currency" in ["USD", "EUR", "GBP"]', NULL_CUR, "Failed"),
    ('ColumnValues "currency" in ["USD", "EUR", "GBP", NULL]', NULL_CUR, "Passed"),
    ('ColumnValues "currency" not in ["XXX"]', NULL_CUR, "Passed"),
    ('ColumnValues "currency" not in ["XXX"]', BAD_CUR, "Failed"),
    ('ColumnValues "currency" in ["USD"]', EMPTY, "Failed"),
    ('ColumnValues "value_amount" between 9 and 41', R, "Passed"),
    ('ColumnValues "value_amount" between 10 and 40', R, "Failed"),  # DQDL between is exclusive
    ('ColumnValues "value_amount" between 9 and 41', NULL_VAL, "Failed"),
    ('ColumnValues "value_amount" >= 10', R, "Passed"),
    ('ColumnValues "value_amount" < 40', R, "Failed"),
    ('ColumnValues "value_amount" in [10, 20, 30, 40]', R, "Passed"),
    ('ColumnValues "value_amount" > 15 with threshold >= 0.75', R, "Passed"),
    ('ColumnValues "value_amount" > 15 with threshold > 0.8', R, "Failed"),
    ('ColumnValues "currency" matches "[A-Z]{3}"', R, "Passed"),
    ('ColumnValues "currency" matches "[A-Z]{2}"', R, "Failed"),
    ('ColumnValues "currency" = "USD"', R, "Failed"),
    ('ColumnValues "currency" != "XXX"', BAD_CUR, "Failed"),
    ('ColumnValues "currency" = NULL', NULL_CUR, "Failed"),
    ('ColumnValues "text" != EMPTY', R, "Failed"),
    ('ColumnValues "text" = EMPTY where "doc_id = \'A4\'"', R, "Passed"),
    ('ColumnValues "effective_date" <= now()', R, "Passed"),
    ('ColumnValues "effective_date" > (now() - 40 days)', R, "Failed"),
    ('ColumnValues "effective_date" > "2023-12-31"', R, "Passed"),
    ('ColumnValues "effective_date" between "2024-01-01" and now()', R, "Failed"),
    # ColumnLength
    ('ColumnLength "currency" = 3', R, "Passed"),
    ('ColumnLength "currency" > 3', R, "Failed"),
    ('ColumnLength "currency" = 3', NULL_CUR, "Failed"),
    ('ColumnLength "currency" between 2 and 4', EMPTY, "Failed"),
    ('ColumnLength "text" between 19 and 21', TEXT_20_CHARS, "Passed"),
    ('ColumnLength "text" between 1 and 100', TEXT_20_CHARS, "Passed"),
    ('ColumnLength "text" between 4 and 20', TEXT_20_CHARS, "Failed"),
    ('ColumnLength "text" > 20', TEXT_20_CHARS, "Failed"),
    ('ColumnLength "text" >= 20', TEXT_20_CHARS, "Passed"),
    ('ColumnLength "text" <= 20', TEXT_20_CHARS, "Passed"),
    ('ColumnLength "text" < 20', TEXT_20_CHARS, "Failed"),
    # DistinctValuesCount
    ('DistinctValuesCount "currency" = 3', R, "Passed"),
    ('DistinctValuesCount "currency" > 3', R, "Failed"),
    ('DistinctValuesCount "currency" = 2', NULL_CUR, "Passed"),
    ('DistinctValuesCount "currency" = 0', EMPTY, "Passed"),
    # Mean / Sum / StandardDeviation / Variance
    ('Mean "value_amount" between 24 and 26', R, "Passed"),
    ('Mean "value_amount" > 30', R, "Failed"),
    ('Mean "value_amount" between 23 and 24', NULL_VAL, "Passed"),
    ('Mean "value_amount" > 0', EMPTY, "Failed"),
    ('Sum "value_amount" = 100', R, "Passed"),
    ('Sum "value_amount" = 100', NULL_VAL, "Failed"),
    ('Sum "value_amount" >= 0', EMPTY, "Failed"),
    ('StandardDeviation "value_amount" between 11 and 12', R, "Passed"),
    ('StandardDeviation "value_amount" < 5', R, "Failed"),
    ('StandardDeviation "value_amount" > 0', EMPTY, "Failed"),
    ('Variance "value_amount" = 125', R, "Passed"),
    # ColumnCorrelation
    ('ColumnCorrelation "value_amount" "score" > 0.99', rows4(score=["2", "4", "6", "8"]), "Passed"),
    ('ColumnCorrelation "value_amount" "score" > 0', rows4(score=["8", "6", "4", "2"]), "Failed"),
    ('ColumnCorrelation "value_amount" "score" > 0', rows4(score=[None, None, None, "2"]), "Failed"),
    ('ColumnCorrelation "value_amount" "value_amount" > 0', EMPTY, "Failed"),
    # CustomSql
    ('CustomSql "select count(*) from primary where value_amount > 25" = 2', R, "Passed"),
    ('CustomSql "select count(*) from primary where value_amount > 25" = 3', R, "Failed"),
    ('CustomSql "select count(*) from primary" = 0', EMPTY, "Passed"),
    ('CustomSql "select doc_id from primary where expiry_date > effective_date"', R, "Passed"),
    ('CustomSql "select doc_id from primary where expiry_date > effective_date"', EXPIRED, "Failed"),
    ('CustomSql "select doc_id from primary where value_amount > 0"', NULL_VAL, "Failed"),
    (
        'CustomSql "select doc_id from primary where expiry_date > effective_date" with threshold > 0.7',
        EXPIRED,
        "Passed",
    ),
    # DataFreshness (NOW = 2025-06-01 12:00)
    ('DataFreshness "effective_date" <= 40 days where "value_amount < 40"', R, "Passed"),
    ('DataFreshness "effective_date" <= 2 days', R, "Failed"),
    ('DataFreshness "effective_date" <= 1000 days', rows4(effective_date=["2025-05-31", None, None, None]), "Failed"),
    ('DataFreshness "effective_date" <= 2 days', EMPTY, "Failed"),
    # Composite
    ('(IsComplete "doc_id") and (RowCount > 10)', R, "Failed"),
    ('(IsComplete "doc_id") or (RowCount > 10)', R, "Passed"),
    ('(RowCount > 10) or ((IsComplete "doc_id") and (IsUnique "doc_id"))', R, "Passed"),
]


@pytest.mark.parametrize(("rule", "rows", "expected"), CASES, ids=[f"{c[0][:60]}|{len(c[1])}" for c in CASES])
def test_rule_outcome(rule: str, rows: list[dict[str, Any]], expected: str, tmp_path: Path) -> None:
    (result,) = outcomes(rule, rows, tmp_path)
    assert result["Outcome"] == expected, result
    if expected == "Failed":
        assert result["FailureReason"]


REF = {"ref": [{"code": "USD"}, {"code": "EUR"}, {"code": "GBP"}]}


@pytest.mark.parametrize(
    ("rows", "expected", "rows_failed"),
    [(R, "Passed", 0), (BAD_CUR, "Failed", 1), (NULL_CUR, "Failed", 1), (EMPTY, "Failed", 0)],
)
def test_referential_integrity(rows: list[dict[str, Any]], expected: str, rows_failed: int, tmp_path: Path) -> None:
    (result,) = outcomes('ReferentialIntegrity "currency" "ref.{code}" = 1.0', rows, tmp_path, REF)
    assert result["Outcome"] == expected
    assert result["RowsFailed"] == rows_failed


def test_referential_integrity_ratio_and_missing_reference(tmp_path: Path) -> None:
    (ok,) = outcomes('ReferentialIntegrity "currency" "ref.code" >= 0.75', BAD_CUR, tmp_path, REF)
    assert ok["Outcome"] == "Passed"
    assert ok["EvaluatedMetrics"] == {"Column.currency.ReferentialIntegrity": 0.75}
    (missing,) = outcomes('ReferentialIntegrity "currency" "other.{code}" = 1.0', R, tmp_path)
    assert missing["Outcome"] == "Error"
    assert "other" in missing["FailureReason"]


def test_metrics_and_rows_failed_are_glue_shaped(tmp_path: Path) -> None:
    (result,) = outcomes('ColumnValues "currency" in ["USD", "EUR", "GBP"]', BAD_CUR, tmp_path)
    assert result == {
        "Rule": 'ColumnValues "currency" in ["USD", "EUR", "GBP"]',
        "Outcome": "Failed",
        "FailureReason": "1 of 4 rows did not satisfy the rule",
        "EvaluatedMetrics": {"Column.currency.ColumnValues.Compliance": 0.75},
        "Action": "warn",
        "RowsFailed": 1,
    }


def test_variables_and_labels(tmp_path: Path) -> None:
    rules = """
    ok = ["USD", "EUR", "GBP"]
    DefaultLabels = ["action"="halt"]
    Rules = [
      ColumnValues "currency" in $ok labels=["action"="quarantine"],
      RowCount > 100
    ]
    """
    first, second = outcomes(rules, BAD_CUR, tmp_path)
    assert (first["Action"], first["Outcome"], first["RowsFailed"]) == ("quarantine", "Failed", 1)
    assert (second["Action"], second["Outcome"]) == ("halt", "Failed")


@pytest.mark.parametrize(
    ("rule", "needle"),
    [
        ('IsComplete "nope"', "column 'nope' not found"),
        ('IsComplete "doc_id" where "no_such_col > 1"', "rule SQL failed"),
        ('CustomSql "select count(*) from no_such_table" > 0', "CustomSql failed"),
        ('(IsComplete "nope") and (RowCount > 0)', "column 'nope' not found"),
    ],
)
def test_rule_errors_are_reported_not_passed(rule: str, needle: str, tmp_path: Path) -> None:
    (result,) = outcomes(rule, R, tmp_path)
    assert result["Outcome"] == "Error"
    assert needle in result["FailureReason"]


@pytest.mark.parametrize(
    ("rules", "needle", "line"),
    [
        ('Rules = [\n  IsComplete "doc_id",\n  Entropy "text" > 1\n]', "unsupported rule type 'Entropy'", 3),
        ("Rules = [\n  RowCount > avg(last(10))\n]", "dynamic", 2),
        ('Rules = [\n  RowCount > 0 labels=["action"="explode"]\n]', "unknown action 'explode'", 2),
        ('Rules = [\n  RowCount > 0 labels=["action"="quarantine"]\n]', "needs a row-level rule", 2),
        ('Rules = [\n  ColumnValues "currency" in $nope\n]', "unknown variable $nope", 2),
        ('Rules = [\n  IsComplete "doc_id" > 3\n]', "takes no condition", 2),
    ],
)
def test_ruleset_errors_name_the_line(rules: str, needle: str, line: int, tmp_path: Path) -> None:
    with pytest.raises(DQDLError) as info:
        outcomes(rules, R, tmp_path)
    assert needle in str(info.value)
    assert info.value.line == line


def test_unknown_rule_type_is_unsupported_error(tmp_path: Path) -> None:
    with pytest.raises(UnsupportedRuleError, match="FileFreshness"):
        outcomes('FileFreshness "s3://bucket/x" > (now() - 3 days)', R, tmp_path)
