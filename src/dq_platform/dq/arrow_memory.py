"""Which allocator a DQ run's Arrow buffers come from.

Why: the reader parses the input window by window and types its columns, so kept column chunks and
freed temporaries (raw windows' parse buffers, string columns replaced by their typed values) interleave.
pyarrow's default pool on Linux wheels (mimalloc) keeps the freed pages between the kept ones: at
5,000,010 rows the process held ~0.8 GB more than the live Arrow data after the read (3.10 GB RSS for
2.13 GB allocated), and `release_unused()` returned only 0.07 GB of it. jemalloc, which pyarrow's
Linux wheels also bundle, returns them (2.56 GB after the same read; the whole run's peak 4.12 -> 3.60 GB,
docs/dq.md, issue #16). glibc's allocator was measured too and kept more (3.73 GB).

The pool is switched for the duration of one run and switched back after, because it is a process-wide
pyarrow setting; buffers remember the pool they came from, so freeing them after the switch back is safe.
Where pyarrow was built without jemalloc (some platforms), or the user chose a pool with pyarrow's own
`ARROW_DEFAULT_MEMORY_POOL` variable, the default pool stays.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import pyarrow as pa


def run_pool() -> pa.MemoryPool:
    """jemalloc where this pyarrow has it and the user chose no pool, otherwise pyarrow's default pool."""
    if os.environ.get("ARROW_DEFAULT_MEMORY_POOL"):
        return pa.default_memory_pool()
    try:
        return pa.jemalloc_memory_pool()
    except NotImplementedError:
        return pa.default_memory_pool()


@contextmanager
def arrow_pool(pool: pa.MemoryPool | None = None) -> Iterator[pa.MemoryPool]:
    """Make `pool` (default: `run_pool()`) pyarrow's default pool inside the block, and restore the
    previous one after it, even on error."""
    previous = pa.default_memory_pool()
    chosen = pool or run_pool()
    pa.set_memory_pool(chosen)
    try:
        yield chosen
    finally:
        pa.set_memory_pool(previous)
