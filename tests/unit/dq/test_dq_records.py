"""What one record is (docs/dq.md): line boundaries that a stray quote cannot move, and the
independent count that every run checks its rows against. Named cases per defect class, then random
byte soups where the reader's boundaries and the count must both equal a character-level model."""

from __future__ import annotations

import itertools
import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dq_platform.dq.records import ByteIndex, csv_records, jsonl_records
from dq_platform.dq.recount import count_records
from tests.unit.dq import record_model

pytestmark = pytest.mark.unit

EXAMPLES = int(os.environ.get("DQP_RECORD_FUZZ_EXAMPLES", "300"))


def _csv(data: bytes, width: int = 3, max_lines: int = 100) -> list[tuple[int, int, bool]]:
    """Records as (first line, last line, unterminated), 1-based lines as users see them; the count
    and the model must agree with them."""
    idx = ByteIndex.build(data)
    recs = csv_records(idx, width, max_lines)
    got = [(a + 1, b + 1, bool(u)) for a, b, u in zip(recs.first, recs.last, recs.unterminated, strict=True)]
    model = [(a + 1, b + 1, u) for a, b, u in record_model.csv_records(data, width, max_lines)]
    assert got == model
    assert count_records(idx, "csv", width, max_lines) == len(got)
    return got


def _jsonl(data: bytes) -> list[int]:
    idx = ByteIndex.build(data, quotes=False)
    got = [int(x) + 1 for x in jsonl_records(idx).first]
    assert got == [x + 1 for x in record_model.jsonl_records(data)]
    assert count_records(idx, "jsonl", 0, 1) == len(got)
    return got


# ---------------------------------------------------------------- CSV: named cases


def test_one_record_per_line() -> None:
    assert _csv(b"a,b,c\n1,2,3\n4,5,6\n") == [(2, 2, False), (3, 3, False)]


def test_unterminated_quote_is_that_line_alone() -> None:
    """The issue's case: the quote would pair with the next quote, lines later; only its line is lost."""
    data = b'a,b,c\n1,2,3\n4,"5,6\n7,8,9\n10,"x",12\n13,14,15\n'
    assert _csv(data) == [(2, 2, False), (3, 3, True), (4, 4, False), (5, 5, False), (6, 6, False)]


def test_quote_open_to_the_end_of_the_file() -> None:
    assert _csv(b'a,b,c\n1,2,3\n4,"5,6\n7,8,9\n') == [(2, 2, False), (3, 3, True), (4, 4, False)]


def test_quoted_line_breaks_are_one_record() -> None:
    data = b'a,b,c\n1,"two\nlines",3\n4,"x\r\n\r\ny",6\n7,8,9'
    assert _csv(data) == [(2, 3, False), (4, 6, False), (7, 7, False)]


def test_quoted_value_longer_than_max_record_lines() -> None:
    data = b'a,b,c\n1,"x\ny\nz",3\n4,5,6\n'
    assert _csv(data, max_lines=3) == [(2, 4, False), (5, 5, False)]
    assert _csv(data, max_lines=2) == [(2, 2, True), (3, 3, False), (4, 4, False), (5, 5, False)]
    assert _csv(data, max_lines=1) == [(2, 2, True), (3, 3, False), (4, 4, False), (5, 5, False)]


def test_joined_lines_must_make_a_record_of_the_header_width() -> None:
    """A quote that closes lines later but leaves the wrong number of fields is a stray quote."""
    data = b'a,b,c\n1,"x\ny",3,4\n5,6,7\n'
    assert _csv(data) == [(2, 2, True), (3, 3, False), (4, 4, False)]


def test_joined_lines_must_close_each_quote_before_a_delimiter() -> None:
    """The stray quote here pairs with the opening quote of a later field: not a record."""
    data = b'a,b,c\n1,"x,y\n2,"z",3\n'
    assert _csv(data) == [(2, 2, True), (3, 3, False)]


@pytest.mark.parametrize(
    "line",
    [
        pytest.param(b'1,ab"c,3', id="quote-inside-unquoted-field"),
        pytest.param(b'1,"ab"c,3', id="text-after-closing-quote"),
        pytest.param(b'1,"a""b",3', id="escaped-quote"),
        pytest.param(b'1,"",""', id="empty-quoted-fields"),
        pytest.param(b'1,15" screen,"x"', id="inch-mark-then-quoted-field"),
        pytest.param(b"1;2;3", id="wrong-delimiter"),
        pytest.param(b"1,2", id="too-few-fields"),
        pytest.param(b"1,2,3,4", id="too-many-fields"),
        pytest.param(b"\x00\x01\xff\xfe binary", id="binary-junk"),
        pytest.param(b"   ", id="only-spaces"),
    ],
)
def test_lines_that_close_on_themselves(line: bytes) -> None:
    assert _csv(b"a,b,c\n" + line + b"\n4,5,6\n") == [(2, 2, False), (3, 3, False)]


def test_line_ends_lf_crlf_and_lone_cr_blank_lines_skipped() -> None:
    data = b"a,b,c\r\n1,2,3\r\n\r\n4,5,6\r7,8,9\n\n\n10,11,12"
    assert _csv(data) == [(2, 2, False), (4, 4, False), (5, 5, False), (8, 8, False)]


def test_header_only_and_empty() -> None:
    assert _csv(b"a,b,c\n") == []
    assert _csv(b"a,b,c") == []
    assert _csv(b"") == []


def test_a_stray_quote_in_the_header_does_not_move_the_records() -> None:
    assert _csv(b'a,"b,c\n1,2,3\n') == [(2, 2, False)]


# ---------------------------------------------------------------- JSON lines: named cases


def test_jsonl_records_are_lines() -> None:
    data = (
        b'{"a": 1}\n'
        b'{"a": "truncated\n'  # a truncated record
        b"}\n"  # the brace that would have closed it: a record of its own
        b"\n"
        b"  \t \n"  # blank: not a record
        b"\x00junk\xff\n"
        b'{"a": "x\xe2\x80\xa8y"}\n'  # U+2028 inside a string: not a line end
        b'{"a": 3}'
    )
    assert _jsonl(data) == [1, 2, 3, 6, 7, 8]


# ---------------------------------------------------------------- random byte soups

PIECES = st.sampled_from(
    [
        *(b"a", b"7", b",", b'"', b'""', b'"""', b',"', b'",', b'"a,b"', b"x,y", b'a"b'),
        *(b"\n", b"\r", b"\r\n", b"\n\n", b" ", b"\t", b"\xff", b"\x00"),
    ]
)


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(PIECES, max_size=80), st.integers(1, 4), st.integers(1, 5))
def test_random_csv_boundaries_and_count_match_the_model(parts: list[bytes], width: int, max_lines: int) -> None:
    records = _csv(b"h\n" + b"".join(parts), width, max_lines)
    for (_, last, _), (first, _, _) in itertools.pairwise(records):
        assert first > last  # records never overlap


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(PIECES, max_size=80))
def test_random_jsonl_lines_match_the_model(parts: list[bytes]) -> None:
    _jsonl(b"".join(parts))
