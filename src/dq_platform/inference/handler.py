"""Lambda entry point: settings read and models loaded once per container, at init (cold start)."""

from __future__ import annotations

import gc

# Init builds a few hundred thousand objects that live as long as the container (pydantic and Powertools
# classes, the models' vocabularies) and frees almost none, so cyclic collections during it are pure cost
# (~0.06 s of the cold start measured here). Collection resumes once init is over, with init's objects
# frozen out of it so that later collections during requests do not walk them again.
gc.disable()
try:
    from dq_platform.inference.api import make_handler
    from dq_platform.inference.observability import Observability
    from dq_platform.inference.routes import create_app
    from dq_platform.inference.service import InferenceService
    from dq_platform.inference.settings import InferenceSettings

    settings = InferenceSettings()
    observability = Observability.from_settings(settings)
    service = InferenceService.from_settings(settings, observability.logger)
    app = create_app(service, observability)
    handler = make_handler(app, observability)
finally:
    gc.freeze()
    gc.enable()
