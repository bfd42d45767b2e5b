"""Turn raw log lines (Powertools JSON records, EMF metric blobs, anything else) into typed records.

Logs are messy: Lambda platform lines (START/END/REPORT), records of other kinds, lines cut off by a
crash or a copy, prefixes added by exports. Parsing never stops on a bad line; it sorts every line into
a counted category so the report can say exactly what was used and what was skipped, and where.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

PREDICTION_MESSAGE = "prediction"
METRICS_NAMESPACE = "DQPlatform/Inference"
# Log streams of a Lambda function are named YYYY/MM/DD/[<executed version>]<id>.
_STREAM_VERSION_RE = re.compile(r"^\d{4}/\d{2}/\d{2}/\[([^\]]+)\]")
_MAX_EXAMPLES = 5


@dataclass(frozen=True)
class LogEvent:
    """One log event as a source hands it over; `origin` says where it came from (file:line, stream)."""

    message: str
    origin: str
    timestamp_ms: int | None = None
    stream: str | None = None
    event_id: str | None = None


class PredictionLog(BaseModel):
    """The "prediction" record of `inference.observability.record_prediction`. Unknown keys are ignored."""

    model_config = ConfigDict(extra="ignore", frozen=True, protected_namespaces=())

    status_code: int = Field(ge=100, le=599)
    model: str | None = None
    model_version: str | None = None
    requested_model: str | None = None
    variant: str | None = None
    label: str | None = None
    confidence: float | None = Field(default=None, ge=0.0, le=1.0)
    latency_ms: float | None = Field(default=None, ge=0.0)
    shadow_model: str | None = None
    shadow_model_version: str | None = None
    shadow_label: str | None = None
    shadow_agree: bool | None = None
    fallback_from: str | None = None
    request_id: str | None = None
    correlation_id: str | None = None
    cold_start: bool | None = None
    error: str | None = None

    @field_validator("model", "model_version", "variant", "label", "shadow_model", "shadow_label", mode="before")
    @classmethod
    def _text(cls, value: object) -> object:
        # Versions may be logged as numbers; blank strings mean "not known".
        if isinstance(value, int | float) and not isinstance(value, bool):
            return str(value)
        return None if isinstance(value, str) and not value.strip() else value


@dataclass(frozen=True)
class Prediction:
    log: PredictionLog
    timestamp: datetime | None
    # Lambda version that executed the request (from the log stream), e.g. "7" or "$LATEST".
    executed_version: str | None
    origin: str


@dataclass(frozen=True)
class MetricBlob:
    """One CloudWatch embedded-metric-format object (Powertools Metrics flushes one per invocation)."""

    namespace: str
    dimensions: dict[str, str]
    values: dict[str, list[float]]
    timestamp: datetime | None
    executed_version: str | None


@dataclass
class ParseStats:
    """Counts per category; `examples` keeps the first few origins of each kind of skipped line."""

    counts: Counter[str] = field(default_factory=Counter)
    examples: dict[str, list[str]] = field(default_factory=dict)
    problems: dict[str, list[str]] = field(default_factory=dict)

    def add(self, category: str, origin: str, problem: str | None = None) -> None:
        self.counts[category] += 1
        seen = self.examples.setdefault(category, [])
        if len(seen) < _MAX_EXAMPLES:
            seen.append(origin)
            if problem:
                self.problems.setdefault(category, []).append(f"{origin}: {problem}")

    @property
    def total(self) -> int:
        return sum(self.counts.values())


# Categories. USED lines feed the report; IGNORED lines are expected noise; SKIPPED lines are malformed.
USED = ("prediction", "emf")
IGNORED = ("blank", "non_json", "other_json", "emf_other_namespace", "outside_window", "duplicate")
SKIPPED = ("truncated_json", "invalid_prediction", "invalid_emf")
CATEGORY_TEXT = {
    "prediction": "prediction records",
    "emf": "EMF metric blobs",
    "blank": "blank lines",
    "non_json": "plain-text lines (e.g. Lambda START/END/REPORT)",
    "other_json": "other JSON log records",
    "emf_other_namespace": "EMF blobs of other namespaces",
    "outside_window": "events outside --since/--until",
    "duplicate": "duplicate events (same CloudWatch event id)",
    "truncated_json": "truncated or invalid JSON",
    "invalid_prediction": "prediction records with invalid fields",
    "invalid_emf": "malformed EMF blobs",
}


def executed_version(stream: str | None) -> str | None:
    if not stream:
        return None
    match = _STREAM_VERSION_RE.match(stream)
    return match.group(1) if match else None


def parse_timestamp(value: object) -> datetime | None:
    """Powertools' default ("2024-05-01 12:00:00,123+0000"), ISO 8601/RFC 3339, or epoch seconds/ms."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        seconds = value / 1000.0 if value > 1e11 else float(value)
        try:
            return datetime.fromtimestamp(seconds, tz=UTC)
        except (OverflowError, OSError, ValueError):
            return None
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip()
    if text.isdigit():
        return parse_timestamp(int(text))
    # Python 3.11 reads Powertools' "2024-05-01 12:00:00,123+0000", RFC 3339 and Logs Insights'
    # "2024-05-01 12:00:00.123" (UTC) directly.
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _json_object(message: str) -> dict[str, Any] | str | None:
    """The JSON object in a line (after any prefix such as an export timestamp); "bad" if it is broken."""
    start = message.find("{")
    if start < 0:
        return None
    try:
        value = json.loads(message[start:])
    except ValueError:
        return "bad"
    return value if isinstance(value, dict) else None


def _emf(obj: dict[str, Any], event: LogEvent, namespace: str, stats: ParseStats) -> MetricBlob | None:
    meta = obj.get("_aws")
    directives = meta.get("CloudWatchMetrics") if isinstance(meta, dict) else None
    if not isinstance(meta, dict) or not isinstance(directives, list) or not directives:
        stats.add("invalid_emf", event.origin, "no _aws.CloudWatchMetrics list")
        return None
    ours = [d for d in directives if isinstance(d, dict) and d.get("Namespace") == namespace]
    if not ours:
        stats.add("emf_other_namespace", event.origin)
        return None
    dims: dict[str, str] = {}
    values: dict[str, list[float]] = {}
    for directive in ours:
        for dim_set in directive.get("Dimensions") or []:
            for name in dim_set if isinstance(dim_set, list) else []:
                if isinstance(name, str) and name in obj:
                    dims[name] = str(obj[name])
        for metric in directive.get("Metrics") or []:
            name = metric.get("Name") if isinstance(metric, dict) else None
            if not isinstance(name, str) or name not in obj:
                continue
            raw = obj[name]
            items = raw if isinstance(raw, list) else [raw]
            if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in items):
                stats.add("invalid_emf", event.origin, f"metric {name!r} has non-numeric values")
                return None
            values[name] = [float(v) for v in items]
    stamp = parse_timestamp(meta.get("Timestamp")) or parse_timestamp(event.timestamp_ms)
    stats.add("emf", event.origin)
    return MetricBlob(namespace, dims, values, stamp, executed_version(event.stream))


def parse_event(
    event: LogEvent, stats: ParseStats, namespace: str = METRICS_NAMESPACE
) -> Prediction | MetricBlob | None:
    """Classify one event into `stats`; return the record it carries, if any."""
    if not event.message.strip():
        stats.add("blank", event.origin)
        return None
    obj = _json_object(event.message)
    if obj == "bad":
        stats.add("truncated_json", event.origin, "not a complete JSON object")
        return None
    if not isinstance(obj, dict):
        stats.add("non_json", event.origin)
        return None
    # Some pipelines wrap the application's line into {"message": "<json>"}; unwrap one level.
    inner = obj.get("message")
    if "_aws" not in obj and isinstance(inner, str) and inner.lstrip().startswith("{"):
        nested = _json_object(inner)
        if isinstance(nested, dict):
            obj = nested
    if "_aws" in obj:
        return _emf(obj, event, namespace, stats)
    if obj.get("message") != PREDICTION_MESSAGE:
        stats.add("other_json", event.origin)
        return None
    try:
        log = PredictionLog.model_validate(obj)
    except ValidationError as exc:
        fields = sorted({".".join(str(p) for p in err["loc"]) or "record" for err in exc.errors()})
        stats.add("invalid_prediction", event.origin, f"invalid field(s): {', '.join(fields)}")
        return None
    stamp = parse_timestamp(obj.get("timestamp")) or parse_timestamp(event.timestamp_ms)
    stats.add("prediction", event.origin)
    return Prediction(log, stamp, executed_version(event.stream), event.origin)
