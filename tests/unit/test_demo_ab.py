"""The demo's example requests: each `auto` example gets a doc_id of its own that the split sends to the
arm asked for, so the demo shows both models answering `auto` (the split is sticky on doc_id)."""

from __future__ import annotations

import pytest

from dq_platform.demo import ARMS, _doc_id_for, _doc_ids
from dq_platform.inference.ab import DEFAULT_WEIGHTS, ABWeights, assign

pytestmark = pytest.mark.unit


def test_each_example_gets_a_distinct_doc_id_on_the_arm_asked_for() -> None:
    ids = _doc_ids("DEMO")
    chosen = [_doc_id_for(arm, DEFAULT_WEIGHTS, ids) for arm in (*ARMS, *ARMS)]
    assert [assign(doc_id, DEFAULT_WEIGHTS) for doc_id in chosen] == [*ARMS, *ARMS]
    assert len(set(chosen)) == 4
    assert chosen[0] == "DEMO-0001"  # 90/10: the first id already lands on the baseline
    assert chosen == sorted(chosen)


def test_an_arm_without_share_gets_the_next_id() -> None:
    all_baseline = ABWeights(baseline=1.0, transformer=0.0)
    ids = _doc_ids("DEMO")
    assert _doc_id_for("transformer", all_baseline, ids, tries=50) == "DEMO-0001"
    assert next(ids) == "DEMO-0052"  # the search gave up after its 50 tries
