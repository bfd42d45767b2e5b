"""Parsing of every kind of line a log can hold, including the broken ones."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from dq_platform.abtest.records import (
    LogEvent,
    MetricBlob,
    ParseStats,
    Prediction,
    executed_version,
    parse_event,
    parse_timestamp,
)

from .logfactory import dumps, emf_blob, prediction_record

pytestmark = pytest.mark.unit
T0 = datetime(2024, 5, 1, 12, 0, 0, 123000, tzinfo=UTC)


def _parse(message: str, **kw: object) -> tuple[Prediction | MetricBlob | None, ParseStats]:
    stats = ParseStats()
    return parse_event(LogEvent(message=message, origin="f:1", **kw), stats), stats  # type: ignore[arg-type]


def test_prediction_record_is_read_with_its_fields() -> None:
    rec = prediction_record(
        T0,
        model="transformer",
        label="HighRisk",
        confidence=0.75,
        latency_ms=12.5,
        version="v7",
        extra={"shadow_model": "baseline", "shadow_label": "LowRisk", "shadow_agree": False},
    )
    parsed, stats = _parse(dumps(rec), stream="2024/05/01/[12]abcdef")
    assert isinstance(parsed, Prediction)
    log = parsed.log
    assert (log.model, log.model_version, log.label, log.confidence, log.latency_ms) == (
        "transformer",
        "v7",
        "HighRisk",
        0.75,
        12.5,
    )
    assert (log.shadow_model, log.shadow_label, log.shadow_agree, log.status_code) == (
        "baseline",
        "LowRisk",
        False,
        200,
    )
    assert parsed.timestamp == T0
    assert parsed.executed_version == "12"
    assert dict(stats.counts) == {"prediction": 1}


def test_emf_blob_is_read_with_dimensions_and_list_or_scalar_values() -> None:
    blob = emf_blob(T0, "baseline", 500, 3.5, agree=True)
    blob["Latency"] = 3.5  # EMF allows a scalar as well as a list
    parsed, stats = _parse(dumps(blob))
    assert isinstance(parsed, MetricBlob)
    assert parsed.dimensions == {"Model": "baseline", "service": "enterprise-production-ml-infer"}
    assert parsed.values == {"Latency": [3.5], "Errors": [1.0], "ShadowAgreement": [100.0]}
    assert parsed.timestamp == datetime(2024, 5, 1, 12, 0, 0, 123000, tzinfo=UTC)
    assert dict(stats.counts) == {"emf": 1}


@pytest.mark.parametrize(
    ("line", "category"),
    [
        ("", "blank"),
        ("   ", "blank"),
        ("START RequestId: 8f50 Version: 7", "non_json"),
        ("REPORT RequestId: 8f50\tDuration: 15.74 ms\tBilled Duration: 16 ms", "non_json"),
        ('{"level":"ERROR","message":"model not loaded","model":"transformer"}', "other_json"),
        ('["not", "an", "object"]', "non_json"),
        ('{"level":"INFO","message":"prediction","model":"baseline","status_co', "truncated_json"),
        ('{"message":"prediction","status_code":200,"confidence":"high"}', "invalid_prediction"),
        ('{"message":"prediction","model":"baseline"}', "invalid_prediction"),
        ('{"message":"prediction","status_code":200,"latency_ms":-1}', "invalid_prediction"),
        (
            '{"_aws":{"Timestamp":1,"CloudWatchMetrics":[{"Namespace":"Other","Dimensions":[],"Metrics":[]}]}}',
            "emf_other_namespace",
        ),
        ('{"_aws":{"Timestamp":1}}', "invalid_emf"),
        (
            '{"_aws":{"Timestamp":1,"CloudWatchMetrics":[{"Namespace":"DQPlatform/Inference","Dimensions":[["Model"]],'
            '"Metrics":[{"Name":"Latency"}]}]},"Model":"baseline","Latency":["slow"]}',
            "invalid_emf",
        ),
    ],
)
def test_every_line_lands_in_one_category(line: str, category: str) -> None:
    parsed, stats = _parse(line)
    assert parsed is None
    assert dict(stats.counts) == {category: 1}


def test_problems_name_the_line_and_the_bad_field_without_echoing_content() -> None:
    _, stats = _parse('{"message":"prediction","status_code":200,"confidence":"high","text":"SECRET"}')
    assert stats.problems == {"invalid_prediction": ["f:1: invalid field(s): confidence"]}
    assert "SECRET" not in json.dumps(stats.problems)


def test_prefixed_and_wrapped_lines_are_unwrapped() -> None:
    rec = dumps(prediction_record(T0, model="baseline"))
    exported, _ = _parse(f"2024-05-01T12:00:00.123Z {rec}")  # CloudWatch export to S3
    assert isinstance(exported, Prediction)
    lambda_text, _ = _parse(f"2024-05-01T12:00:00.123Z\t8f50-req\tINFO\t{rec}")  # Lambda text prefix
    assert isinstance(lambda_text, Prediction)
    wrapped, _ = _parse(json.dumps({"time": "2024-05-01T12:00:00Z", "type": "app", "message": rec}))
    assert isinstance(wrapped, Prediction)


def test_timestamp_formats() -> None:
    expected = datetime(2024, 5, 1, 12, 0, 0, 123000, tzinfo=UTC)
    assert parse_timestamp("2024-05-01 12:00:00,123+0000") == expected  # Powertools default
    assert parse_timestamp("2024-05-01T14:00:00.123+02:00") == expected  # RFC 3339
    assert parse_timestamp("2024-05-01 12:00:00.123") == expected  # Logs Insights @timestamp (UTC)
    assert parse_timestamp("2024-05-01T12:00:00.123Z") == expected
    assert parse_timestamp(1714564800123) == expected  # epoch ms (EMF, CloudWatch events)
    assert parse_timestamp("1714564800123") == expected  # moto's Insights @timestamp
    assert parse_timestamp(1714564800.123) == pytest.approx(expected)
    for bad in ("yesterday", "", None, True, [1]):
        assert parse_timestamp(bad) is None


def test_timestamp_falls_back_to_the_event_time() -> None:
    rec = prediction_record(T0, model="baseline")
    del rec["timestamp"]
    parsed, _ = _parse(dumps(rec), timestamp_ms=1714564800123)
    assert isinstance(parsed, Prediction)
    assert parsed.timestamp == datetime(2024, 5, 1, 12, 0, 0, 123000, tzinfo=UTC)


def test_executed_version_from_lambda_log_stream_names() -> None:
    assert executed_version("2024/05/01/[42]0123456789abcdef") == "42"
    assert executed_version("2024/05/01/[$LATEST]0123456789abcdef") == "$LATEST"
    assert executed_version("local") is None
    assert executed_version(None) is None


def test_numeric_versions_and_blank_strings_are_normalised() -> None:
    rec = prediction_record(T0, model="baseline", version=None, extra={"model_version": 3, "label": " "})
    parsed, _ = _parse(dumps(rec))
    assert isinstance(parsed, Prediction)
    assert parsed.log.model_version == "3"
    assert parsed.log.label is None
