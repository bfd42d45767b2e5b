"""`dqp train`, `dqp evaluate`, `dqp explain`: model training, honest evaluation, batch SHAP.

Heavy imports (pandas, scikit-learn, torch, shap) happen inside the commands so `dqp --help` and the
other domains' commands stay fast.
"""

from __future__ import annotations

from pathlib import Path

import typer

from dq_platform.cli._errors import DEFAULT_MODELS, missing_models, no_models, refuse
from dq_platform.models.artifacts import MODEL_NAMES, TRANSFORMER

SAMPLE_CLAUSES = 800
DEFAULT_SAMPLE_OUT = DEFAULT_MODELS
DEFAULT_DOCUMENTS = ".local/dq/processed"  # what `dqp dq run` writes on its defaults
DEFAULT_ANALYTICS = ".local/analytics"


def _fail(message: str) -> typer.Exit:
    typer.secho(f"error: {message}", err=True, fg=typer.colors.RED)
    return typer.Exit(code=2)


def _require_local(path: str, option: str, default: str, provider: str) -> None:
    """A local input that does not exist is refused in one line naming the command that writes it."""
    if path.startswith("s3://") or Path(path).exists():
        return
    if path == default:
        raise refuse(f"nothing at {path} (it does not exist yet)", f"{provider}, or pass {option} PATH")
    raise refuse(f"nothing at {path} (no such file or folder)", f"check the path given to {option}")


def _models_option(value: str) -> tuple[str, ...]:
    names = tuple(v.strip() for v in value.split(",") if v.strip())
    unknown = [n for n in names if n not in MODEL_NAMES]
    if unknown or not names:
        raise typer.BadParameter(f"choose from {', '.join(MODEL_NAMES)} (comma-separated), got {value!r}")
    return names


def train(
    data: list[str] = typer.Option(
        [],
        "--data",
        help="Labelled data: clause CSV (text,label,source_doc; splits.csv beside it is used), DQ processed "
        "Parquet folder/prefix (text,label,doc_id) or JSON lines. Repeatable. PATH#split=train selects a split; "
        "PATH#same-docs-as=OTHER keeps another release of OTHER's documents, each with its namesake's split.",
    ),
    out: str = typer.Option(DEFAULT_SAMPLE_OUT, "--out", help="Model root: local folder or s3://bucket/prefix."),
    models: str = typer.Option(",".join(MODEL_NAMES), "--models", help="Comma-separated: baseline,transformer."),
    epochs: int | None = typer.Option(
        None, "--epochs", min=1, help="Fine-tuning epochs, best on validation kept (default 3; 2 with --sample)."
    ),
    max_length: int = typer.Option(128, "--max-length", min=8, max=512, help="Transformer max tokens."),
    batch_size: int = typer.Option(16, "--batch-size", min=1),
    learning_rate: float | None = typer.Option(
        None, "--lr", help="Peak learning rate (AdamW); default 1e-4 (MiniLM), 3e-4 (--sample), 1e-3 (--tiny)."
    ),
    class_weight: str = typer.Option(
        "none", "--class-weight", help="Fine-tuning loss weights: none, or balanced (inverse class frequency)."
    ),
    splits: str | None = typer.Option(None, "--splits", help="splits.csv (source_doc,split); default: beside data."),
    labels: str = typer.Option("HighRisk,LowRisk", "--labels", help="Allowed labels (comma-separated)."),
    positive_label: str = typer.Option("HighRisk", "--positive-label", help="Label whose F1 is tuned/reported."),
    seed: int = typer.Option(0, "--seed"),
    tiny: bool = typer.Option(False, "--tiny", help="Tiny random BERT instead of MiniLM (tests/CI only)."),
    base_model: str | None = typer.Option(None, "--base-model", help="HF model folder (default: MiniLM)."),
    threads: int | None = typer.Option(None, "--threads", min=1, help="torch threads for fine-tuning."),
    max_train_rows: int | None = typer.Option(None, "--max-train-rows", min=10, help="Subsample training."),
    sample: bool = typer.Option(
        False, "--sample", help=f"Train on {SAMPLE_CLAUSES} generated sample clauses (the always-there models)."
    ),
    sample_size: int = typer.Option(SAMPLE_CLAUSES, "--sample-size", min=50),
    keep_checkpoint: bool | None = typer.Option(
        None,
        "--keep-checkpoint/--no-checkpoint",
        help="Also save the torch checkpoint (benchmarks). Default: yes, except with --sample.",
    ),
    keep_fp32: bool | None = typer.Option(
        None,
        "--keep-fp32/--no-fp32",
        help="Keep model.fp32.onnx beside a published int8 model. Default: yes, except with --sample "
        "(the image needs only the served files).",
    ),
) -> None:
    """Train the baseline and/or the transformer, export ONNX, write artifacts + manifest to --out."""
    from dq_platform.models.data import DataError, load_dataset
    from dq_platform.models.train import TrainConfig
    from dq_platform.models.train import train as run_training

    label_set = tuple(v.strip() for v in labels.split(",") if v.strip())
    try:
        cfg = TrainConfig(
            models=_models_option(models),
            labels=label_set,
            positive_label=positive_label,
            seed=seed,
            epochs=epochs if epochs is not None else (2 if sample else 3),
            max_length=max_length,
            batch_size=batch_size,
            learning_rate=learning_rate if learning_rate is not None else (1e-3 if tiny else 3e-4 if sample else 1e-4),
            class_weight=class_weight,
            tiny=tiny,
            base_model=base_model,
            torch_threads=threads,
            max_train_rows=max_train_rows,
            keep_checkpoint=keep_checkpoint if keep_checkpoint is not None else not sample,
            keep_fp32=keep_fp32 if keep_fp32 is not None else not sample,
        )
    except ValueError as exc:
        raise _fail(str(exc)) from exc
    try:
        if sample:
            if data:
                raise _fail("--sample trains on generated clauses; drop --data")
            from dq_platform.models.sample import sample_dataset

            datasets = [sample_dataset(sample_size, seed=seed)]
        elif not data:
            raise refuse(
                "nothing to train on (no --data given)",
                "pass --data PATH (e.g. .local/dq/processed from `dqp dq run`, repeatable), "
                "or --sample to train on generated clauses",
            )
        else:
            datasets = [load_dataset(spec, labels=label_set, splits_path=splits) for spec in data]
        run_training(datasets, out, cfg, echo=typer.echo)
    except DataError as exc:
        raise _fail(str(exc)) from exc


def evaluate(
    models: str = typer.Option(DEFAULT_SAMPLE_OUT, "--models", help="Model root (local or s3://)."),
    data: list[str] = typer.Option(
        [],
        "--data",
        help="Labelled dataset to score, repeatable: PATH, PATH#split=test, or PATH#not-in=OTHER (documents "
        "whose name is absent from OTHER, e.g. 2021 companies not in 2019). `dqp sample clauses` writes one.",
    ),
    out: Path = typer.Option(Path("build/evaluation"), "--out", help="Folder for evaluation.json + PNG."),
    labels: str = typer.Option("HighRisk,LowRisk", "--labels"),
    positive_label: str = typer.Option("HighRisk", "--positive-label"),
    splits: str | None = typer.Option(None, "--splits", help="splits.csv; default: beside each data file."),
    record: bool = typer.Option(
        False,
        "--record",
        help="Also write each dataset's numbers into the models' manifests (metrics 'eval:<dataset>'), "
        "before `dqp publish`. Needs a local --models folder.",
    ),
) -> None:
    """HighRisk precision/recall/F1/PR-AUC + confusion matrix per dataset, next to a length-only baseline."""
    from dq_platform.models.artifacts import fetch_models
    from dq_platform.models.data import DataError, load_dataset
    from dq_platform.models.evaluate import EvaluationError, format_report, record_in_manifests, run_evaluation
    from dq_platform.storage import is_s3_uri

    if len(missing_models(models, MODEL_NAMES)) == len(MODEL_NAMES):
        raise no_models(models, MODEL_NAMES, "evaluate")
    if record and is_s3_uri(models):
        raise _fail("--record writes into the manifests of a local model folder; evaluate it before publishing")
    if not data:
        raise refuse(
            "nothing to evaluate on (no --data given)",
            "pass --data PATH, a labelled clause CSV (e.g. from `dqp sample clauses`) or a DQ processed folder",
        )
    label_set = tuple(v.strip() for v in labels.split(",") if v.strip())
    try:
        datasets = [load_dataset(spec, labels=label_set, splits_path=splits) for spec in data]
        report = run_evaluation(fetch_models(models), datasets, out, positive_label=positive_label)
    except (DataError, EvaluationError) as exc:
        raise _fail(str(exc)) from exc
    typer.echo(format_report(report))
    typer.echo(f"wrote {out / 'evaluation.json'} and {out / 'pr_curves.png'}")
    if record:
        for path in record_in_manifests(Path(models), report):
            typer.echo(f"recorded the evaluation in {path}")


def blend(
    models: str = typer.Option(DEFAULT_SAMPLE_OUT, "--models", help="Model root with baseline/ and transformer/."),
    validation: str = typer.Option(
        ..., "--validation", help="Where the blend is fit, e.g. PATH#split=validation (never test documents)."
    ),
    data: list[str] = typer.Option([], "--data", help="Datasets to score (as for `dqp evaluate`), repeatable."),
    out: Path = typer.Option(Path("build/evaluation/blend.json"), "--out", help="JSON report."),
    positive_label: str = typer.Option("HighRisk", "--positive-label"),
    splits: str | None = typer.Option(None, "--splits", help="splits.csv; default: beside each data file."),
) -> None:
    """Offline experiment: a logistic blend of baseline + transformer probabilities, fit on validation."""
    import json

    from dq_platform.models.artifacts import ArtifactError, fetch_models
    from dq_platform.models.blend import format_blend, run_blend
    from dq_platform.models.data import DataError, load_dataset
    from dq_platform.models.runtime import ModelLoadError

    if missing_models(models, MODEL_NAMES):
        raise no_models(models, MODEL_NAMES, "blend")
    if not data:
        raise refuse("nothing to score (no --data given)", "pass --data PATH#split=test (repeatable)")
    try:
        fit_on = load_dataset(validation, splits_path=splits)
        datasets = [load_dataset(spec, splits_path=splits) for spec in data]
        report = run_blend(fetch_models(models), fit_on, datasets, positive_label=positive_label)
    except (DataError, ArtifactError, ModelLoadError) as exc:
        raise _fail(getattr(exc, "reason", str(exc))) from exc
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    typer.echo(format_blend(report))
    typer.echo(f"wrote {out}")


def publish_models(
    models: str = typer.Option(..., "--models", help="Local model root written by `dqp train --out`."),
    to: str = typer.Option(
        ..., "--to", help="Destination: s3://bucket/prefix (versions + LATEST) or a local folder (served layout)."
    ),
    names: str = typer.Option(",".join(MODEL_NAMES), "--names", help="Comma-separated models to publish."),
    require_evaluation: bool = typer.Option(
        True,
        "--require-evaluation/--allow-unevaluated",
        help="Refuse a model whose manifest has no `dqp evaluate --record` numbers (default).",
    ),
) -> None:
    """Publish trained models so the image build or MODEL_S3_URI serves them instead of the sample models."""
    from dq_platform.models.artifacts import ArtifactError, publish, read_manifest
    from dq_platform.models.evaluate import RECORD_PREFIX

    chosen = _models_option(names)
    absent = missing_models(models, chosen)
    if absent:
        raise no_models(models, tuple(absent), "publish")
    try:
        manifests = {name: read_manifest(Path(models) / name) for name in chosen}
    except ArtifactError as exc:
        raise _fail(str(exc)) from exc
    for name, manifest in manifests.items():
        recorded = {k: v for k, v in manifest.metrics.items() if k.startswith(RECORD_PREFIX)}
        if require_evaluation and not recorded:
            raise _fail(
                f"{name} {manifest.version} has no recorded evaluation; run `dqp evaluate --models {models} "
                "--data ... --record` first (or pass --allow-unevaluated)"
            )
        where = publish(Path(models) / name, to)
        typer.echo(f"published {name} {manifest.version} -> {where}")
        for dataset, m in recorded.items():
            typer.echo(
                f"  {dataset[len(RECORD_PREFIX) :]}: F1 {m.get('f1', 0):.3f} PR-AUC {m.get('pr_auc', 0):.3f} "
                f"(length-only F1 {m.get('length_only_f1', 0):.3f}; n={int(m.get('n', 0))})"
            )


def explain(
    models: str = typer.Option(DEFAULT_SAMPLE_OUT, "--models", help="Model root (local or s3://)."),
    input_path: str = typer.Option(
        DEFAULT_DOCUMENTS,
        "--input",
        help="Documents: Parquet/CSV/JSONL file, folder or s3:// prefix with doc_id,text (default: what "
        "`dqp dq run` writes on its defaults).",
    ),
    out: str = typer.Option(
        DEFAULT_ANALYTICS, "--out", help="Analytics root (local or s3://): writes explanations/<model>/..."
    ),
    model: str = typer.Option(TRANSFORMER, "--model", help="Which model to explain."),
    max_evals: int = typer.Option(200, "--max-evals", min=10, help="SHAP model evaluations per document."),
    limit: int | None = typer.Option(None, "--limit", min=1, help="Explain at most this many documents."),
    force: bool = typer.Option(False, "--force", help="Recompute even if this model version explained it."),
) -> None:
    """Precompute SHAP (Partition explainer, text masker over the ONNX model) per doc_id: JSON + HTML."""
    from dq_platform.models.artifacts import fetch_models
    from dq_platform.models.explain import ExplainError, explain_to_storage, read_documents
    from dq_platform.models.runtime import ModelLoadError, load_model
    from dq_platform.storage import open_storage

    if model in MODEL_NAMES and missing_models(models, (model,)):
        raise no_models(models, (model,), "explain")
    _require_local(input_path, "--input", DEFAULT_DOCUMENTS, "write it with `dqp sample records` then `dqp dq run`")
    try:
        loaded = load_model(fetch_models(models, names=(model,)) / model)
        docs = read_documents(input_path)
    except (ModelLoadError, ExplainError) as exc:
        raise _fail(getattr(exc, "reason", str(exc))) from exc
    if limit is not None:
        docs = docs[:limit]
    summary = explain_to_storage(loaded, docs, open_storage(out), max_evals=max_evals, force=force, progress=True)
    typer.echo(
        f"explained {summary.written} document(s), skipped {summary.skipped} already explained by "
        f"{loaded.name} {loaded.version}; mean {summary.mean_seconds:.2f} s/doc -> {out}"
    )


def register(app: typer.Typer) -> None:
    """Adds `train`, `evaluate` and `explain` to the root `dqp` app."""
    app.command("train")(train)
    app.command("evaluate")(evaluate)
    app.command("explain")(explain)
    app.command("publish")(publish_models)
    app.command("blend")(blend)
