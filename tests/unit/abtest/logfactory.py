"""Generated inference logs with known answers, in the exact shape the API writes.

Each request becomes the two lines Powertools writes per /predict invocation: the Logger's "prediction"
record (the keys of inference.observability.record_prediction plus Powertools' own) and the Metrics EMF blob. Counts are
exact by construction (labels and errors are assigned, not sampled), so tests can assert exact numbers.
"""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

SERVICE = "enterprise-production-ml-infer"
NAMESPACE = "DQPlatform/Inference"
_SEP = (",", ":")


@dataclass(frozen=True)
class Arm:
    """One model's traffic: `n` requests, `positive` of them HighRisk, `errors` of them HTTP 500."""

    model: str
    n: int
    positive: int
    errors: int = 0
    version: str = "20240501T000000Z-aaaa"
    latencies: tuple[float, ...] = (5.0,)  # cycled over the successful requests
    variant: str = "auto"
    shadow_every: int = 0  # every k-th successful request also ran the other model
    shadow_disagree_every: int = 0  # of those, every k-th disagreed
    confidence: float = 0.9


def _powertools_time(when: datetime) -> str:
    return when.strftime("%Y-%m-%d %H:%M:%S,") + f"{when.microsecond // 1000:03d}+0000"


def prediction_record(
    when: datetime,
    *,
    model: str | None,
    status_code: int = 200,
    label: str | None = "LowRisk",
    confidence: float | None = 0.9,
    latency_ms: float = 5.0,
    version: str | None = "v1",
    variant: str = "auto",
    request_id: str = "r",
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    record: dict[str, Any] = {
        "level": "INFO",
        "location": "_record_prediction:304",
        "message": "prediction",
        "timestamp": _powertools_time(when),
        "service": SERVICE,
        "cold_start": False,
        "function_name": SERVICE,
        "function_memory_size": 2048,
        "function_arn": f"arn:aws:lambda:eu-west-1:123456789012:function:{SERVICE}:live",
        "function_request_id": request_id,
        "correlation_id": request_id,
        "request_id": request_id,
        "model": model,
        "model_version": version if model else None,
        "variant": variant,
        "label": label if status_code < 400 else None,
        "confidence": confidence if status_code < 400 else None,
        "latency_ms": latency_ms,
        "status_code": status_code,
        "text_sha256": hashlib.sha256(request_id.encode()).hexdigest(),
        "text_length": 120,
    }
    record.update(extra or {})
    return record


def emf_blob(
    when: datetime, model: str | None, status_code: int, latency_ms: float, agree: bool | None
) -> dict[str, Any]:
    metrics = [{"Name": "Latency", "Unit": "Milliseconds"}]
    blob: dict[str, Any] = {"Model": model or "none", "service": SERVICE, "Latency": [latency_ms]}
    if status_code < 400:
        metrics.append({"Name": "Predictions", "Unit": "Count"})
        blob["Predictions"] = [1.0]
    if status_code >= 500:
        metrics.append({"Name": "Errors", "Unit": "Count"})
        blob["Errors"] = [1.0]
    if agree is not None:
        metrics.append({"Name": "ShadowAgreement", "Unit": "Percent"})
        blob["ShadowAgreement"] = [100.0 if agree else 0.0]
    blob["_aws"] = {
        "Timestamp": int(when.timestamp() * 1000),
        "CloudWatchMetrics": [{"Namespace": NAMESPACE, "Dimensions": [["Model", "service"]], "Metrics": metrics}],
    }
    return blob


def dumps(obj: dict[str, Any]) -> str:
    return json.dumps(obj, separators=_SEP)


def arm_requests(
    arm: Arm, other: str, start: datetime, spacing_s: float, seed: int
) -> list[tuple[datetime, list[str]]]:
    """(time, lines) per request of one arm; labels/errors shuffled but with exact totals."""
    rng = random.Random(seed)
    ok = arm.n - arm.errors
    if not 0 <= arm.positive <= ok:
        raise ValueError("positive must fit in the successful requests")
    outcomes = ["HighRisk"] * arm.positive + ["LowRisk"] * (ok - arm.positive) + ["ERROR"] * arm.errors
    rng.shuffle(outcomes)
    out: list[tuple[datetime, list[str]]] = []
    success_index = 0
    shadow_index = 0
    for i, outcome in enumerate(outcomes):
        when = start + timedelta(seconds=spacing_s * i + rng.random() * spacing_s)
        rid = f"{arm.model}-{seed}-{i}"
        if outcome == "ERROR":
            rec = prediction_record(
                when,
                model=arm.model,
                status_code=500,
                label=None,
                version=arm.version,
                variant=arm.variant,
                request_id=rid,
                latency_ms=arm.latencies[0],
                extra={"error": "internal_error"},
            )
            out.append((when, [dumps(rec), dumps(emf_blob(when, arm.model, 500, arm.latencies[0], None))]))
            continue
        latency = arm.latencies[success_index % len(arm.latencies)]
        success_index += 1
        extra: dict[str, Any] = {}
        agree: bool | None = None
        if arm.shadow_every and success_index % arm.shadow_every == 0:
            shadow_index += 1
            agree = not (arm.shadow_disagree_every and shadow_index % arm.shadow_disagree_every == 0)
            shadow_label = outcome if agree else ("LowRisk" if outcome == "HighRisk" else "HighRisk")
            extra = {
                "shadow_model": other,
                "shadow_model_version": "v-other",
                "shadow_label": shadow_label,
                "shadow_agree": agree,
            }
        rec = prediction_record(
            when,
            model=arm.model,
            label=outcome,
            confidence=arm.confidence,
            latency_ms=latency,
            version=arm.version,
            variant=arm.variant,
            request_id=rid,
            extra=extra,
        )
        out.append((when, [dumps(rec), dumps(emf_blob(when, arm.model, 200, latency, agree))]))
    return out


def make_lines(arms: list[Arm], start: datetime | None = None, duration_s: float = 3600.0, seed: int = 0) -> list[str]:
    """All arms interleaved in time order over `duration_s`, two lines per request."""
    start = start or datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    names = [a.model for a in arms]
    requests: list[tuple[datetime, list[str]]] = []
    for k, arm in enumerate(arms):
        other = next((n for n in names if n != arm.model), "baseline")
        requests += arm_requests(arm, other, start, duration_s / max(1, arm.n), seed + k)
    requests.sort(key=lambda r: r[0])
    return [line for _, lines in requests for line in lines]


def write_log(path: Any, lines: list[str]) -> Any:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
