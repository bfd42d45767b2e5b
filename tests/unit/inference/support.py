"""Shared helpers for the inference tests: real sample-trained models and a handler built on them."""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from dq_platform.inference.api import make_handler
from dq_platform.inference.local_server import LocalLambdaContext
from dq_platform.inference.observability import Observability
from dq_platform.inference.routes import create_app
from dq_platform.inference.service import InferenceService
from dq_platform.inference.settings import InferenceSettings
from dq_platform.models.artifacts import MANIFEST_FILE, MODEL_NAMES

ROOT = Path(__file__).resolve().parents[3]
EVENTS = ROOT / "events"
BUILD_MODELS = ROOT / "build" / "models"
# Where the tests train the sample set when build/models is absent; reused by later runs.
TEST_MODELS_CACHE = ROOT / "build" / "test-models"


def _complete(root: Path) -> bool:
    return all((root / name / MANIFEST_FILE).is_file() for name in MODEL_NAMES)


def sample_models(cache_dir: Path = TEST_MODELS_CACHE) -> Path:
    """The packaged sample models (`dqp train --sample` -> build/models), or the same command run now.

    DQP_TEST_MODELS points at another served-layout root. Without build/models the fixture trains the
    sample set with the tiny transformer (`--tiny`, about a minute) into `cache_dir` (kept for reuse).
    """
    given = os.environ.get("DQP_TEST_MODELS")
    if given:
        return Path(given)
    if _complete(BUILD_MODELS):
        return BUILD_MODELS
    out = cache_dir / "models"
    if not _complete(out):
        import typer
        from typer.testing import CliRunner

        from dq_platform.cli.models import train

        cli = typer.Typer()
        cli.command()(train)
        args = ["--sample", "--tiny", "--epochs", "1", "--no-checkpoint", "--out", str(out)]
        result = CliRunner().invoke(cli, args)
        assert result.exit_code == 0, result.output
    return out


def copy_models(src: Path, dest: Path) -> Path:
    shutil.copytree(src, dest, dirs_exist_ok=True)
    return dest


def build_handler(
    log_stream: IO[str] | None = None, **settings: Any
) -> tuple[Callable[[dict[str, Any], Any], dict[str, Any]], InferenceService]:
    """A handler exactly as the Lambda module builds it, with explicit settings instead of env vars.

    With `log_stream`, the JSON log lines go there (under a service name of their own, since Powertools
    loggers of one service share their handler).
    """
    if log_stream is not None:
        settings.setdefault("service_name", f"dq-inference-test-{uuid.uuid4().hex[:8]}")
    config = InferenceSettings().model_copy(update=settings)
    obs = Observability.from_settings(config, log_stream=log_stream)
    service = InferenceService.from_settings(config, obs.logger)
    return make_handler(create_app(service, obs), obs), service


def load_event(name: str) -> dict[str, Any]:
    event: dict[str, Any] = json.loads((EVENTS / name).read_text(encoding="utf-8"))
    return event


def invoke(handler: Callable[[dict[str, Any], Any], dict[str, Any]], event: dict[str, Any]) -> tuple[int, Any]:
    result = handler(event, LocalLambdaContext())
    body = json.loads(result["body"]) if result.get("body") else None
    return int(result["statusCode"]), body


def predict_event(payload: Any, request_id: str = "req-1", raw: str | None = None) -> dict[str, Any]:
    from dq_platform.inference.events import proxy_event

    return proxy_event("POST", "/predict", raw if raw is not None else json.dumps(payload), request_id=request_id)
