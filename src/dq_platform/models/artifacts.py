"""Model artifact layout and the manifest that `dqp train` writes and the API reads.

Kept free of torch/transformers/sklearn so the serving image can import it. Two layouts exist:
a *served* folder `MODEL_DIR/<model_name>/{manifest.json, files...}` (what `load_model` reads, what is baked
into the image) and a *published* S3 prefix `<prefix>/<model_name>/<version>/...` plus
`<prefix>/<model_name>/LATEST`, so a new version never overwrites the one being served.
"""

from __future__ import annotations

import hashlib
import json
import re
import tempfile
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

MANIFEST_FILE = "manifest.json"
LATEST_FILE = "LATEST"

BASELINE = "baseline"
TRANSFORMER = "transformer"
MODEL_NAMES: tuple[str, ...] = (BASELINE, TRANSFORMER)

KIND_TFIDF_LOGREG = "tfidf-logreg"
KIND_MINILM_ONNX = "minilm-onnx"

# File roles inside a model folder (manifest.files maps role -> file name).
ROLE_MODEL = "model"  # the ONNX graph that serving runs (int8 or fp32, see manifest.quantization)
ROLE_MODEL_FP32 = "model_fp32"  # fp32 graph kept next to a published int8 one (explanations, benchmarks)
ROLE_TOKENIZER = "tokenizer"  # tokenizers' tokenizer.json (transformer)
ROLE_LINEAR = "linear"  # vocabulary + idf + coefficients for exact linear contributions (baseline)
ROLE_CHECKPOINT = "checkpoint"  # torch checkpoint folder (training side only; never needed to serve)

# Roles the serving path needs; everything else may be left out of an image.
SERVING_ROLES: Mapping[str, tuple[str, ...]] = {
    KIND_TFIDF_LOGREG: (ROLE_MODEL, ROLE_LINEAR),
    KIND_MINILM_ONNX: (ROLE_MODEL, ROLE_TOKENIZER),
}

EXPLANATIONS_PREFIX = "explanations"

_VERSION_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


class ArtifactError(Exception):
    """A model folder or published prefix is missing or malformed; the message says which file."""


class Manifest(BaseModel):
    """What a model is, where it came from and how well it did; one per model folder."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    schema_version: int = 1
    name: str
    version: str
    created: datetime
    kind: Literal["tfidf-logreg", "minilm-onnx"]
    labels: list[str] = Field(min_length=2)
    # Binary models predict `positive_label` when its probability reaches `decision_threshold`
    # (tuned on validation documents); otherwise the arg-max label wins.
    positive_label: str | None = None
    decision_threshold: float | None = Field(default=None, gt=0.0, lt=1.0)
    training_data_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    metrics: dict[str, dict[str, float]] = Field(default_factory=dict)
    runtime: Literal["onnxruntime"] = "onnxruntime"
    quantization: Literal["int8", "fp32"] | None = None
    files: dict[str, str]
    max_length: int | None = Field(default=None, gt=0)
    extra: dict[str, Any] = Field(default_factory=dict)

    @field_validator("version")
    @classmethod
    def _version_is_a_path_segment(cls, value: str) -> str:
        if not _VERSION_RE.match(value):
            raise ValueError(f"version must be a safe path segment, got {value!r}")
        return value

    @field_validator("labels")
    @classmethod
    def _labels_unique(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError(f"labels must be unique, got {value}")
        return value

    @field_validator("files")
    @classmethod
    def _files_are_relative(cls, value: dict[str, str]) -> dict[str, str]:
        for role, name in value.items():
            if not name or name.startswith("/") or ".." in Path(name).parts:
                raise ValueError(f"file for role {role!r} must be a relative name in the folder: {name!r}")
        return value

    def to_json(self) -> str:
        return self.model_dump_json(indent=2) + "\n"

    def file(self, role: str) -> str:
        try:
            return self.files[role]
        except KeyError as exc:
            raise ArtifactError(f"manifest of {self.name!r} has no {role!r} file") from exc

    def serving_files(self) -> list[str]:
        """File names the API needs (plus manifest.json): what an image build should copy."""
        return [self.files[r] for r in SERVING_ROLES[self.kind] if r in self.files]


class TermWeight(BaseModel):
    term: str
    weight: float


class PrecomputedExplanation(BaseModel):
    """`explanations/<model>/<doc_id>.json` in the analytics bucket, written by the batch SHAP job."""

    model_config = ConfigDict(protected_namespaces=())

    doc_id: str
    model: str
    model_version: str
    type: str = "shap-partition"
    top_terms: list[TermWeight]
    html_key: str | None = None
    label: str | None = None
    base_value: float | None = None
    max_evals: int | None = None


def explanation_key(model_name: str, doc_id: str, ext: str = "json") -> str:
    """Key of a precomputed explanation; doc_id is percent-encoded so any id is one safe key segment."""
    return f"{EXPLANATIONS_PREFIX}/{model_name}/{quote(doc_id, safe='')}.{ext}"


def read_manifest(model_dir: Path) -> Manifest:
    path = model_dir / MANIFEST_FILE
    try:
        raw = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ArtifactError(f"{path} not found") from exc
    return parse_manifest(raw, source=str(path))


def parse_manifest(raw: str | bytes, source: str = MANIFEST_FILE) -> Manifest:
    try:
        return Manifest.model_validate_json(raw)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or '<root>'}: {e['msg']}" for e in exc.errors())
        raise ArtifactError(f"{source} is not a valid manifest: {problems}") from exc


def make_version(created: datetime, data_sha256: str) -> str:
    """Sortable by time, and two trainings on different data never share a version."""
    return f"{created.astimezone(UTC).strftime('%Y%m%dT%H%M%SZ')}-{data_sha256[:8]}"


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _folder_files(model_dir: Path) -> list[Path]:
    return sorted(p for p in model_dir.rglob("*") if p.is_file())


def publish(model_dir: Path, out_uri: str | Path) -> str:
    """Copy a served-layout model folder to `out_uri` and return where it went.

    Local destinations get the served layout (`<out>/<name>/...`) so `load_models(<out>)` works on them;
    `s3://` destinations get `<prefix>/<name>/<version>/...` and then `LATEST` (written last, so readers
    only ever see complete versions).
    """
    from dq_platform.storage import is_s3_uri, open_storage

    manifest = read_manifest(model_dir)
    out = str(out_uri)
    if is_s3_uri(out):
        base = f"{manifest.name}/{manifest.version}"
        storage = open_storage(out)
        for path in _folder_files(model_dir):
            storage.write_bytes(f"{base}/{path.relative_to(model_dir).as_posix()}", path.read_bytes())
        storage.write_bytes(f"{manifest.name}/{LATEST_FILE}", manifest.version.encode(), "text/plain")
        return storage.uri(base)
    dest = Path(out) / manifest.name
    if dest.resolve() == model_dir.resolve():
        return str(dest)
    storage = open_storage(dest)
    for old in storage.list():
        storage.delete(old)
    for path in _folder_files(model_dir):
        key = path.relative_to(model_dir).as_posix()
        storage.write_bytes(key, path.read_bytes())
        (dest / key).chmod(0o644)  # world-readable: the Lambda runtime user is not the image builder
    return str(dest)


def fetch_models(uri: str | Path, dest: Path | None = None, names: Iterable[str] = MODEL_NAMES) -> Path:
    """A local served-layout root for `uri`: a local folder as is, an `s3://` prefix downloaded (LATEST)."""
    from dq_platform.storage import StorageError, is_s3_uri, open_storage

    text = str(uri)
    if not is_s3_uri(text):
        return Path(text)
    root = dest or Path(tempfile.mkdtemp(prefix="dqp-models-"))
    storage = open_storage(text)
    for name in names:
        try:
            version = storage.read_bytes(f"{name}/{LATEST_FILE}").decode().strip()
        except StorageError:
            continue  # load_models reports the missing model by name
        prefix = f"{name}/{version}/"
        keys = storage.list(prefix)
        if not keys:
            raise ArtifactError(f"{storage.uri(name)}/LATEST points at {version!r}, which has no files")
        for key in keys:
            target = root / name / key[len(prefix) :]
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(storage.read_bytes(key))
    return root


def write_json(path: Path, payload: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n", encoding="utf-8")
