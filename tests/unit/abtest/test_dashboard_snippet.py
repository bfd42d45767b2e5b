"""stacks/snippets/ab-dashboard.json: valid DashboardBody, consistent with what the API emits."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from dq_platform.abtest.records import METRICS_NAMESPACE, PredictionLog

pytestmark = pytest.mark.unit
SNIPPET = Path(__file__).resolve().parents[3] / "stacks" / "snippets" / "ab-dashboard.json"
VALUES = {
    "ProjectPrefix": "enterprise",
    "EnvName": "production",
    "FunctionName": "enterprise-production-ml-infer",
    "AWS::Region": "eu-west-1",
    "AWS::AccountId": "123456789012",
    "AWS::Partition": "aws",
}
# What inference.observability.record_prediction publishes plus Powertools' ColdStart.
EMF_METRICS = {"Latency", "Predictions", "Errors", "ShadowAgreement", "ColdStart"}
EMF_DIMENSIONS = {"Model", "service"}


def _body() -> dict[str, Any]:
    text = SNIPPET.read_text()
    body = re.sub(r"\$\{([^}]+)\}", lambda m: VALUES[m.group(1)], text)
    parsed: dict[str, Any] = json.loads(body)
    return parsed


def _metric_rows(body: dict[str, Any]) -> list[tuple[dict[str, Any], list[Any]]]:
    return [(w, row) for w in body["widgets"] if w["type"] == "metric" for row in w["properties"]["metrics"]]


def test_only_known_placeholders_are_used() -> None:
    used = set(re.findall(r"\$\{([^}]+)\}", SNIPPET.read_text()))
    assert used <= set(VALUES)
    assert {"ProjectPrefix", "EnvName", "FunctionName"} <= used
    assert "${!" not in SNIPPET.read_text()


def test_layout_fits_the_grid_without_overlaps() -> None:
    cells: set[tuple[int, int]] = set()
    for w in _body()["widgets"]:
        assert w["x"] + w["width"] <= 24
        for x in range(w["x"], w["x"] + w["width"]):
            for y in range(w["y"], w["y"] + w["height"]):
                assert (x, y) not in cells, f"widget {w['properties'].get('title')} overlaps"
                cells.add((x, y))


def test_per_model_metrics_match_the_api_emf() -> None:
    models: set[str] = set()
    for _, row in _metric_rows(_body()):
        if not isinstance(row[0], str) or row[0] != METRICS_NAMESPACE:
            continue
        plain = [x for x in row if not isinstance(x, dict)]
        assert plain[1] in EMF_METRICS
        dims = dict(zip(plain[2::2], plain[3::2], strict=True))
        assert set(dims) == EMF_DIMENSIONS
        assert dims["service"] == VALUES["FunctionName"]
        models.add(dims["Model"])
    assert models == {"baseline", "transformer"}


def test_per_version_views_use_the_live_alias_and_executed_version() -> None:
    body = _body()
    alias = f"{VALUES['FunctionName']}:live"
    lambda_rows = [row for _, row in _metric_rows(body) if row[0] == "AWS/Lambda"]
    assert lambda_rows
    for row in lambda_rows:
        dims = dict(zip(row[2:-1:2], row[3:-1:2], strict=True))
        assert dims == {"FunctionName": VALUES["FunctionName"], "Resource": alias}
    searches = [
        row[0]["expression"]
        for _, row in _metric_rows(body)
        if isinstance(row[0], dict) and "SEARCH" in row[0]["expression"]
    ]
    assert len(searches) == 3
    for expr in searches:
        assert "ExecutedVersion" in expr
        assert f'Resource="{alias}"' in expr


def test_metric_math_references_existing_ids() -> None:
    for widget in _body()["widgets"]:
        if widget["type"] != "metric":
            continue
        rows = widget["properties"]["metrics"]
        ids = {opt["id"] for row in rows for opt in row if isinstance(opt, dict) and "id" in opt}
        for row in rows:
            if isinstance(row[0], dict) and "expression" in row[0] and "SEARCH" not in row[0]["expression"]:
                refs = set(re.findall(r"\b([a-z][a-z0-9]*)\b", row[0]["expression"])) - {"fill"}
                assert refs <= ids, (widget["properties"]["title"], refs - ids)


def test_log_queries_use_fields_the_prediction_record_has() -> None:
    known = set(PredictionLog.model_fields) | {"message"}
    queries = [w["properties"]["query"] for w in _body()["widgets"] if w["type"] == "log"]
    assert len(queries) == 4
    for query in queries:
        assert query.startswith(f"SOURCE '/aws/lambda/{VALUES['FunctionName']}' | filter message = \"prediction\"")
        body = re.sub(r'"[^"]*"', "", query.split("|", 1)[1])  # drop string literals
        words = set(re.findall(r"\b([a-z_]+)\b", body))
        functions = {"filter", "and", "stats", "count", "as", "by", "pct", "sort", "asc", "ispresent", "bin", "h"}
        fields = words - functions - {"predictions", "requests", "highrisk", "p50", "p95", "p99"}
        assert fields <= known, fields - known


def test_alarm_widget_names_the_canary_alarms() -> None:
    alarms = next(w for w in _body()["widgets"] if w["type"] == "alarm")["properties"]["alarms"]
    names = [a.rsplit(":", 1)[1] for a in alarms]
    assert names == [
        f"{VALUES['FunctionName']}-{n}"
        for n in ("live-errors", "new-version-errors", "live-latency", "new-version-latency")
    ]


def test_alarm_names_match_the_inference_stack() -> None:
    stack = SNIPPET.parents[1] / "inference.yaml"
    if not stack.exists():
        pytest.skip("stacks/inference.yaml not present")
    text = stack.read_text()
    for suffix in ("live-errors", "new-version-errors", "live-latency", "new-version-latency"):
        assert f'AlarmName: !Sub "${{ProjectPrefix}}-${{EnvName}}-ml-infer-{suffix}"' in text
