"""API Gateway REST proxy events: built here, stored in `events/`, used by `sam local invoke -e`, the
tests, `dqp serve` and the pre-traffic hook, so every entry point exercises the same requests.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

# Sample clauses written for this project (no third-party text).
HIGH_RISK_TEXT = (
    "The Supplier accepts unlimited liability for all indirect and consequential losses and waives any "
    "right to terminate this Agreement for convenience."
)
LOW_RISK_TEXT = "Either party may terminate this Agreement with thirty days written notice to the other party."
SMOKE_DOC_ID = "SMOKE-0001"


def proxy_event(
    method: str,
    path: str,
    body: str | None = None,
    headers: dict[str, str] | None = None,
    query: dict[str, list[str]] | None = None,
    request_id: str = "c0ffee00-0000-4000-8000-000000000001",
    stage: str = "prod",
    source_ip: str = "127.0.0.1",
) -> dict[str, Any]:
    """A REST API (v1) proxy event as API Gateway sends it: plain JSON body, `isBase64Encoded` false."""
    hdrs = {"Accept": "application/json", "Host": "localhost", "User-Agent": "dqp"}
    if body is not None:
        hdrs["Content-Type"] = "application/json"
    hdrs.update(headers or {})
    return {
        "resource": path,
        "path": path,
        "httpMethod": method,
        "headers": hdrs,
        "multiValueHeaders": {k: [v] for k, v in hdrs.items()},
        "queryStringParameters": {k: v[-1] for k, v in query.items()} if query else None,
        "multiValueQueryStringParameters": query or None,
        "pathParameters": None,
        "stageVariables": None,
        "requestContext": {
            "resourcePath": path,
            "httpMethod": method,
            "path": f"/{stage}{path}",
            "stage": stage,
            "requestId": request_id,
            "protocol": "HTTP/1.1",
            "identity": {"sourceIp": source_ip, "userAgent": hdrs.get("User-Agent")},
        },
        "body": body,
        "isBase64Encoded": False,
    }


def _predict(payload: dict[str, Any], n: int) -> dict[str, Any]:
    return proxy_event("POST", "/predict", json.dumps(payload), request_id=f"c0ffee00-0000-4000-8000-00000000000{n}")


def sample_events() -> dict[str, dict[str, Any]]:
    """File name -> event; the expected outcome of each is in `EXPECTED_STATUS`."""
    return {
        "health.json": proxy_event("GET", "/health", request_id="c0ffee00-0000-4000-8000-000000000001"),
        "models.json": proxy_event("GET", "/models", request_id="c0ffee00-0000-4000-8000-000000000002"),
        "predict-baseline.json": _predict(
            {"text": HIGH_RISK_TEXT, "model": "baseline", "explain": True, "doc_id": SMOKE_DOC_ID}, 3
        ),
        "predict-transformer.json": _predict(
            {"text": HIGH_RISK_TEXT, "model": "transformer", "explain": True, "doc_id": SMOKE_DOC_ID}, 4
        ),
        "predict-auto.json": _predict({"text": LOW_RISK_TEXT, "model": "auto", "doc_id": SMOKE_DOC_ID}, 5),
        "predict-invalid.json": _predict({"text": "", "model": "gpt-9"}, 6),
    }


EXPECTED_STATUS = {
    "health.json": 200,
    "models.json": 200,
    "predict-baseline.json": 200,
    "predict-transformer.json": 200,
    "predict-auto.json": 200,
    "predict-invalid.json": 422,
}


def render(event: dict[str, Any]) -> str:
    return json.dumps(event, indent=2) + "\n"


def write_events(*folders: Path) -> list[Path]:
    written: list[Path] = []
    for folder in folders:
        folder.mkdir(parents=True, exist_ok=True)
        for name, event in sample_events().items():
            path = folder / name
            path.write_text(render(event), encoding="utf-8")
            written.append(path)
    return written


def stale_events(*folders: Path) -> list[Path]:
    """Files that differ from what `write_events` would write (drift check for CI)."""
    stale: list[Path] = []
    for folder in folders:
        for name, event in sample_events().items():
            path = folder / name
            if not path.is_file() or path.read_text(encoding="utf-8") != render(event):
                stale.append(path)
    return stale
