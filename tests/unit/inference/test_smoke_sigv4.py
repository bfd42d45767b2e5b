"""`dqp smoke --auth iam`: requests signed with SigV4 for API Gateway's IAM authorization (ApiAuth=IAM).

The signature is checked the way API Gateway checks it: recomputed from what arrived on the wire (method,
path, query, the headers the Authorization header names, body) with the same secret key, by the tests' own
implementation of AWS Signature Version 4 (tests/support/sigv4.py).
"""

from __future__ import annotations

import http.server
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from botocore.credentials import Credentials
from typer.testing import CliRunner

from dq_platform.cli import app
from dq_platform.inference.smoke import SigV4Signer, SmokeClient, iam_signer, region_from_url
from tests.support.aws import serving
from tests.support.sigv4 import verify_sigv4

ACCESS_KEY, SECRET_KEY = "AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"


@dataclass
class Seen:
    requests: list[tuple[str, str, dict[str, str], bytes]] = field(default_factory=list)


@pytest.fixture
def server() -> Iterator[tuple[str, Seen]]:
    seen = Seen()

    class Handler(http.server.BaseHTTPRequestHandler):
        def _answer(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            seen.requests.append((self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body))
            payload = json.dumps({"ok": True}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = _answer  # noqa: N815

        def log_message(self, *args: object) -> None:
            pass

    with serving(http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)) as url:
        yield f"{url}/prod", seen


def test_signed_requests_verify_as_api_gateway_would(server: tuple[str, Seen]) -> None:
    url, seen = server
    signer = SigV4Signer(Credentials(ACCESS_KEY, SECRET_KEY), "eu-west-2")
    client = SmokeClient(url, signer=signer)
    assert client.call("GET", "/health").status == 200
    assert client.call("POST", "/predict", {"text": "Termination for convenience.", "doc_id": "d-1"}).status == 200
    assert client.call("GET", "/models?b=2&a=x%20y").status == 200
    assert len(seen.requests) == 3
    for method, target, headers, body in seen.requests:
        parts = verify_sigv4(method, target, headers, body, SECRET_KEY)
        assert parts["key_id"] == ACCESS_KEY
        assert (parts["region"], parts["service"]) == ("eu-west-2", "execute-api")
        assert {"host", "x-amz-date"} <= set(parts["signed"].split(";"))
    post_headers = seen.requests[1][2]
    assert "content-type" in post_headers["authorization"]  # the body's type is signed too


def test_a_tampered_body_no_longer_verifies(server: tuple[str, Seen]) -> None:
    url, seen = server
    SmokeClient(url, signer=SigV4Signer(Credentials(ACCESS_KEY, SECRET_KEY), "eu-west-2")).call(
        "POST", "/predict", {"text": "a"}
    )
    method, target, headers, body = seen.requests[0]
    with pytest.raises(AssertionError, match="does not verify"):
        verify_sigv4(method, target, headers, body.replace(b'"a"', b'"b"'), SECRET_KEY)
    with pytest.raises(AssertionError, match="does not verify"):
        verify_sigv4(method, target, headers, body, "another-secret")


def test_temporary_credentials_send_their_session_token(server: tuple[str, Seen]) -> None:
    url, seen = server
    creds = Credentials(ACCESS_KEY, SECRET_KEY, token="session-token-from-sso")
    SmokeClient(url, signer=SigV4Signer(creds, "eu-west-2")).call("GET", "/health")
    _, target, headers, body = seen.requests[0]
    assert headers["x-amz-security-token"] == "session-token-from-sso"
    assert "x-amz-security-token" in verify_sigv4("GET", target, headers, body, SECRET_KEY)["signed"]


def test_no_signature_without_a_signer(server: tuple[str, Seen]) -> None:
    url, seen = server
    SmokeClient(url, api_key="k").call("GET", "/health")
    headers = seen.requests[0][2]
    assert headers["x-api-key"] == "k"
    assert "authorization" not in headers
    assert "x-amz-date" not in headers


@pytest.mark.parametrize(
    ("url", "region"),
    [
        ("https://a1b2c3d4e5.execute-api.eu-west-2.amazonaws.com/prod", "eu-west-2"),
        ("https://a1b2c3d4e5.execute-api.ap-southeast-3.amazonaws.com/prod/", "ap-southeast-3"),
        ("https://a1b2c3d4e5.execute-api.cn-north-1.amazonaws.com.cn/prod", "cn-north-1"),
        ("https://api.example.com/prod", None),
        ("http://127.0.0.1:3000", None),
    ],
)
def test_region_from_the_stage_url(url: str, region: str | None) -> None:
    assert region_from_url(url) == region


@pytest.fixture
def no_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.delenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", raising=False)
    monkeypatch.delenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", raising=False)
    monkeypatch.delenv("AWS_WEB_IDENTITY_TOKEN_FILE", raising=False)


def test_iam_without_credentials_refuses_in_one_line(no_credentials: None) -> None:
    url = "https://a1b2c3d4e5.execute-api.eu-west-2.amazonaws.com/prod"
    result = CliRunner().invoke(app, ["smoke", "--url", url, "--auth", "iam"])
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: --auth iam needs AWS credentials")
    assert "Traceback" not in result.output


def test_iam_without_a_region_refuses(no_credentials: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_REGION", raising=False)
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    with pytest.raises(ValueError, match="needs a region"):
        iam_signer("https://api.example.com/prod")


def test_iam_signer_takes_the_default_chain_and_the_url_region(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    signer = iam_signer("https://a1b2c3d4e5.execute-api.eu-west-2.amazonaws.com/prod")
    assert (signer.region, signer.service, signer.credentials.access_key) == ("eu-west-2", "execute-api", ACCESS_KEY)
    assert iam_signer("https://api.example.com/prod", region="eu-central-1").region == "eu-central-1"
    assert iam_signer("https://api.example.com/prod").region == "us-east-1"


@pytest.mark.parametrize(
    ("status", "body", "ok"),
    [
        (422, {"error": "validation_error", "message": "invalid request field(s): text"}, True),
        (403, {"message": "Forbidden"}, False),  # API Gateway: missing or wrong API key
        (404, {"message": "Not Found"}, False),  # wrong stage or route
        (429, {"message": "Too Many Requests"}, False),  # throttled
        (422, {"error": "validation_error"}, False),  # no message for the caller
    ],
    ids=["validation", "no-api-key", "wrong-route", "throttled", "no-message"],
)
def test_the_invalid_request_check_accepts_only_the_validation_refusal(status: int, body: dict, ok: bool) -> None:
    from dq_platform.inference.smoke import _check_refusal, _Reply

    assert (not _check_refusal(_Reply(status, body, 1.0))) is ok
