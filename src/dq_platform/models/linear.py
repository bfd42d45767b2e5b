"""TF-IDF weighting and linear terms in plain numpy, for exact per-term contributions at serving time.

scikit-learn costs ~1 s of cold start and is not in the serving image, so training stores the fitted
vectorizer's vocabulary, idf and the classifier's coefficients as JSON, and this module re-does the
vectorizer's analysis (same preprocessing, token regex and n-grams) to get coefficient x tf-idf per term.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

LINEAR_FORMAT = "dqp-tfidf-linear/1"


class LinearArtifactError(Exception):
    """The linear-terms file is missing fields or inconsistent."""


@dataclass(frozen=True)
class LinearTerms:
    terms: list[str]
    idf: npt.NDArray[np.float64]
    # One row per class for multi-class; a single row for binary (scikit-learn's convention: the row
    # scores `classes[1]`, so contributions toward `classes[0]` are its negation).
    coef: npt.NDArray[np.float64]
    intercept: npt.NDArray[np.float64]
    classes: list[str]
    lowercase: bool
    token_pattern: str
    ngram_range: tuple[int, int]
    sublinear_tf: bool
    norm: str | None
    _index: dict[str, int] = field(init=False, repr=False, compare=False)
    _token_re: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        n = len(self.terms)
        if self.idf.shape != (n,) or self.coef.ndim != 2 or self.coef.shape[1] != n:
            raise LinearArtifactError(f"shapes disagree: {n} terms, idf {self.idf.shape}, coef {self.coef.shape}")
        rows = 1 if len(self.classes) == 2 else len(self.classes)
        if self.coef.shape[0] != rows or self.intercept.shape != (rows,):
            raise LinearArtifactError(f"{len(self.classes)} classes need {rows} coefficient rows")
        if self.norm not in (None, "l2", "l1"):
            raise LinearArtifactError(f"unsupported norm {self.norm!r}")
        object.__setattr__(self, "_index", {t: i for i, t in enumerate(self.terms)})
        object.__setattr__(self, "_token_re", re.compile(self.token_pattern))

    def analyze(self, text: str) -> list[str]:
        """Tokens and n-grams exactly as scikit-learn's word analyzer produces them."""
        doc = text.lower() if self.lowercase else text
        tokens: list[str] = self._token_re.findall(doc)
        lo, hi = self.ngram_range
        if hi == 1:
            return tokens
        grams: list[str] = list(tokens) if lo == 1 else []
        for n in range(max(lo, 2), min(hi, len(tokens)) + 1):
            grams.extend(" ".join(tokens[i : i + n]) for i in range(len(tokens) - n + 1))
        return grams

    def vectorize(self, text: str) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
        """Sparse tf-idf row: (term indices, values), as the fitted vectorizer's transform gives."""
        index = self._index
        counts = Counter(index[g] for g in self.analyze(text) if g in index)
        if not counts:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float64)
        idx = np.fromiter(sorted(counts), dtype=np.int64)
        tf = np.array([counts[i] for i in idx], dtype=np.float64)
        if self.sublinear_tf:
            tf = 1.0 + np.log(tf)
        values = tf * self.idf[idx]
        if self.norm == "l2":
            scale = math.sqrt(float(np.dot(values, values)))
        elif self.norm == "l1":
            scale = float(np.abs(values).sum())
        else:
            scale = 1.0
        if scale > 0:
            values = values / scale
        return idx, values

    def transform(self, texts: list[str]) -> npt.NDArray[np.float32]:
        """Dense tf-idf rows (float32): the input of the baseline's ONNX classifier graph."""
        out = np.zeros((len(texts), len(self.terms)), dtype=np.float32)
        for row, text in enumerate(texts):
            idx, values = self.vectorize(text)
            out[row, idx] = values
        return out

    def contributions(self, text: str, label: str) -> list[tuple[str, float]]:
        """(term, coefficient x tf-idf) toward `label`, for every term of `text` in the vocabulary."""
        if label not in self.classes:
            raise LinearArtifactError(f"unknown label {label!r}; model labels are {self.classes}")
        idx, values = self.vectorize(text)
        k = self.classes.index(label)
        binary_sign = 1.0 if k == 1 else -1.0
        row = binary_sign * self.coef[0] if len(self.classes) == 2 else self.coef[k]
        contrib = row[idx] * values
        return [(self.terms[i], float(c)) for i, c in zip(idx.tolist(), contrib.tolist(), strict=True)]

    def decision(self, text: str) -> npt.NDArray[np.float64]:
        idx, values = self.vectorize(text)
        out: npt.NDArray[np.float64] = self.coef[:, idx] @ values + self.intercept
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": LINEAR_FORMAT,
            "terms": self.terms,
            "idf": self.idf.tolist(),
            "coef": self.coef.tolist(),
            "intercept": self.intercept.tolist(),
            "classes": self.classes,
            "lowercase": self.lowercase,
            "token_pattern": self.token_pattern,
            "ngram_range": list(self.ngram_range),
            "sublinear_tf": self.sublinear_tf,
            "norm": self.norm,
        }

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_dict(), separators=(",", ":")), encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> LinearTerms:
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise LinearArtifactError(f"{path} not found") from exc
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise LinearArtifactError(f"{path} is not valid JSON: {exc}") from exc
        if not isinstance(raw, dict) or raw.get("format") != LINEAR_FORMAT:
            raise LinearArtifactError(f"{path} is not a {LINEAR_FORMAT} file")
        try:
            lo, hi = raw["ngram_range"]
            return cls(
                terms=list(raw["terms"]),
                idf=np.asarray(raw["idf"], dtype=np.float64),
                coef=np.asarray(raw["coef"], dtype=np.float64),
                intercept=np.asarray(raw["intercept"], dtype=np.float64),
                classes=list(raw["classes"]),
                lowercase=bool(raw["lowercase"]),
                token_pattern=str(raw["token_pattern"]),
                ngram_range=(int(lo), int(hi)),
                sublinear_tf=bool(raw["sublinear_tf"]),
                norm=raw["norm"],
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise LinearArtifactError(f"{path} is missing or has a malformed field: {exc}") from exc
