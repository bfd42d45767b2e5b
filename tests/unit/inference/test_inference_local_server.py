"""HTTP <-> API Gateway proxy event translation used by `dqp serve`."""

from __future__ import annotations

import base64

import pytest

from dq_platform.inference.local_server import event_result_to_http, http_to_event, make_server

pytestmark = pytest.mark.unit


def test_request_becomes_a_rest_proxy_event() -> None:
    event = http_to_event("POST", "/predict?debug=1&tag=a&tag=b", {"Content-Type": "application/json"}, b'{"text":"x"}')
    assert event["httpMethod"] == "POST"
    assert event["path"] == event["resource"] == "/predict"
    assert event["body"] == '{"text":"x"}'
    assert event["isBase64Encoded"] is False
    assert event["queryStringParameters"] == {"debug": "1", "tag": "b"}
    assert event["multiValueQueryStringParameters"] == {"debug": ["1"], "tag": ["a", "b"]}
    assert event["headers"] == {"Content-Type": "application/json"}
    assert event["requestContext"]["requestId"]
    assert event["requestContext"]["identity"]["sourceIp"] == "127.0.0.1"


def test_binary_body_is_base64_encoded() -> None:
    event = http_to_event("POST", "/predict", {}, b"\xff\xfe")
    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == b"\xff\xfe"


def test_result_becomes_an_http_response() -> None:
    status, headers, body = event_result_to_http(
        {
            "statusCode": 201,
            "multiValueHeaders": {"X-A": ["1", "2"]},
            "headers": {"x-a": "ignored", "X-B": "3"},
            "body": base64.b64encode(b"raw").decode(),
            "isBase64Encoded": True,
        }
    )
    assert status == 201
    assert headers == [("X-A", "1"), ("X-A", "2"), ("X-B", "3")]
    assert body == b"raw"


def test_binds_loopback_only() -> None:
    with pytest.raises(ValueError, match=r"127\.0\.0\.1"):
        make_server(lambda event, context: {}, port=0, host="0.0.0.0")
