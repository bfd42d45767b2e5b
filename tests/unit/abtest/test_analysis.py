"""Known answers: generated logs with exact counts go in, exact numbers and the right call come out."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from dq_platform.abtest.analysis import analyse
from dq_platform.abtest.decision import ERROR_BUDGET, ERROR_RATE, LABEL_SHIFT, LATENCY, TRAFFIC, DecisionRules
from dq_platform.abtest.records import LogEvent
from dq_platform.abtest.sources import Window

from .logfactory import Arm, dumps, emf_blob, make_lines, prediction_record

pytestmark = pytest.mark.unit
T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
LATENCIES = tuple(float(v) for v in range(1, 101))  # 1..100 ms: percentiles known in closed form


def _events(lines: list[str], **kw: object) -> list[LogEvent]:
    return [LogEvent(message=line, origin=f"mem:{i + 1}", **kw) for i, line in enumerate(lines)]  # type: ignore[arg-type]


def test_significant_highrisk_difference_is_found_exactly() -> None:
    lines = make_lines(
        [
            Arm("baseline", n=1000, positive=300, latencies=LATENCIES),
            Arm("transformer", n=400, positive=180, latencies=LATENCIES, confidence=0.8),
        ]
    )
    report = analyse(_events(lines)).report
    base, cand = report.model("baseline"), report.model("transformer")
    assert base is not None
    assert cand is not None
    assert (base.requests, base.labels, cand.requests, cand.labels) == (
        1000,
        {"HighRisk": 300, "LowRisk": 700},
        400,
        {"HighRisk": 180, "LowRisk": 220},
    )
    assert cand.latency is not None
    assert (cand.latency.p50, cand.latency.p95, cand.latency.p99) == pytest.approx((50.5, 95.05, 99.01))
    assert cand.confidence is not None
    assert cand.confidence.mean == pytest.approx(0.8)
    assert cand.confidence.histogram[8] == 400  # 0.8 falls in [0.8, 0.9)
    label_test = report.tests[0]
    assert label_test.metric == "HighRisk rate"
    assert (label_test.k_a, label_test.n_a, label_test.k_b, label_test.n_b) == (180, 400, 300, 1000)
    assert label_test.difference == pytest.approx(0.15)
    assert label_test.significant
    assert label_test.p_value < 1e-6
    assert report.decision.recommendation == "keep"
    k2 = next(c for c in report.decision.checks if c.rule == LABEL_SHIFT)
    assert k2.outcome == "fail"
    assert report.decision.summary == (
        "Keep the current split: the HighRisk rate shifted by +15.00 pp (transformer 45.00% vs baseline 30.00%, "
        "significant), more than the 5 pp tolerated."
    )
    assert report.parse.used == {"prediction": 1400, "emf": 1400}
    assert report.parse.skipped == {}


def test_null_difference_is_not_significant_and_promotes() -> None:
    lines = make_lines(
        [
            Arm("baseline", n=1000, positive=300, latencies=LATENCIES, shadow_every=4, shadow_disagree_every=20),
            Arm("transformer", n=400, positive=120, latencies=LATENCIES, shadow_every=4, shadow_disagree_every=20),
        ]
    )
    report = analyse(_events(lines)).report
    label_test, error_test = report.tests
    assert label_test.difference == pytest.approx(0.0)
    assert label_test.p_value == pytest.approx(1.0)
    assert not label_test.significant
    assert error_test.k_a == error_test.k_b == 0
    assert not error_test.significant
    # Shadow: every 4th success shadowed (250 + 100), every 20th of those disagreed (12 + 5).
    pairs = {(s.primary, s.shadow): (s.agreement.k, s.agreement.n) for s in report.shadow}
    assert pairs == {("baseline", "transformer"): (238, 250), ("transformer", "baseline"): (95, 100)}
    assert report.decision.recommendation == "promote"
    assert [c.outcome for c in report.decision.checks] == ["pass"] * 6


def test_error_regression_rolls_back() -> None:
    lines = make_lines([Arm("baseline", n=1000, positive=300), Arm("transformer", n=400, positive=120, errors=12)])
    report = analyse(_events(lines)).report
    cand = report.model("transformer")
    assert cand is not None
    assert (cand.server_errors, cand.error_rate.rate) == (12, pytest.approx(0.03))
    error_test = report.tests[1]
    assert error_test.test.startswith("Fisher")  # 12 expected-small cells against 0 errors
    assert error_test.significant
    assert report.decision.recommendation == "roll back"
    failed = {c.rule for c in report.decision.checks if c.outcome == "fail"}
    assert failed == {ERROR_RATE, ERROR_BUDGET}  # 3.00%, Wilson lower bound 1.7% > 1% budget
    assert report.decision.reasons == [
        "transformer's server-error rate is significantly higher than baseline's "
        "(transformer 3.00% (12/400), baseline 0.00% (0/1000), p < 0.0001)",
        "transformer's server-error rate is over the 1.00% budget (12/400 errors, lower 95% bound 1.72%)",
    ]
    assert "weight to 0" in report.decision.next_step


def test_latency_over_budget_rolls_back() -> None:
    lines = make_lines(
        [Arm("baseline", n=300, positive=90), Arm("transformer", n=300, positive=90, latencies=(1500.0,))]
    )
    report = analyse(_events(lines), rules=DecisionRules(latency_budget_ms=1000)).report
    r3 = next(c for c in report.decision.checks if c.rule == LATENCY)
    assert r3.outcome == "fail"
    assert (r3.check, r3.measured, r3.threshold) == (
        "transformer's p95 latency",
        "p95 1500.0 ms over 300 successful requests",
        "at most 1000 ms (from 30 requests)",
    )
    assert report.decision.recommendation == "roll back"
    assert (
        report.decision.summary
        == "Roll back transformer: transformer's p95 latency is 1500.0 ms, over the 1000 ms budget."
    )


def test_too_little_traffic_keeps() -> None:
    lines = make_lines([Arm("baseline", n=500, positive=150), Arm("transformer", n=50, positive=15)])
    report = analyse(_events(lines)).report
    assert report.decision.recommendation == "keep"
    assert [c.rule for c in report.decision.checks if c.outcome == "fail"] == [TRAFFIC]
    # Plain words: what was checked, the measured value and the threshold; no internal ids, no "failed".
    assert report.decision.summary == (
        "Keep the current split: not enough traffic yet (transformer arm: 50 requests, 200 needed)."
    )
    assert report.decision.next_step == (
        "Leave the weights as they are and re-run the report once each arm has at least 200 requests."
    )
    traffic = next(c for c in report.decision.checks if c.rule == TRAFFIC)
    assert (traffic.check, traffic.measured, traffic.threshold) == (
        "requests per arm",
        "baseline 500, transformer 50",
        "at least 200 each",
    )


def test_only_auto_traffic_is_compared_unless_asked() -> None:
    lines = make_lines(
        [
            Arm("baseline", n=300, positive=90),
            Arm("transformer", n=300, positive=90),
            Arm("transformer", n=100, positive=100, variant="explicit"),
        ]
    )
    auto = analyse(_events(lines)).report
    assert auto.requests_by_variant["transformer"] == {"auto": 300, "explicit": 100}
    cand = auto.model("transformer")
    assert cand is not None
    assert cand.requests == 300
    assert auto.tests[0].difference == pytest.approx(0.0)
    every = analyse(_events(lines), traffic="all").report
    cand_all = every.model("transformer")
    assert cand_all is not None
    assert cand_all.requests == 400
    assert cand_all.positive_rate.k == 190


def test_unattributed_errors_are_counted_apart() -> None:
    lines = make_lines([Arm("baseline", n=10, positive=3)])
    lines.append(dumps(prediction_record(T0, model=None, status_code=422, extra={"error": "validation_error"})))
    lines.append(dumps(prediction_record(T0, model=None, status_code=503, extra={"error": "model_unavailable"})))
    lines.append(dumps(prediction_record(T0, model=None, status_code=503, extra={"requested_model": "transformer"})))
    report = analyse(_events(lines)).report
    assert report.unattributed == {
        "error model_unavailable": 1,
        "error validation_error": 1,
        "requests": 2,
        "status 422": 1,
        "status 503": 1,
    }
    cand = report.model("transformer")
    assert cand is not None
    assert (cand.requests, cand.server_errors) == (1, 1)  # attributed through requested_model


def test_window_filters_and_duplicates_are_dropped() -> None:
    lines = make_lines([Arm("baseline", n=100, positive=30)], start=T0, duration_s=100)
    window = Window(T0 + timedelta(seconds=50), T0 + timedelta(seconds=200))
    report = analyse(_events(lines), window=window).report
    base = report.model("baseline")
    assert base is not None
    assert 40 <= base.requests <= 52
    assert report.parse.ignored["outside_window"] == 2 * (100 - base.requests)
    events = [LogEvent(message=line, origin="cw", event_id=str(i % 20)) for i, line in enumerate(lines[:40])]
    dup = analyse(events).report
    assert dup.parse.ignored == {"duplicate": 20}


def test_per_version_views() -> None:
    lines = make_lines(
        [Arm("baseline", n=100, positive=30, version="b1"), Arm("baseline", n=50, positive=5, version="b2")]
    )
    events = [
        LogEvent(message=line, origin="cw", stream=f"2024/05/01/[{7 if i % 3 else 8}]abc", event_id=str(i))
        for i, line in enumerate(lines)
    ]
    report = analyse(events).report
    by_model_version = {(g.model, g.version): g.requests for g in report.by_model_version}
    assert by_model_version == {("baseline", "b1"): 100, ("baseline", "b2"): 50}
    by_lambda = {g.version: g.requests for g in report.by_lambda_version}
    assert sum(by_lambda.values()) == 150
    assert set(by_lambda) == {"7", "8"}


def test_timeline_buckets_count_positive_labels() -> None:
    lines = make_lines([Arm("baseline", n=600, positive=180)], duration_s=6 * 3600)
    report = analyse(_events(lines)).report
    assert report.timeline_bucket_s == 900  # 6 h span -> 24 buckets of 15 min
    assert sum(b.n for b in report.timeline) == 600
    assert sum(b.positive for b in report.timeline) == 180
    assert all(b.start.minute % 15 == 0 for b in report.timeline)


def test_emf_only_input_still_gives_errors_and_latency() -> None:
    lines = [dumps(emf_blob(T0, "baseline", 200, float(v), None)) for v in range(1, 301)]
    lines += [dumps(emf_blob(T0, "transformer", 500 if v <= 3 else 200, float(v), None)) for v in range(1, 301)]
    report = analyse(_events(lines)).report
    cand = report.model("transformer")
    assert cand is not None
    assert (cand.source, cand.requests, cand.server_errors) == ("emf", 300, 3)
    assert cand.latency is not None
    assert cand.latency.p95 == pytest.approx(float(np.percentile(np.arange(1, 301), 95)))
    assert any("numbers from EMF" in n for n in report.notes)
    k2 = next(c for c in report.decision.checks if c.rule == LABEL_SHIFT)
    assert k2.outcome == "not evaluated"
    assert report.decision.recommendation == "keep"


def test_emf_cross_check_matches_the_records() -> None:
    lines = make_lines([Arm("baseline", n=200, positive=60, errors=4), Arm("transformer", n=100, positive=30)])
    report = analyse(_events(lines)).report
    emf = {e.model: (e.invocations, e.predictions, e.errors) for e in report.emf}
    assert emf == {"baseline": (200, 196.0, 4.0), "transformer": (100, 100.0, 0.0)}


def test_empty_input_gives_an_empty_report_that_keeps() -> None:
    report = analyse([]).report
    assert report.models == []
    assert report.parse.events == 0
    assert report.decision.recommendation == "keep"
    assert {c.rule: c.outcome for c in report.decision.checks}[TRAFFIC] == "fail"
    assert report.decision.summary == (
        "Keep the current split: not enough traffic yet (baseline arm: 0 requests, transformer arm: 0 requests, "
        "200 each needed); the HighRisk rate cannot be compared yet: no successful transformer predictions."
    )
