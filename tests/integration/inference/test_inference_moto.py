"""SSM (A/B weights, model versions) and S3 (model override, precomputed SHAP) on a moto server."""

from __future__ import annotations

import json
import time
import urllib.parse
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import boto3
import pytest

from dq_platform.models.artifacts import publish, read_manifest
from tests.unit.inference.support import build_handler, invoke, load_event, predict_event

pytestmark = pytest.mark.integration


def _param(name: str, value: Any) -> None:
    boto3.client("ssm").put_parameter(Name=name, Value=json.dumps(value), Type="String", Overwrite=True)


def _auto_models(handler: Any, n: int = 12) -> set[str]:
    text = {"text": "Either party may terminate on notice.", "model": "auto"}
    return {invoke(handler, predict_event(text, request_id=f"r-{uuid.uuid4()}"))[1]["model"] for _ in range(n)}


def test_weights_change_is_picked_up_after_the_ttl_without_restart(aws: str, models_root: Path) -> None:
    name = f"/enterprise/test-{uuid.uuid4().hex[:6]}/ab-weights"
    _param(name, {"baseline": 0.0, "transformer": 1.0})
    handler, _ = build_handler(model_dir=models_root, ab_weights_param=name, config_ttl_s=1)
    assert _auto_models(handler) == {"transformer"}
    _, models = invoke(handler, load_event("models.json"))
    assert models["ab_weights"] == {"baseline": 0.0, "transformer": 1.0, "shadow_rate": 0.0, "source": name}

    _param(name, {"baseline": 1.0, "transformer": 0.0, "shadow_rate": 0.0})
    assert _auto_models(handler) == {"transformer"}  # cached within the TTL
    time.sleep(1.2)
    assert _auto_models(handler) == {"baseline"}  # same warm handler, new weights


def test_missing_then_created_parameter(aws: str, models_root: Path) -> None:
    name = f"/enterprise/test-{uuid.uuid4().hex[:6]}/ab-weights"
    handler, _ = build_handler(model_dir=models_root, ab_weights_param=name, config_ttl_s=1)
    _, models = invoke(handler, load_event("models.json"))
    assert models["ab_weights"]["source"] == "default"
    assert (models["ab_weights"]["baseline"], models["ab_weights"]["transformer"]) == (0.9, 0.1)
    _param(name, {"baseline": 0.0, "transformer": 1.0})
    time.sleep(1.2)
    assert _auto_models(handler) == {"transformer"}


def test_invalid_parameter_keeps_the_last_good_weights(aws: str, models_root: Path) -> None:
    name = f"/enterprise/test-{uuid.uuid4().hex[:6]}/ab-weights"
    _param(name, {"baseline": 0.0, "transformer": 1.0})
    handler, _ = build_handler(model_dir=models_root, ab_weights_param=name, config_ttl_s=1)
    assert _auto_models(handler) == {"transformer"}
    boto3.client("ssm").put_parameter(Name=name, Value='{"baseline": -5}', Type="String", Overwrite=True)
    time.sleep(1.2)
    assert _auto_models(handler) == {"transformer"}
    _, models = invoke(handler, load_event("models.json"))
    assert models["ab_weights"]["source"] == "last-good"


def test_model_versions_parameter_flags_a_mismatch(aws: str, models_root: Path) -> None:
    name = f"/enterprise/test-{uuid.uuid4().hex[:6]}/model-versions"
    served = read_manifest(models_root / "baseline").version
    _param(name, {"baseline": served, "transformer": "some-other-version"})
    handler, _ = build_handler(model_dir=models_root, model_versions_param=name)
    _, health = invoke(handler, load_event("health.json"))
    assert health["status"] == "degraded"
    assert health["degraded_reasons"] == [
        f"transformer: serving version {read_manifest(models_root / 'transformer').version}, "
        "deployment expects some-other-version"
    ]


def test_models_from_the_s3_override(aws: str, models_root: Path, tmp_path: Path) -> None:
    bucket = f"analytics-{uuid.uuid4().hex[:8]}"
    boto3.client("s3").create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    for name in ("baseline", "transformer"):
        publish(models_root / name, f"s3://{bucket}/models")
    handler, service = build_handler(
        model_dir=tmp_path / "baked-but-empty", model_s3_uri=f"s3://{bucket}/models", model_cache_dir=tmp_path / "cache"
    )
    _, health = invoke(handler, load_event("health.json"))
    assert health["status"] == "ok", health
    assert health["models_loaded"]["transformer"] == read_manifest(models_root / "transformer").version
    assert service.model_root == tmp_path / "cache"
    status, body = invoke(handler, load_event("predict-transformer.json"))
    local, _ = build_handler(model_dir=models_root)
    assert status == 200
    assert body["label"] == invoke(local, load_event("predict-transformer.json"))[1]["label"]


def test_unreachable_s3_override_degrades(aws: str, tmp_path: Path) -> None:
    handler, _ = build_handler(
        model_dir=tmp_path / "none", model_s3_uri="s3://no-such-bucket-here/models", model_cache_dir=tmp_path / "c"
    )
    _, health = invoke(handler, load_event("health.json"))
    assert health["status"] == "degraded"
    assert any("no-such-bucket-here" in reason for reason in health["degraded_reasons"])
    status, _body = invoke(handler, load_event("predict-auto.json"))
    assert status == 503


def test_precomputed_shap_from_s3_with_a_short_lived_presigned_link(aws: str, models_root: Path) -> None:
    bucket = f"analytics-{uuid.uuid4().hex[:8]}"
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    version = read_manifest(models_root / "transformer").version
    record = {
        "doc_id": "DOC-9",
        "model": "transformer",
        "model_version": version,
        "type": "shap-partition",
        "top_terms": [{"term": "indemnify", "weight": 0.5}],
        "html_key": "explanations/transformer/DOC-9.html",
    }
    s3.put_object(Bucket=bucket, Key="explanations/transformer/DOC-9.json", Body=json.dumps(record).encode())
    s3.put_object(Bucket=bucket, Key="explanations/transformer/DOC-9.html", Body=b"<div>shap text plot</div>")
    handler, _ = build_handler(model_dir=models_root, analytics_bucket=bucket)
    payload = {
        "text": "The client shall indemnify us.",
        "model": "transformer",
        "explain": True,
        "explain_detail": True,
        "doc_id": "DOC-9",
    }
    status, body = invoke(handler, predict_event(payload))
    assert status == 200
    explanation = body["explanation"]
    assert explanation["detail"]["method"] == "shap-partition"
    assert explanation["detail"]["terms"] == [{"term": "indemnify", "weight": 0.5}]
    assert explanation["top_terms"] == ["indemnify"]
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(explanation["html_url"]).query)
    assert int(query["X-Amz-Expires"][0]) <= 900
    assert query["X-Amz-Algorithm"] == ["AWS4-HMAC-SHA256"]
    with urllib.request.urlopen(explanation["html_url"], timeout=10) as resp:  # the link really opens
        assert resp.read() == b"<div>shap text plot</div>"
    # without a precomputed one, the API computes a bounded explanation instead
    payload["doc_id"] = "DOC-none"
    assert invoke(handler, predict_event(payload))[1]["explanation"]["detail"]["method"] == "occlusion"
