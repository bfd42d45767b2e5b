"""`sam local invoke STACK/FUNCTION -e events/<file>` for every file in events/, on the built application.

`sam local invoke` exits 0 even when the handler raised, so every case asserts on the function's result:
status code, body, the model that answered and its label, which must equal what the same sample model
predicts in-process (the image serves exactly the models in build/models). Each event is sent to the
function whose template serves the event's route, so an event and the API it targets cannot drift apart.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from tests.e2e import samlocal

pytestmark = pytest.mark.e2e

EVENT_FILES = sorted(samlocal.EVENTS.glob("*.json"))
Check = Callable[[samlocal.InvokeResult, dict[str, Any], dict[str, Any]], None]


def _request(event: dict[str, Any]) -> dict[str, Any]:
    body = json.loads(event["body"])
    assert isinstance(body, dict)
    return body


def _assert_no_text_in_logs(result: samlocal.InvokeResult, event: dict[str, Any]) -> None:
    """The handler logs a sha256 of the text, never the text (checked in the real container's output)."""
    text = _request(event).get("text")
    if not text:
        return
    assert text not in result.stderr, "request text leaked into the function's logs"
    lines = [line for line in result.stderr.splitlines() if line.startswith("{") and '"prediction"' in line]
    records = [json.loads(line) for line in lines]
    assert any(r.get("message") == "prediction" for r in records), f"no 'prediction' record:\n{result.stderr[-3000:]}"
    digest = hashlib.sha256(text.encode()).hexdigest()
    assert any(r.get("text_sha256") == digest for r in records), "prediction record without the text's sha256"


def check_health(result: samlocal.InvokeResult, event: dict[str, Any], models: dict[str, Any]) -> None:
    assert result.payload["statusCode"] == 200, result.payload
    body = result.body
    assert body["status"] == "ok", body
    assert body["models_loaded"] == {name: m.version for name, m in models.items()}
    assert body["degraded_reasons"] == []


def check_models(result: samlocal.InvokeResult, event: dict[str, Any], models: dict[str, Any]) -> None:
    assert result.payload["statusCode"] == 200, result.payload
    body = result.body
    served = {m["name"]: m for m in body["models"]}
    assert set(served) == set(models)
    for name, info in served.items():
        assert info["loaded"] is True, info
        assert info["version"] == models[name].version
        assert info["labels"] == list(models[name].manifest.labels)
    weights = body["ab_weights"]
    assert weights["baseline"] + weights["transformer"] > 0


def _check_prediction(
    result: samlocal.InvokeResult, event: dict[str, Any], models: dict[str, Any], expected_model: str | None = None
) -> None:
    assert result.payload["statusCode"] == 200, result.payload
    request, body = _request(event), result.body
    if request.get("model", "auto") == "auto":
        assert body["model"] in models
    else:
        assert body["model"] == request["model"]
    if expected_model is not None:  # the file name says which model the event is for
        assert body["model"] == expected_model, f"asked {request.get('model')!r}, answered by {body['model']!r}"
    expected = models[body["model"]].predict(request["text"])
    assert body["label"] == expected.label
    assert body["confidence"] == pytest.approx(expected.confidence, abs=1e-4)
    assert set(body["timings_ms"]) == {"pre", "infer", "post"}
    if request.get("explain"):
        explanation = body["explanation"]
        # The seed's shape: type "tokens", the words, a link or null (detail only with explain_detail).
        assert set(explanation) == {"type", "top_terms", "html_url"}, explanation
        assert explanation["type"] == "tokens"
        assert explanation["top_terms"], explanation
        assert all(isinstance(term, str) for term in explanation["top_terms"])
    else:
        assert body.get("explanation") is None
    headers = result.payload.get("multiValueHeaders") or {}
    assert headers.get("X-Model") == [body["model"]], headers
    _assert_no_text_in_logs(result, event)


def check_predict_auto(result: samlocal.InvokeResult, event: dict[str, Any], models: dict[str, Any]) -> None:
    from dq_platform.inference.ab import DEFAULT_WEIGHTS, assign

    _check_prediction(result, event, models)
    # No SSM here (no credentials): the default 90/10 weights apply, sticky on doc_id.
    assert result.body["model"] == assign(_request(event)["doc_id"], DEFAULT_WEIGHTS)


def check_invalid(result: samlocal.InvokeResult, event: dict[str, Any], models: dict[str, Any]) -> None:
    status = result.payload["statusCode"]
    assert 400 <= status < 500, result.payload
    body = result.body
    assert status == 422, body
    assert body["error"] == "validation_error"
    request = _request(event)
    bad_fields = {d["loc"][-1] for d in body["details"]}
    # This event carries an empty text and a model name that does not exist: both must be named.
    assert {"text", "model"} <= bad_fields, body
    assert "text" in body["message"]
    assert "model" in body["message"]
    assert all(str(v) not in json.dumps(body["details"]) for v in request.values() if v), "error echoes the input"


def check_dq_results(result: samlocal.InvokeResult, event: dict[str, Any], models: dict[str, Any]) -> None:
    """The DQ step after the Glue run: a zip function on the domain layer, invoked as the state machine does.

    No S3 is reachable from `sam local` here and the template declares no endpoint override, so the
    furthest a valid request can get is the S3 GET of its own results_uri. Getting there proves the
    layer (dq_platform, Powertools, pydantic in /opt/python) imports in the Lambda runtime, the event
    passes the handler's schema and the settings were read; a broken layer, a wrong event or a wrong
    bucket fails earlier with another error.
    """
    payload = result.payload
    assert payload.get("errorType") == "EndpointConnectionError", payload
    bucket, key = event["results_uri"].removeprefix("s3://").split("/", 1)
    assert bucket in payload["errorMessage"], payload
    assert key in payload["errorMessage"], payload


def _results_bucket(event: dict[str, Any]) -> dict[str, dict[str, str]]:
    # The template's RESULTS_BUCKET comes from the foundation stack, which `sam local` cannot resolve:
    # point it at the event's bucket, as a user would with `sam local invoke --env-vars`.
    bucket = event["results_uri"].removeprefix("s3://").split("/", 1)[0]
    return {"DqResultsFunction": {"RESULTS_BUCKET": bucket}}


@dataclass(frozen=True)
class Case:
    check: Check
    # None: the function whose template serves the event's API route (GET /health, POST /predict, ...).
    function: str | None = None
    env_vars: Callable[[dict[str, Any]], dict[str, dict[str, str]]] | None = None


CASES: dict[str, Case] = {
    "health.json": Case(check_health),
    "models.json": Case(check_models),
    "predict-baseline.json": Case(partial(_check_prediction, expected_model="baseline")),
    "predict-transformer.json": Case(partial(_check_prediction, expected_model="transformer")),
    "predict-auto.json": Case(check_predict_auto),
    "predict-invalid.json": Case(check_invalid),
    "dq_results_request.json": Case(check_dq_results, "DataQuality/DqResultsFunction", _results_bucket),
}


def test_every_event_has_an_e2e_case() -> None:
    uncovered = sorted(p.name for p in EVENT_FILES if p.name not in CASES)
    assert not uncovered, f"events without an e2e case (add one to CASES in {Path(__file__).name}): {uncovered}"
    assert EVENT_FILES, "events/ is empty"


def _target(event_file: Path, event: dict[str, Any], case: Case) -> str:
    if case.function is not None:
        functions = samlocal.all_functions()
        assert case.function in functions, f"no function {case.function}; the application has {sorted(functions)}"
        return case.function
    routes = samlocal.functions_by_route()
    route = (str(event.get("httpMethod", "")).upper(), str(event.get("resource", "")))
    assert route in routes, f"events/{event_file.name}: no function serves {route}; routes: {sorted(routes)}"
    return routes[route]


@pytest.mark.parametrize("event_file", EVENT_FILES, ids=[p.name for p in EVENT_FILES])
def test_sam_local_invoke(
    event_file: Path,
    sam_app: Path,
    docker_network: str,
    local_models: dict[str, Any],
    timings: samlocal.Timings,
) -> None:
    case = CASES.get(event_file.name)
    if case is None:
        pytest.fail(f"no e2e case for events/{event_file.name}")
    event = json.loads(event_file.read_text(encoding="utf-8"))
    function = _target(event_file, event, case)
    env_vars = case.env_vars(event) if case.env_vars else None

    with timings.step(f"sam local invoke -e events/{event_file.name}"):
        result = samlocal.invoke(function, event_file, docker_network, env_vars=env_vars)

    assert result.returncode == 0, result.stderr[-3000:]
    assert isinstance(result.payload, dict), (
        f"no JSON result on stdout (handler crashed?):\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}"
    )
    if case.function is None:  # API events answer with a proxy result, never a Lambda error
        assert "errorMessage" not in result.payload, f"the handler raised: {result.payload}"
    case.check(result, event, local_models)
