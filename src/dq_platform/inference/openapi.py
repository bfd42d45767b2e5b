"""The committed OpenAPI document (docs/openapi.json) comes from the resolver itself; CI checks drift."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from dq_platform import __version__
from dq_platform.inference.observability import Observability
from dq_platform.inference.routes import create_app
from dq_platform.inference.service import InferenceService
from dq_platform.inference.settings import InferenceSettings

if TYPE_CHECKING:
    from aws_lambda_powertools.event_handler import APIGatewayRestResolver

DEFAULT_PATH = Path("docs/openapi.json")
API_TITLE = "dq-compliance-platform inference API"


def openapi_json(app: APIGatewayRestResolver) -> str:
    """The resolver's OpenAPI document, as Powertools writes it."""
    # Imported here, not at module level: the OpenAPI document models cost ~0.2 s of import, and serving
    # (request validation included) never needs them.
    from aws_lambda_powertools.event_handler.openapi.models import APIKey, APIKeyIn

    return app.get_openapi_json_schema(
        title=API_TITLE,
        version=__version__,
        description="Contract-clause risk classification (baseline TF-IDF and MiniLM/ONNX) with "
        "explanations, a sustained A/B split for `model: auto`, and operational endpoints. Request text "
        "is never logged.",
        security_schemes={"api_key": APIKey(name="x-api-key", in_=APIKeyIn.header)},
        security=[{"api_key": []}],
    )


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
