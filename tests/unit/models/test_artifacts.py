from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from dq_platform.models.artifacts import (
    ArtifactError,
    Manifest,
    explanation_key,
    fetch_models,
    make_version,
    parse_manifest,
    publish,
    read_manifest,
)

pytestmark = pytest.mark.unit

SHA = "ab" * 32


def manifest_dict(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "name": "baseline",
        "version": "20260101T000000Z-abababab",
        "created": "2026-01-01T00:00:00Z",
        "kind": "tfidf-logreg",
        "labels": ["HighRisk", "LowRisk"],
        "training_data_sha256": SHA,
        "files": {"model": "model.onnx", "linear": "linear.json"},
    }
    return {**base, **overrides}


def test_manifest_round_trip_keeps_every_field() -> None:
    m = Manifest.model_validate(
        manifest_dict(metrics={"test": {"f1": 0.8}}, quantization="int8", max_length=128, extra={"a": 1})
    )
    again = parse_manifest(m.to_json())
    assert again == m
    assert again.runtime == "onnxruntime"
    assert again.serving_files() == ["model.onnx", "linear.json"]


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"version": "../escape"}, "version"),
        ({"labels": ["HighRisk", "HighRisk"]}, "labels"),
        ({"labels": ["HighRisk"]}, "labels"),
        ({"files": {"model": "../model.onnx"}}, "files"),
        ({"training_data_sha256": "not-a-hash"}, "training_data_sha256"),
        ({"kind": "xgboost"}, "kind"),
        ({"decision_threshold": 1.5}, "decision_threshold"),
    ],
)
def test_invalid_manifest_names_the_field(overrides: dict[str, Any], field: str) -> None:
    with pytest.raises(ArtifactError, match=field):
        parse_manifest(json.dumps(manifest_dict(**overrides)), source="m.json")


def test_read_manifest_missing_names_the_path(tmp_path: Path) -> None:
    with pytest.raises(ArtifactError, match=r"manifest\.json not found"):
        read_manifest(tmp_path)


def test_version_sorts_by_time_and_carries_data_hash() -> None:
    early = make_version(datetime(2026, 1, 1, tzinfo=UTC), "1" * 64)
    late = make_version(datetime(2026, 1, 2, tzinfo=UTC), "0" * 64)
    assert early < late
    assert early.endswith("-11111111")


def test_explanation_key_encodes_any_doc_id() -> None:
    assert explanation_key("transformer", "doc-1") == "explanations/transformer/doc-1.json"
    assert explanation_key("baseline", "a/b c", "html") == "explanations/baseline/a%2Fb%20c.html"


def _model_folder(root: Path, version: str) -> Path:
    folder = root / "baseline"
    folder.mkdir(parents=True)
    (folder / "model.onnx").write_bytes(b"graph-" + version.encode())
    (folder / "linear.json").write_text("{}")
    (folder / "manifest.json").write_text(json.dumps(manifest_dict(version=version)))
    return folder


def test_publish_local_replaces_previous_files(tmp_path: Path) -> None:
    out = tmp_path / "out"
    publish(_model_folder(tmp_path / "v1", "v1"), out)
    (out / "baseline" / "stale.bin").write_bytes(b"old")
    publish(_model_folder(tmp_path / "v2", "v2"), out)
    assert sorted(p.name for p in (out / "baseline").iterdir()) == ["linear.json", "manifest.json", "model.onnx"]
    assert read_manifest(out / "baseline").version == "v2"
    assert fetch_models(out) == out
