"""Batch SHAP explanations: shap's Partition explainer with a word-level Text masker over the ONNX model.

Far too slow per request (docs/api.md, explanations), so `dqp explain` and the batch Lambda precompute one JSON
(top terms, model version) and shap's HTML text plot per doc_id into the analytics bucket; the API
serves those. shap is imported only here, never on the serving path.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from dq_platform.models.artifacts import PrecomputedExplanation, TermWeight, explanation_key
from dq_platform.models.runtime import LoadedModel
from dq_platform.storage import Storage, StorageError

# Word-level masking (split on non-word characters): ~10x fewer model calls than sub-word tokens.
WORD_SPLIT = r"\W+"
_EDGE_PUNCT = re.compile(r"^\W+|\W+$")
DEFAULT_MAX_EVALS = 200
DEFAULT_TOP_K = 10


class ExplainError(Exception):
    """Input documents cannot be explained; the message names the file/row/field."""


@dataclass(frozen=True)
class Document:
    doc_id: str
    text: str


@dataclass
class ExplainSummary:
    written: int = 0
    skipped: int = 0
    seconds: list[float] = field(default_factory=list)
    pending: list[str] = field(default_factory=list)

    @property
    def mean_seconds(self) -> float:
        return float(np.mean(self.seconds)) if self.seconds else 0.0

    @property
    def complete(self) -> bool:
        return not self.pending


def read_documents(path: str) -> list[Document]:
    """doc_id + text rows from Parquet/CSV/JSONL files (a file, folder or s3:// prefix)."""
    from dq_platform.models.data import DataError, _files, read_table

    docs: list[Document] = []
    try:
        files = _files(path)
        for name in files:
            frame = read_table(name)
            missing = [c for c in ("doc_id", "text") if c not in frame.columns]
            if missing:
                raise ExplainError(f"{name}: missing required column(s) {', '.join(missing)}")
            for doc_id, text, line in zip(frame["doc_id"], frame["text"], frame["line"], strict=True):
                if not isinstance(doc_id, str) or not doc_id.strip():
                    raise ExplainError(f"{name} line {line}: empty 'doc_id'")
                if not isinstance(text, str) or not text.strip():
                    raise ExplainError(f"{name} line {line}: empty 'text'")
                docs.append(Document(doc_id, text))
    except DataError as exc:
        raise ExplainError(str(exc)) from exc
    if not docs:
        raise ExplainError(f"{path}: no documents")
    return docs


SHAP_SEED = 0


class ShapExplainer:
    """One Partition explainer per model; reusable across documents (numba compiles once)."""

    def __init__(self, model: LoadedModel, max_evals: int = DEFAULT_MAX_EVALS) -> None:
        import shap

        self.model = model
        self.max_evals = max_evals
        masker = shap.maskers.Text(WORD_SPLIT, mask_token="...", collapse_mask_token=True)  # noqa: S106
        self.explainer = shap.explainers.Partition(self._predict, masker, output_names=model.labels)

    def _predict(self, texts: npt.NDArray[Any]) -> npt.NDArray[np.float32]:
        return self.model.predict_proba_many([str(t) for t in texts])

    def explain(self, text: str, top_k: int = DEFAULT_TOP_K) -> tuple[dict[str, Any], str]:
        """(explanation fields, shap's HTML text plot) for the predicted label."""
        import shap

        label = self.model.predict(text).label
        k = self.model.labels.index(label)
        # shap's Partition explainer breaks ties in its evaluation budget with numpy's global RNG, so a
        # near-tie can change which words a run evaluates (measured: 1 run in 4 dropped a top term). A fixed
        # seed makes one text give one explanation; the caller's RNG state is put back afterwards.
        state = np.random.get_state()
        np.random.seed(SHAP_SEED)
        try:
            values = self.explainer([text], max_evals=self.max_evals, batch_size=50, silent=True)
        finally:
            np.random.set_state(state)
        one = values[0, :, k]
        weights: dict[str, float] = {}
        for token, value in zip(one.data, np.asarray(one.values, dtype=np.float64), strict=True):
            raw = str(token).strip()
            term = _EDGE_PUNCT.sub("", raw) or raw  # shap's word tokens carry the separators after them
            if term:
                weights[term] = weights.get(term, 0.0) + float(value)
        ranked = sorted(weights.items(), key=lambda tw: (-abs(tw[1]), tw[0]))[:top_k]
        html = shap.plots.text(one, display=False)
        fields = {
            "label": label,
            "base_value": float(np.asarray(one.base_values)),
            "top_terms": [TermWeight(term=t, weight=w) for t, w in ranked],
            "max_evals": self.max_evals,
        }
        return fields, str(html)


def _html_page(doc_id_html: str, model: LoadedModel, body: str) -> str:
    return (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>SHAP explanation {doc_id_html}</title></head><body>"
        f"<p>Model {model.name} {model.version}; SHAP Partition explainer, word-level text masker.</p>"
        f"{body}</body></html>"
    )


def explain_to_storage(
    model: LoadedModel,
    docs: Sequence[Document],
    storage: Storage,
    max_evals: int = DEFAULT_MAX_EVALS,
    force: bool = False,
    progress: bool = False,
    deadline: Callable[[], bool] | None = None,
    explainer: ShapExplainer | None = None,
) -> ExplainSummary:
    """Write `explanations/<model>/<doc_id>.json|.html`; skips documents this model version already did.

    `deadline()` returning True stops before the next document (a Lambda's remaining time); the doc ids
    not reached are returned as `pending` so the caller can run again (done ones are skipped).
    """
    import html as html_lib

    summary = ExplainSummary()
    shap_explainer = explainer
    iterator: Sequence[Document] = docs
    if progress:
        from tqdm.auto import tqdm

        iterator = tqdm(docs, desc=f"explain {model.name}", unit="doc")
    for i, doc in enumerate(iterator):
        if deadline is not None and deadline():
            summary.pending = [d.doc_id for d in docs[i:]]
            break
        json_key = explanation_key(model.name, doc.doc_id, "json")
        if not force and _already_done(storage, json_key, model.version):
            summary.skipped += 1
            continue
        if shap_explainer is None:
            shap_explainer = ShapExplainer(model, max_evals=max_evals)
        started = time.perf_counter()
        fields, plot = shap_explainer.explain(doc.text)
        html_key = explanation_key(model.name, doc.doc_id, "html")
        record = PrecomputedExplanation(
            doc_id=doc.doc_id, model=model.name, model_version=model.version, html_key=html_key, **fields
        )
        page = _html_page(html_lib.escape(doc.doc_id), model, plot)
        storage.write_bytes(html_key, page.encode("utf-8"), content_type="text/html; charset=utf-8")
        storage.write_bytes(json_key, (record.model_dump_json(indent=2) + "\n").encode(), "application/json")
        summary.written += 1
        summary.seconds.append(time.perf_counter() - started)
    return summary


def _already_done(storage: Storage, key: str, version: str) -> bool:
    try:
        if not storage.exists(key):
            return False
        existing = json.loads(storage.read_bytes(key))
    except (StorageError, json.JSONDecodeError):
        return False
    return isinstance(existing, dict) and existing.get("model_version") == version
