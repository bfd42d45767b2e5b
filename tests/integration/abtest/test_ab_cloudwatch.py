"""The CloudWatch Logs path of `dqp ab-report`.

Real: a moto server on 127.0.0.1 holding a Lambda-shaped log group (streams named by executed version,
platform START/END/REPORT lines, Powertools records and EMF blobs), read through FilterLogEvents and
through moto's partial Logs Insights (it runs `fields/sort/limit` but ignores `filter`, so the client-side
classification is what keeps the numbers right). Stubbed, and named so: Logs Insights behaviour moto does
not have (status polling, real `@timestamp` strings, the 10,000-row cap that splits windows, failures).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import boto3
import pytest
from botocore.stub import ANY, Stubber
from typer.testing import CliRunner

from dq_platform.abtest.analysis import analyse
from dq_platform.abtest.records import LogEvent
from dq_platform.abtest.sources import CloudWatchLogs, SourceError
from dq_platform.cli import app

pytestmark = pytest.mark.integration
GROUP = "/aws/lambda/enterprise-production-ml-infer"
LIVE, CANARY = "2026/01/01/[3]aaaa1111", "2026/01/01/[4]bbbb2222"


def _ms(when: datetime) -> int:
    return int(when.timestamp() * 1000)


@pytest.fixture(scope="module")
def log_group(moto_endpoint: str, logfactory: ModuleType) -> dict[str, Any]:
    """A log group with 450 requests over the last 90..30 minutes, ~1 in 5 on the canary version."""
    now = datetime.now(UTC).replace(microsecond=0)
    start = now - timedelta(minutes=90)
    lines: list[str] = logfactory.make_lines(
        [logfactory.Arm("baseline", n=300, positive=90), logfactory.Arm("transformer", n=150, positive=45, errors=3)],
        start=start,
        duration_s=3600,
        seed=3,
    )
    client = boto3.client(
        "logs", endpoint_url=moto_endpoint, region_name="eu-west-1", aws_access_key_id="x", aws_secret_access_key="x"
    )
    client.create_log_group(logGroupName=GROUP)
    streams: dict[str, list[dict[str, Any]]] = {LIVE: [], CANARY: []}
    per_version = {"3": 0, "4": 0}
    for i in range(0, len(lines), 2):  # one request = prediction record + EMF blob
        stream = CANARY if (i // 2) % 5 == 0 else LIVE
        per_version[stream[12]] += 1
        when = _ms(
            datetime.fromisoformat(json.loads(lines[i])["timestamp"].replace(",", ".").replace("+0000", "+00:00"))
        )
        streams[stream] += [
            {"timestamp": when, "message": f"START RequestId: r{i} Version: {stream[12]}"},
            {"timestamp": when, "message": lines[i]},
            {"timestamp": when, "message": lines[i + 1]},
            {"timestamp": when, "message": f"REPORT RequestId: r{i}\tDuration: 5.00 ms"},
        ]
    # Before the window: must not be counted.
    old = logfactory.prediction_record(now - timedelta(hours=5), model="baseline")
    streams[LIVE].insert(0, {"timestamp": _ms(now - timedelta(hours=5)), "message": json.dumps(old)})
    for stream, events in streams.items():
        client.create_log_stream(logGroupName=GROUP, logStreamName=stream)
        events.sort(key=lambda e: e["timestamp"])
        for k in range(0, len(events), 500):
            client.put_log_events(logGroupName=GROUP, logStreamName=stream, logEvents=events[k : k + 500])
    return {"now": now, "per_version": per_version}


def _check_numbers(data: Mapping[str, Any], per_version: dict[str, int]) -> None:
    models = {m["model"]: m for m in data["models"]}
    assert (models["baseline"]["requests"], models["baseline"]["labels"]) == (300, {"HighRisk": 90, "LowRisk": 210})
    assert (models["transformer"]["requests"], models["transformer"]["server_errors"]) == (150, 3)
    assert models["transformer"]["labels"] == {"HighRisk": 45, "LowRisk": 102}
    by_version: dict[str, int] = {}
    for row in data["by_lambda_version"]:
        by_version[row["version"]] = by_version.get(row["version"], 0) + row["requests"]
    assert by_version == per_version
    assert data["parse"]["used"] == {"prediction": 450, "emf": 450}


@pytest.mark.parametrize("api", ["filter", "insights", "auto"])
def test_report_from_cloudwatch_via_cli(api: str, log_group: dict[str, Any], aws_env: str, tmp_path: Path) -> None:
    out = tmp_path / api
    result = CliRunner().invoke(
        app,
        [
            "ab-report",
            "--log-group",
            GROUP,
            "--since",
            "2h",
            "--until",
            "now",
            "--cw-api",
            api,
            "--format",
            "json,md",
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    data = json.loads((out / "ab-report.json").read_text())
    _check_numbers(data, log_group["per_version"])
    expected_api = "FilterLogEvents" if api == "filter" else "Logs Insights"
    assert data["sources"] == [data["sources"][0]]
    assert f"via {expected_api}" in data["sources"][0]
    if api == "filter":  # the server-side window dropped the old event; Insights in moto also honours it
        assert "outside_window" not in data["parse"]["ignored"]
    else:  # moto ignores the Insights filter clause: platform lines arrive and are classified client-side
        assert data["parse"]["ignored"]["non_json"] == 900
    md = (out / "ab-report.md").read_text()
    assert "| baseline | 3 |" in md  # per-Lambda-version table (canary vs live)


def test_filter_log_events_pages_through_everything(log_group: dict[str, Any], aws_env: str) -> None:
    now = log_group["now"]
    source = CloudWatchLogs(
        boto3.client("logs"), GROUP, now - timedelta(hours=2), now + timedelta(seconds=1), api="filter", page_size=97
    )
    events = list(source.events())
    assert len(events) == 4 * 450
    assert len({e.event_id for e in events}) == len(events)
    report = analyse(events).report
    _check_numbers(report.model_dump(mode="json"), log_group["per_version"])


def test_unknown_log_group_is_a_clear_error(aws_env: str, tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["ab-report", "--log-group", "/aws/lambda/nope", "--cw-api", "filter", "--out", str(tmp_path)]
    )
    assert result.exit_code == 2
    assert "FilterLogEvents on /aws/lambda/nope failed" in result.output
    assert "ResourceNotFoundException" in result.output


# ---- Logs Insights behaviour moto lacks: stubs, named as such -----------------------------------------


def _row(when: datetime, message: str, stream: str, ptr: str) -> list[dict[str, str]]:
    # The shape real Logs Insights returns: @timestamp as "YYYY-MM-DD HH:MM:SS.mmm" (UTC) strings.
    stamp = when.strftime("%Y-%m-%d %H:%M:%S.") + f"{when.microsecond // 1000:03d}"
    return [
        {"field": "@timestamp", "value": stamp},
        {"field": "@message", "value": message},
        {"field": "@logStream", "value": stream},
        {"field": "@ptr", "value": ptr},
    ]


def test_insights_polls_until_complete_with_real_response_shapes(logfactory: ModuleType) -> None:
    """botocore Stubber (a stub): checks every request against the real CloudWatch Logs API model."""
    client = boto3.client("logs", region_name="eu-west-1", aws_access_key_id="x", aws_secret_access_key="x")
    since = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    until = since + timedelta(hours=1)
    lines = logfactory.make_lines([logfactory.Arm("baseline", n=3, positive=1)], start=since, duration_s=60)
    rows = [_row(since + timedelta(seconds=i), line, LIVE, f"ptr{i}") for i, line in enumerate(lines)]
    sleeps: list[float] = []
    with Stubber(client) as stub:
        stub.add_response(
            "start_query",
            {"queryId": "q-1"},
            {"logGroupName": GROUP, "startTime": 1714564800, "endTime": 1714568400, "queryString": ANY, "limit": 10000},
        )
        stub.add_response("get_query_results", {"status": "Scheduled", "results": []}, {"queryId": "q-1"})
        stub.add_response("get_query_results", {"status": "Running", "results": []}, {"queryId": "q-1"})
        stub.add_response("get_query_results", {"status": "Complete", "results": rows}, {"queryId": "q-1"})
        source = CloudWatchLogs(client, GROUP, since, until, api="insights", sleep=sleeps.append)
        events = list(source.events())
        stub.assert_no_pending_responses()
    assert sleeps == [1.0, 1.0]
    assert [e.event_id for e in events] == [f"ptr{i}" for i in range(6)]
    assert events[0].timestamp_ms == _ms(since)
    report = analyse(events).report
    base = report.model("baseline")
    assert base is not None
    assert (base.requests, base.labels) == (3, {"HighRisk": 1, "LowRisk": 2})
    assert base.model_versions == {"20240501T000000Z-aaaa": 3}


@pytest.mark.parametrize("status", ["Failed", "Cancelled", "Timeout"])
def test_insights_failure_status_is_an_error(status: str) -> None:
    client = boto3.client("logs", region_name="eu-west-1", aws_access_key_id="x", aws_secret_access_key="x")
    since = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    with Stubber(client) as stub:
        stub.add_response("start_query", {"queryId": "q-2"})
        stub.add_response("get_query_results", {"status": status, "results": []})
        source = CloudWatchLogs(client, GROUP, since, since + timedelta(hours=1), api="insights")
        with pytest.raises(SourceError, match=f"ended with status {status}"):
            list(source.events())


def test_auto_falls_back_to_filter_log_events_when_insights_is_denied(logfactory: ModuleType) -> None:
    client = boto3.client("logs", region_name="eu-west-1", aws_access_key_id="x", aws_secret_access_key="x")
    since = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    line = json.dumps(logfactory.prediction_record(since + timedelta(minutes=1), model="transformer"))
    with Stubber(client) as stub:
        stub.add_client_error("start_query", "AccessDeniedException", "not authorized to perform: logs:StartQuery")
        stub.add_response(
            "filter_log_events",
            {"events": [{"logStreamName": CANARY, "timestamp": _ms(since) + 60000, "message": line, "eventId": "e1"}]},
            {
                "logGroupName": GROUP,
                "startTime": _ms(since),
                "endTime": _ms(since) + 3600000 - 1,
                "filterPattern": "?prediction ?_aws",
            },
        )
        source = CloudWatchLogs(client, GROUP, since, since + timedelta(hours=1), api="auto")
        events = list(source.events())
    assert source.used_api == "FilterLogEvents"
    assert "AccessDeniedException" in source.notes[0]
    assert events[0].stream == CANARY
    report = analyse(events, notes=source.notes).report
    assert [(g.model, g.version) for g in report.by_lambda_version] == [("transformer", "4")]
    assert "read with FilterLogEvents instead" in report.notes[0]


class StubInsightsClient:
    """A stub of Logs Insights over an in-memory event list: windows (seconds, inclusive) and the row cap.

    Stands in only for the service behaviour moto does not implement, to test the window splitting.
    """

    def __init__(self, events: list[tuple[int, str]], max_rows: int) -> None:
        self.events = events  # (timestamp ms, message)
        self.max_rows = max_rows
        self.queries: list[tuple[int, int]] = []
        self._results: dict[str, list[list[dict[str, str]]]] = {}

    def start_query(self, **kw: Any) -> Mapping[str, Any]:
        start, end = kw["startTime"], kw["endTime"]
        self.queries.append((start, end))
        hits = [(i, ts, msg) for i, (ts, msg) in enumerate(self.events) if start * 1000 <= ts < (end + 1) * 1000]
        rows = [_row(datetime.fromtimestamp(ts / 1000, UTC), msg, LIVE, f"p{i}") for i, ts, msg in hits[: kw["limit"]]]
        qid = f"q{len(self.queries)}"
        self._results[qid] = rows
        return {"queryId": qid}

    def get_query_results(self, **kw: Any) -> Mapping[str, Any]:
        return {"status": "Complete", "results": self._results[kw["queryId"]]}

    def stop_query(self, **kw: Any) -> Mapping[str, Any]:
        return {"success": True}

    def filter_log_events(self, **kw: Any) -> Mapping[str, Any]:
        raise AssertionError("the Insights path must not call FilterLogEvents")


def test_insights_splits_windows_that_hit_the_row_cap(logfactory: ModuleType) -> None:
    since = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    lines = logfactory.make_lines([logfactory.Arm("baseline", n=40, positive=10)], start=since, duration_s=40)
    events = [
        (_ms(datetime.fromisoformat(json.loads(lines[i])["timestamp"].replace(",", ".").replace("+0000", "+00:00"))), m)
        for i in range(0, len(lines), 2)
        for m in (lines[i], lines[i + 1])
    ]
    stub = StubInsightsClient(events, max_rows=10)
    source = CloudWatchLogs(stub, GROUP, since, since + timedelta(seconds=60), api="insights", max_rows=10)
    read = list(source.events())
    assert len(stub.queries) > 1  # the cap forced splits
    report = analyse(read).report
    base = report.model("baseline")
    assert base is not None
    assert (base.requests, base.positive_rate.k) == (40, 10)  # nothing lost, overlaps de-duplicated by @ptr
    assert report.parse.ignored.get("duplicate", 0) == len(read) - 80


def test_insights_reports_a_second_it_cannot_split(logfactory: ModuleType) -> None:
    since = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    burst = [(_ms(since) + k, json.dumps(logfactory.prediction_record(since, model="baseline"))) for k in range(5)]
    stub = StubInsightsClient(burst, max_rows=3)
    source = CloudWatchLogs(stub, GROUP, since, since + timedelta(seconds=1), api="insights", max_rows=3)
    read = list(source.events())
    assert len(read) == 3
    assert "some were not read (use --cw-api filter)" in source.notes[0]


def test_events_keep_their_cloudwatch_identity() -> None:
    event = LogEvent(message="x", origin=f"{GROUP}:{LIVE}:p1", stream=LIVE, event_id="p1")
    assert event.origin.endswith(":p1")
