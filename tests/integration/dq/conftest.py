"""One local Spark session for every DQ Spark test (start-up costs seconds)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest


@pytest.fixture(scope="session")
def spark() -> Iterator[Any]:
    pytest.importorskip("pyspark")
    from dq_platform.dq.engines.spark_engine import local_spark_session

    session = local_spark_session("dq-tests")
    session.conf.set("spark.sql.shuffle.partitions", "2")
    yield session
    session.stop()
