"""`dqp demo` refuses a port something already listens on, before doing any work.

An earlier demo's API left running would otherwise answer the new demo's health check and smoke requests
(its own server's bind fails), so the demo would report on models it did not train.
"""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from dq_platform.demo import DemoConfig, DemoError, run_demo

pytestmark = pytest.mark.unit


def test_demo_stops_at_once_when_its_port_is_taken(tmp_path: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        with pytest.raises(DemoError, match=f"port {port} on 127.0.0.1 is already in use"):
            run_demo(DemoConfig(workdir=tmp_path / "demo", port=port, serve=False), echo=lambda _: None)
    assert not (tmp_path / "demo").exists()  # nothing generated, trained or started
