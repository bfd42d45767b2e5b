"""The committed OpenAPI document (docs/openapi.json) comes from the resolver itself; CI checks drift."""

from __future__ import annotations

import json
from pathlib import Path

from dq_platform.inference.api import Observability, create_app, openapi_json
from dq_platform.inference.service import InferenceService
from dq_platform.inference.settings import InferenceSettings

DEFAULT_PATH = Path("docs/openapi.json")


def build_openapi() -> str:
    settings = InferenceSettings()
    obs = Observability.from_settings(settings)
    app = create_app(InferenceService.without_models(settings, obs.logger), obs)
    # Re-serialise with sorted keys so the committed file diffs cleanly.
    return json.dumps(json.loads(openapi_json(app)), indent=2, sort_keys=True) + "\n"


def write_openapi(path: Path = DEFAULT_PATH) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(build_openapi(), encoding="utf-8")
    return path


def openapi_is_current(path: Path = DEFAULT_PATH) -> bool:
    return path.is_file() and path.read_text(encoding="utf-8") == build_openapi()
