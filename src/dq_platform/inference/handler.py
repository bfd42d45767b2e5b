"""Lambda entry point: settings read and models loaded once per container, at init (cold start)."""

from __future__ import annotations

from dq_platform.inference.api import Observability, create_app, make_handler
from dq_platform.inference.service import InferenceService
from dq_platform.inference.settings import InferenceSettings

settings = InferenceSettings()
observability = Observability.from_settings(settings)
service = InferenceService.from_settings(settings, observability.logger)
app = create_app(service, observability)
handler = make_handler(app, observability)
