"""`sam build` of everything that is not a container image works without network access."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.infra.cfn import ROOT, SAM, TEMPLATES, load_template, resources, run

pytestmark = pytest.mark.infra


def _zip_resources(template: Path) -> tuple[list[str], list[str]]:
    t = load_template(str(template.relative_to(ROOT)))
    zips = [*resources(t, "AWS::Serverless::LayerVersion")]
    images = []
    for name, fn in resources(t, "AWS::Serverless::Function").items():
        (images if fn["Properties"].get("PackageType") == "Image" else zips).append(name)
    return zips, images


@pytest.mark.parametrize("template", TEMPLATES, ids=[str(t.relative_to(ROOT)) for t in TEMPLATES])
def test_sam_build_zip_functions_and_layers_offline(template: Path, tmp_path: Path) -> None:
    zips, _images = _zip_resources(template)
    if not zips:
        pytest.skip("no zip functions or layers in this template")
    if not any((ROOT / "build" / "wheels" / "layer").glob("*.whl")):
        pytest.fail("run `make wheels` first: the offline build installs from build/wheels/layer")
    # Build a copy of the template without nested applications and image functions; this is what
    # `sam build --exclude` would do, but --exclude does not reach into nested stacks.
    t = load_template(str(template.relative_to(ROOT)))
    keep = {k: v for k, v in t["Resources"].items() if k in zips}
    copy = {**t, "Resources": keep, "Outputs": {}}
    tmpl = template.parent / f".sam-build-{template.stem}.json"
    tmpl.write_text(json.dumps(copy))
    try:
        # PIP_NO_INDEX proves the build needs no package index: wheels come from build/wheels.
        result = run(
            [str(SAM), "build", "--build-in-source", "-t", str(tmpl), "--build-dir", str(tmp_path / "build")],
            cwd=template.parent,
            PIP_NO_INDEX="1",
        )
    finally:
        tmpl.unlink(missing_ok=True)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    for name in zips:
        built = tmp_path / "build" / name
        assert built.is_dir(), f"{name} was not built"
    if "DomainLayer" in zips:
        layer = tmp_path / "build" / "DomainLayer" / "python"
        assert (layer / "dq_platform" / "__init__.py").is_file()
        assert (layer / "aws_lambda_powertools").is_dir()
        assert (layer / "pydantic").is_dir()
    shutil.rmtree(tmp_path / "build", ignore_errors=True)
