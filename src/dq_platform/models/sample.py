"""The always-there models' training data: the project's own generated clauses (no ../shared needed)."""

from __future__ import annotations

from dq_platform.models.data import Dataset, hash_split


def sample_dataset(n: int, seed: int = 0) -> Dataset:
    """Generated clauses with a deterministic by-document split, as a `Dataset`."""
    import pandas as pd

    from dq_platform.sample_data import generate_clauses

    rows = generate_clauses(n, seed=seed)
    frame = pd.DataFrame(
        {
            "text": [r["text"] for r in rows],
            "label": [r["label"] for r in rows],
            "doc": [r["source_doc"] for r in rows],
        }
    )
    frame["split"] = frame["doc"].map(hash_split)
    return Dataset(name=f"sample-clauses(n={n},seed={seed})", frame=frame, sources=[f"generate_clauses({n}, {seed})"])
