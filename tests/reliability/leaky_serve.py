"""`dqp serve` with a baseline model whose bugs quote the request text: the worst case for privacy.

Run as `python -m tests.reliability.leaky_serve serve --models ... --port ...`. The baseline's
`predict_proba` raises an error quoting its input when the text contains CRASH_MARKER, and its
`explain` always does. The API must still keep that text out of logs, metrics and traces (its
unexpected-error handler logs the stack, never the exception message). Not a mock of the API: the real
CLI, resolver and handler run; only the model misbehaves.
"""

from __future__ import annotations

from typing import Any

from dq_platform.cli import main
from dq_platform.models import runtime

CRASH_MARKER = "CRASH-PREDICT"


def _leaky_predict_proba(self: Any, texts: list[str]) -> Any:
    if any(CRASH_MARKER in t for t in texts):
        raise RuntimeError(f"baseline could not score {texts!r}")
    return _original_predict_proba(self, texts)


def _leaky_explain(self: Any, text: str, top_k: int = 10, budget_s: float = 2.0) -> Any:
    raise ValueError(f"explainer choked on {text!r}")


_original_predict_proba = runtime.BaselineModel.predict_proba


def install() -> None:
    """Swap in the leaky methods; only in the child process, never in a test process that imports this."""
    runtime.BaselineModel.predict_proba = _leaky_predict_proba  # type: ignore[method-assign]
    runtime.BaselineModel.explain = _leaky_explain  # type: ignore[method-assign]


if __name__ == "__main__":
    install()
    main()
