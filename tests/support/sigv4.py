"""AWS Signature Version 4, checked the way the receiving service checks it, for the tests.

An implementation of its own, not botocore's, so that a test of code that signs with botocore compares
against an independent computation (IAM User Guide, "Create a signed AWS API request": canonical
request, string to sign, derived signing key, HMAC-SHA256 signature).
"""

from __future__ import annotations

import hashlib
import hmac
import urllib.parse


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


def verify_sigv4(method: str, target: str, headers: dict[str, str], body: bytes, secret: str) -> dict[str, str]:
    """Recompute the request's signature; return the Authorization header's parts if it matches."""
    algorithm, _, rest = headers["authorization"].partition(" ")
    assert algorithm == "AWS4-HMAC-SHA256"
    parts = dict(item.strip().split("=", 1) for item in rest.split(","))
    signed = parts["SignedHeaders"].split(";")
    key_id, date, region, service, terminator = parts["Credential"].split("/")
    assert terminator == "aws4_request"
    path, _, query = target.partition("?")
    pairs = sorted(urllib.parse.parse_qsl(query, keep_blank_values=True))

    def quote(text: str) -> str:
        return urllib.parse.quote(text, safe="-_.~")

    canonical_query = "&".join(f"{quote(k)}={quote(v)}" for k, v in pairs)
    canonical_headers = "".join(f"{name}:{' '.join(headers[name].split())}\n" for name in signed)
    canonical_request = "\n".join(
        [
            method,
            urllib.parse.quote(path, safe="/-_.~"),
            canonical_query,
            canonical_headers,
            ";".join(signed),
            hashlib.sha256(body).hexdigest(),
        ]
    )
    amz_date = headers["x-amz-date"]
    assert amz_date.startswith(date)
    scope = f"{date}/{region}/{service}/aws4_request"
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical_request.encode()).hexdigest()])
    key = _hmac(_hmac(_hmac(_hmac(f"AWS4{secret}".encode(), date), region), service), "aws4_request")
    expected = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    assert hmac.compare_digest(expected, parts["Signature"]), "signature does not verify"
    return {"key_id": key_id, "region": region, "service": service, "signed": parts["SignedHeaders"]}
