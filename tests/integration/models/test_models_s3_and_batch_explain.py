"""Training to an s3:// prefix, loading it back, and the batch explanation Lambda, on a moto server."""

from __future__ import annotations

import io
import json
import time
from pathlib import Path
from types import ModuleType

import boto3
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from dq_platform.cli import app
from dq_platform.inference.local_server import LocalLambdaContext
from dq_platform.models.artifacts import fetch_models
from dq_platform.models.runtime import load_models
from dq_platform.sample_data import generate_clauses, generate_records
from tests.support.aws import load_module

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[3]


def _context() -> LocalLambdaContext:
    return LocalLambdaContext(_deadline=time.monotonic() + 900)  # the function's 15-minute timeout


def _handler_module() -> ModuleType:
    return load_module("batch_explain_app", ROOT / "functions/batch_explain/app.py")


@pytest.fixture(scope="module")
def buckets(moto_endpoint: str) -> dict[str, str]:
    s3 = boto3.client("s3")
    names = {"processed": "test-processed", "analytics": "test-analytics"}
    for name in names.values():
        s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    return names


@pytest.fixture(scope="module")
def published(buckets: dict[str, str]) -> str:
    uri = f"s3://{buckets['analytics']}/models"
    result = CliRunner().invoke(
        app,
        [
            "train",
            "--sample",
            "--sample-size",
            "240",
            "--tiny",
            "--epochs",
            "1",
            "--max-length",
            "48",
            "--no-checkpoint",
            "--out",
            uri,
        ],
    )
    assert result.exit_code == 0, result.output
    return uri


def test_training_publishes_versioned_models_with_latest(
    published: str, buckets: dict[str, str], tmp_path: Path
) -> None:
    s3 = boto3.client("s3")
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=buckets["analytics"])["Contents"]]
    for name in ("baseline", "transformer"):
        latest = s3.get_object(Bucket=buckets["analytics"], Key=f"models/{name}/LATEST")["Body"].read().decode()
        assert f"models/{name}/{latest}/manifest.json" in keys
    root = fetch_models(published, dest=tmp_path / "models")
    loaded, errors = load_models(root)
    assert errors == {}
    assert loaded["baseline"].predict(generate_clauses(1, seed=3)[0]["text"]).label in {"HighRisk", "LowRisk"}


def test_batch_explain_handler_explains_processed_contracts(
    published: str, buckets: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    records = generate_records(3, seed=4, defect_rate=0.0)
    table = pa.table({"doc_id": [r["doc_id"] for r in records], "text": [r["text"] for r in records]})
    sink = io.BytesIO()
    pq.write_table(table, sink)
    key = "contracts/ingest_date=2026-01-01/part-0.parquet"
    boto3.client("s3").put_object(Bucket=buckets["processed"], Key=key, Body=sink.getvalue())
    monkeypatch.setenv("PROCESSED_BUCKET", buckets["processed"])
    monkeypatch.setenv("ANALYTICS_BUCKET", buckets["analytics"])
    monkeypatch.setenv("MAX_EVALS", "30")
    monkeypatch.setenv("MODEL_CACHE_DIR", str(tmp_path / "models"))
    module = _handler_module()
    module._settings.cache_clear()
    module._model.cache_clear()

    rejected = module.handler({"keys": ["raw/incoming/x.csv"]}, LocalLambdaContext())
    assert rejected["status"] == "rejected"
    assert "only objects under contracts/" in rejected["reason"]

    result = module.handler({"prefix": "contracts/ingest_date=2026-01-01/"}, _context())
    assert result["status"] == "complete"
    assert (result["documents"], result["written"], result["skipped"]) == (3, 3, 0)
    s3 = boto3.client("s3")
    for record in records:
        body = s3.get_object(Bucket=buckets["analytics"], Key=f"explanations/transformer/{record['doc_id']}.json")
        explanation = json.loads(body["Body"].read())
        assert explanation["doc_id"] == record["doc_id"]
        assert explanation["type"] == "shap-partition"
        assert explanation["model_version"] == result["model_version"]
        s3.head_object(Bucket=buckets["analytics"], Key=explanation["html_key"])
    again = module.handler([key], _context())
    assert (again["written"], again["skipped"]) == (0, 3)
