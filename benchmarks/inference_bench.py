"""Inference API benchmark: warm /predict latency, handler cold start, and cost per request.

    .venv/bin/python benchmarks/inference_bench.py [--models build/models] [--n 200] [--memory-mb 1024]

Prints (and with --json writes) per model: warm p50/p95 through the Lambda handler and through
`dqp serve` over HTTP; the cold start of a fresh process importing the handler module with every model
loaded (target <= 0.6 s on the 2-core dev machine); peak RSS (for the function's memory setting); and
the cost per request at Lambda (x86, per GB-second + per request) and API Gateway REST prices.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

from compiled_package import compiled_package_root

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

# Public list prices (us-east-1, x86): Lambda $0.0000166667 per GB-second and $0.20 per million
# requests; API Gateway REST $3.50 per million requests (first 333 million a month).
LAMBDA_GB_SECOND_USD = 0.0000166667
LAMBDA_REQUEST_USD = 0.20 / 1_000_000
APIGW_REST_REQUEST_USD = 3.50 / 1_000_000
# Lambda gives one full vCPU at 1769 MB and CPU in proportion to memory below that.
FULL_VCPU_MB = 1769
COST_TARGET_USD = 0.00001
COLD_START_TARGET_S = 0.6

_COLD = """
import json, os, resource, sys, time
t0 = time.perf_counter()
import dq_platform.inference.handler as h
init_s = time.perf_counter() - t0
from dq_platform.inference.events import proxy_event
from dq_platform.inference.local_server import LocalLambdaContext
body = json.dumps({"text": "Either party may terminate this agreement on notice.", "model": "transformer"})
t1 = time.perf_counter()
result = h.handler(proxy_event("POST", "/predict", body), LocalLambdaContext())
first_s = time.perf_counter() - t1
spawn_to_first_s = time.time() - float(os.environ["DQP_BENCH_SPAWNED_AT"])
assert result["statusCode"] == 200, result
sys.stderr.write(json.dumps({"init_s": init_s, "first_request_s": first_s, "spawn_to_first_s": spawn_to_first_s,
    "models": sorted(h.service.models),
    "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}) + "\\n")
"""


_COLD_RUNTIME_ONLY = """
import json, os, sys, time
from pathlib import Path
t0 = time.perf_counter()
from dq_platform.models.runtime import load_models
loaded, errors = load_models(Path(os.environ["MODEL_DIR"]))
sys.stderr.write(json.dumps({"init_s": time.perf_counter() - t0}) + "\\n")
"""


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _texts(n: int) -> list[str]:
    from dq_platform.sample_data import generate_clauses

    return [c["text"] for c in generate_clauses(n, seed=7)]


def cold_start(models: Path, runs: int) -> dict[str, Any]:
    # The task root as the image lays it out: the package copied there and byte-compiled.
    with compiled_package_root() as task_root:
        return _cold_start(models, runs, str(task_root))


def _cold_start(models: Path, runs: int, task_root: str) -> dict[str, Any]:
    env = {
        **os.environ,
        "MODEL_DIR": str(models),
        # As the template configures the function (both are used lazily, so init makes no AWS call).
        "ANALYTICS_BUCKET": "analytics-bucket",
        "AB_WEIGHTS_PARAM": "/enterprise/production/ab-weights",
        "POWERTOOLS_METRICS_NAMESPACE": "DQPlatform/Inference",
        "AWS_DEFAULT_REGION": os.environ.get("AWS_DEFAULT_REGION", "us-east-1"),
        "PYTHONPATH": task_root,
        # As Lambda runs it: tracing on, and the X-Ray SDK in its Lambda mode (a task root and a function
        # name). Outside Lambda the SDK builds two botocore clients at import, which Lambda never pays.
        "POWERTOOLS_TRACE_DISABLED": "false",
        "LAMBDA_TASK_ROOT": task_root,
        "AWS_LAMBDA_FUNCTION_NAME": "dqp-inference-bench",
        "AWS_XRAY_CONTEXT_MISSING": "IGNORE_ERROR",
        "AWS_XRAY_DAEMON_ADDRESS": "127.0.0.1:9",  # nothing listens: segments are dropped
        "OPENBLAS_NUM_THREADS": "1",  # as the template sets
    }
    samples = []
    for _ in range(runs):
        env["DQP_BENCH_SPAWNED_AT"] = repr(time.time())
        proc = subprocess.run(
            [sys.executable, "-c", _COLD], env=env, capture_output=True, text=True, check=True, cwd=ROOT
        )
        samples.append(json.loads(proc.stderr.strip().splitlines()[-1]))
    inits = [s["init_s"] for s in samples]
    runtime_only = []
    for _ in range(runs):  # the same models without the API stack (Powertools, X-Ray SDK, botocore)
        proc = subprocess.run(
            [sys.executable, "-c", _COLD_RUNTIME_ONLY], env=env, capture_output=True, text=True, check=True, cwd=ROOT
        )
        runtime_only.append(json.loads(proc.stderr.strip().splitlines()[-1])["init_s"])
    return {
        "runtime_only_init_s_median": statistics.median(runtime_only),
        "runs": runs,
        "models": samples[0]["models"],
        "init_s_median": statistics.median(inits),
        "init_s_min": min(inits),
        "init_s_max": max(inits),
        "first_request_s_median": statistics.median(s["first_request_s"] for s in samples),
        "spawn_to_first_response_s_median": statistics.median(s["spawn_to_first_s"] for s in samples),
        "max_rss_mb": max(s["max_rss_mb"] for s in samples),
    }


def _handler(models: Path) -> Any:
    os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")
    from dq_platform.inference.api import make_handler
    from dq_platform.inference.observability import Observability
    from dq_platform.inference.routes import create_app
    from dq_platform.inference.service import InferenceService
    from dq_platform.inference.settings import InferenceSettings

    settings = InferenceSettings().model_copy(update={"model_dir": models})
    obs = Observability.from_settings(settings, log_stream=io.StringIO())  # logs measured, not printed
    service = InferenceService.from_settings(settings, obs.logger)
    missing = {"baseline", "transformer"} - set(service.models)
    if missing:
        raise SystemExit(f"models not loaded from {models}: {service.load_errors}")
    return make_handler(create_app(service, obs), obs)


def warm_handler(handler: Any, texts: list[str], model: str, explain: bool) -> list[float]:
    from dq_platform.inference.events import proxy_event
    from dq_platform.inference.local_server import LocalLambdaContext

    for text in texts[:10]:  # warm-up
        handler(proxy_event("POST", "/predict", json.dumps({"text": text, "model": model})), LocalLambdaContext())
    out = []
    for i, text in enumerate(texts):
        event = proxy_event(
            "POST", "/predict", json.dumps({"text": text, "model": model, "explain": explain}), request_id=f"b{i}"
        )
        t0 = time.perf_counter()
        result = handler(event, LocalLambdaContext())
        out.append((time.perf_counter() - t0) * 1000)
        assert result["statusCode"] == 200, result
    return out


def warm_http(url: str, texts: list[str], model: str) -> list[float]:
    def post(text: str) -> float:
        data = json.dumps({"text": text, "model": model}).encode()
        req = urllib.request.Request(url + "/predict", data=data, headers={"Content-Type": "application/json"})
        t0 = time.perf_counter()
        with urllib.request.urlopen(req, timeout=30) as resp:
            resp.read()
            assert resp.status == 200
        return (time.perf_counter() - t0) * 1000

    for text in texts[:10]:
        post(text)
    return [post(text) for text in texts]


def cost_per_request(duration_ms: float, memory_mb: int) -> dict[str, float]:
    billed_ms = float(int(duration_ms) + (0 if duration_ms.is_integer() else 1))  # 1 ms billing granularity
    compute = memory_mb / 1024 * billed_ms / 1000 * LAMBDA_GB_SECOND_USD
    total = compute + LAMBDA_REQUEST_USD + APIGW_REST_REQUEST_USD
    return {"billed_ms": billed_ms, "lambda_usd": compute + LAMBDA_REQUEST_USD, "total_usd": total}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    default_models = ROOT / "build" / "models"
    if not (default_models / "transformer" / "manifest.json").is_file():
        default_models = ROOT / "build" / "test-models" / "models"
    parser.add_argument("--models", type=Path, default=default_models)
    parser.add_argument("--n", type=int, default=200, help="Requests per model and path.")
    parser.add_argument("--cold-runs", type=int, default=5)
    parser.add_argument("--memory-mb", type=int, default=1024, help="Function memory used for the cost.")
    parser.add_argument("--json", type=Path, default=None, help="Also write the results here.")
    parser.add_argument(
        "--ort-threads", type=int, default=1, help="ONNX Runtime threads (DQP_ORT_THREADS; the template sets 1)."
    )
    args = parser.parse_args()
    os.environ["DQP_ORT_THREADS"] = str(args.ort_threads)  # before any model loads, here and in subprocesses

    from dq_platform.inference.local_server import make_server
    from dq_platform.models.artifacts import read_manifest

    texts = _texts(args.n)
    report: dict[str, Any] = {
        "ort_threads": args.ort_threads,
        "models_dir": str(args.models),
        "n": args.n,
        "memory_mb": args.memory_mb,
        "cpu_count": os.cpu_count(),
    }
    report["cold_start"] = cold_start(args.models, args.cold_runs)
    handler = _handler(args.models)
    server = make_server(handler, port=0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_port}"
    report["models"] = {}
    # The handler prints one EMF line per request (as in Lambda, where it is part of the duration);
    # keep those lines off the report.
    emf_sink = io.StringIO()
    try:
        for model in ("baseline", "transformer"):
            manifest = read_manifest(args.models / model)
            with contextlib.redirect_stdout(emf_sink):
                direct = warm_handler(handler, texts, model, explain=False)
                explained = warm_handler(handler, texts[: max(20, args.n // 5)], model, explain=True)
                http = warm_http(url, texts, model)
            p95 = _pct(direct, 0.95)
            scale = max(1.0, FULL_VCPU_MB / args.memory_mb)  # CPU-bound work slows with a smaller CPU share
            report["models"][model] = {
                "version": manifest.version,
                "quantization": manifest.quantization,
                "handler_ms": {"p50": _pct(direct, 0.5), "p95": p95},
                "handler_explain_ms": {"p50": _pct(explained, 0.5), "p95": _pct(explained, 0.95)},
                "http_ms": {"p50": _pct(http, 0.5), "p95": _pct(http, 0.95)},
                "cost_at_p95_here": cost_per_request(p95, args.memory_mb),
                "cost_at_p95_scaled_to_memory_cpu_share": cost_per_request(p95 * scale, args.memory_mb),
            }
    finally:
        server.shutdown()
        server.server_close()

    cold = report["cold_start"]
    print(f"models: {args.models}  (n={args.n} per path, {os.cpu_count()} CPUs, {args.ort_threads} ORT thread(s))")
    print(
        f"cold start (import handler + load {', '.join(cold['models'])}): median {cold['init_s_median']:.3f} s "
        f"(min {cold['init_s_min']:.3f}, max {cold['init_s_max']:.3f}; target <= {COLD_START_TARGET_S} s); "
        f"first request {cold['first_request_s_median'] * 1000:.1f} ms; peak RSS {cold['max_rss_mb']:.0f} MB"
    )
    print(
        "  process spawn -> first response (interpreter start + init + first request, X-Ray in Lambda mode): "
        f"median {cold['spawn_to_first_response_s_median']:.3f} s"
    )
    print(
        "  of which the models alone (import onnxruntime/tokenizers + load): "
        f"{cold['runtime_only_init_s_median']:.3f} s"
    )
    print(f"  load average while measuring: {os.getloadavg()[0]:.2f}")
    for model, r in report["models"].items():
        c, cs = r["cost_at_p95_here"], r["cost_at_p95_scaled_to_memory_cpu_share"]
        print(
            f"{model:<11} {r['quantization'] or 'fp32':<5} handler p50 {r['handler_ms']['p50']:7.2f} ms  "
            f"p95 {r['handler_ms']['p95']:7.2f} ms | explain p50 {r['handler_explain_ms']['p50']:7.2f} ms  "
            f"p95 {r['handler_explain_ms']['p95']:7.2f} ms | dqp serve HTTP p50 {r['http_ms']['p50']:7.2f} ms  "
            f"p95 {r['http_ms']['p95']:7.2f} ms"
        )
        print(
            f"{'':<11} cost/request at {args.memory_mb} MB, p95: ${c['total_usd']:.8f} "
            f"(Lambda ${c['lambda_usd']:.8f} + API GW ${APIGW_REST_REQUEST_USD:.8f}); with CPU share scaling "
            f"${cs['total_usd']:.8f}; target <= ${COST_TARGET_USD}"
        )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
