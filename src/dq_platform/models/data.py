"""Labelled text for training and evaluation: clause CSVs or the DQ pipeline's processed Parquet.

Every row becomes (text, label, doc, split). Splits are by document, never by row: sentences of one
document share boilerplate, so a row split would leak it into the test set. Training-side only (pandas).
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from dq_platform.storage import StorageError, is_s3_uri, open_storage

if TYPE_CHECKING:
    import pandas as pd

DEFAULT_LABELS: tuple[str, ...] = ("HighRisk", "LowRisk")
SPLITS = ("train", "validation", "test")
DOC_COLUMNS = ("source_doc", "doc_id")
_READABLE = (".csv", ".parquet", ".jsonl", ".json")
SPLITS_FILE = "splits.csv"


class DataError(Exception):
    """Input data cannot be used; the message names the file, line/row and field."""


@dataclass
class Dataset:
    """One `--data` argument after selection: rows with text, label, doc, split (and a display name)."""

    name: str
    frame: pd.DataFrame
    sources: list[str] = field(default_factory=list)
    skipped_unlabelled: int = 0

    def part(self, split: str) -> pd.DataFrame:
        return self.frame[self.frame["split"] == split].reset_index(drop=True)


@dataclass(frozen=True)
class DataSpec:
    """`PATH`, `PATH#split=test`, `PATH#not-in=OTHER` (keep documents whose name is absent from OTHER) or
    `PATH#same-docs-as=OTHER` (keep documents whose name is in OTHER, each with its namesake's split)."""

    path: str
    split: str | None = None
    not_in: str | None = None
    same_docs_as: str | None = None

    @classmethod
    def parse(cls, spec: str) -> DataSpec:
        path, _, selector = spec.partition("#")
        if not path:
            raise DataError(f"--data {spec!r}: no path")
        if not selector:
            return cls(path)
        key, _, value = selector.partition("=")
        if key == "split" and value in SPLITS:
            return cls(path, split=value)
        if key == "not-in" and value:
            return cls(path, not_in=value)
        if key == "same-docs-as" and value:
            return cls(path, same_docs_as=value)
        raise DataError(
            f"--data {spec!r}: selector must be split=train|validation|test, not-in=PATH or same-docs-as=PATH"
        )

    @property
    def name(self) -> str:
        stem = _stem(self.path)
        if self.split:
            return f"{stem}[{self.split}]"
        if self.not_in:
            return f"{stem}[not-in {_stem(self.not_in)}]"
        if self.same_docs_as:
            return f"{stem}[same-docs-as {_stem(self.same_docs_as)}]"
        return stem


def _stem(path: str) -> str:
    name = path.rstrip("/").rsplit("/", 1)[-1]
    for ext in _READABLE:
        if name.endswith(ext):
            return name[: -len(ext)]
    return name


def _files(path: str) -> list[str]:
    """The readable files at `path`: itself, or everything readable below a folder / S3 prefix."""
    if not is_s3_uri(path):
        p = Path(path)
        if p.is_file():
            return [str(p)]
        if p.is_dir():
            found = sorted(str(f) for f in p.rglob("*") if f.is_file() and f.suffix in _READABLE)
            found = [f for f in found if Path(f).name != SPLITS_FILE and "/_staging/" not in f]
            if not found:
                raise DataError(f"{path}: folder has no .csv/.parquet/.jsonl files")
            return found
        raise DataError(f"{path}: no such file or folder")
    storage = open_storage(path)
    keys = storage.list()
    if not keys and storage.exists(""):
        return [path]
    found = [storage.uri(k) for k in keys if k.endswith(_READABLE) and not k.startswith("_staging/")]
    if not found:
        raise DataError(f"{path}: no .csv/.parquet/.jsonl objects under this prefix")
    return found


def _read_bytes(path: str) -> bytes:
    if is_s3_uri(path):
        bucket_uri, _, key = path.rpartition("/")
        try:
            return open_storage(bucket_uri).read_bytes(key)
        except StorageError as exc:
            raise DataError(str(exc)) from exc
    return Path(path).read_bytes()


def read_table(path: str) -> pd.DataFrame:
    """One file as a DataFrame of strings; `line` holds the 1-based source line/row for messages."""
    import pandas as pd

    raw = _read_bytes(path)
    try:
        if path.endswith(".parquet"):
            import pyarrow.parquet as pq

            frame = pq.read_table(io.BytesIO(raw)).to_pandas()
            frame["line"] = range(1, len(frame) + 1)
        elif path.endswith((".jsonl", ".json")):
            rows = []
            for n, line in enumerate(raw.decode("utf-8").splitlines(), start=1):
                if line.strip():
                    obj = json.loads(line)
                    if not isinstance(obj, dict):
                        raise DataError(f"{path} line {n}: not a JSON object")
                    obj["line"] = n
                    rows.append(obj)
            frame = pd.DataFrame(rows)
        else:
            frame = pd.read_csv(io.BytesIO(raw), dtype=str, keep_default_na=False, na_values=[""])
            frame["line"] = range(2, len(frame) + 2)  # line 1 is the header
    except DataError:
        raise
    except (ValueError, UnicodeDecodeError, OSError) as exc:
        raise DataError(f"{path}: cannot be parsed: {exc}") from exc
    return frame


def _load_splits(path: str | None, first_file: str) -> dict[str, str] | None:
    candidate = path
    if candidate is None and not is_s3_uri(first_file):
        beside = Path(first_file).parent / SPLITS_FILE
        candidate = str(beside) if beside.is_file() else None
    if candidate is None:
        return None
    frame = read_table(candidate)
    missing = {"source_doc", "split"} - set(frame.columns)
    if missing:
        raise DataError(f"{candidate}: splits file lacks column(s) {sorted(missing)}")
    bad = frame[~frame["split"].isin(SPLITS)]
    if len(bad):
        row = bad.iloc[0]
        raise DataError(f"{candidate} line {row['line']}: split {row['split']!r} is not one of {SPLITS}")
    return dict(zip(frame["source_doc"], frame["split"], strict=True))


def hash_split(doc: str, validation: float = 0.1, test: float = 0.1) -> str:
    """Deterministic document split for data without a splits file (same doc -> same split, always)."""
    bucket = int(hashlib.sha256(doc.encode("utf-8")).hexdigest(), 16) % 1000
    if bucket < test * 1000:
        return "test"
    if bucket < (test + validation) * 1000:
        return "validation"
    return "train"


def _doc_name(doc: str) -> str:
    """`claudette2021/LinkedIn` -> `linkedin`: corpus prefix and capitalisation differ between releases."""
    return doc.split("/", 1)[-1].casefold()


def _labelled_rows(path: str, labels: Sequence[str]) -> tuple[pd.DataFrame, int]:
    """One file's labelled rows as text/label/doc(/split), and how many rows had no label."""
    import pandas as pd

    frame = read_table(path)
    missing = [c for c in ("text", "label") if c not in frame.columns]
    if not any(c in frame.columns for c in DOC_COLUMNS):
        missing.append(" or ".join(DOC_COLUMNS))
    if missing:
        raise DataError(
            f"{path}: missing required column(s): {', '.join(missing)} "
            f"(found: {', '.join(str(c) for c in frame.columns if c != 'line')})"
        )
    doc_col = next(c for c in DOC_COLUMNS if c in frame.columns)
    labelled = frame["label"].notna() & (frame["label"].astype(str).str.strip() != "")
    skipped = int((~labelled).sum())
    frame = frame[labelled]
    for column in ("text", doc_col):
        empty = frame[column].isna() | (frame[column].astype(str).str.strip() == "")
        if empty.any():
            row = frame[empty].iloc[0]
            raise DataError(f"{path} line {row['line']}: empty {column!r}")
    unknown = frame[~frame["label"].isin(labels)]
    if len(unknown):
        row = unknown.iloc[0]
        raise DataError(
            f"{path} line {row['line']}: unknown label {row['label']!r} "
            f"({len(unknown)} row(s) in total); allowed labels: {', '.join(labels)}"
        )
    out = pd.DataFrame(
        {
            "text": frame["text"].astype(str),
            "label": frame["label"].astype(str),
            "doc": frame[doc_col].astype(str),
        }
    )
    if "split" in frame.columns:
        out["split"] = frame["split"].astype(str)
    return out, skipped


def load_dataset(
    spec: str | DataSpec,
    labels: Sequence[str] = DEFAULT_LABELS,
    splits_path: str | None = None,
) -> Dataset:
    """Read, validate and select one `--data` argument."""
    import pandas as pd

    parsed = spec if isinstance(spec, DataSpec) else DataSpec.parse(spec)
    files = _files(parsed.path)
    frames = []
    skipped = 0
    for path in files:
        out, unlabelled = _labelled_rows(path, labels)
        skipped += unlabelled
        frames.append(out)
    data = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    if data.empty:
        raise DataError(f"{parsed.path}: no labelled rows ({skipped} row(s) without a label)")

    if "split" not in data.columns:
        splits = _load_splits(splits_path, files[0])
        if splits is not None:
            unknown_docs = sorted(set(data["doc"]) - set(splits))
            if unknown_docs:
                raise DataError(
                    f"{parsed.path}: {len(unknown_docs)} document(s) have no split in the splits file, "
                    f"e.g. {unknown_docs[0]!r}"
                )
            data["split"] = data["doc"].map(splits)
        else:
            data["split"] = data["doc"].map(hash_split)

    if parsed.split:
        data = data[data["split"] == parsed.split]
    if parsed.not_in:
        other = {_doc_name(d) for d in load_dataset(parsed.not_in, labels=labels).frame["doc"]}
        data = data[~data["doc"].map(_doc_name).isin(other)]
    if parsed.same_docs_as:
        data = _same_docs_as(data, load_dataset(parsed.same_docs_as, labels=labels).frame)
    data = data.reset_index(drop=True)
    if data.empty:
        raise DataError(f"{parsed.name}: the selection leaves no rows")
    return Dataset(name=parsed.name, frame=data, sources=files, skipped_unlabelled=skipped)


def _same_docs_as(data: pd.DataFrame, other: pd.DataFrame) -> pd.DataFrame:
    """Another release of the same documents (e.g. CLAUDETTE 2021 next to 2019): only documents whose
    namesake is in `other`, each taking its namesake's split, so that no version of a test or validation
    document is ever trained on; texts `other` already has (case-insensitively) are dropped, so shared
    sentences are neither counted twice nor given a second, possibly different, label."""
    splits = other.assign(name=other["doc"].map(_doc_name)).groupby("name")["split"].unique()
    ambiguous = [name for name, values in splits.items() if len(values) > 1]
    if ambiguous:
        raise DataError(f"same-docs-as: document name {ambiguous[0]!r} has several splits in the other data")
    split_of = {name: values[0] for name, values in splits.items()}
    names = data["doc"].map(_doc_name)
    known = set(other["text"].str.casefold())
    keep = names.isin(split_of.keys()) & ~data["text"].str.casefold().isin(known)
    data = data[keep].copy()
    data["split"] = names[keep].map(split_of)
    return data


def combine(datasets: Sequence[Dataset]) -> pd.DataFrame:
    import pandas as pd

    return pd.concat([d.frame for d in datasets], ignore_index=True)


def data_sha256(frame: pd.DataFrame) -> str:
    """Hash of the rows a model learned from, independent of file order and format."""
    digest = hashlib.sha256()
    rows = sorted(zip(frame["doc"], frame["split"], frame["label"], frame["text"], strict=True))
    for row in rows:
        digest.update(json.dumps(row, ensure_ascii=False).encode("utf-8"))
        digest.update(b"\n")
    return digest.hexdigest()
