"""Lambda entry point: settings read and models loaded once per container, at init (cold start).

The baked models load on a background thread while the API stack (Powertools and its OpenAPI models, the
X-Ray SDK) is imported: ONNX Runtime builds its sessions in native code without holding the GIL, so the
two overlap instead of adding up. Models fetched from MODEL_S3_URI load after the tracer exists instead,
so that the download is traced.
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor

from dq_platform.inference.model_loading import ServedModels, load_served_models
from dq_platform.inference.settings import InferenceSettings

settings = InferenceSettings()
_loader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="model-load")
_baked: Future[ServedModels] | None = None if settings.model_s3_uri else _loader.submit(load_served_models, settings)

# Imported only now, on purpose: these imports run while the models load.
from dq_platform.inference.api import Observability, create_app, make_handler  # noqa: E402
from dq_platform.inference.service import InferenceService  # noqa: E402

observability = Observability.from_settings(settings)
service = InferenceService.from_settings(
    settings, observability.logger, served=_baked.result() if _baked is not None else None
)
_loader.shutdown()
app = create_app(service, observability)
handler = make_handler(app, observability)
