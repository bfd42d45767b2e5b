"""Generated files stay in step with the code: docs/openapi.json, events/, the hook's copy of events/."""

from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType

import pytest

from dq_platform.inference.events import EXPECTED_STATUS, sample_events, stale_events
from dq_platform.inference.openapi import build_openapi, openapi_is_current
from tests.support.aws import load_module
from tests.unit.inference.support import ROOT

pytestmark = pytest.mark.unit
HOOK_DIR = ROOT / "functions" / "codedeploy_hook"


def _hook_module() -> ModuleType:
    return load_module("codedeploy_hook_app", HOOK_DIR / "app.py")


def test_openapi_document_has_no_drift() -> None:
    assert openapi_is_current(ROOT / "docs" / "openapi.json"), "docs/openapi.json is stale: run `dqp openapi`"


def test_openapi_documents_the_seed_contract() -> None:
    doc = json.loads(build_openapi())
    assert set(doc["paths"]) == {"/health", "/models", "/predict"}
    schemas = doc["components"]["schemas"]
    request = schemas["PredictRequest"]
    assert set(request["properties"]) == {"text", "model", "explain", "explain_detail", "doc_id"}
    assert request["required"] == ["text"]
    assert request["properties"]["text"]["maxLength"] == 20_000
    assert request["properties"]["model"]["enum"] == ["auto", "baseline", "transformer"]
    assert request["properties"]["model"]["default"] == "auto"
    response = schemas["PredictResponse"]
    assert set(response["properties"]) == {"model", "label", "confidence", "explanation", "timings_ms"}
    assert set(schemas["Timings"]["properties"]) == {"pre", "infer", "post"}
    assert set(schemas["ExplanationOut"]["properties"]) == {"type", "top_terms", "html_url"}
    assert schemas["ExplanationOut"]["properties"]["top_terms"]["items"] == {"type": "string"}
    assert set(schemas["DetailedExplanationOut"]["properties"]) == {"type", "top_terms", "html_url", "detail"}
    assert set(doc["paths"]["/predict"]["post"]["responses"]) >= {"200", "400", "413", "422", "500", "503"}


def test_events_have_no_drift() -> None:
    assert stale_events(ROOT / "events", HOOK_DIR / "events") == [], "run `dqp events`"


def test_events_are_api_gateway_proxy_events_with_plain_bodies() -> None:
    for name, event in sample_events().items():
        assert event["isBase64Encoded"] is False
        assert event["requestContext"]["requestId"]
        if name.startswith("predict-"):
            assert event["httpMethod"] == "POST"
            json.loads(event["body"])  # plain JSON, not base64


def test_hook_expectations_match_the_events() -> None:
    assert _hook_module().EXPECTED_STATUS == EXPECTED_STATUS


def test_template_edge_model_matches_the_handler_limits() -> None:
    from dq_platform.inference.schemas import DOC_ID_PATTERN
    from tests.infra.cfn import load_template

    api = load_template("stacks/inference.yaml")["Resources"]["InferenceApi"]["Properties"]
    edge = api["DefinitionBody"]["components"]["schemas"]["PredictRequest"]
    handler = json.loads(build_openapi())["components"]["schemas"]["PredictRequest"]
    assert edge["properties"]["text"]["maxLength"] == handler["properties"]["text"]["maxLength"]
    assert edge["properties"]["model"]["enum"] == handler["properties"]["model"]["enum"]
    assert edge["properties"]["doc_id"]["pattern"] == DOC_ID_PATTERN
    assert set(edge["properties"]) == set(handler["properties"])


def test_check_commands_pass_on_the_committed_files(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from dq_platform.cli import app

    monkeypatch.chdir(ROOT)
    runner = CliRunner()
    assert runner.invoke(app, ["openapi", "--check"]).exit_code == 0
    assert runner.invoke(app, ["events", "--check"]).exit_code == 0
    stale = tmp_path / "openapi.json"
    stale.write_text("{}", encoding="utf-8")
    result = runner.invoke(app, ["openapi", "--check", "--out", str(stale)])
    assert result.exit_code == 1
    assert "dqp openapi" in result.output
