"""Serving benchmark, one run, side by side (docs/models.md):

cold start (fresh process -> first prediction, measured from just before the parent spawns it), warm latency
p50/p95 at ~50 / 128 / 512 tokens with 1 thread, and peak RSS, for
  - baseline: TF-IDF + logistic regression (numpy vectorizer + skl2onnx graph on ONNX Runtime)
  - transformer ONNX int8 and ONNX fp32 (onnxruntime + tokenizers)
  - a transformers + torch pipeline on the same fine-tuned checkpoint.
Each variant runs in its own subprocess so imports, RSS and caches never leak between them.
The served transformer truncates at its manifest's max_length; here truncation is raised to 512 so the
512-token row measures the model on 512 tokens (the graph has dynamic sequence length).

    .venv/bin/python benchmarks/models_bench.py --models /work/artifacts/models-full [--repeats 50]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from compiled_package import compiled_package_root

VARIANTS = ("baseline-onnx", "transformer-onnx-int8", "transformer-onnx-fp32", "transformer-torch")
TOKENS = (50, 128, 512)

CHILD = textwrap.dedent(
    r"""
    import json, os, resource, statistics, sys, time
    # The parent's clock just before it spawned this process. (psutil's create_time is no good here: it
    # adds process ticks to the whole-second boot time, which was ~1 s off on this machine.)
    created = float(os.environ["DQP_BENCH_SPAWNED_AT"])
    variant, model_root, repeats = sys.argv[1], sys.argv[2], int(sys.argv[3])
    os.environ["OMP_NUM_THREADS"] = "1"
    from pathlib import Path
    root = Path(model_root)
    first_text = "The Supplier may terminate this Agreement at any time without notice."

    def unavailable(reason):
        print(json.dumps({"variant": variant, "error": reason}))
        sys.exit(0)

    if variant == "transformer-torch":
        if not (root / "transformer" / "checkpoint").is_dir():
            unavailable("no checkpoint/ beside the model (trained with --no-checkpoint)")
        os.environ["HF_HUB_OFFLINE"] = "1"
        import torch
        from transformers import pipeline
        torch.set_num_threads(1)
        clf = pipeline("text-classification", model=str(root / "transformer" / "checkpoint"), device="cpu",
                       truncation=True, max_length=512)
        predict = lambda text: clf(text)[0]["label"]
    else:
        from dq_platform.models.artifacts import read_manifest
        from dq_platform.models.runtime import BaselineModel, TransformerModel
        if variant == "baseline-onnx":
            model = BaselineModel(read_manifest(root / "baseline"), root / "baseline", threads=1)
        else:
            folder = root / "transformer"
            manifest = read_manifest(folder)
            if variant.endswith("fp32"):
                files = dict(manifest.files)
                if manifest.quantization == "int8":
                    if "model_fp32" not in files or not (folder / files["model_fp32"]).is_file():
                        unavailable("no fp32 graph published beside the int8 one")
                    files["model"] = files["model_fp32"]
                manifest = manifest.model_copy(update={"files": files, "quantization": "fp32"})
            elif manifest.quantization != "int8":
                unavailable("no int8 model published")
            model = TransformerModel(manifest, folder, threads=1)
            model.tokenizer.enable_truncation(max_length=512)
        predict = lambda text: model.predict(text).label
    predict(first_text)
    cold = time.time() - created

    texts = json.loads(os.environ["BENCH_TEXTS"])
    warm = {}
    for n, text in texts.items():
        for _ in range(5):
            predict(text)
        times = []
        for _ in range(repeats):
            t = time.perf_counter()
            predict(text)
            times.append((time.perf_counter() - t) * 1000)
        times.sort()
        warm[n] = {"p50_ms": statistics.median(times), "p95_ms": times[int(0.95 * (len(times) - 1))]}
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"variant": variant, "cold_start_s": cold, "warm": warm, "peak_rss_mb": rss}))
    """
)


def bench_texts(models: Path) -> dict[str, str]:
    """Generated clause text cut to ~50/128/512 MiniLM tokens (the baseline sees the same text)."""
    from tokenizers import Tokenizer

    from dq_platform.sample_data import generate_clauses

    tokenizer = Tokenizer.from_file(str(models / "transformer" / "tokenizer.json"))
    tokenizer.no_truncation()
    words = " ".join(r["text"] for r in generate_clauses(200, seed=42)).split()
    out: dict[str, str] = {}
    for target in TOKENS:
        lo, hi = 1, len(words)
        while lo < hi:  # fewest words reaching the target token count ([CLS] and [SEP] included)
            mid = (lo + hi) // 2
            if len(tokenizer.encode(" ".join(words[:mid])).ids) >= target:
                hi = mid
            else:
                lo = mid + 1
        out[str(target)] = " ".join(words[:lo])
    return out


def run(models: Path, repeats: int, cold_runs: int) -> list[dict[str, object]]:
    import os

    texts = bench_texts(models)
    with compiled_package_root() as package_root:
        env = {
            **os.environ,
            "BENCH_TEXTS": json.dumps(texts),
            "OMP_NUM_THREADS": "1",
            "OPENBLAS_NUM_THREADS": "1",  # as the inference function's template sets
            "TOKENIZERS_PARALLELISM": "false",
            # the package byte-compiled, as the serving image holds it
            "PYTHONPATH": os.pathsep.join(p for p in (str(package_root), os.environ.get("PYTHONPATH")) if p),
        }
        return _run_variants(models, repeats, cold_runs, env)


def _run_variants(models: Path, repeats: int, cold_runs: int, env: dict[str, str]) -> list[dict[str, object]]:
    results = []
    for variant in VARIANTS:
        runs = []
        for i in range(cold_runs):
            env["DQP_BENCH_SPAWNED_AT"] = repr(time.time())
            proc = subprocess.run(
                [sys.executable, "-c", CHILD, variant, str(models), str(repeats if i == 0 else 1)],
                capture_output=True,
                text=True,
                env=env,
                timeout=900,
                check=False,
            )
            if proc.returncode != 0:
                raise SystemExit(f"{variant} failed:\n{proc.stderr[-3000:]}")
            runs.append(json.loads(proc.stdout.strip().splitlines()[-1]))
        if "error" in runs[0]:
            results.append(runs[0])
            continue
        best = runs[0]
        best["cold_start_runs_s"] = [r["cold_start_s"] for r in runs]
        best["cold_start_s"] = sorted(best["cold_start_runs_s"])[len(runs) // 2]
        results.append(best)
        print(f"done {variant}", file=sys.stderr)
    return results


def table(results: list[dict[str, object]]) -> str:
    head = "| variant | cold start (median) | " + " | ".join(f"p50 / p95 @{n} tok" for n in TOKENS) + " | peak RSS |"
    lines = [head, "|---" * (3 + len(TOKENS)) + "|"]
    for r in results:
        if "error" in r:
            lines.append(f"| {r['variant']} | {r['error']} |")
            continue
        warm = r["warm"]
        assert isinstance(warm, dict)
        cells = " | ".join(f"{warm[str(n)]['p50_ms']:.1f} / {warm[str(n)]['p95_ms']:.1f} ms" for n in TOKENS)
        lines.append(f"| {r['variant']} | {r['cold_start_s']:.2f} s | {cells} | {r['peak_rss_mb']:.0f} MB |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", type=Path, default=Path("build/models"))
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument("--cold-runs", type=int, default=3)
    parser.add_argument("--json", type=Path, default=None, help="Also write the raw results here.")
    args = parser.parse_args()
    results = run(args.models, args.repeats, args.cold_runs)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    print(table(results))


if __name__ == "__main__":
    main()
