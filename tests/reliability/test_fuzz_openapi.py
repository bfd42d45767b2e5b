"""schemathesis against the committed OpenAPI document, through a real `dqp serve` on 127.0.0.1.

Every operation of docs/openapi.json is driven with schema-valid (positive) and schema-breaking
(negative) cases. No response may be a server error, and every response must match the document:
status code listed, content type, body schema. DQP_FUZZ_EXAMPLES sets the examples per operation and
mode (the CI default gives well over 1,000 cases in about two minutes on two cores).
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Err, Ok
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    positive_data_acceptance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.reliability.support import ROOT, Served, dqp_serve, scrubbed_env

pytestmark = [pytest.mark.reliability, pytest.mark.integration]

OPENAPI = ROOT / "docs" / "openapi.json"
EXAMPLES = int(os.environ.get("DQP_FUZZ_EXAMPLES", "520"))
# POST /predict alone gives EXAMPLES positive + EXAMPLES negative cases; the CI default gives over 1,000.
MIN_CASES = min(1_000, 2 * EXAMPLES)
# Every response check that applies to a stateless API. Left out: `ignored_auth` (auth is API Gateway's
# job, API key or IAM in stacks/inference.yaml; the handler behind it has none to enforce) and the
# stateful resource checks (use_after_free, ensure_resource_availability: nothing here is created).
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    negative_data_rejection,
    positive_data_acceptance,
]
# A schema-breaking request must be refused with one of the API's documented client errors (400
# malformed, 413 text or body over the limit, 415 not JSON, 422 schema violation); schemathesis'
# default list has no 413 or 415.
CONFIG = schemathesis.Config.from_dict(
    {"checks": {"negative_data_rejection": {"expected-statuses": [400, 413, 415, 422]}}}
)
STATS = ROOT / "build" / "reliability" / "fuzz.json"


@pytest.fixture(scope="module")
def served(models_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Any:
    # On-the-fly explanations keep their default 2 s budget in production; here a short budget keeps
    # hundreds of `explain: true` transformer cases within CI time (the code path is the same).
    env = scrubbed_env(EXPLAIN_BUDGET_SECONDS="0.2")
    with dqp_serve(models_root, tmp_path_factory.mktemp("fuzz"), env=env) as server:
        yield server


@dataclass
class Tally:
    cases: Counter[str] = field(default_factory=Counter)
    statuses: Counter[str] = field(default_factory=Counter)
    server_errors: list[str] = field(default_factory=list)


def _fuzz(operation: Any, mode: GenerationMode, url: str, session: requests.Session, tally: Tally) -> None:
    label = f"{operation.method.upper()} {operation.path}"

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,  # the same cases on every run: a failure here reproduces
        phases=[Phase.explicit, Phase.generate, Phase.shrink],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def exercise(case: Any) -> None:
        response = case.call(base_url=url, session=session, timeout=60)
        tally.cases[f"{label} {mode.value}"] += 1
        tally.statuses[f"{label} {response.status_code}"] += 1
        if response.status_code >= 500:
            tally.server_errors.append(f"{label} {mode.value}: {response.status_code} {response.text[:200]}")
        case.validate_response(response, checks=CHECKS)

    exercise()


def test_schemathesis_finds_no_server_error_and_no_schema_violation(served: Served) -> None:
    document = json.loads(OPENAPI.read_text(encoding="utf-8"))
    # The x-api-key requirement is enforced by API Gateway in front of the function (or IAM instead,
    # see test_security_controls.py); `dqp serve` runs the handler alone, so requests without the key
    # are not "schema-violating" for it. Everything else in the document is fuzzed as committed.
    assert document.pop("security") == [{"api_key": []}]
    schema = schemathesis.openapi.from_dict(document, config=CONFIG)
    results = list(schema.get_all_operations())
    assert all(isinstance(r, Ok) for r in results), [r.err() for r in results if isinstance(r, Err)]
    operations = [r.ok() for r in results if isinstance(r, Ok)]
    assert {f"{op.method.upper()} {op.path}" for op in operations} == {
        "GET /health",
        "GET /models",
        "POST /predict",
    }
    session = requests.Session()
    tally = Tally()
    started = time.monotonic()
    for operation in operations:
        modes = [GenerationMode.POSITIVE]
        if operation.body or any(True for _ in operation.iter_parameters()):
            modes.append(GenerationMode.NEGATIVE)  # an operation without inputs has nothing to break
        for mode in modes:
            _fuzz(operation, mode, served.url, session, tally)
    elapsed = time.monotonic() - started
    total = sum(tally.cases.values())
    STATS.parent.mkdir(parents=True, exist_ok=True)
    STATS.write_text(
        json.dumps(
            {
                "cases": total,
                "by_operation_and_mode": dict(sorted(tally.cases.items())),
                "by_status": dict(sorted(tally.statuses.items())),
                "server_errors": len(tally.server_errors),
                "seconds": round(elapsed, 1),
                "examples_per_operation_and_mode": EXAMPLES,
            },
            indent=2,
        )
        + "\n"
    )
    print(f"schemathesis: {total} cases in {elapsed:.0f}s; {dict(tally.cases)}; statuses {dict(tally.statuses)}")
    assert tally.server_errors == []
    assert total >= MIN_CASES
    for label in ("GET /health", "GET /models", "POST /predict"):
        assert any(key.startswith(label) for key in tally.cases), f"{label} never exercised"
    assert served.proc.poll() is None, "dqp serve died during fuzzing"
