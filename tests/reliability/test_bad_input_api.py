"""Bad input to POST /predict through a real `dqp serve`: each case its own test with its expected answer.

Every refusal must be a 4xx with the API's error shape (`error`, `message`, `correlation_id`) and a
message that names the problem; the server must stay up and keep answering afterwards. The content
type, encoding, nesting, surrogate, long-integer, array-body and strict-boolean cases pin defects B1-B7
found by this tier and fixed in src/dq_platform/inference/guard.py (docs/reliability.md, "Defects").
"""

from __future__ import annotations

import json
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.reliability.support import Served, call, dqp_serve

pytestmark = [pytest.mark.reliability, pytest.mark.integration]

JSON = {"Content-Type": "application/json"}
TEXT = "The Supplier shall indemnify the Customer against all third-party claims."


@pytest.fixture(scope="module")
def served(models_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Any:
    with dqp_serve(models_root, tmp_path_factory.mktemp("bad-input")) as server:
        yield server


@dataclass(frozen=True)
class BadRequest:
    body: bytes
    headers: dict[str, str]
    status: int
    error: str
    mentions: tuple[str, ...] = ()  # words the message or details must contain (the field at fault)


def _json(payload: Any) -> bytes:
    return json.dumps(payload).encode()


CASES = [
    # ---- wrong content type
    pytest.param(
        BadRequest(_json({"text": TEXT}), {"Content-Type": "text/plain"}, 415, "unsupported_media_type", ("json",)),
        id="content-type-text-plain",
    ),
    pytest.param(
        BadRequest(b"text=hello", {"Content-Type": "application/x-www-form-urlencoded"}, 415, "unsupported_media_type"),
        id="content-type-form",
    ),
    # ---- bytes that are not UTF-8 text
    pytest.param(
        BadRequest(b"\xff\xfe\x00\x81{", JSON, 400, "invalid_json"),
        id="non-utf8-bytes",
    ),
    pytest.param(
        BadRequest('{"text": "caf\xe9 clause"}'.encode("latin-1"), JSON, 400, "invalid_json"),
        id="latin1-encoded-json",
    ),
    pytest.param(
        BadRequest(b'{"text": "\\ud800 unpaired surrogate"}', JSON, 422, "validation_error", ("text",)),
        id="lone-surrogate-escape",
    ),
    # ---- huge bodies
    pytest.param(
        BadRequest(_json({"text": "x" * 20_001}), JSON, 413, "payload_too_large", ("text",)),
        id="text-over-20000-chars",
    ),
    pytest.param(
        # valid JSON, but past MAX_BODY_BYTES (default 244,096): refused before parsing
        BadRequest(b'{"text": "ok"' + b" " * 250_000 + b"}", JSON, 413, "payload_too_large", ("bytes",)),
        id="body-over-max-body-bytes",
    ),
    pytest.param(
        BadRequest(_json({"text": TEXT, "doc_id": "D" * 5_000}), JSON, 422, "validation_error", ("doc_id",)),
        id="doc-id-5000-chars",
    ),
    pytest.param(
        BadRequest(b'{"text": "ok", "n": ' + b"9" * 5_000 + b"}", JSON, 400, "invalid_json"),
        id="integer-literal-5000-digits",
    ),
    # ---- nested JSON junk
    pytest.param(
        BadRequest(b"[" * 100_000 + b"]" * 100_000, JSON, 400, "invalid_json"),
        id="nested-100000-deep",
    ),
    pytest.param(
        BadRequest(_json({"text": {"a": [[[[{"b": None}]]]]}}), JSON, 422, "validation_error", ("text",)),
        id="nested-object-as-text",
    ),
    pytest.param(
        BadRequest(_json([{"text": TEXT}]), JSON, 422, "validation_error", ("body",)),
        id="array-instead-of-object",
    ),
    pytest.param(
        BadRequest(_json([{"text": TEXT}, {"text": "second"}]), JSON, 422, "validation_error", ("body",)),
        id="array-of-two-objects",
    ),
    pytest.param(BadRequest(b"null", JSON, 422, "validation_error", ("body",)), id="json-null"),
    pytest.param(BadRequest(b"", JSON, 422, "validation_error", ("body",)), id="empty-body"),
    pytest.param(BadRequest(b'{"text": "unterminated', JSON, 400, "invalid_json"), id="truncated-json"),
    pytest.param(BadRequest(b'{"text": NaN}', JSON, 422, "validation_error", ("text",)), id="nan-literal"),
    # ---- unknown fields
    pytest.param(
        BadRequest(_json({"text": TEXT, "temperature": 0.2}), JSON, 422, "validation_error", ("temperature",)),
        id="unknown-field",
    ),
    pytest.param(
        BadRequest(_json({"text": TEXT, "Model": "baseline"}), JSON, 422, "validation_error", ("Model",)),
        id="field-name-wrong-case",
    ),
    # ---- bad types and values
    pytest.param(BadRequest(_json({"text": 123}), JSON, 422, "validation_error", ("text",)), id="text-number"),
    pytest.param(BadRequest(_json({"text": None}), JSON, 422, "validation_error", ("text",)), id="text-null"),
    pytest.param(BadRequest(_json({"text": ""}), JSON, 422, "validation_error", ("text",)), id="text-empty"),
    pytest.param(BadRequest(_json({"model": "baseline"}), JSON, 422, "validation_error", ("text",)), id="text-missing"),
    pytest.param(
        BadRequest(_json({"text": TEXT, "model": "gpt-9"}), JSON, 422, "validation_error", ("model",)),
        id="model-unknown",
    ),
    pytest.param(
        BadRequest(_json({"text": TEXT, "model": 1}), JSON, 422, "validation_error", ("model",)), id="model-number"
    ),
    pytest.param(
        BadRequest(_json({"text": TEXT, "explain": "yes"}), JSON, 422, "validation_error", ("explain",)),
        id="explain-string",
    ),
    pytest.param(
        BadRequest(_json({"text": TEXT, "doc_id": "../../etc/passwd"}), JSON, 422, "validation_error", ("doc_id",)),
        id="doc-id-path-traversal",
    ),
    pytest.param(
        BadRequest(_json({"text": TEXT, "doc_id": 42}), JSON, 422, "validation_error", ("doc_id",)),
        id="doc-id-number",
    ),
]


@pytest.mark.parametrize("case", CASES)
def test_bad_request_is_refused_clearly(served: Served, case: BadRequest) -> None:
    reply = call(served.url, "POST", "/predict", case.body, case.headers)
    assert reply.status == case.status, reply.body[:300]
    body = reply.json()
    assert body["error"] == case.error
    assert body["correlation_id"]
    said = (body["message"] + " " + json.dumps(body.get("details", []))).lower()
    for word in case.mentions:
        assert word.lower() in said, body
    assert served.proc.poll() is None
    assert call(served.url, "GET", "/health").status == 200


def test_charset_parameter_is_accepted(served: Served) -> None:
    """Not bad input: `application/json; charset=utf-8` is JSON, so the content-type rule is not over-strict."""
    reply = call(
        served.url, "POST", "/predict", _json({"text": TEXT}), {"Content-Type": "application/json; charset=utf-8"}
    )
    assert reply.status == 200
    assert reply.json()["label"] in {"HighRisk", "LowRisk"}


def test_content_type_is_compared_case_insensitively(served: Served) -> None:
    reply = call(served.url, "POST", "/predict", _json({"text": TEXT}), {"Content-Type": "APPLICATION/JSON"})
    assert reply.status == 200
    assert reply.json()["label"] in {"HighRisk", "LowRisk"}


def test_largest_valid_body_is_accepted(served: Served) -> None:
    """20,000 astral characters, each escaped as a 12-byte surrogate pair, fit under MAX_BODY_BYTES."""
    body = _json({"text": "\U0001f600" * 20_000})
    assert len(body) > 240_000
    assert call(served.url, "POST", "/predict", body, JSON).status == 200


def test_missing_content_type_is_read_as_json(served: Served) -> None:
    """curl -d without -H: API Gateway passes the body on, and the handler reads it as JSON."""
    reply = call(served.url, "POST", "/predict", _json({"text": TEXT}), {})
    assert reply.status == 200


def test_body_over_10_mb_is_refused_before_it_is_read(served: Served) -> None:
    """API Gateway's payload cap: `dqp serve` answers 413 from the headers and never buffers the body."""
    port = int(served.url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        head = (
            "POST /predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Content-Length: {10 * 1024 * 1024 + 1}\r\n\r\n"
        )
        sock.sendall(head.encode() + b'{"text": "' + b"x" * 65_536)
        answer = b""
        while b"Request Too Long" not in answer:  # headers and body may come in separate segments
            chunk = sock.recv(65_536)
            if not chunk:
                break
            answer += chunk
    status_line = answer.decode("latin-1").partition("\r\n")[0]
    assert status_line.split()[1] == "413"
    assert b'{"message":"Request Too Long"}' in answer
    assert call(served.url, "GET", "/health").status == 200


@pytest.mark.parametrize(
    ("method", "path", "status", "error"),
    [
        ("GET", "/predict", 404, "not_found"),
        ("PUT", "/predict", 404, "not_found"),
        ("POST", "/health", 404, "not_found"),
        ("GET", "/../../etc/passwd", 404, "not_found"),
        ("GET", "/models%00", 404, "not_found"),
    ],
)
def test_wrong_method_or_path_is_a_clean_404(served: Served, method: str, path: str, status: int, error: str) -> None:
    reply = call(served.url, method, path, _json({"text": TEXT}) if method != "GET" else None, JSON)
    assert reply.status == status
    assert reply.json()["error"] == error
