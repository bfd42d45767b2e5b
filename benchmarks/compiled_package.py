"""The package as the serving image holds it, for cold-start timings.

The image copies `dq_platform` into the task root and byte-compiles it at build time
(functions/inference/Dockerfile). Timing imports straight from src/ would add the bytecode compiler
whenever no .pyc can be written (PYTHONDONTWRITEBYTECODE set, a read-only checkout), a cost Lambda never
pays, so cold-start benchmarks import from such a compiled copy instead.
"""

from __future__ import annotations

import compileall
import contextlib
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"


@contextlib.contextmanager
def compiled_package_root(prefix: str = "dqp-bench-task-root-") -> Iterator[Path]:
    """A temporary folder holding a byte-compiled copy of `dq_platform` (put it first on PYTHONPATH)."""
    with tempfile.TemporaryDirectory(prefix=prefix) as root:
        shutil.copytree(SRC / "dq_platform", Path(root) / "dq_platform")
        if not compileall.compile_dir(Path(root) / "dq_platform", quiet=1):
            raise RuntimeError("byte-compiling dq_platform failed")
        yield Path(root)
