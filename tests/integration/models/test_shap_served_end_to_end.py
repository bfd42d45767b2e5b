"""SHAP end to end (issue 20, item 5): processed output -> batch explanation -> API -> pre-signed HTML.

On one moto server, in the order AWS runs it: the data-quality run's processed Parquet lands under the
processed bucket's `contracts/`, the batch explanation function (functions/batch_explain) explains it with
the published transformer into the analytics bucket, and the API, loading the same published models from
S3 at cold start like the deployed function, answers `POST /predict` for an explained `doc_id` with the
stored SHAP terms and a pre-signed link, which downloads the HTML plot.

The API takes `doc_id` in the POST body (docs/api.md): there is no GET form of /predict.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from dq_platform.cli import app
from dq_platform.inference.local_server import LocalLambdaContext, make_server
from dq_platform.models.artifacts import MODEL_NAMES, publish, read_manifest
from tests.support.aws import load_module, serving
from tests.unit.inference.support import build_handler, sample_models

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[3]
PROCESSED, ANALYTICS = "e2e-processed", "e2e-analytics"
EXPLAINED = 3  # documents the batch job explains (MAX_EVALS 30: ~1-2 s each over ONNX)


@pytest.fixture(scope="module")
def pipeline(moto_endpoint: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Processed output of a real DQ run in the processed bucket, models published, the batch job run."""
    work = tmp_path_factory.mktemp("shap-e2e")
    s3 = boto3.client("s3")
    for bucket in (PROCESSED, ANALYTICS):
        s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})

    # 1. the data-quality run (DuckDB, the same ruleset the Glue job runs) writes processed Parquet ...
    raw = work / "raw" / "incoming"
    cli = CliRunner()
    result = cli.invoke(app, ["sample", "records", "--out", str(raw / "batch.csv"), "--rows", "12", "--seed", "5"])
    assert result.exit_code == 0, result.output
    dq_out = work / "dq"
    args = ["dq", "run", "--ruleset", str(ROOT / "glue/rulesets/contracts.dqdl"), "--input", str(raw)]
    result = cli.invoke(app, [*args, "--output", str(dq_out), "--engine", "duckdb"])
    assert result.exit_code == 0, result.output
    parts = sorted((dq_out / "processed").rglob("*.parquet"))
    assert parts, "the DQ run promoted no rows"
    # ... which the Glue job puts under the processed bucket's contracts/ (what EventBridge and the batch
    # job read), keeping its ingest_date= partitions.
    for part in parts:
        key = "contracts/" + part.relative_to(dq_out / "processed").as_posix()
        s3.put_object(Bucket=PROCESSED, Key=key, Body=part.read_bytes())
    processed_docs = [row for part in parts for row in pq.read_table(part, columns=["doc_id", "text"]).to_pylist()]

    # 2. `make deploy` publishes the models: models/<name>/<version>/ and LATEST.
    models = sample_models()
    for name in MODEL_NAMES:
        publish(models / name, f"s3://{ANALYTICS}/models")
    # Only the first documents' object: the job explains what it is given, and a few keep this test short.
    first = parts[0]
    first_key = "contracts/" + first.relative_to(dq_out / "processed").as_posix()
    docs_in_first = pq.read_table(first, columns=["doc_id", "text"]).to_pylist()
    if len(docs_in_first) > EXPLAINED:
        small = work / "small.parquet"
        pq.write_table(pq.read_table(first).slice(0, EXPLAINED), small)
        first_key = first_key.replace(".parquet", "-first.parquet")
        s3.put_object(Bucket=PROCESSED, Key=first_key, Body=small.read_bytes())
        docs_in_first = docs_in_first[:EXPLAINED]

    # 3. the batch explanation function, as the state machine invokes it after a promoting run.
    env = {
        "PROCESSED_BUCKET": PROCESSED,
        "ANALYTICS_BUCKET": ANALYTICS,
        "MAX_EVALS": "30",
        "MODEL_CACHE_DIR": str(work / "batch-models"),
    }
    with pytest.MonkeyPatch.context() as mp:
        for name, value in env.items():
            mp.setenv(name, value)
        module = load_module("batch_explain_e2e", ROOT / "functions/batch_explain/app.py")
        module._settings.cache_clear()
        module._model.cache_clear()
        summary = module.handler({"keys": [first_key]}, LocalLambdaContext(_deadline=time.monotonic() + 900))
    return {
        "summary": summary,
        "explained": docs_in_first,
        "processed": processed_docs,
        "transformer_version": read_manifest(models / "transformer").version,
        "work": work,
    }


@pytest.fixture(scope="module")
def api(pipeline: dict[str, Any]) -> Iterator[str]:
    """The API as deployed: no baked models, MODEL_S3_URI and ANALYTICS_BUCKET set, behind a local port."""
    empty = pipeline["work"] / "no-baked-models"
    empty.mkdir()
    handler, _ = build_handler(
        model_s3_uri=f"s3://{ANALYTICS}/models", model_dir=empty, analytics_bucket=ANALYTICS, analytics_dir=None
    )
    with serving(make_server(handler, port=0)) as url:
        yield url


def _post(url: str, payload: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    req = urllib.request.Request(
        url, data=json.dumps(payload).encode(), method="POST", headers={"content-type": "application/json"}
    )
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"{}")


def test_the_batch_job_explained_the_processed_documents(pipeline: dict[str, Any]) -> None:
    summary = pipeline["summary"]
    assert summary["status"] == "complete", summary
    assert (summary["documents"], summary["written"]) == (len(pipeline["explained"]), len(pipeline["explained"]))
    assert summary["model_version"] == pipeline["transformer_version"]
    assert {d["doc_id"] for d in pipeline["explained"]} <= {d["doc_id"] for d in pipeline["processed"]}


def test_the_api_serves_the_stored_shap_explanation_and_its_html(pipeline: dict[str, Any], api: str) -> None:
    s3 = boto3.client("s3")
    for doc in pipeline["explained"]:
        status, body = _post(
            f"{api}/predict",
            {
                "text": doc["text"],
                "model": "transformer",
                "explain": True,
                "explain_detail": True,
                "doc_id": doc["doc_id"],
            },
        )
        assert status == 200, body
        assert body["model"] == "transformer"
        explanation = body["explanation"]
        assert explanation["detail"]["method"] == "shap-partition", explanation
        stored = json.loads(
            s3.get_object(Bucket=ANALYTICS, Key=f"explanations/transformer/{doc['doc_id']}.json")["Body"].read()
        )
        assert explanation["top_terms"] == [t["term"] for t in stored["top_terms"]][: len(explanation["top_terms"])]
        # A pre-signed GET of the batch job's HTML: SigV4 query parameters, a short expiry, this object only.
        url = explanation["html_url"]
        parsed = urllib.parse.urlsplit(url)
        query = urllib.parse.parse_qs(parsed.query)
        assert query["X-Amz-Algorithm"] == ["AWS4-HMAC-SHA256"]
        assert int(query["X-Amz-Expires"][0]) <= 900
        assert parsed.path.endswith(f"/explanations/transformer/{doc['doc_id']}.html")
        with urllib.request.urlopen(url, timeout=30) as resp:
            assert resp.status == 200
            html = resp.read().decode("utf-8")
        assert "<html" in html.lower()
        assert doc["doc_id"] in html


def test_a_document_never_explained_gets_no_shap_link(pipeline: dict[str, Any], api: str) -> None:
    explained = {d["doc_id"] for d in pipeline["explained"]}
    other = next((d for d in pipeline["processed"] if d["doc_id"] not in explained), None)
    doc = other or {"doc_id": "NEVER-EXPLAINED-1", "text": pipeline["explained"][0]["text"]}
    status, body = _post(
        f"{api}/predict",
        {"text": doc["text"], "model": "transformer", "explain": True, "explain_detail": True, "doc_id": doc["doc_id"]},
    )
    assert status == 200, body
    assert body["explanation"]["detail"]["method"] != "shap-partition"
    assert body["explanation"].get("html_url") is None
