"""`dqp serve`: the Lambda handler behind a loopback HTTP server, no Docker and no AWS needed.

HTTP requests become API Gateway REST proxy events and the handler's result becomes the HTTP response,
so the local API is the deployed one byte for byte. Invocations run one at a time, like one Lambda
execution environment (the resolver keeps the current event in class state).
"""

from __future__ import annotations

import base64
import io
import json
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import IO, TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from pydantic import ValidationError

from dq_platform.inference.ab import ABWeights, SSMJsonConfig
from dq_platform.inference.api import Handler
from dq_platform.inference.events import proxy_event
from dq_platform.inference.settings import API_GATEWAY_MAX_BODY_BYTES

if TYPE_CHECKING:
    from aws_lambda_powertools import Logger

LOOPBACK = "127.0.0.1"
# API Gateway REST payloads are capped at 10 MB; refuse bigger bodies before reading them.
MAX_BODY_BYTES = API_GATEWAY_MAX_BODY_BYTES
_TIMEOUT_MS = 30_000


@dataclass
class LocalLambdaContext:
    """The context object the Lambda runtime passes; `dqp serve` is that runtime here."""

    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    function_name: str = "dqp-serve"
    function_version: str = "$LATEST"
    memory_limit_in_mb: int = 2048
    invoked_function_arn: str = "arn:aws:lambda:local:000000000000:function:dqp-serve"
    log_group_name: str = "/dqp/serve"
    log_stream_name: str = "local"
    _deadline: float = field(default_factory=lambda: time.monotonic() + _TIMEOUT_MS / 1000)

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def http_to_event(method: str, raw_path: str, headers: dict[str, str], body: bytes) -> dict[str, Any]:
    parts = urlsplit(raw_path)
    query = parse_qs(parts.query, keep_blank_values=True) or None
    try:
        text: str | None = body.decode("utf-8") if body else None
        binary = False
    except UnicodeDecodeError:
        text, binary = base64.b64encode(body).decode("ascii"), True
    event = proxy_event(method, parts.path or "/", text, headers=headers, query=query, request_id=str(uuid.uuid4()))
    event["headers"] = dict(headers)  # exactly what the client sent
    event["multiValueHeaders"] = {k: [v] for k, v in headers.items()}
    event["isBase64Encoded"] = binary
    event["requestContext"]["stage"] = "local"
    event["requestContext"]["path"] = parts.path or "/"
    return event


def event_result_to_http(result: dict[str, Any]) -> tuple[int, list[tuple[str, str]], bytes]:
    status = int(result.get("statusCode", 502))
    headers: list[tuple[str, str]] = []
    for name, values in (result.get("multiValueHeaders") or {}).items():
        headers.extend((name, str(v)) for v in values)
    for name, value in (result.get("headers") or {}).items():
        if not any(h[0].lower() == name.lower() for h in headers):
            headers.append((name, str(value)))
    body = result.get("body") or ""
    data = base64.b64decode(body) if result.get("isBase64Encoded") else str(body).encode("utf-8")
    return status, headers, data


def make_server(handler: Handler, port: int = 3000, host: str = LOOPBACK) -> ThreadingHTTPServer:
    if host != LOOPBACK:
        raise ValueError(f"dqp serve binds {LOOPBACK} only, not {host!r}")
    lock = threading.Lock()

    class _RequestHandler(BaseHTTPRequestHandler):
        server_version = "dqp-serve"
        protocol_version = "HTTP/1.1"

        def _dispatch(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY_BYTES:
                self._send(413, [("Content-Type", "application/json")], b'{"message":"Request Too Long"}')
                self.close_connection = True
                return
            body = self.rfile.read(length) if length else b""
            headers = dict(self.headers.items())
            event = http_to_event(self.command, self.path, headers, body)
            try:
                with lock:
                    result = handler(event, LocalLambdaContext())
            except Exception as exc:  # what API Gateway does when the function itself fails
                sys.stderr.write(f"dqp serve: handler raised {type(exc).__name__}\n")
                self._send(502, [("Content-Type", "application/json")], b'{"message":"Internal server error"}')
                return
            self._send(*event_result_to_http(result))

        def _send(self, status: int, headers: list[tuple[str, str]], data: bytes) -> None:
            self.send_response(status)
            for name, value in headers:
                if name.lower() not in ("content-length", "connection"):
                    self.send_header(name, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _dispatch  # noqa: N815

        def log_message(self, format: str, *args: Any) -> None:
            pass  # the handler logs each request as JSON (without bodies); no second access log

    server = ThreadingHTTPServer((host, port), _RequestHandler)
    server.daemon_threads = True
    return server


class TeeStream(io.TextIOBase):
    """Text written to it goes to every target: `dqp serve --log-file` keeps stdout and fills the file.

    Everything the API prints (JSON log records and EMF metric blobs) passes through here, so the file
    is exactly what a `> serve.log` redirect would hold, and `dqp ab-report --logs` reads either.
    """

    def __init__(self, *targets: IO[str]) -> None:
        super().__init__()
        self._targets = targets
        self._lock = threading.Lock()

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        with self._lock:
            for target in self._targets:
                target.write(text)
        return len(text)

    def flush(self) -> None:
        with self._lock:
            for target in self._targets:
                target.flush()


AB_WEIGHTS_OVERRIDE_SOURCE = "--ab-weights"


def parse_ab_weights(text: str) -> ABWeights:
    """`--ab-weights` JSON validated like the SSM parameter; the message names the field at fault."""
    try:
        raw = json.loads(text)
    except ValueError as exc:
        raise ValueError(f"--ab-weights is not valid JSON: {exc}") from None
    try:
        return ABWeights.model_validate(raw)
    except ValidationError as exc:
        problems = [
            f"{'.'.join(str(p) for p in err['loc']) or 'weights'}: {err['msg']}"
            for err in exc.errors(include_input=False, include_url=False)
        ]
        raise ValueError("--ab-weights is invalid: " + "; ".join(problems)) from None


class FixedABWeights(SSMJsonConfig[ABWeights]):
    """Weights given on the command line: they win over AB_WEIGHTS_PARAM and never touch SSM.

    The source reads `--ab-weights` in GET /models and in each prediction record, so a report over a
    local run shows where its split came from.
    """

    def __init__(self, weights: ABWeights, logger: Logger) -> None:
        super().__init__(None, ABWeights, weights, 0, logger)

    def current(self) -> tuple[ABWeights, str]:
        return self._default, AB_WEIGHTS_OVERRIDE_SOURCE
