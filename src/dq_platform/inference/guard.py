"""The request guard: checks of a raw /predict body that Powertools does not make, or makes by raising.

Runs in the Lambda entry point before the resolver: media type, base64, the raw size limit
(`MAX_BODY_BYTES`), UTF-8 and JSON (with Python's own number and nesting limits), a JSON object, no
unpaired surrogate escapes. A refusal is a `RequestRefusedError` whose message names the problem,
never the body; `routes.error_body` shapes it like every other error.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from dq_platform.inference.errors import RequestRefusedError
from dq_platform.inference.schemas import ErrorDetail
from dq_platform.inference.settings import TEXT_LIMIT_CHARS

JSON_MEDIA_TYPE = "application/json"
UNSUPPORTED_MEDIA = f"Content-Type must be {JSON_MEDIA_TYPE} (the body is a JSON object)"
_SURROGATE = "unpaired UTF-16 surrogate escape (\\ud800-\\udfff)"


def _refuse(status: int, code: str, message: str, loc: list[str | int], kind: str, msg: str) -> RequestRefusedError:
    return RequestRefusedError(status, code, message, [ErrorDetail(loc=loc, type=kind, msg=msg)])


def parse_predict_body(event: dict[str, Any], max_body_bytes: int) -> tuple[dict[str, Any], Any]:
    """(event to resolve, parsed body or None); raises `RequestRefusedError`.

    Parsed with the same `json.loads` Powertools uses, so a body that passes here parses there too.
    """
    event = _json_media_type(event)
    body = event.get("body")
    if not isinstance(body, str) or not body:
        return event, None  # no body: the request model answers 422 naming `body`
    raw = _raw_bytes(body, bool(event.get("isBase64Encoded")))
    if len(raw) > max_body_bytes:
        raise _refuse(
            413, "payload_too_large",
            f"the request body is {len(raw)} bytes; this deployment accepts at most {max_body_bytes} "
            f"(`text` up to {TEXT_LIMIT_CHARS} characters always fits)",
            ["body"], "body_too_large", f"at most {max_body_bytes} bytes",
        )  # fmt: skip
    return event, _json(raw)


def check_payload(payload: Any) -> None:
    """Refusals pydantic would not make: Powertools answers a JSON array for its first element."""
    if payload is None:
        return  # the request model answers 422 naming `body`
    if not isinstance(payload, dict):
        msg = "invalid request field(s): body must be a JSON object"
        raise _refuse(422, "validation_error", msg, ["body"], "model_attributes_type", "Input should be an object")
    text = payload.get("text")
    if isinstance(text, str) and _has_lone_surrogate(text):
        msg = "invalid request field(s): text has an unpaired surrogate escape"
        raise _refuse(422, "validation_error", msg, ["body", "text"], "string_unicode", _SURROGATE)
    if _any_lone_surrogate(payload):
        msg = "invalid request field(s): body has an unpaired surrogate escape"
        raise _refuse(422, "validation_error", msg, ["body"], "string_unicode", _SURROGATE)


def _content_type(event: dict[str, Any]) -> tuple[str, str] | None:
    """(header name as sent, value) of Content-Type, looked up case-insensitively."""
    for name, value in (event.get("headers") or {}).items():
        if str(name).lower() == "content-type" and isinstance(value, str) and value.strip():
            return str(name), value
    return None


def _json_media_type(event: dict[str, Any]) -> dict[str, Any]:
    """Refuse a media type other than JSON; spell JSON's the way Powertools matches it (case-sensitively)."""
    found = _content_type(event)
    if found is None:
        return event
    name, value = found
    media, sep, params = value.partition(";")
    if media.strip().lower() != JSON_MEDIA_TYPE:
        raise _refuse(
            415, "unsupported_media_type", UNSUPPORTED_MEDIA, ["header", "Content-Type"],
            "unsupported_media_type", f"expected {JSON_MEDIA_TYPE}",
        )  # fmt: skip
    if JSON_MEDIA_TYPE + sep + params == value:
        return event
    return _with_content_type(event, name, JSON_MEDIA_TYPE + sep + params)


def _with_content_type(event: dict[str, Any], name: str, value: str) -> dict[str, Any]:
    """A copy of the event whose Content-Type is `value`."""
    headers = {**(event.get("headers") or {}), name: value}
    multi = {
        key: [value] if str(key).lower() == "content-type" else values
        for key, values in (event.get("multiValueHeaders") or {}).items()
    }
    return {**event, "headers": headers, "multiValueHeaders": multi}


def _raw_bytes(body: str, is_base64: bool) -> bytes:
    if not is_base64:
        return body.encode("utf-8", "surrogatepass")
    try:
        return base64.b64decode(body, validate=True)
    except (binascii.Error, ValueError):
        raise _refuse(
            400, "invalid_json", "the request body is not valid base64", ["body"], "json_invalid", "invalid base64"
        ) from None


def _json(raw: bytes) -> Any:
    try:
        return json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        msg = "the request body is not UTF-8 encoded JSON"
        raise _refuse(400, "invalid_json", msg, ["body"], "json_invalid", "invalid UTF-8") from None
    except json.JSONDecodeError as exc:
        msg = "the request body is not valid JSON"
        raise _refuse(400, "invalid_json", msg, ["body", exc.pos], "json_invalid", "JSON decode error") from None
    except (ValueError, RecursionError):
        # Python's own limits: integer literals over 4,300 digits, nesting past the recursion limit.
        msg = "the request body is not valid JSON: a number or the nesting is too large"
        raise _refuse(400, "invalid_json", msg, ["body"], "json_invalid", "beyond the parser's limits") from None


def _has_lone_surrogate(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _any_lone_surrogate(payload: Any) -> bool:
    """Whether any key or string value holds a lone surrogate; iterative, so depth cannot overflow."""
    stack = [payload]
    while stack:
        item = stack.pop()
        if isinstance(item, str) and _has_lone_surrogate(item):
            return True
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False
