"""The small real evaluation slice shipped with the project: whole CLAUDETTE 2019 documents.

`dqp demo` trains and evaluates on it by default, so a fresh clone prints metrics measured on real Terms
of Service sentences written and labelled by others (CC BY 4.0; see `data/ATTRIBUTION.md`), not on
generated clauses. The selection rule, applied per split to the documents of `splits.csv` in the order
that file lists them: take each whole document whose rows still fit the split's row budget, skip the
ones that do not. Whole documents keep the split by document; the order keeps the choice mechanical.

Rebuild (from a checkout of the shared corpus):
`python -m dq_platform.models.real_slice ../shared/data/contract-clauses`
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

SLICE_DIR = Path(__file__).resolve().parents[1] / "data"
SLICE_PATH = SLICE_DIR / "claudette2019_slice.csv"
CORPUS_FILE = "claudette2019_tos_sentences.csv"
SPLITS_FILE = "splits.csv"
# Rows per split: small enough to ship (< 300 KB) and to fine-tune MiniLM in about a minute on 2 cores.
BUDGET = {"train": 600, "validation": 300, "test": 500}
COLUMNS = ("text", "label", "source_label", "source_doc", "split")


def select_documents(doc_rows: dict[str, int], doc_split: list[tuple[str, str]]) -> dict[str, str]:
    """source_doc -> split for the chosen documents (first fit per split, in splits.csv order)."""
    used = dict.fromkeys(BUDGET, 0)
    chosen: dict[str, str] = {}
    for doc, split in doc_split:
        rows = doc_rows.get(doc, 0)
        if split in BUDGET and rows and used[split] + rows <= BUDGET[split]:
            chosen[doc] = split
            used[split] += rows
    return chosen


def build(corpus_dir: Path, out: Path = SLICE_PATH) -> dict[str, int]:
    """Write the slice from the shared corpus folder; returns rows per split."""
    with (corpus_dir / CORPUS_FILE).open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    with (corpus_dir / SPLITS_FILE).open(encoding="utf-8", newline="") as fh:
        doc_split = [(r["source_doc"], r["split"]) for r in csv.DictReader(fh)]
    doc_rows: dict[str, int] = {}
    for row in rows:
        doc_rows[row["source_doc"]] = doc_rows.get(row["source_doc"], 0) + 1
    chosen = select_documents(doc_rows, doc_split)
    counts = dict.fromkeys(BUDGET, 0)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(COLUMNS)
        for row in rows:  # corpus order: each document's sentences in reading order
            split = chosen.get(row["source_doc"])
            if split is not None:
                writer.writerow([row["text"], row["label"], row["source_label"], row["source_doc"], split])
                counts[split] += 1
    return counts


if __name__ == "__main__":  # pragma: no cover
    print(build(Path(sys.argv[1]), Path(sys.argv[2]) if len(sys.argv) > 2 else SLICE_PATH))
