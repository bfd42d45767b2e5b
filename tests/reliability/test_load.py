"""Concurrent load on a local `dqp serve` (loopback, bounded threads), both models.

DQP_LOAD_REQUESTS (default 10,000) requests from DQP_LOAD_THREADS client threads on keep-alive
connections: half pinned to the baseline, half to the transformer, with `auto` and `explain` mixed in.
Every answer must be a 200 from the model asked for, the log file (`--log-file`) must hold one
"prediction" record per request, and the server's RSS must stay flat after warm-up. Latency
percentiles per model and RSS are printed and written to build/reliability/load.json.
"""

from __future__ import annotations

import http.client
import json
import os
import statistics
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import psutil
import pytest

from dq_platform.sample_data import generate_clauses
from tests.reliability.support import ROOT, dqp_serve, scrubbed_env

pytestmark = [pytest.mark.reliability, pytest.mark.integration]

REQUESTS = int(os.environ.get("DQP_LOAD_REQUESTS", "10000"))
THREADS = int(os.environ.get("DQP_LOAD_THREADS", "8"))
WARMUP_SHARE = 0.1
# RSS may grow after warm-up by at most this much (allocator arenas, tokenizer caches); a leak of even
# 10 KB per request would be ~100 MB over the run.
MAX_RSS_GROWTH_MB = 48.0
STATS = ROOT / "build" / "reliability" / "load.json"


def _payload(i: int, text: str) -> dict[str, Any]:
    model = "baseline" if i % 2 == 0 else "transformer"
    if i % 10 == 9:
        model = "auto"
    return {"text": text, "model": model, "explain": i % 50 == 0, "doc_id": f"LOAD-{i:06d}"}


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


class RssMonitor(threading.Thread):
    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.process = psutil.Process(pid)
        self.samples: list[tuple[int, float]] = []  # (requests done, RSS MB)
        self.done = 0
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.wait(0.25):
            self.samples.append((self.done, self.process.memory_info().rss / 2**20))

    def stop(self) -> None:
        self._halt.set()
        self.join(timeout=5)


def test_ten_thousand_requests_no_errors_bounded_memory(models_root: Path, tmp_path: Path) -> None:
    texts = [c["text"] for c in generate_clauses(500, seed=23)]
    log_file = tmp_path / "load.log"
    env = scrubbed_env(EXPLAIN_BUDGET_SECONDS="0.5")
    with dqp_serve(models_root, tmp_path, env=env, args=["--log-file", str(log_file)]) as served:
        host, port = "127.0.0.1", int(served.url.rsplit(":", 1)[1])
        monitor = RssMonitor(served.proc.pid)
        next_index = iter(range(REQUESTS))
        lock = threading.Lock()
        latencies: dict[str, list[float]] = {"baseline": [], "transformer": []}
        outcomes: Counter[str] = Counter()
        failures: list[str] = []

        def worker() -> None:
            conn = http.client.HTTPConnection(host, port, timeout=60)
            try:
                while True:
                    with lock:
                        i = next(next_index, None)
                    if i is None:
                        return
                    payload = _payload(i, texts[i % len(texts)])
                    body = json.dumps(payload).encode()
                    started = time.perf_counter()
                    conn.request("POST", "/predict", body=body, headers={"Content-Type": "application/json"})
                    resp = conn.getresponse()
                    data = resp.read()
                    elapsed_ms = (time.perf_counter() - started) * 1000
                    answered = resp.getheader("X-Model") or "none"
                    with lock:
                        monitor.done += 1
                        outcomes[f"{resp.status}"] += 1
                        if resp.status != 200 or (payload["model"] != "auto" and answered != payload["model"]):
                            failures.append(f"{i}: {resp.status} {answered} {data[:200]!r}")
                        else:
                            latencies[answered].append(elapsed_ms)
            finally:
                conn.close()

        monitor.start()
        started = time.monotonic()
        threads = [threading.Thread(target=worker) for _ in range(THREADS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.monotonic() - started
        monitor.stop()
        assert served.proc.poll() is None, "dqp serve died under load"

    records = [json.loads(line) for line in log_file.read_text().splitlines() if '"prediction"' in line]
    predictions = [r for r in records if r.get("message") == "prediction"]
    warm = [mb for done, mb in monitor.samples if done >= WARMUP_SHARE * REQUESTS]
    rss_start, rss_end, rss_peak = warm[0], warm[-1], max(mb for _, mb in monitor.samples)
    stats = {
        "requests": REQUESTS,
        "threads": THREADS,
        "wall_s": round(wall, 1),
        "throughput_rps": round(REQUESTS / wall, 1),
        "status": dict(outcomes),
        "errors": len(failures),
        "latency_ms": {
            model: {
                "n": len(values),
                "p50": round(statistics.median(values), 2),
                "p95": round(_percentile(values, 0.95), 2),
                "p99": round(_percentile(values, 0.99), 2),
                "max": round(max(values), 2),
            }
            for model, values in latencies.items()
            if values
        },
        "rss_mb": {
            "after_warmup": round(rss_start, 1),
            "end": round(rss_end, 1),
            "growth_after_warmup": round(rss_end - rss_start, 1),
            "peak": round(rss_peak, 1),
        },
        "log_prediction_records": len(predictions),
        # Time inside the handler (the "prediction" records), without the queueing of 8 clients on the
        # one-at-a-time handler that the client-side figures above include.
        "handler_ms": {
            model: {
                "p50": round(statistics.median(values), 2),
                "p95": round(_percentile(values, 0.95), 2),
            }
            for model in ("baseline", "transformer")
            if (values := [float(r["latency_ms"]) for r in predictions if r.get("model") == model])
        },
    }
    STATS.parent.mkdir(parents=True, exist_ok=True)
    STATS.write_text(json.dumps(stats, indent=2) + "\n")
    print("load:", json.dumps(stats))

    assert failures == [], failures[:5]
    assert outcomes == Counter({"200": REQUESTS})
    assert {model for model, values in latencies.items() if values} == {"baseline", "transformer"}
    assert len(predictions) == REQUESTS
    assert all(r["status_code"] == 200 for r in predictions)
    assert rss_end - rss_start < MAX_RSS_GROWTH_MB, stats["rss_mb"]
