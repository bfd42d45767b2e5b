"""The release path on tiny models: train on the shipped real slice, record the evaluation in the
manifests, publish to an s3:// prefix on a moto server, and serve/evaluate what was published."""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import pytest
from typer.testing import CliRunner

from dq_platform.cli import app
from dq_platform.models.artifacts import fetch_models, read_manifest
from dq_platform.models.real_slice import SLICE_PATH
from dq_platform.models.runtime import load_models

pytestmark = pytest.mark.integration

runner = CliRunner()
TEST_SPEC = f"{SLICE_PATH}#split=test"
DATASET = "claudette2019_slice[test]"


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("release") / "models"
    args = ["train", "--data", str(SLICE_PATH), "--out", str(out), "--tiny", "--epochs", "1"]
    result = runner.invoke(app, [*args, "--max-length", "48", "--no-checkpoint"])
    assert result.exit_code == 0, result.output
    return out


def test_publish_refuses_models_without_a_recorded_evaluation(trained: Path, tmp_path: Path) -> None:
    result = runner.invoke(app, ["publish", "--models", str(trained), "--to", str(tmp_path / "pub")])
    assert result.exit_code == 2
    assert "has no recorded evaluation" in result.output
    assert "dqp evaluate" in result.output
    assert not (tmp_path / "pub").exists()


def test_record_then_publish_to_s3_serves_the_evaluated_models(
    trained: Path, moto_endpoint: str, tmp_path: Path
) -> None:
    boto3.client("s3").create_bucket(
        Bucket="release-models", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"}
    )
    uri = "s3://release-models/models"
    result = runner.invoke(
        app,
        ["evaluate", "--models", str(trained), "--data", TEST_SPEC, "--out", str(tmp_path / "eval"), "--record"],
    )
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "eval" / "evaluation.json").read_text())
    for name in ("baseline", "transformer"):
        recorded = read_manifest(trained / name).metrics[f"eval:{DATASET}"]
        measured = report["datasets"][DATASET]["results"][name]
        assert recorded["f1"] == pytest.approx(measured["f1"])
        assert recorded["pr_auc"] == pytest.approx(measured["pr_auc"])
        assert recorded["n"] == 491
        assert recorded["length_only_f1"] == pytest.approx(report["datasets"][DATASET]["results"]["length-only"]["f1"])

    result = runner.invoke(app, ["publish", "--models", str(trained), "--to", uri])
    assert result.exit_code == 0, result.output
    assert f"{DATASET}: F1 " in result.output

    s3 = boto3.client("s3")
    for name in ("baseline", "transformer"):
        version = read_manifest(trained / name).version
        latest = s3.get_object(Bucket="release-models", Key=f"models/{name}/LATEST")["Body"].read().decode()
        assert latest == version
    # What the image build or MODEL_S3_URI reads: LATEST of each model, with the evaluation in its manifest.
    root = fetch_models(uri, dest=tmp_path / "served")
    loaded, errors = load_models(root)
    assert errors == {}
    assert set(loaded) == {"baseline", "transformer"}
    for model in loaded.values():
        assert f"eval:{DATASET}" in model.manifest.metrics
    result = runner.invoke(app, ["evaluate", "--models", uri, "--data", TEST_SPEC, "--out", str(tmp_path / "eval-s3")])
    assert result.exit_code == 0, result.output
    again = json.loads((tmp_path / "eval-s3" / "evaluation.json").read_text())
    for name in ("baseline", "transformer"):
        assert again["datasets"][DATASET]["results"][name]["f1"] == pytest.approx(
            report["datasets"][DATASET]["results"][name]["f1"]
        )


def test_record_refuses_an_s3_models_root(tmp_path: Path) -> None:
    result = runner.invoke(
        app,
        ["evaluate", "--models", "s3://nowhere/models", "--data", TEST_SPEC, "--out", str(tmp_path), "--record"],
    )
    assert result.exit_code == 2
    assert "--record writes into the manifests of a local model folder" in result.output
