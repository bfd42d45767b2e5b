from __future__ import annotations

# pytest fixtures, used by name: importing them here makes them apply to this folder.
from tests.support.fixtures import local_only_env, models_root  # noqa: F401
