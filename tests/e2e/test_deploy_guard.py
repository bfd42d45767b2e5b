"""The deploy build's guard against the local stand-in base image, on the real Docker engine.

`make build` runs tools/check-deploy-images.sh before `sam build` (no image named under public.ecr.aws/ may be
the stand-in) and after it (no built image may descend from the stand-in). The session's local build is built
on the stand-in, so the guard must refuse it, while the machine holds no stand-in under a public name.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.e2e import samlocal

pytestmark = pytest.mark.e2e

GUARD = samlocal.ROOT / "tools" / "check-deploy-images.sh"


def _guard(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(GUARD), *args], cwd=samlocal.ROOT, env=samlocal.local_env(), capture_output=True, text=True,
        timeout=120, check=False,
    )  # fmt: skip


def test_the_guard_refuses_images_built_on_the_stand_in(sam_app: Path) -> None:
    proc = _guard(str(samlocal.BUILD_DIR))
    assert proc.returncode == 1, proc.stderr
    for function in ("Inference/InferenceFunction", "Inference/BatchExplainFunction"):
        image = samlocal.built_image(function)
        assert image in proc.stderr, f"{image} not named as built on the stand-in:\n{proc.stderr}"
        # The local image never takes the tag a deploy build gives its image (sam deploy pushes by that tag).
        assert image.endswith("-sam-local"), image


def test_no_image_under_a_public_name_is_the_stand_in(sam_app: Path) -> None:
    proc = _guard()
    assert proc.returncode == 0, proc.stderr
    labelled = samlocal.docker(
        "image", "ls", "--filter", "label=dq.sam-local.recipe", "--format", "{{.Repository}}:{{.Tag}}"
    ).split()
    assert labelled, "the stand-in carries no dq.sam-local.recipe label"
    assert not [ref for ref in labelled if ref.startswith("public.ecr.aws/")], labelled
