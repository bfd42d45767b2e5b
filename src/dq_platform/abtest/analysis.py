"""From parsed log records to the A/B report: per-model numbers, comparisons and the recommendation.

The comparison uses `auto` traffic by default: only there did the A/B split (a hash of doc_id or the
request id) choose the model, so the two arms see the same population of inputs. Explicit requests
(a caller pinning a model) are counted but left out of the tests unless asked for.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict

from dq_platform.abtest.decision import ArmFacts, Decision, DecisionRules, decide
from dq_platform.abtest.records import (
    CATEGORY_TEXT,
    IGNORED,
    METRICS_NAMESPACE,
    SKIPPED,
    USED,
    LogEvent,
    MetricBlob,
    ParseStats,
    Prediction,
    parse_event,
)
from dq_platform.abtest.sources import Window
from dq_platform.abtest.stats import ProportionTest, compare_proportions, wilson_interval

Traffic = Literal["auto", "all"]
CONFIDENCE_BINS = 10
# Candidate bucket widths for the "label shares over time" series, smallest first.
_BUCKETS_S = (1, 5, 15, 30, 60, 300, 900, 3600, 3 * 3600, 6 * 3600, 86400, 7 * 86400)
_MAX_BUCKETS = 48
UNATTRIBUTED = "(unattributed)"


class RateStats(BaseModel):
    model_config = ConfigDict(frozen=True)

    k: int
    n: int
    rate: float | None
    ci_low: float | None
    ci_high: float | None

    @classmethod
    def of(cls, k: int, n: int, confidence: float) -> RateStats:
        if n == 0:
            return cls(k=0, n=0, rate=None, ci_low=None, ci_high=None)
        ci = wilson_interval(k, n, confidence)
        return cls(k=k, n=n, rate=k / n, ci_low=ci.low, ci_high=ci.high)


class LatencyStats(BaseModel):
    model_config = ConfigDict(frozen=True)

    n: int
    mean: float
    p50: float
    p95: float
    p99: float
    max: float

    @classmethod
    def of(cls, values: list[float]) -> LatencyStats | None:
        if not values:
            return None
        arr = np.asarray(values, dtype=float)
        p50, p95, p99 = (float(v) for v in np.percentile(arr, [50, 95, 99]))
        return cls(n=len(values), mean=float(arr.mean()), p50=p50, p95=p95, p99=p99, max=float(arr.max()))


class ConfidenceStats(BaseModel):
    """Mean/median and a histogram over [0, 1] in CONFIDENCE_BINS equal bins (last bin closed)."""

    model_config = ConfigDict(frozen=True)

    n: int
    mean: float
    median: float
    histogram: list[int]

    @classmethod
    def of(cls, values: list[float]) -> ConfidenceStats | None:
        if not values:
            return None
        arr = np.asarray(values, dtype=float)
        counts, _ = np.histogram(arr, bins=CONFIDENCE_BINS, range=(0.0, 1.0))
        return cls(
            n=len(values),
            mean=float(arr.mean()),
            median=float(np.median(arr)),
            histogram=[int(c) for c in counts],
        )


class ModelStats(BaseModel):
    model_config = ConfigDict(frozen=True, protected_namespaces=())

    model: str
    source: Literal["logs", "emf"]
    requests: int
    successes: int
    client_errors: int
    server_errors: int
    error_rate: RateStats
    latency: LatencyStats | None
    labels: dict[str, int]
    positive_rate: RateStats
    confidence: ConfidenceStats | None
    model_versions: dict[str, int]
    fallbacks: int  # requests served by this model because the assigned one was not loaded


class GroupStats(BaseModel):
    """One row of the per-version views (model version, or the Lambda version that executed)."""

    model_config = ConfigDict(frozen=True, protected_namespaces=())

    model: str
    version: str
    requests: int
    server_errors: int
    error_rate: float | None
    p95_ms: float | None
    positive_rate: float | None


class ShadowStats(BaseModel):
    model_config = ConfigDict(frozen=True)

    primary: str
    shadow: str
    agreement: RateStats
    disagreements: dict[str, int]  # "primary label -> shadow label": count


class TimeBucket(BaseModel):
    model_config = ConfigDict(frozen=True)

    start: datetime
    model: str
    n: int
    positive: int


class EmfStats(BaseModel):
    """What the EMF metrics say per Model dimension: a cross-check of the log records."""

    model_config = ConfigDict(frozen=True)

    model: str
    invocations: int
    predictions: float
    errors: float
    latency_p95: float | None
    shadow_agreement: float | None


class ParseSummary(BaseModel):
    model_config = ConfigDict(frozen=True)

    events: int
    used: dict[str, int]
    ignored: dict[str, int]
    skipped: dict[str, int]
    problems: list[str]

    @property
    def skipped_total(self) -> int:
        return sum(self.skipped.values())


class Report(BaseModel):
    model_config = ConfigDict(frozen=True)

    generated_at: datetime
    since: datetime | None
    until: datetime | None
    first_event: datetime | None
    last_event: datetime | None
    sources: list[str]
    notes: list[str]
    traffic: Traffic
    rules: DecisionRules
    parse: ParseSummary
    requests_by_variant: dict[str, dict[str, int]]
    models: list[ModelStats]
    unattributed: dict[str, int]
    tests: list[ProportionTest]
    shadow: list[ShadowStats]
    by_model_version: list[GroupStats]
    by_lambda_version: list[GroupStats]
    timeline_bucket_s: int
    timeline: list[TimeBucket]
    emf: list[EmfStats]
    cold_starts: int
    decision: Decision

    def model(self, name: str) -> ModelStats | None:
        return next((m for m in self.models if m.model == name), None)


@dataclass
class Analysis:
    """The report plus the raw series the plots need (not part of the JSON report)."""

    report: Report
    latencies: dict[str, list[float]] = field(default_factory=dict)


def _attributed(p: Prediction) -> str | None:
    log = p.log
    if log.model:
        return log.model
    if log.requested_model and log.requested_model != "auto":
        return log.requested_model
    return None


def _bucket_width(first: datetime | None, last: datetime | None) -> int:
    if first is None or last is None:
        return _BUCKETS_S[0]
    span = max(1.0, (last - first).total_seconds())
    return next((b for b in _BUCKETS_S if span / b <= _MAX_BUCKETS), _BUCKETS_S[-1])


def _floor(when: datetime, width_s: int) -> datetime:
    ts = int(when.timestamp())
    return datetime.fromtimestamp(ts - ts % width_s, tz=UTC)


def _group_rows(preds: list[Prediction], key_of: str, positive_label: str) -> list[GroupStats]:
    groups: dict[tuple[str, str], list[Prediction]] = defaultdict(list)
    for p in preds:
        model = _attributed(p) or UNATTRIBUTED
        if key_of == "model" and model == UNATTRIBUTED:
            continue  # no model, so no model version; the Lambda-version view keeps these failures
        version = (p.log.model_version if key_of == "model" else p.executed_version) or "unknown"
        groups[(model, version)].append(p)
    rows: list[GroupStats] = []
    for (model, version), items in sorted(groups.items()):
        errors = sum(1 for p in items if p.log.status_code >= 500)
        ok = [p for p in items if p.log.status_code < 400]
        lat = [p.log.latency_ms for p in ok if p.log.latency_ms is not None]
        labelled = [p for p in ok if p.log.label]
        pos = sum(1 for p in labelled if p.log.label == positive_label)
        rows.append(
            GroupStats(
                model=model,
                version=version,
                requests=len(items),
                server_errors=errors,
                error_rate=errors / len(items),
                p95_ms=float(np.percentile(lat, 95)) if lat else None,
                positive_rate=pos / len(labelled) if labelled else None,
            )
        )
    return rows


def _model_stats(name: str, preds: list[Prediction], rules: DecisionRules) -> tuple[ModelStats, list[float]]:
    ok = [p for p in preds if p.log.status_code < 400]
    client = sum(1 for p in preds if 400 <= p.log.status_code < 500)
    server = sum(1 for p in preds if p.log.status_code >= 500)
    latencies = [p.log.latency_ms for p in ok if p.log.latency_ms is not None]
    labels = Counter(p.log.label for p in ok if p.log.label)
    labelled = sum(labels.values())
    confidences = [p.log.confidence for p in ok if p.log.confidence is not None]
    stats = ModelStats(
        model=name,
        source="logs",
        requests=len(preds),
        successes=len(ok),
        client_errors=client,
        server_errors=server,
        error_rate=RateStats.of(server, len(preds), rules.confidence),
        latency=LatencyStats.of(latencies),
        labels=dict(sorted(labels.items())),
        positive_rate=RateStats.of(labels.get(rules.positive_label, 0), labelled, rules.confidence),
        confidence=ConfidenceStats.of(confidences),
        model_versions=dict(sorted(Counter(p.log.model_version or "unknown" for p in preds).items())),
        fallbacks=sum(1 for p in preds if p.log.fallback_from),
    )
    return stats, sorted(latencies)


def _emf_stats(blobs: list[MetricBlob]) -> tuple[list[EmfStats], int, dict[str, list[float]]]:
    per: dict[str, list[MetricBlob]] = defaultdict(list)
    cold = 0
    for blob in blobs:
        cold += int(sum(blob.values.get("ColdStart", [])))
        model = blob.dimensions.get("Model")
        if model is not None:
            per[model].append(blob)
    rows: list[EmfStats] = []
    latencies: dict[str, list[float]] = {}
    for model, items in sorted(per.items()):
        lat = [v for b in items for v in b.values.get("Latency", [])]
        shadow = [v for b in items for v in b.values.get("ShadowAgreement", [])]
        latencies[model] = sorted(lat)
        rows.append(
            EmfStats(
                model=model,
                invocations=sum(1 for b in items if "Latency" in b.values),
                predictions=sum(v for b in items for v in b.values.get("Predictions", [])),
                errors=sum(v for b in items for v in b.values.get("Errors", [])),
                latency_p95=float(np.percentile(lat, 95)) if lat else None,
                shadow_agreement=float(np.mean(shadow)) / 100.0 if shadow else None,
            )
        )
    return rows, cold, latencies


def _emf_model_stats(row: EmfStats, latencies: list[float], rules: DecisionRules) -> ModelStats:
    """Stand-in numbers for a model seen only in EMF metrics (labels are not in metrics)."""
    errors = int(row.errors)
    return ModelStats(
        model=row.model,
        source="emf",
        requests=row.invocations,
        successes=int(row.predictions),
        client_errors=max(0, row.invocations - int(row.predictions) - errors),
        server_errors=errors,
        error_rate=RateStats.of(min(errors, row.invocations), row.invocations, rules.confidence),
        latency=LatencyStats.of(latencies),
        labels={},
        positive_rate=RateStats.of(0, 0, rules.confidence),
        confidence=None,
        model_versions={},
        fallbacks=0,
    )


def analyse(
    events: Iterable[LogEvent],
    rules: DecisionRules | None = None,
    window: Window | None = None,
    traffic: Traffic = "auto",
    sources: list[str] | None = None,
    notes: list[str] | None = None,
    namespace: str = METRICS_NAMESPACE,
    now: datetime | None = None,
) -> Analysis:
    rules = rules or DecisionRules()
    window = window or Window()
    stats = ParseStats()
    predictions: list[Prediction] = []
    blobs: list[MetricBlob] = []
    seen_ids: set[str] = set()
    for event in events:
        if event.event_id is not None:
            if event.event_id in seen_ids:
                stats.add("duplicate", event.origin)
                continue
            seen_ids.add(event.event_id)
        record = parse_event(event, stats, namespace)
        if record is None:
            continue
        if not window.contains(record.timestamp):
            kind = "prediction" if isinstance(record, Prediction) else "emf"
            stats.counts[kind] -= 1
            stats.add("outside_window", event.origin)
            continue
        if isinstance(record, Prediction):
            predictions.append(record)
        else:
            blobs.append(record)

    # Overview of all traffic, then the experiment population.
    by_variant: dict[str, Counter[str]] = defaultdict(Counter)
    for p in predictions:
        by_variant[_attributed(p) or UNATTRIBUTED][p.log.variant or "unknown"] += 1
    # A failed request may carry no variant (it failed before routing): keep it, so errors are never dropped.
    in_experiment = [p for p in predictions if traffic == "all" or p.log.variant in ("auto", None)]
    attributed: dict[str, list[Prediction]] = defaultdict(list)
    unattributed: Counter[str] = Counter()
    for p in in_experiment:
        name = _attributed(p)
        if name is None:
            unattributed["requests"] += 1
            unattributed[f"status {p.log.status_code}"] += 1
            if p.log.error:
                unattributed[f"error {p.log.error}"] += 1
        else:
            attributed[name].append(p)

    models: list[ModelStats] = []
    latencies: dict[str, list[float]] = {}
    for name in sorted(attributed, key=lambda n: (n not in (rules.control, rules.candidate), n)):
        model_stats, lat = _model_stats(name, attributed[name], rules)
        models.append(model_stats)
        latencies[name] = lat

    emf_rows, cold_starts, emf_latencies = _emf_stats(blobs)
    emf_notes: list[str] = []
    for row in emf_rows:
        if row.model in (rules.control, rules.candidate) and row.model not in attributed:
            models.append(_emf_model_stats(row, emf_latencies[row.model], rules))
            latencies[row.model] = emf_latencies[row.model]
            emf_notes.append(f"{row.model}: no prediction records, numbers from EMF metrics (all variants, no labels)")

    ctl = next((m for m in models if m.model == rules.control), None)
    cand = next((m for m in models if m.model == rules.candidate), None)
    error_test = compare_proportions(
        "server-error rate",
        rules.candidate,
        cand.server_errors if cand else 0,
        cand.requests if cand else 0,
        rules.control,
        ctl.server_errors if ctl else 0,
        ctl.requests if ctl else 0,
        alpha=rules.alpha,
        confidence=rules.confidence,
    )
    label_test = compare_proportions(
        f"{rules.positive_label} rate",
        rules.candidate,
        cand.positive_rate.k if cand else 0,
        cand.positive_rate.n if cand else 0,
        rules.control,
        ctl.positive_rate.k if ctl else 0,
        ctl.positive_rate.n if ctl else 0,
        alpha=rules.alpha,
        confidence=rules.confidence,
    )

    shadow_rows = _shadow(in_experiment, rules.confidence)
    pair = {rules.control, rules.candidate}
    shadow_n = sum(s.agreement.n for s in shadow_rows if {s.primary, s.shadow} == pair)
    shadow_k = sum(s.agreement.k for s in shadow_rows if {s.primary, s.shadow} == pair)

    decision = decide(
        rules,
        _facts(ctl),
        _facts(cand),
        error_test,
        label_test,
        shadow_n,
        shadow_k,
    )

    stamps = [p.timestamp for p in in_experiment if p.timestamp is not None]
    first, last = (min(stamps), max(stamps)) if stamps else (None, None)
    width = _bucket_width(first, last)
    timeline = _timeline(in_experiment, width, rules.positive_label)

    parse = ParseSummary(
        events=stats.total,
        used={c: stats.counts[c] for c in USED if stats.counts[c]},
        ignored={c: stats.counts[c] for c in IGNORED if stats.counts[c]},
        skipped={c: stats.counts[c] for c in SKIPPED if stats.counts[c]},
        problems=[f"{CATEGORY_TEXT[c]}: {problem}" for c in SKIPPED for problem in stats.problems.get(c, [])],
    )
    report = Report(
        generated_at=now or datetime.now(UTC),
        since=window.since,
        until=window.until,
        first_event=first,
        last_event=last,
        sources=list(sources or []),
        notes=[*(notes or []), *emf_notes],
        traffic=traffic,
        rules=rules,
        parse=parse,
        requests_by_variant={m: dict(sorted(c.items())) for m, c in sorted(by_variant.items())},
        models=models,
        unattributed=dict(sorted(unattributed.items())),
        tests=[label_test, error_test],
        shadow=shadow_rows,
        by_model_version=_group_rows(in_experiment, "model", rules.positive_label),
        by_lambda_version=_group_rows([p for p in in_experiment if p.executed_version], "lambda", rules.positive_label),
        timeline_bucket_s=width,
        timeline=timeline,
        emf=emf_rows,
        cold_starts=cold_starts,
        decision=decision,
    )
    return Analysis(report=report, latencies=latencies)


def _facts(stats: ModelStats | None) -> ArmFacts:
    if stats is None:
        return ArmFacts(requests=0, server_errors=0, latency_n=0, latency_p95_ms=None)
    return ArmFacts(
        requests=stats.requests,
        server_errors=stats.server_errors,
        latency_n=stats.latency.n if stats.latency else 0,
        latency_p95_ms=stats.latency.p95 if stats.latency else None,
    )


def _shadow(preds: list[Prediction], confidence: float) -> list[ShadowStats]:
    pairs: dict[tuple[str, str], list[Prediction]] = defaultdict(list)
    for p in preds:
        name = _attributed(p)
        if name and p.log.shadow_agree is not None and p.log.shadow_model:
            pairs[(name, p.log.shadow_model)].append(p)
    rows: list[ShadowStats] = []
    for (primary, shadow), items in sorted(pairs.items()):
        agree = sum(1 for p in items if p.log.shadow_agree)
        disagreements = Counter(f"{p.log.label} -> {p.log.shadow_label}" for p in items if not p.log.shadow_agree)
        rows.append(
            ShadowStats(
                primary=primary,
                shadow=shadow,
                agreement=RateStats.of(agree, len(items), confidence),
                disagreements=dict(sorted(disagreements.items())),
            )
        )
    return rows


def _timeline(preds: list[Prediction], width_s: int, positive_label: str) -> list[TimeBucket]:
    counts: dict[tuple[datetime, str], list[int]] = defaultdict(lambda: [0, 0])
    for p in preds:
        name = _attributed(p)
        if name is None or p.timestamp is None or p.log.status_code >= 400 or not p.log.label:
            continue
        cell = counts[(_floor(p.timestamp, width_s), name)]
        cell[0] += 1
        cell[1] += p.log.label == positive_label
    return [
        TimeBucket(start=start, model=model, n=n, positive=pos) for (start, model), (n, pos) in sorted(counts.items())
    ]
