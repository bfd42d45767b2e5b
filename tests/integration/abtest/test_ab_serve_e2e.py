"""From a real `dqp serve` to the report: the log format is the API's own, not a copy of it.

`dqp serve` runs as a subprocess (the documented local flow: its stdout is the log file), with its A/B
weights in an SSM parameter on a moto server. Every request's answer (status, X-Model, label) is kept,
and the report must count exactly what the API answered.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from typer.testing import CliRunner

from dq_platform.cli import app
from tests.support.aws import free_port

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[3]
DQP = Path(sys.executable).parent / "dqp"
WEIGHTS_PARAM = "/enterprise/test/ab-weights"


@pytest.fixture(scope="module")
def served_models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """build/models when it holds both models; else a baseline trained here on sample data (seconds)."""
    built = ROOT / "build" / "models"
    if all((built / name / "manifest.json").exists() for name in ("baseline", "transformer")):
        return built
    pytest.importorskip("sklearn")
    pytest.importorskip("skl2onnx")
    from dq_platform.models.sample import sample_dataset
    from dq_platform.models.train import TrainConfig, train

    out = tmp_path_factory.mktemp("models")
    train([sample_dataset(300, seed=0)], out, TrainConfig(models=("baseline",)), echo=lambda *a, **k: None)
    return out


@pytest.fixture
def serve_log(served_models: Path, moto_endpoint: str, tmp_path: Path) -> Iterator[tuple[Path, str]]:
    if not DQP.exists():
        pytest.skip("dqp entry point not installed")
    ssm = boto3.client(
        "ssm", endpoint_url=moto_endpoint, region_name="eu-west-1", aws_access_key_id="x", aws_secret_access_key="x"
    )
    weights = {"baseline": 0.5, "transformer": 0.5, "shadow_rate": 0.5}
    ssm.put_parameter(Name=WEIGHTS_PARAM, Type="String", Value=json.dumps(weights), Overwrite=True)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        AWS_ENDPOINT_URL=moto_endpoint,
        AWS_ACCESS_KEY_ID="x",
        AWS_SECRET_ACCESS_KEY="x",
        AWS_DEFAULT_REGION="eu-west-1",
        AB_WEIGHTS_PARAM=WEIGHTS_PARAM,
        POWERTOOLS_SERVICE_NAME="ab-e2e",
    )
    log = tmp_path / "serve.log"
    with log.open("w") as stdout:
        proc = subprocess.Popen(
            [str(DQP), "serve", "--models", str(served_models), "--port", str(port)],
            stdout=stdout,
            stderr=subprocess.PIPE,
            env=env,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    with urllib.request.urlopen(f"{url}/health", timeout=2):
                        break
                except (urllib.error.URLError, ConnectionError):
                    if proc.poll() is not None or time.monotonic() > deadline:
                        err = proc.stderr.read().decode() if proc.stderr else ""
                        pytest.fail(f"dqp serve did not start: {err}")
                    time.sleep(0.2)
            yield log, url
        finally:
            proc.terminate()
            proc.wait(timeout=30)


def _post(url: str, body: dict[str, Any]) -> tuple[int, dict[str, Any], dict[str, str]]:
    request = urllib.request.Request(
        f"{url}/predict", data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read()), dict(response.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read()), dict(exc.headers)


def test_report_counts_what_the_api_answered(serve_log: tuple[Path, str], tmp_path: Path) -> None:
    from dq_platform.sample_data import generate_clauses

    log, url = serve_log
    answered: Counter[tuple[str, str, str]] = Counter()  # (variant, model, label)
    statuses: Counter[int] = Counter()
    for i, clause in enumerate(generate_clauses(160, seed=11)):
        model = "auto" if i % 8 else ("baseline" if i % 16 else "transformer")
        status, body, headers = _post(url, {"text": clause["text"], "doc_id": f"doc-{i}", "model": model})
        statuses[status] += 1
        if status == 200:
            answered[("auto" if model == "auto" else "explicit", headers["X-Model"], body["label"])] += 1
    for _ in range(2):
        status, _, _ = _post(url, {"text": "", "model": "auto"})
        statuses[status] += 1
    assert statuses[422] == 2

    out = tmp_path / "report"
    result = CliRunner().invoke(
        app, ["ab-report", "--logs", str(log), "--out", str(out), "--format", "json,md,html", "--strict"]
    )
    assert result.exit_code == 0, result.output
    data = json.loads((out / "ab-report.json").read_text())
    assert data["parse"]["skipped"] == {}
    assert data["parse"]["used"]["prediction"] == sum(statuses.values())

    auto_labels: dict[str, dict[str, int]] = {}
    for (variant, model, label), n in answered.items():
        if variant == "auto":
            auto_labels.setdefault(model, {})[label] = n
    report_labels = {m["model"]: m["labels"] for m in data["models"]}
    assert report_labels == {m: dict(sorted(v.items())) for m, v in auto_labels.items()}
    explicit = Counter({m: n for (variant, m, _), n in answered.items() if variant == "explicit"})
    for model, n in explicit.items():
        assert data["requests_by_variant"][model]["explicit"] >= n
    # Only validation failures (422) name no model; a 503 for a model that is not loaded carries
    # `requested_model`, so it counts against that model's error rate.
    assert sum(data["requests_by_variant"]["(unattributed)"].values()) == statuses[422]
    assert sum(sum(v.values()) for v in data["requests_by_variant"].values()) == sum(statuses.values())

    both = {"baseline", "transformer"} <= set(report_labels)
    if both:  # shadow_rate 0.5 with both models loaded: agreement is measured on the same inputs
        assert sum(s["agreement"]["n"] for s in data["shadow"]) > 0
    else:  # baseline only: auto requests assigned to the transformer fell back, and say so
        assert data["models"][0]["fallbacks"] > 0
    emf = {e["model"]: e for e in data["emf"]}
    for model, labels in auto_labels.items():
        assert emf[model]["invocations"] >= sum(labels.values())
    assert data["cold_starts"] == 1
    assert (out / "ab-report.html").read_text().count("<table>") >= 5
