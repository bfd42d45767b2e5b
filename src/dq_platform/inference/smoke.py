"""Smoke checks of a running API (deployed stage, `sam local start-api` or `dqp serve`).

The seed's test script as a library: `dqp smoke` prints these results and fails on any failure.
"""

from __future__ import annotations

import json
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any

from dq_platform.inference.events import HIGH_RISK_TEXT, LOW_RISK_TEXT, SMOKE_DOC_ID


@dataclass
class CheckResult:
    name: str
    ok: bool
    status: int | None
    latency_ms: float
    detail: str = ""


@dataclass
class _Reply:
    status: int | None
    body: Any
    latency_ms: float
    error: str = ""


# https://<api id>.execute-api.<region>.amazonaws.com[.cn]/<stage>: the region of a stage's default URL.
_EXECUTE_API_HOST = re.compile(r"^[a-z0-9]+\.execute-api\.([a-z]{2}(?:-[a-z]+)+-\d+)\.amazonaws\.com(?:\.cn)?$")


def region_from_url(url: str) -> str | None:
    """The region in an API Gateway default endpoint's host name, or None for any other host."""
    match = _EXECUTE_API_HOST.match(urllib.parse.urlsplit(url).hostname or "")
    return match.group(1) if match else None


class SigV4Signer:
    """Signs each request for API Gateway's IAM authorization (`ApiAuth=IAM`) with botocore's SigV4Auth.

    The signature covers the method, path, query, body and every header sent except User-Agent, so the
    headers handed to `sign` are exactly the ones the request must carry.
    """

    def __init__(self, credentials: Any, region: str, service: str = "execute-api") -> None:
        self.credentials = credentials
        self.region = region
        self.service = service

    def sign(self, method: str, url: str, headers: dict[str, str], data: bytes | None) -> dict[str, str]:
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest

        request = AWSRequest(method=method, url=url, data=data or b"", headers=dict(headers))
        SigV4Auth(self.credentials, self.service, self.region).add_auth(request)
        return dict(request.headers.items())


def iam_signer(base_url: str, region: str | None = None) -> SigV4Signer:
    """A signer with the default credential chain's credentials (environment, profile, SSO, instance role).

    The region is --region, else the one in an execute-api URL, else the configured default region.
    Raises ValueError, in one line, when there are no credentials or no region.
    """
    import botocore.session

    session = botocore.session.get_session()
    chosen = region or region_from_url(base_url) or session.get_config_variable("region")
    if not chosen:
        raise ValueError(f"--auth iam needs a region: none in {base_url!r} and none configured; pass --region")
    credentials = session.get_credentials()
    if credentials is None:
        raise ValueError("--auth iam needs AWS credentials and the default chain found none")
    return SigV4Signer(credentials.get_frozen_credentials(), chosen)


class SmokeClient:
    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        timeout_s: float = 30.0,
        signer: SigV4Signer | None = None,
    ) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise ValueError(f"--url must start with http:// or https://, got {base_url!r}")
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self.timeout_s = timeout_s
        self.signer = signer

    def call(self, method: str, path: str, payload: Any = None) -> _Reply:
        data = json.dumps(payload).encode() if payload is not None else None
        headers = {"Accept": "application/json"}
        if data is not None:
            headers["Content-Type"] = "application/json"
        if self.api_key:
            headers["x-api-key"] = self.api_key
        if self.signer is not None:
            headers = self.signer.sign(method, self.base_url + path, headers, data)
        req = urllib.request.Request(self.base_url + path, data=data, headers=headers, method=method)  # noqa: S310
        start = time.perf_counter()
        try:
            with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:  # noqa: S310 (URL scheme checked)
                status, raw = resp.status, resp.read()
        except urllib.error.HTTPError as exc:
            status, raw = exc.code, exc.read()
        except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
            return _Reply(None, None, (time.perf_counter() - start) * 1000, f"{type(exc).__name__}: {exc}")
        latency = (time.perf_counter() - start) * 1000
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            return _Reply(status, None, latency, "response is not JSON")
        return _Reply(status, body, latency)


def _result(name: str, reply: _Reply, problems: list[str]) -> CheckResult:
    if reply.error:
        problems = [reply.error, *problems]
    return CheckResult(name, not problems, reply.status, round(reply.latency_ms, 1), "; ".join(problems))


def run_smoke(
    base_url: str, api_key: str | None = None, timeout_s: float = 30.0, signer: SigV4Signer | None = None
) -> list[CheckResult]:
    client = SmokeClient(base_url, api_key, timeout_s, signer)
    results: list[CheckResult] = []

    reply = client.call("GET", "/health")
    problems = [] if reply.status == 200 else [f"expected 200, got {reply.status}"]
    if isinstance(reply.body, dict) and reply.body.get("status") != "ok":
        problems.append(f"status {reply.body.get('status')!r}: {reply.body.get('degraded_reasons')}")
    results.append(_result("GET /health", reply, problems))

    reply = client.call("GET", "/models")
    labels: set[str] = set()
    problems = [] if reply.status == 200 else [f"expected 200, got {reply.status}"]
    if isinstance(reply.body, dict):
        for info in reply.body.get("models", []):
            labels.update(info.get("labels") or [])
            if not info.get("loaded"):
                problems.append(f"model {info.get('name')} not loaded: {info.get('error')}")
        if "ab_weights" not in reply.body:
            problems.append("no ab_weights")
    elif not reply.error:
        problems.append("body is not an object")
    results.append(_result("GET /models", reply, problems))

    for model in ("baseline", "transformer", "auto"):
        for explain in (False, True):
            text = HIGH_RISK_TEXT if explain else LOW_RISK_TEXT
            payload = {"text": text, "model": model, "explain": explain, "doc_id": SMOKE_DOC_ID}
            reply = client.call("POST", "/predict", payload)
            results.append(
                _result(
                    f"POST /predict model={model} explain={explain}", reply, _check_prediction(reply, payload, labels)
                )
            )

    reply = client.call("POST", "/predict", {"text": "", "model": "nonexistent"})
    results.append(_result("POST /predict invalid request", reply, _check_refusal(reply)))
    return results


def _check_refusal(reply: _Reply) -> list[str]:
    """An invalid body must be refused by the function's validation: 422 `validation_error` with a
    message. Any other 4xx is not that refusal: 403 is API Gateway refusing a missing or wrong API key
    (or signature), 404 a wrong stage or route, 429 throttling; each would hide that validation never ran."""
    body = reply.body if isinstance(reply.body, dict) else {}
    problems = [] if reply.status == 422 else [f"expected 422 (the request validation), got {reply.status}"]
    if body.get("error") != "validation_error":
        problems.append(f"expected error 'validation_error', got {body.get('error')!r}")
    if not body.get("message"):
        problems.append("error body has no message")
    return problems


def _check_prediction(reply: _Reply, payload: dict[str, Any], labels: set[str]) -> list[str]:
    if reply.status != 200:
        message = reply.body.get("message") if isinstance(reply.body, dict) else None
        return [f"expected 200, got {reply.status}" + (f": {message}" if message else "")]
    body = reply.body
    if not isinstance(body, dict):
        return ["body is not an object"]
    problems: list[str] = []
    if payload["model"] != "auto" and body.get("model") != payload["model"]:
        problems.append(f"answered by {body.get('model')!r}, asked for {payload['model']!r}")
    if body.get("model") not in ("baseline", "transformer"):
        problems.append(f"unknown model {body.get('model')!r}")
    if labels and body.get("label") not in labels:
        problems.append(f"label {body.get('label')!r} not in {sorted(labels)}")
    confidence = body.get("confidence")
    if not isinstance(confidence, int | float) or not 0 <= confidence <= 1:
        problems.append(f"confidence {confidence!r} not in [0, 1]")
    if set((body.get("timings_ms") or {}).keys()) != {"pre", "infer", "post"}:
        problems.append("timings_ms must have pre, infer, post")
    explanation = body.get("explanation")
    if payload["explain"] and not (isinstance(explanation, dict) and explanation.get("type")):
        problems.append("explain=true but no explanation")
    if not payload["explain"] and explanation is not None:
        problems.append("explain=false but an explanation came back")
    return problems


def format_results(results: list[CheckResult]) -> str:
    width = max(len(r.name) for r in results)
    lines = []
    for r in results:
        mark = "PASS" if r.ok else "FAIL"
        status = str(r.status) if r.status is not None else "---"
        line = f"{mark}  {r.name:<{width}}  {status:>3}  {r.latency_ms:8.1f} ms"
        lines.append(f"{line}  {r.detail}" if r.detail else line)
    failed = sum(not r.ok for r in results)
    lines.append(f"{len(results) - failed}/{len(results)} checks passed")
    return "\n".join(lines)
