"""Serving runtime: load model folders and predict/explain with ONNX Runtime + tokenizers only.

No torch, transformers, scikit-learn or shap here (docs/models.md: cold start ~0.2-0.4 s instead of
~4.5 s, ~110 MB instead of ~500 MB). Both models run as ONNX graphs; the baseline's exact linear
contributions come from a small JSON of vocabulary/idf/coefficients (see `linear.py`), the transformer's
on-the-fly explanation is a bounded word occlusion (shap is far too slow per request; batch SHAP lives in
`dq_platform.models.explain`).
"""

from __future__ import annotations

import os
import re
import time
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel

from dq_platform.models.artifacts import (
    BASELINE,
    KIND_MINILM_ONNX,
    KIND_TFIDF_LOGREG,
    MANIFEST_FILE,
    MODEL_NAMES,
    ROLE_LINEAR,
    ROLE_MODEL,
    ROLE_TOKENIZER,
    ArtifactError,
    Manifest,
    TermWeight,
    read_manifest,
)
from dq_platform.models.linear import LinearArtifactError, LinearTerms

DEFAULT_EXPLAIN_BUDGET_S = 2.0
# ONNX Runtime fusions left out, offline (train.optimize_for_serving) and at load. SkipLayerNormFusion: the
# CPU SkipLayerNormalization kernel (onnxruntime 1.32) took ~330 us on a 128x384 input where the Add +
# LayerNormalization it replaces took ~75 us; without it the int8 MiniLM runs ~8% faster at 128 tokens.
SLOW_FUSIONS = ("SkipLayerNormFusion",)
# Occlusion never scores more than this many word groups, however long the text: bounded cost.
MAX_OCCLUSION_UNITS = 48
_OCCLUSION_BATCH = 8
_WORD_RE = re.compile(r"\S+")
_STRIP_PUNCT = re.compile(r"^\W+|\W+$")


class ModelLoadError(Exception):
    """A model folder could not be loaded; `reason` is safe to show in /models and logs."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Prediction(BaseModel):
    label: str
    confidence: float
    probabilities: dict[str, float]


class Explanation(BaseModel):
    type: str
    top_terms: list[TermWeight]
    html_url: str | None = None
    reason: str | None = None


def _session(path: Path, threads: int | None) -> Any:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    n = threads if threads is not None else int(os.environ.get("DQP_ORT_THREADS", "0"))
    if n > 0:
        opts.intra_op_num_threads = n
        opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    try:
        return ort.InferenceSession(
            str(path), sess_options=opts, providers=["CPUExecutionProvider"], disabled_optimizers=list(SLOW_FUSIONS)
        )
    except Exception as exc:  # onnxruntime raises its own exception types for bad graphs
        raise ModelLoadError(f"{path.name} is not a loadable ONNX model: {type(exc).__name__}") from exc


def _require(model_dir: Path, manifest: Manifest, role: str) -> Path:
    try:
        name = manifest.file(role)
    except ArtifactError as exc:
        raise ModelLoadError(str(exc)) from exc
    path = model_dir / name
    if not path.is_file():
        raise ModelLoadError(f"{manifest.name}: file {name!r} ({role}) is missing from {model_dir}")
    return path


class LoadedModel(ABC):
    """One loaded model; thread-compatible (ONNX Runtime sessions are safe to share)."""

    def __init__(self, manifest: Manifest, model_dir: Path) -> None:
        self.manifest = manifest
        self.name = manifest.name
        self.version = manifest.version
        self.model_dir = model_dir
        self.labels = list(manifest.labels)

    @abstractmethod
    def predict_proba(self, texts: list[str]) -> npt.NDArray[np.float32]:
        """Class probabilities, one row per text, columns in `self.labels` order."""

    @abstractmethod
    def explain(self, text: str, top_k: int = 10, budget_s: float = DEFAULT_EXPLAIN_BUDGET_S) -> Explanation:
        """Top terms toward the predicted label (positive weight = pushes toward it)."""

    def decide(self, probs: npt.NDArray[np.float32]) -> list[str]:
        """Labels for rows of probabilities: the tuned threshold for a binary model's positive label."""
        m = self.manifest
        if m.positive_label is not None and m.decision_threshold is not None and len(self.labels) == 2:
            pos = self.labels.index(m.positive_label)
            neg = 1 - pos
            return [self.labels[pos] if p[pos] >= m.decision_threshold else self.labels[neg] for p in probs]
        return [self.labels[int(i)] for i in np.argmax(probs, axis=1)]

    def predict_proba_many(self, texts: list[str], batch: int = 64) -> npt.NDArray[np.float32]:
        """Probabilities for many texts in bounded batches (evaluation, batch explanations)."""
        if not texts:
            return np.zeros((0, len(self.labels)), dtype=np.float32)
        return np.concatenate([self.predict_proba(texts[i : i + batch]) for i in range(0, len(texts), batch)])

    def predict_batch(self, texts: list[str]) -> list[Prediction]:
        if not texts:
            return []
        probs = self.predict_proba(texts)
        out = []
        for label, row in zip(self.decide(probs), probs, strict=True):
            dist = {lab: float(p) for lab, p in zip(self.labels, row, strict=True)}
            out.append(Prediction(label=label, confidence=dist[label], probabilities=dist))
        return out

    def predict(self, text: str) -> Prediction:
        return self.predict_batch([text])[0]


class BaselineModel(LoadedModel):
    """TF-IDF + calibrated logistic regression.

    The vectorizer runs in numpy from the linear JSON (the same numbers give the exact contributions);
    the calibrated classifier runs as a skl2onnx graph. ONNX's own string ops do not reproduce
    scikit-learn's tokenisation, n-grams or sublinear tf, so only the numeric part is a graph.
    """

    def __init__(self, manifest: Manifest, model_dir: Path, threads: int | None = None) -> None:
        super().__init__(manifest, model_dir)
        self.session = _session(_require(model_dir, manifest, ROLE_MODEL), threads)
        try:
            self.linear = LinearTerms.load(_require(model_dir, manifest, ROLE_LINEAR))
        except LinearArtifactError as exc:
            raise ModelLoadError(f"{manifest.name}: {exc}") from exc
        if self.linear.classes != self.labels:
            raise ModelLoadError(
                f"{manifest.name}: linear classes {self.linear.classes} != manifest labels {self.labels}"
            )
        graph_input = self.session.get_inputs()[0]
        width = graph_input.shape[-1]
        if isinstance(width, int) and width != len(self.linear.terms):
            raise ModelLoadError(
                f"{manifest.name}: graph expects {width} features, vocabulary has {len(self.linear.terms)}"
            )
        self._input = graph_input.name
        outputs = [o.name for o in self.session.get_outputs()]
        self._prob_output = "probabilities" if "probabilities" in outputs else outputs[-1]

    def predict_proba(self, texts: list[str]) -> npt.NDArray[np.float32]:
        (probs,) = self.session.run([self._prob_output], {self._input: self.linear.transform(texts)})
        return np.asarray(probs, dtype=np.float32)

    def explain(self, text: str, top_k: int = 10, budget_s: float = DEFAULT_EXPLAIN_BUDGET_S) -> Explanation:
        label = self.predict(text).label
        contrib = self.linear.contributions(text, label)
        contrib.sort(key=lambda tw: (-abs(tw[1]), tw[0]))
        top = [TermWeight(term=t, weight=w) for t, w in contrib[:top_k]]
        reason = None if top else "no term of the text is in the model's vocabulary"
        return Explanation(type="linear-contributions", top_terms=top, reason=reason)


class TransformerModel(LoadedModel):
    """Fine-tuned MiniLM exported to ONNX (int8 or fp32, per the manifest) with a tokenizers tokenizer."""

    def __init__(self, manifest: Manifest, model_dir: Path, threads: int | None = None) -> None:
        super().__init__(manifest, model_dir)
        from tokenizers import Tokenizer

        if manifest.max_length is None:
            raise ModelLoadError(f"{manifest.name}: manifest has no max_length")
        self.max_length = manifest.max_length
        tok_path = _require(model_dir, manifest, ROLE_TOKENIZER)
        try:
            self.tokenizer = Tokenizer.from_file(str(tok_path))
        except Exception as exc:  # tokenizers raises a bare Exception for malformed JSON
            raise ModelLoadError(f"{manifest.name}: {tok_path.name} is not a tokenizers file") from exc
        self.tokenizer.enable_truncation(max_length=self.max_length)
        self.tokenizer.no_padding()
        self.session = _session(_require(model_dir, manifest, ROLE_MODEL), threads)
        self._inputs = {i.name for i in self.session.get_inputs()}
        missing = {"input_ids", "attention_mask"} - self._inputs
        if missing:
            raise ModelLoadError(f"{manifest.name}: ONNX graph lacks inputs {sorted(missing)}")
        n_out = self.session.get_outputs()[0].shape[-1]
        if isinstance(n_out, int) and n_out != len(self.labels):
            raise ModelLoadError(f"{manifest.name}: graph has {n_out} outputs for {len(self.labels)} labels")

    def _feed(self, texts: list[str]) -> dict[str, npt.NDArray[np.int64]]:
        encs = self.tokenizer.encode_batch(texts)
        width = max(len(e.ids) for e in encs)
        ids = np.zeros((len(encs), width), dtype=np.int64)
        mask = np.zeros((len(encs), width), dtype=np.int64)
        types = np.zeros((len(encs), width), dtype=np.int64)
        for row, enc in enumerate(encs):
            n = len(enc.ids)
            ids[row, :n] = enc.ids
            mask[row, :n] = 1
            types[row, :n] = enc.type_ids
        feed = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self._inputs:
            feed["token_type_ids"] = types
        return feed

    def logits(self, texts: list[str]) -> npt.NDArray[np.float32]:
        (out,) = self.session.run(None, self._feed(texts))
        return np.asarray(out, dtype=np.float32)

    def predict_proba(self, texts: list[str]) -> npt.NDArray[np.float32]:
        logits = self.logits(texts)
        shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
        probs: npt.NDArray[np.float32] = shifted / shifted.sum(axis=1, keepdims=True)
        return probs

    def predict_proba_many(self, texts: list[str], batch: int = 64) -> npt.NDArray[np.float32]:
        """Length-sorted batches so each pads little; rows come back in input order."""
        out = np.zeros((len(texts), len(self.labels)), dtype=np.float32)
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        for start in range(0, len(order), batch):
            idx = order[start : start + batch]
            out[idx] = self.predict_proba([texts[i] for i in idx])
        return out

    def token_count(self, text: str) -> int:
        return len(self.tokenizer.encode(text).ids)

    def explain(self, text: str, top_k: int = 10, budget_s: float = DEFAULT_EXPLAIN_BUDGET_S) -> Explanation:
        """Word-group occlusion: drop each group, weight = fall in the predicted label's probability.

        Only words the model actually sees (inside max_length) are scored, in at most
        MAX_OCCLUSION_UNITS groups, in small batches until `budget_s` runs out; what was scored by then
        is returned with a `reason` saying the explanation is partial.
        """
        started = time.perf_counter()
        base = self.predict_proba([text])[0]
        label = self.decide(base[None, :])[0]
        k = self.labels.index(label)
        words = [(m.start(), m.end()) for m in _WORD_RE.finditer(text)]
        enc = self.tokenizer.encode(text)
        seen_until = max((end for (_, end) in enc.offsets), default=0)
        words = [w for w in words if w[0] < seen_until]
        if not words:
            return Explanation(type="occlusion", top_terms=[], reason="text has no words to occlude")
        per_unit = -(-len(words) // MAX_OCCLUSION_UNITS)
        units = [words[i : i + per_unit] for i in range(0, len(words), per_unit)]
        weights: dict[str, float] = {}
        scored = 0
        for start in range(0, len(units), _OCCLUSION_BATCH):
            if time.perf_counter() - started > budget_s:
                break
            batch = units[start : start + _OCCLUSION_BATCH]
            variants = [text[: u[0][0]] + text[u[-1][1] :] for u in batch]
            probs = self.predict_proba(variants)
            for unit, row in zip(batch, probs, strict=True):
                term = " ".join(_STRIP_PUNCT.sub("", text[s:e]) or text[s:e] for s, e in unit)
                weights[term] = weights.get(term, 0.0) + float(base[k] - row[k])
            scored += len(batch)
        ranked = sorted(weights.items(), key=lambda tw: (-abs(tw[1]), tw[0]))[:top_k]
        reason = None
        if scored < len(units):
            reason = f"time budget {budget_s:g}s reached after {scored} of {len(units)} word groups"
        return Explanation(type="occlusion", top_terms=[TermWeight(term=t, weight=w) for t, w in ranked], reason=reason)


_KINDS: dict[str, type[BaselineModel] | type[TransformerModel]] = {
    KIND_TFIDF_LOGREG: BaselineModel,
    KIND_MINILM_ONNX: TransformerModel,
}


def load_model(model_dir: Path, threads: int | None = None) -> LoadedModel:
    """Load one served-layout model folder; `threads` caps ONNX Runtime's intra-op threads."""
    try:
        manifest = read_manifest(model_dir)
    except ArtifactError as exc:
        raise ModelLoadError(str(exc)) from exc
    cls = _KINDS[manifest.kind]
    return cls(manifest, model_dir, threads=threads)


def load_models(root: Path, threads: int | None = None) -> tuple[dict[str, LoadedModel], dict[str, str]]:
    """Every model under `root` (the known names plus any folder with a manifest), errors by name."""
    loaded: dict[str, LoadedModel] = {}
    errors: dict[str, str] = {}
    names = list(MODEL_NAMES)
    if root.is_dir():
        names += sorted(
            p.name for p in root.iterdir() if p.is_dir() and p.name not in names and (p / MANIFEST_FILE).is_file()
        )
    for name in names:
        folder = root / name
        if not folder.is_dir():
            errors[name] = f"no model folder {folder}"
            continue
        try:
            model = load_model(folder, threads=threads)
        except ModelLoadError as exc:
            errors[name] = exc.reason
            continue
        if model.name != name:
            errors[name] = f"folder {name!r} holds a manifest named {model.name!r}"
            continue
        loaded[name] = model
    return loaded, errors


__all__ = [
    "BASELINE",
    "DEFAULT_EXPLAIN_BUDGET_S",
    "BaselineModel",
    "Explanation",
    "LoadedModel",
    "ModelLoadError",
    "Prediction",
    "TermWeight",
    "TransformerModel",
    "load_model",
    "load_models",
]
