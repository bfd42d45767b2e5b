"""DQDL parser: document sections, rule shapes, and errors that name line, column and expectation."""

from __future__ import annotations

import pytest

from dq_platform.dq.dqdl import CompositeRule, DQDLSyntaxError, Rule, parse
from dq_platform.dq.dqdl.ast import BinOp, Duration, Keyword, Now, Number, String, VarRef

pytestmark = pytest.mark.unit

DOC = """# comment line
Metadata = { "Version": "1.0" }
DataSources = { "Primary": "contracts", "AdditionalDataSources": ["ref"] }
valid = ["USD", "EUR"]
DefaultLabels = ["action"="warn"]
Rules = [
  IsComplete "doc_id" labels=["action"="quarantine", "team"="x"],   # trailing comment
  ColumnValues "currency" in $valid,
  Completeness of col_1 between 0.5 and 0.8,
  ColumnCorrelation of col_1 and "col abc" between 0.4 and 0.8,
  ColumnValues "d" > (now() - 3 days),
  DataFreshness "d" <= 24 hours,
  ColumnValues "v" > -1.5 where "x > 0" with threshold >= 0.9,
  ColumnValues "c" not in ["a", NULL, EMPTY],
  ColumnValues "c" matches "[A-Z]{3}\\\\d",
  CustomSql "select id from primary where \\"a\\" > 1",
  (RowCount > 0) or ((IsComplete "a") and (IsUnique "a"))
]
"""


def test_document_sections_and_rules() -> None:
    doc = parse(DOC)
    assert doc.metadata == {"Version": "1.0"}
    assert doc.data_sources["AdditionalDataSources"] == ["ref"]
    assert doc.variables == {"valid": ["USD", "EUR"]}
    assert doc.default_labels == {"action": "warn"}
    assert len(doc.rules) == 11
    first = doc.rules[0]
    assert isinstance(first, Rule)
    assert (first.rule_type, first.params, first.labels) == (
        "IsComplete",
        ["doc_id"],
        {"action": "quarantine", "team": "x"},
    )
    assert first.text == 'IsComplete "doc_id"'
    assert (first.pos.line, first.pos.column) == (7, 3)


def test_rule_details() -> None:
    rules = parse(DOC).rules
    by = dict(enumerate(rules))
    assert isinstance(by[1], Rule)
    assert by[1].condition is not None
    assert by[1].condition.operands == (VarRef("valid"),)
    assert isinstance(by[2], Rule)
    assert by[2].params == ["col_1"]
    assert isinstance(by[3], Rule)
    assert by[3].params == ["col_1", "col abc"]
    assert isinstance(by[4], Rule)
    assert by[4].condition is not None
    assert by[4].condition.operands == (BinOp("-", Now(), Duration(3.0, "days")),)
    assert isinstance(by[5], Rule)
    assert by[5].condition is not None
    assert by[5].condition.operands == (Duration(24.0, "hours"),)
    r6 = by[6]
    assert isinstance(r6, Rule)
    assert r6.condition is not None
    assert r6.threshold is not None
    assert (r6.condition.operands, r6.where, r6.threshold.op) == ((Number(-1.5),), "x > 0", ">=")
    assert isinstance(by[7], Rule)
    assert by[7].condition is not None
    assert by[7].condition.op == "not in"
    assert by[7].condition.operands == (String("a"), Keyword("NULL"), Keyword("EMPTY"))
    assert isinstance(by[8], Rule)
    assert by[8].condition is not None
    assert by[8].condition.operands == (String("[A-Z]{3}\\d"),)
    assert isinstance(by[9], Rule)
    assert by[9].params == ['select id from primary where "a" > 1']
    comp = by[10]
    assert isinstance(comp, CompositeRule)
    assert comp.op == "or"
    assert isinstance(comp.children[1], CompositeRule)
    assert comp.children[1].op == "and"
    assert comp.text == '(RowCount > 0) or ((IsComplete "a") and (IsUnique "a"))'


def test_empty_rules_is_legal() -> None:
    assert parse("Rules = []").rules == []


@pytest.mark.parametrize(
    ("text", "line", "column", "expected"),
    [
        ('Rules = [ IsComplete "a" "b" > ]', 1, 32, "expected a value"),
        ('Rules = [\n  IsComplete "a",\n  ColumnValues "x" in ["a" "b"]\n]', 3, 28, "',' or ']'"),
        ("rules = []", 1, 1, "must be spelled 'Rules'"),
        ('Rules = [ (IsComplete "a") and IsComplete "b" ]', 1, 32, "'(' to start the rule"),
        ('Rules = [ (IsComplete "a") and (IsComplete "b") or (RowCount > 0) ]', 1, 11, "cannot mix"),
        ('Rules = [ ColumnValues "x" between 1 2 ]', 1, 38, "'and' in 'between"),
        ('Rules = [ ColumnValues "x ]', 1, 24, "unterminated string"),
        ('Rules = [ IsComplete "a"', 1, 25, "',' between rules or ']'"),
        ('Metadata = { "Version": "1.0" }', 1, 32, "'Rules = [ ... ]'"),
        ('Rules = [ RowCount > 0 labels=["action" "halt"] ]', 1, 41, "'=' between the label key"),
        ('Rules = [ IsComplete "a" where ]', 1, 32, "quoted SQL condition"),
        ("Rules = [ RowCount > 0 ] Rules = []", 1, 26, "duplicate 'Rules'"),
        ("Rules = [ RowCount ? 0 ]", 1, 20, "unexpected character"),
    ],
)
def test_syntax_errors_name_line_column_and_expectation(text: str, line: int, column: int, expected: str) -> None:
    with pytest.raises(DQDLSyntaxError) as info:
        parse(text)
    err = info.value
    assert (err.line, err.column) == (line, column), str(err)
    assert expected in str(err)
    assert str(err).startswith(f"line {line}, column {column}: ")
