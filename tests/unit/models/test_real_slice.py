"""The shipped real evaluation slice: whole CLAUDETTE 2019 documents, split as LexGLUE splits them."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from dq_platform.models.data import load_dataset
from dq_platform.models.real_slice import BUDGET, SLICE_PATH, build

pytestmark = pytest.mark.unit

SHARED = Path(__file__).resolve().parents[3].parent / "shared" / "data" / "contract-clauses"


def test_slice_is_small_attributed_and_split_by_document() -> None:
    assert SLICE_PATH.stat().st_size < 300_000
    attribution = (SLICE_PATH.parent / "ATTRIBUTION.md").read_text(encoding="utf-8")
    for needed in ("CC BY 4.0", "Lippi", "LexGLUE", "creativecommons.org/licenses/by/4.0", "Selection rule"):
        assert needed in attribution
    frame = load_dataset(str(SLICE_PATH)).frame
    assert set(frame["label"]) == {"HighRisk", "LowRisk"}
    splits_per_doc = frame.groupby("doc")["split"].nunique()
    assert (splits_per_doc == 1).all()
    for split, budget in BUDGET.items():
        part = frame[frame["split"] == split]
        assert 0 < len(part) <= budget
        assert (part["label"] == "HighRisk").sum() >= 20
    assert load_dataset(f"{SLICE_PATH}#split=test").frame["doc"].nunique() == 4


@pytest.mark.skipif(not (SHARED / "splits.csv").is_file(), reason="needs the shared contract-clauses corpus")
def test_slice_rebuilds_byte_for_byte_from_the_corpus_with_its_splits(tmp_path: Path) -> None:
    out = tmp_path / "slice.csv"
    build(SHARED, out)
    assert out.read_bytes() == SLICE_PATH.read_bytes()
    with (SHARED / "splits.csv").open(encoding="utf-8", newline="") as fh:
        official = {r["source_doc"]: r["split"] for r in csv.DictReader(fh)}
    with SLICE_PATH.open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert all(official[r["source_doc"]] == r["split"] for r in rows)
    with (SHARED / "claudette2019_tos_sentences.csv").open(encoding="utf-8", newline="") as fh:
        per_doc: dict[str, int] = {}
        for r in csv.DictReader(fh):
            per_doc[r["source_doc"]] = per_doc.get(r["source_doc"], 0) + 1
    shipped: dict[str, int] = {}
    for r in rows:
        shipped[r["source_doc"]] = shipped.get(r["source_doc"], 0) + 1
    assert all(per_doc[doc] == n for doc, n in shipped.items())  # whole documents only
