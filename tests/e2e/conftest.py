"""Session fixtures of the e2e tier: a Docker engine, the Lambda base image, wheels, one `sam build`.

Each step is idempotent and cheap when already done (tools/sam-local/*.sh skip work whose inputs did not
change), so a warm machine reruns the tier in minutes and a clean one builds everything from scratch.
A step that cannot be done fails the tier: e2e tests never skip for want of Docker.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e import samlocal

TIMINGS = samlocal.Timings()
MODELS_DIR = samlocal.ROOT / "build" / "models"
SERVED_MODELS = ("baseline", "transformer")


def _image_functions() -> list[Path]:
    """Function folders built as container images: each installs offline from its own wheels/."""
    dockerfiles = (samlocal.ROOT / "functions").glob("*/Dockerfile")
    return sorted(p.parent for p in dockerfiles if (p.parent / "requirements.txt").is_file())


@pytest.fixture(scope="session")
def timings() -> samlocal.Timings:
    return TIMINGS


@pytest.fixture(scope="session")
def sam_app(timings: samlocal.Timings) -> Path:
    """`sam build` of the whole application (root template, nested stacks, image + zip functions, layers)."""
    tools = samlocal.TOOLS
    with timings.step("docker engine (install if missing, start dockerd)"):
        samlocal.run_logged(["bash", str(tools / "ensure-docker.sh")], "ensure-docker.log", timeout=900)
    with timings.step("lambda base image stand-in (skip if current)"):
        samlocal.run_logged(["bash", str(tools / "build-base-image.sh")], "base-image.log", timeout=900)
    for function in _image_functions():
        with timings.step(f"wheels for functions/{function.name} (skip if current)"):
            samlocal.run_logged(
                ["bash", str(tools / "fetch-wheels.sh"), str(function)], f"wheels-{function.name}.log", timeout=900
            )
    with timings.step("wheels for the domain layer (skip if current)"):
        layer = [str(samlocal.ROOT / "layers" / "domain"), str(samlocal.ROOT / "build" / "wheels" / "layer")]
        samlocal.run_logged(["bash", str(tools / "fetch-wheels.sh"), *layer], "wheels-layer.log", timeout=900)
    missing = [m for m in SERVED_MODELS if not (MODELS_DIR / m / "manifest.json").is_file()]
    if missing:
        pytest.fail(f"no sample models {missing} in {MODELS_DIR}: run `make sample-models` (the image bakes them in)")
    with timings.step("sam build (whole application, on the stand-in)"):
        # tools/sam-local/sam.sh: the generated template copies (BASE_IMAGE = the stand-in), built into
        # build/sam-local/sam-build; samconfig.toml's [default.build] applies (build_in_source, parallel).
        samlocal.run_logged([str(samlocal.SAM_LOCAL), "build"], "sam-build.log", timeout=1200)
    assert samlocal.BUILT_TEMPLATE.is_file(), "sam build wrote no template"
    return samlocal.BUILT_TEMPLATE


@pytest.fixture(scope="session")
def docker_network(sam_app: Path) -> Iterator[str]:
    """Every container of this session joins this network: teardown removes exactly those, by id."""
    with samlocal.session_network(f"dqp-e2e-{os.getpid()}") as name:
        yield name


@pytest.fixture(scope="session")
def local_models() -> dict[str, Any]:
    """The same sample models, loaded in-process: what the container answers must match them exactly."""
    from dq_platform.models.runtime import load_models

    loaded, errors = load_models(MODELS_DIR)
    assert not errors, f"sample models do not load in-process: {errors}"
    return dict(loaded)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not TIMINGS.steps:
        return
    report = TIMINGS.report()
    samlocal.LOGS.mkdir(parents=True, exist_ok=True)
    (samlocal.LOGS / "timings.txt").write_text(report + "\n", encoding="utf-8")
    terminalreporter.write_sep("-", "e2e step timings (also in build/sam-local/logs/timings.txt)")
    terminalreporter.write_line(report)
