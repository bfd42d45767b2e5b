"""Reliability tier: fuzzing, bad input, privacy, faults, load and security controls (issue 8)."""

from __future__ import annotations

import pytest

# pytest fixtures, used by name: importing them here makes them apply to this tier.
from tests.support.fixtures import local_only_env, models_root  # noqa: F401


def pytest_configure(config: pytest.Config) -> None:
    # Declared here too so the tier runs before pyproject declares the marker.
    config.addinivalue_line("markers", "reliability: fuzzing, bad input, privacy, faults, load (issue 8)")
