from __future__ import annotations

import sys
from pathlib import Path

# tests/integration is not a package, so the repository root is not on sys.path when this folder runs
# alone; the shared helpers live in tests/unit/inference/support.py.
_ROOT = str(Path(__file__).resolve().parents[3])
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

# pytest fixtures, used by name: importing them here makes them apply to this folder.
from tests.support.fixtures import local_only_env, models_root  # noqa: E402, F401
