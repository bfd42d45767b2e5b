"""`dqp demo`: the whole platform end to end on this machine, with no AWS account and no Docker.

Each step runs the same `dqp` command a user would type, in a child process, so the demo proves the
CLI as shipped and shows its own progress bars. Local folders under the work directory stand in for
the buckets (raw, processed, analytics), through the same storage interface as S3 (docs/architecture.md, adapters).
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dq_platform.abtest.decision import DecisionRules
from dq_platform.inference.ab import ABWeights, assign
from dq_platform.models.real_slice import SLICE_PATH
from dq_platform.reports.dq_report import write_dq_report
from dq_platform.sample_data import generate_clauses

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_RULESET = REPO_ROOT / "glue" / "rulesets" / "contracts.dqdl"
Echo = Callable[[str], None]
ARMS = ("baseline", "transformer")
# `auto` traffic for the A/B report: enough for each arm to reach the report's minimum (200 requests at
# 90/10 takes about 2,000), capped so that a split far from 90/10 cannot stall the demo.
AB_MIN_REQUESTS = DecisionRules().min_requests
AB_MAX_REQUESTS = 5000
AB_TEXTS = 400


class DemoError(Exception):
    """A demo step failed; the message names the step and where its output is."""


@dataclass
class DemoConfig:
    workdir: Path
    engine: str = "duckdb"
    rows: int = 2000
    malformed: int = 6
    # Clause CSVs to train and evaluate on; empty = the shipped CLAUDETTE 2019 slice (train/validation
    # documents for training, its test documents for evaluation).
    data: Sequence[str] = ()
    tiny: bool = False  # a tiny random transformer (tests); the demo default fine-tunes MiniLM quickly
    epochs: int = 3
    max_length: int = 64
    max_train_rows: int | None = None
    explain_limit: int = 5
    port: int = 3000
    serve: bool = True
    seed: int = 0
    ruleset: Path = DEFAULT_RULESET


@dataclass
class Prediction:
    model_requested: str
    doc_id: str
    model: str
    label: str
    confidence: float
    explanation_type: str
    top_terms: list[str]
    timings_ms: dict[str, float]
    wall_ms: float
    html_url: str | None = None


@dataclass
class DemoSummary:
    dq: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, dict[str, Any]] = field(default_factory=dict)
    predictions: list[Prediction] = field(default_factory=list)
    smoke_ok: bool = False
    ab_traffic: dict[str, int] = field(default_factory=dict)  # `auto` requests answered per model
    ab_sent: int = 0
    ab_decision: dict[str, Any] = field(default_factory=dict)
    reports: dict[str, Path] = field(default_factory=dict)
    steps_s: dict[str, float] = field(default_factory=dict)
    # The documents step 4 explained (doc_id, text), and the API's answer for the first of them.
    explained: list[tuple[str, str]] = field(default_factory=list)
    served_shap: Prediction | None = None
    evaluation: dict[str, Any] = field(default_factory=dict)  # `dqp evaluate`'s evaluation.json


def _dqp(*args: str) -> list[str]:
    return [sys.executable, "-m", "dq_platform", *args]


def _child_env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("HF_HUB_OFFLINE", "1")
    env.setdefault("TOKENIZERS_PARALLELISM", "false")
    env.setdefault("POWERTOOLS_SERVICE_NAME", "dqp-demo")
    env.setdefault("AWS_EC2_METADATA_DISABLED", "true")
    return env


class Demo:
    def __init__(self, cfg: DemoConfig, echo: Echo = print) -> None:
        self.cfg = cfg
        self.echo = echo
        self.w = cfg.workdir.resolve()
        self.raw = self.w / "raw" / "incoming"
        self.dq_out = self.w / "dq"
        self.processed = self.dq_out / "processed"
        self.models = self.w / "models"
        self.analytics = self.w / "analytics"
        self.reports = self.w / "reports"
        self.logs = self.w / "logs"
        self.summary = DemoSummary()
        self._step = 0

    # -------------------------------------------------------------------- plumbing
    @contextlib.contextmanager
    def step(self, title: str) -> Iterator[None]:
        self._step += 1
        self.echo(f"\n==> [{self._step}/8] {title}")
        t0 = time.perf_counter()
        yield
        self.summary.steps_s[title] = time.perf_counter() - t0

    def run(self, name: str, *args: str) -> None:
        """Run one dqp command; its output streams to the terminal and a log file.

        Bytes are passed through unchanged, so progress bars redraw in place instead of printing a line
        per update.
        """
        self.logs.mkdir(parents=True, exist_ok=True)
        log = self.logs / f"{self._step:02d}-{name}.log"
        terminal = sys.stdout.buffer
        with log.open("wb") as fh:
            proc = subprocess.Popen(  # noqa: S603  (our own CLI, arguments built here, no shell)
                _dqp(*args),
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                env=_child_env(),
                cwd=REPO_ROOT,
            )
            assert proc.stdout is not None
            while chunk := os.read(proc.stdout.fileno(), 65536):
                fh.write(chunk)
                terminal.write(chunk)
                terminal.flush()
            rc = proc.wait()
        if rc != 0:
            raise DemoError(f"step '{name}' failed (exit {rc}); see {log}")

    # -------------------------------------------------------------------- steps
    def generate(self) -> None:
        with self.step("Generating sample contract records with realistic defects"):
            self.raw.mkdir(parents=True, exist_ok=True)
            self.run(
                "sample",
                "sample",
                "records",
                "--out",
                str(self.raw / "contracts.csv"),
                "--rows",
                str(self.cfg.rows),
                "--malformed",
                str(self.cfg.malformed),
                "--seed",
                str(self.cfg.seed),
            )

    def data_quality(self) -> None:
        with self.step(f"Running the data-quality pipeline (DQDL on {self.cfg.engine})"):
            self.run(
                "dq-run",
                "dq",
                "run",
                "--ruleset",
                str(self.cfg.ruleset),
                "--input",
                str(self.raw),
                "--output",
                str(self.dq_out),
                "--engine",
                self.cfg.engine,
            )
            results_path = self.dq_out / "results.json"
            results = json.loads(results_path.read_text(encoding="utf-8"))
            self.summary.dq = results
            history_dir = self.w / "dq-history"
            history_dir.mkdir(parents=True, exist_ok=True)
            history = sorted(p for p in history_dir.glob("*.json") if p.stem != results["run_id"])
            (history_dir / f"{results['run_id']}.json").write_text(json.dumps(results), encoding="utf-8")
            report = write_dq_report(results_path, self.reports / "dq-report.html", self.dq_out / "quarantine", history)
            self.summary.reports["data-quality report"] = report
            if results.get("status") == "HALTED":
                raise DemoError(f"the ruleset halted the run ({results.get('halted_by')}); see {report}")

    def training_data(self) -> list[str]:
        return list(self.cfg.data) or [str(SLICE_PATH)]

    def evaluation_data(self) -> list[str]:
        return list(self.cfg.data) or [f"{SLICE_PATH}#split=test"]

    def train(self) -> None:
        data = self.training_data()
        what = (
            "tiny transformer" if self.cfg.tiny else f"MiniLM, {self.cfg.epochs} epoch(s), {self.cfg.max_length} tokens"
        )
        with self.step(f"Training the baseline and the transformer ({what})"):
            args = ["train", "--out", str(self.models), "--epochs", str(self.cfg.epochs)]
            args += ["--max-length", str(self.cfg.max_length), "--seed", str(self.cfg.seed)]
            for d in data:
                args += ["--data", d]
            if self.cfg.tiny:
                args.append("--tiny")
            if self.cfg.max_train_rows:
                args += ["--max-train-rows", str(self.cfg.max_train_rows)]
            args.append("--no-checkpoint")
            self.run("train", *args)
            for name in ("baseline", "transformer"):
                manifest = json.loads((self.models / name / "manifest.json").read_text(encoding="utf-8"))
                self.summary.metrics[name] = manifest

    def explain(self) -> None:
        source = str(self.processed)  # the documents the API is asked about: the DQ pipeline's output
        with self.step("Precomputing SHAP explanations for the transformer"):
            self.run(
                "explain",
                "explain",
                "--models",
                str(self.models),
                "--input",
                source,
                "--out",
                str(self.analytics),
                "--limit",
                str(self.cfg.explain_limit),
            )
            html = sorted((self.analytics / "explanations" / "transformer").glob("*.html"))
            if html:
                self.summary.reports["SHAP text plot (example)"] = html[0]
            self.summary.explained = self._explained_documents(source)

    def _explained_documents(self, source: str) -> list[tuple[str, str]]:
        """(doc_id, text) of each document `dqp explain` wrote an explanation for, in doc_id order."""
        from dq_platform.models.explain import read_documents

        folder = self.analytics / "explanations" / "transformer"
        ids = [json.loads(p.read_text(encoding="utf-8"))["doc_id"] for p in sorted(folder.glob("*.json"))]
        texts = {doc.doc_id: doc.text for doc in read_documents(source)}
        return [(doc_id, texts[doc_id]) for doc_id in ids if doc_id in texts]

    def evaluate(self) -> None:
        data = self.evaluation_data()
        with self.step("Evaluating both models next to a length-only baseline"):
            args = ["evaluate", "--models", str(self.models), "--out", str(self.reports / "evaluation")]
            for d in data:
                args += ["--data", d]
            self.run("evaluate", *args)
            for png in sorted((self.reports / "evaluation").glob("*.png")):
                self.summary.reports[f"evaluation plot {png.stem}"] = png
            report = self.reports / "evaluation" / "evaluation.json"
            self.summary.evaluation = json.loads(report.read_text(encoding="utf-8"))

    def start_api(self) -> subprocess.Popen[bytes]:
        self._step += 1
        self.echo(f"\n==> [{self._step}/8] Starting the API on http://127.0.0.1:{self.cfg.port}")
        _require_free_port(self.cfg.port)  # else /health would be answered by whatever holds the port
        self.logs.mkdir(parents=True, exist_ok=True)
        log = (self.logs / "serve.log").open("wb")
        proc = subprocess.Popen(  # noqa: S603  (our own CLI, arguments built here, no shell)
            _dqp(
                "serve",
                "--port",
                str(self.cfg.port),
                "--models",
                str(self.models),
                "--analytics",
                str(self.analytics),
            ),
            stdout=log,
            stderr=subprocess.STDOUT,
            env=_child_env(),
            cwd=REPO_ROOT,
        )
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise DemoError(f"dqp serve exited with {proc.returncode}; see {self.logs / 'serve.log'}")
            with contextlib.suppress(OSError):
                status, body = _http("GET", self.url("/health"))
                if status == 200:
                    self.echo(f"    /health: {body.get('status')}, models loaded: {body.get('models_loaded', '')}")
                    return proc
            time.sleep(0.3)
        proc.terminate()
        raise DemoError("the API did not answer /health within 90 s")

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.cfg.port}{path}"

    def exercise_api(self) -> None:
        with self.step("Sending example requests (each model, A/B auto, smoke checks)"):
            clauses = generate_clauses(AB_TEXTS, seed=self.cfg.seed + 99)
            examples = [next(c for c in clauses if c["label"] == lab) for lab in ("HighRisk", "LowRisk")]
            self._served_shap()
            weights = self._ab_weights()
            ids = _doc_ids("DEMO")
            for i, clause in enumerate(examples):
                # The split is sticky on doc_id: each example gets an id of its own that the split sends to
                # a different arm, so `auto` is seen answering with both models.
                doc_id = _doc_id_for(ARMS[i % len(ARMS)], weights, ids)
                for model in ("baseline", "transformer", "auto"):
                    self._predict(model, doc_id, clause["text"])
            self._auto_traffic(clauses, weights)
            self.run("smoke", "smoke", "--url", self.url(""))
            self.summary.smoke_ok = True

    def _served_shap(self) -> None:
        """Ask the API about a document step 4 explained: it answers with that precomputed SHAP explanation
        (top terms and a link to shap's HTML plot), not an on-the-fly one."""
        if not self.summary.explained:
            self.echo("    no document was explained in step 4, so no precomputed SHAP explanation to serve")
            return
        doc_id, text = self.summary.explained[0]
        prediction = self._predict("transformer", doc_id, text)
        if prediction.explanation_type != "shap-partition":
            raise DemoError(
                f"/predict for {doc_id}, explained in step 4, answered a {prediction.explanation_type!r} "
                f"explanation instead of the precomputed SHAP one; see {self.logs / 'serve.log'}"
            )
        self.summary.served_shap = prediction
        self.echo(
            f"    {doc_id} (explained in step 4): served SHAP top terms {', '.join(prediction.top_terms)}; "
            f"HTML {prediction.html_url}"
        )

    def _ab_weights(self) -> ABWeights:
        status, body = _http("GET", self.url("/models"))
        if status != 200:
            raise DemoError(f"GET /models answered {status}: {body}")
        weights = {k: v for k, v in body["ab_weights"].items() if k in ABWeights.model_fields}
        return ABWeights.model_validate(weights)

    def _predict(self, model: str, doc_id: str, text: str) -> Prediction:
        # explain_detail: the summary says how each explanation was found (SHAP, occlusion, coefficients).
        payload = {"text": text, "model": model, "explain": True, "explain_detail": True, "doc_id": doc_id}
        t0 = time.perf_counter()
        status, body = _http("POST", self.url("/predict"), payload)
        wall = (time.perf_counter() - t0) * 1000
        if status != 200:
            raise DemoError(f"/predict ({model}) answered {status}: {body}")
        expl = body.get("explanation") or {}
        detail = expl.get("detail") or {}
        prediction = Prediction(
            model_requested=model,
            doc_id=doc_id,
            model=body["model"],
            label=body["label"],
            confidence=float(body["confidence"]),
            explanation_type=str(detail.get("method")),
            top_terms=[str(t) for t in (expl.get("top_terms") or [])[:4]],
            timings_ms={k: float(v) for k, v in (body.get("timings_ms") or {}).items()},
            wall_ms=wall,
            html_url=expl.get("html_url"),
        )
        self.summary.predictions.append(prediction)
        return prediction

    def _auto_traffic(self, clauses: list[dict[str, str]], weights: ABWeights) -> None:
        """`auto` requests with distinct doc ids until each arm has what the A/B report needs to decide."""
        from tqdm import tqdm

        counts = dict.fromkeys(ARMS, 0)
        share = min(weights.baseline_share, 1 - weights.baseline_share)
        expected = min(AB_MAX_REQUESTS, int(AB_MIN_REQUESTS / share) + 1) if share > 0 else AB_MAX_REQUESTS
        self.echo(
            f"    auto traffic for the A/B report: until each arm has {AB_MIN_REQUESTS} requests "
            f"(split {weights.baseline:g}/{weights.transformer:g}; about {expected:,} requests, at most "
            f"{AB_MAX_REQUESTS:,})"
        )
        sent = 0
        with tqdm(total=expected, desc="    auto requests", unit="req", mininterval=0.5, leave=False) as bar:
            while sent < AB_MAX_REQUESTS and min(counts.values()) < AB_MIN_REQUESTS:
                clause = clauses[sent % len(clauses)]
                status, body = _http("POST", self.url("/predict"), {"text": clause["text"], "doc_id": f"AB-{sent:05d}"})
                sent += 1
                bar.update(1)
                if status == 200 and body.get("model") in counts:
                    counts[body["model"]] += 1
        self.summary.ab_traffic, self.summary.ab_sent = counts, sent
        answered = ", ".join(f"{name} {n:,}" for name, n in counts.items())
        self.echo(f"    sent {sent:,} auto requests: {answered}")
        short = [f"{name} arm: {n} requests" for name, n in counts.items() if n < AB_MIN_REQUESTS]
        if short:
            self.echo(
                f"    the A/B report cannot decide yet: {', '.join(short)}, {AB_MIN_REQUESTS} needed; the split "
                f"gives that arm too small a share for {AB_MAX_REQUESTS:,} requests"
            )

    def ab_report(self) -> None:
        with self.step("Writing the A/B report from the API's logs"):
            out = self.reports / "ab"
            log = str(self.logs / "serve.log")
            self.run("ab-report", "ab-report", "--logs", log, "--out", str(out), "--format", "md,html,json")
            html = out / "ab-report.html"
            if html.exists():
                self.summary.reports["A/B report"] = html
            data = out / "ab-report.json"
            if data.exists():
                self.summary.ab_decision = json.loads(data.read_text(encoding="utf-8")).get("decision") or {}

    # -------------------------------------------------------------------- summary
    def print_summary(self) -> None:
        s, e = self.summary, self.echo
        dq = s.dq
        e("\n" + "=" * 78)
        e("Summary")
        e("=" * 78)
        e(
            f"Data quality: status {dq.get('status')}, score {100 * float(dq.get('score') or 0):.1f}%, "
            f"rows in {dq.get('rows_in')} = processed {dq.get('rows_processed')} + "
            f"quarantined {dq.get('rows_quarantined')}"
        )
        reasons = sorted((dq.get("quarantine_reasons") or {}).items(), key=lambda kv: -int(kv[1]))[:5]
        for reason, count in reasons:
            e(f"  {count:>5}  {reason}")
        e("Models (held-out metrics from the manifests):")
        for name, manifest in s.metrics.items():
            metrics = manifest.get("metrics") or {}
            parts = []
            for dataset, m in metrics.items():
                if isinstance(m, dict) and "f1" in m:
                    parts.append(f"{dataset}: F1 {float(m['f1']):.3f} PR-AUC {float(m.get('pr_auc', 0)):.3f}")
            quant = manifest.get("quantization") or "-"
            e(f"  {name:<12} v{manifest.get('version')} ({quant}) " + "; ".join(parts))
        self._print_evaluation()
        e("Example predictions (auto: the split on doc_id chose the model):")
        for p in s.predictions:
            t = p.timings_ms
            e(
                f"  {p.model_requested:>11} -> {p.model:<11} {p.doc_id:<10} {p.label:<8} {p.confidence:.2f}  "
                f"pre {t.get('pre', 0):.1f} / infer {t.get('infer', 0):.1f} / post {t.get('post', 0):.1f} ms  "
                f"{p.explanation_type}: {', '.join(p.top_terms)}"
            )
        if s.served_shap is not None:
            e(
                f"Served SHAP explanation: {s.served_shap.doc_id} was explained by the batch step and the API "
                f"answered with it (top terms {', '.join(s.served_shap.top_terms)}); plot: {s.served_shap.html_url}"
            )
        if s.ab_sent:
            answered = ", ".join(f"{name} {n:,}" for name, n in s.ab_traffic.items())
            e(f"A/B: {s.ab_sent:,} auto requests ({answered})")
        if s.ab_decision:
            d = s.ab_decision
            e(f"  recommendation: {str(d.get('recommendation')).upper()} - {d.get('summary')}")
        e(f"Smoke checks: {'passed' if s.smoke_ok else 'not run'}")
        e("Reports:")
        for name, path in s.reports.items():
            e(f"  {name:<28} {path}")
        e("Step times: " + ", ".join(f"{k.split(' (')[0]} {v:.1f}s" for k, v in s.steps_s.items()))

    def _print_evaluation(self) -> None:
        """`dqp evaluate` on held-out real documents: each model next to the length-only baseline."""
        report = self.summary.evaluation
        for dataset, entry in (report.get("datasets") or {}).items():
            self.echo(
                f"Evaluation on {dataset} ({entry['rows']} sentences, {entry['documents']} documents, "
                f"{entry['positives']} {report.get('positive_label')}; never trained on):"
            )
            for name, m in entry["results"].items():
                self.echo(
                    f"  {name:<12} precision {float(m['precision']):.3f}  recall {float(m['recall']):.3f}  "
                    f"F1 {float(m['f1']):.3f}  PR-AUC {float(m['pr_auc']):.3f}"
                )
        if report and not self.cfg.data:
            self.echo(
                f"  data: {SLICE_PATH.name}, real CLAUDETTE 2019 ToS sentences (CC BY 4.0, Lippi et al. 2019; "
                f"see {SLICE_PATH.parent / 'ATTRIBUTION.md'})"
            )


def _http(method: str, url: str, payload: Any = None) -> tuple[int, dict[str, Any]]:
    data = None if payload is None else json.dumps(payload).encode()
    req = urllib.request.Request(url, data=data, method=method, headers={"content-type": "application/json"})  # noqa: S310  (loopback URL built here)
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:  # noqa: S310  (loopback URL built here)
            return resp.status, json.loads(resp.read() or b"{}")
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"{}")


def _doc_ids(prefix: str) -> Iterator[str]:
    n = 1
    while True:
        yield f"{prefix}-{n:04d}"
        n += 1


def _doc_id_for(arm: str, weights: ABWeights, ids: Iterator[str], tries: int = 10_000) -> str:
    """The next id that the split (the API's own hash of doc_id) assigns to `arm`; with no share for `arm`
    (a split of 1/0), the next id, which the other arm answers."""
    first = next(ids)
    if assign(first, weights) == arm:
        return first
    for _, doc_id in zip(range(tries), ids, strict=False):
        if assign(doc_id, weights) == arm:
            return doc_id
    return first


def _require_free_port(port: int) -> None:
    """Another server on the port (an earlier demo's API still running) would answer the demo's health
    check and smoke requests in place of the one it starts, whose own bind then fails."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        if probe.connect_ex(("127.0.0.1", port)) == 0:
            raise DemoError(
                f"port {port} on 127.0.0.1 is already in use (an earlier demo's API?); stop it or pass --port"
            )


def run_demo(cfg: DemoConfig, echo: Echo = print) -> DemoSummary:
    """Run every step; with `cfg.serve`, keep the API up until Ctrl-C."""
    _require_free_port(cfg.port)  # before minutes of training, not after
    demo = Demo(cfg, echo)
    demo.generate()
    demo.data_quality()
    demo.train()
    demo.explain()
    demo.evaluate()
    server = demo.start_api()
    try:
        demo.exercise_api()
        demo.ab_report()
        demo.print_summary()
        if cfg.serve:
            echo(f"\nServing on http://127.0.0.1:{cfg.port} (try: curl -s {demo.url('/health')}); Ctrl-C stops.")
            with contextlib.suppress(KeyboardInterrupt):
                server.wait()
    finally:
        if server.poll() is None:
            server.terminate()
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.kill()
    return demo.summary
