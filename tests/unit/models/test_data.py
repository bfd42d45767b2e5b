from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from dq_platform.models.data import DataError, DataSpec, data_sha256, hash_split, load_dataset
from dq_platform.models.train import TrainConfig, make_splits
from dq_platform.sample_data import generate_clauses
from tests.unit.models.support import write_csv

pytestmark = pytest.mark.unit

FIELDS = ["text", "label", "source_doc"]


def clauses_csv(path: Path, n: int = 40, seed: int = 0) -> Path:
    return write_csv(path, generate_clauses(n, seed=seed), FIELDS)


def test_missing_columns_are_named(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "c.csv", [{"text": "x", "source_doc": "d"}], ["text", "source_doc"])
    with pytest.raises(DataError, match=r"c\.csv: missing required column\(s\): label \(found: text, source_doc\)"):
        load_dataset(str(path))
    path = write_csv(tmp_path / "d.csv", [{"text": "x", "label": "LowRisk"}], ["text", "label"])
    with pytest.raises(DataError, match="source_doc or doc_id"):
        load_dataset(str(path))


def test_unknown_label_names_line_and_value(tmp_path: Path) -> None:
    rows = generate_clauses(5)
    rows[3]["label"] = "Unmapped"
    path = write_csv(tmp_path / "c.csv", rows, FIELDS)
    with pytest.raises(DataError, match=r"c\.csv line 5: unknown label 'Unmapped' .*allowed labels: HighRisk, LowRisk"):
        load_dataset(str(path))
    # the same label is fine once declared
    assert len(load_dataset(str(path), labels=("HighRisk", "LowRisk", "Unmapped")).frame) == 5


def test_empty_inputs_fail_clearly(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "empty.csv", [], FIELDS)
    with pytest.raises(DataError, match="no labelled rows"):
        load_dataset(str(path))
    with pytest.raises(DataError, match="no such file or folder"):
        load_dataset(str(tmp_path / "nope.csv"))
    (tmp_path / "folder").mkdir()
    with pytest.raises(DataError, match="folder has no"):
        load_dataset(str(tmp_path / "folder"))
    rows = generate_clauses(3)
    rows[1]["text"] = "  "
    with pytest.raises(DataError, match=r"line 3: empty 'text'"):
        load_dataset(str(write_csv(tmp_path / "blank.csv", rows, FIELDS)))


def test_splits_file_beside_the_data_is_used_and_checked(tmp_path: Path) -> None:
    path = clauses_csv(tmp_path / "c.csv", n=40)
    docs = sorted({r["source_doc"] for r in generate_clauses(40)})
    assignment = ["train", "train", "validation", "test", "train"]
    write_csv(
        tmp_path / "splits.csv",
        [{"source_doc": d, "split": s} for d, s in zip(docs, assignment, strict=True)],
        ["source_doc", "split"],
    )
    ds = load_dataset(str(path))
    assert dict(zip(ds.frame["doc"], ds.frame["split"], strict=True)) == dict(zip(docs, assignment, strict=True))
    assert set(load_dataset(f"{path}#split=test").frame["doc"]) == {docs[3]}
    write_csv(tmp_path / "splits.csv", [{"source_doc": docs[0], "split": "train"}], ["source_doc", "split"])
    with pytest.raises(DataError, match="4 document\\(s\\) have no split"):
        load_dataset(str(path))


def test_not_in_keeps_only_documents_absent_from_the_other_file(tmp_path: Path) -> None:
    a = write_csv(
        tmp_path / "a.csv",
        [
            {"text": "one", "label": "LowRisk", "source_doc": "corpusA/Acme"},
            {"text": "two", "label": "HighRisk", "source_doc": "corpusA/Globex"},
        ],
        FIELDS,
    )
    (tmp_path / "b").mkdir()
    b = write_csv(
        tmp_path / "b" / "b.csv",
        [
            {"text": "three", "label": "LowRisk", "source_doc": "corpusB/ACME"},
            {"text": "four", "label": "HighRisk", "source_doc": "corpusB/Initech"},
        ],
        FIELDS,
    )
    ds = load_dataset(f"{b}#not-in={a}")
    assert ds.frame["doc"].tolist() == ["corpusB/Initech"]
    assert ds.name == "b[not-in a]"
    with pytest.raises(DataError, match="selector must be"):
        DataSpec.parse(f"{b}#split=holdout")


def test_same_docs_as_keeps_namesakes_with_their_split_and_drops_known_texts(tmp_path: Path) -> None:
    a = write_csv(
        tmp_path / "a.csv",
        [
            {"text": "We may end your account.", "label": "HighRisk", "source_doc": "c2019/Acme"},
            {"text": "Welcome.", "label": "LowRisk", "source_doc": "c2019/Globex"},
        ],
        FIELDS,
    )
    write_csv(
        tmp_path / "splits.csv",
        [{"source_doc": "c2019/Acme", "split": "train"}, {"source_doc": "c2019/Globex", "split": "test"}],
        ["source_doc", "split"],
    )
    (tmp_path / "b").mkdir()
    b = write_csv(
        tmp_path / "b" / "b.csv",
        [
            {"text": "WE MAY END YOUR ACCOUNT.", "label": "LowRisk", "source_doc": "c2021/ACME"},  # known text
            {"text": "We may change these terms.", "label": "HighRisk", "source_doc": "c2021/ACME"},
            {"text": "Globex thanks you.", "label": "LowRisk", "source_doc": "c2021/Globex"},
            {"text": "Initech may sue.", "label": "HighRisk", "source_doc": "c2021/Initech"},  # no namesake
        ],
        FIELDS,
    )
    write_csv(
        tmp_path / "b" / "splits.csv",
        [{"source_doc": f"c2021/{d}", "split": "train"} for d in ("ACME", "Globex", "Initech")],
        ["source_doc", "split"],
    )
    ds = load_dataset(f"{b}#same-docs-as={a}")
    assert ds.name == "b[same-docs-as a]"
    assert ds.frame[["text", "doc", "split"]].values.tolist() == [
        ["We may change these terms.", "c2021/ACME", "train"],
        ["Globex thanks you.", "c2021/Globex", "test"],  # the namesake's split, not b's own
    ]


def test_parquet_from_the_dq_pipeline_skips_unlabelled_rows(tmp_path: Path) -> None:
    folder = tmp_path / "contracts" / "ingest_date=2026-01-01"
    folder.mkdir(parents=True)
    table = pa.table(
        {
            "doc_id": ["c-1", "c-2", "c-3"],
            "text": ["The supplier may terminate at will.", "Payment within 30 days.", "Governing law is NY."],
            "label": ["HighRisk", None, "LowRisk"],
            "currency": ["USD", "EUR", "USD"],
        }
    )
    pq.write_table(table, folder / "part-0.parquet")
    ds = load_dataset(str(tmp_path / "contracts"))
    assert ds.frame["doc"].tolist() == ["c-1", "c-3"]
    assert ds.skipped_unlabelled == 1
    assert set(ds.frame["split"]) <= {"train", "validation", "test"}


def test_hash_split_is_deterministic_and_roughly_80_10_10() -> None:
    splits = [hash_split(f"doc-{i}") for i in range(3000)]
    assert splits == [hash_split(f"doc-{i}") for i in range(3000)]
    share = splits.count("train") / len(splits)
    assert 0.75 < share < 0.85


def test_training_split_never_shares_documents_and_hash_tracks_data(tmp_path: Path) -> None:
    ds = load_dataset(str(clauses_csv(tmp_path / "c.csv", n=400)))
    splits = make_splits([ds], TrainConfig())
    assert not set(splits.train["doc"]) & set(splits.test["doc"])
    assert not set(splits.train["doc"]) & set(splits.validation["doc"])
    again = make_splits([load_dataset(str(tmp_path / "c.csv"))], TrainConfig())
    assert again.sha256 == splits.sha256
    changed = ds.frame.copy()
    changed.loc[0, "label"] = "HighRisk" if changed.loc[0, "label"] == "LowRisk" else "LowRisk"
    assert data_sha256(changed) != data_sha256(ds.frame)


def test_training_needs_every_label(tmp_path: Path) -> None:
    rows = [r for r in generate_clauses(200) if r["label"] == "LowRisk"]
    ds = load_dataset(str(write_csv(tmp_path / "c.csv", rows, FIELDS)))
    with pytest.raises(DataError, match="too few for HighRisk"):
        make_splits([ds], TrainConfig())
