"""A first `make build && sam deploy` into a real AWS account works: the defects that stop it, checked offline.

- Every wheel an image or the layer installs runs on its AWS target: the Python and glibc of the Lambda base
  image or runtime the templates name (tools/lambda_platform.py maps a runtime version to Amazon Linux and
  glibc, citing AWS). Read from the wheel files actually downloaded, not from a list of expected wheels.
- The local stand-in base image never reaches a deploy: the templates and Dockerfiles name only the public
  base image, the stand-in's own names are under `localhost/` (no public registry), and the generated local
  template copies differ from the sources only where they must.
- `make build` on a fresh clone produces every file the Dockerfiles COPY (or git tracks it), and the Docker
  context (.dockerignore allow-list) lets each one in.
- `sam build` never reuses a cached layer whose Makefile reads files outside the layer's own folder.

Needs no AWS and no Docker; the wheel tests need `make wheels` (part of `make test`).
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from packaging.tags import Tag, compatible_tags, cpython_tags
from packaging.utils import parse_wheel_filename

from tests.infra.cfn import ROOT, TEMPLATES, load_template, resources
from tools import lambda_platform

pytestmark = pytest.mark.infra

PUBLIC_LAMBDA_PYTHON = re.compile(r"^public\.ecr\.aws/lambda/python:(?P<version>\d+\.\d+)(?:[-.].*)?$")
# manylinux tags from before PEP 600 and the glibc each stands for.
LEGACY_MANYLINUX = {"manylinux1": (2, 5), "manylinux2010": (2, 12), "manylinux2014": (2, 17)}


def _module(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec
    assert spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


local_templates = _module(ROOT / "tools" / "sam-local" / "local_templates.py")


def _rel(path: Path) -> str:
    return str(path.relative_to(ROOT))


# ---------------------------------------------------------------- Dockerfiles


@dataclass(frozen=True)
class Instruction:
    keyword: str
    args: list[str]


def dockerfile_instructions(path: Path) -> list[Instruction]:
    """Instructions of a Dockerfile: continuation lines joined, comments dropped."""
    logical: list[str] = []
    pending = ""
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        logical.append(pending + line)
        pending = ""
    return [Instruction(line.split()[0].upper(), line.split()[1:]) for line in logical]


def arg_default(dockerfile: Path, name: str) -> str | None:
    for ins in dockerfile_instructions(dockerfile):
        if ins.keyword == "ARG" and ins.args and ins.args[0].startswith(f"{name}="):
            return ins.args[0].split("=", 1)[1]
    return None


def copy_sources(dockerfile: Path) -> list[str]:
    """The build-context paths a Dockerfile COPYs (not those copied from another stage)."""
    sources = []
    for ins in dockerfile_instructions(dockerfile):
        if ins.keyword not in ("COPY", "ADD"):
            continue
        args = [a for a in ins.args if not a.startswith("--")]
        if any(a.startswith("--from") for a in ins.args):
            continue
        sources += args[:-1]
    return sources


@dataclass(frozen=True)
class ImageFunction:
    name: str  # template:LogicalId
    dockerfile: Path
    context: Path
    base_image: str  # what the deploy build's FROM resolves to
    arch: str


def image_functions() -> list[ImageFunction]:
    found = []
    for template in TEMPLATES:
        for name, fn in resources(load_template(_rel(template)), "AWS::Serverless::Function").items():
            if fn["Properties"].get("PackageType") != "Image":
                continue
            meta = fn["Metadata"]
            context = (template.parent / meta["DockerContext"]).resolve()
            dockerfile = context / meta["Dockerfile"]
            # "" when neither names one: test_image_functions_run_on_amazon_linux_2023 reports it.
            base = (meta.get("DockerBuildArgs") or {}).get("BASE_IMAGE") or arg_default(dockerfile, "BASE_IMAGE") or ""
            (arch,) = fn["Properties"].get("Architectures", ["x86_64"])
            found.append(ImageFunction(f"{_rel(template)}:{name}", dockerfile, context, base, arch))
    assert found, "no image functions in the templates"
    return found


# ---------------------------------------------------------------- wheel targets


@dataclass(frozen=True)
class Target:
    """Where a wheelhouse's wheels are installed: who uses them and on which Python and glibc."""

    consumer: str
    python: str
    arch: str

    @property
    def glibc(self) -> tuple[int, int]:
        return lambda_platform.operating_system(self.python).glibc

    def __str__(self) -> str:
        osname = lambda_platform.operating_system(self.python).name
        return f"{self.consumer} (CPython {self.python}, {osname}, glibc {self.glibc[0]}.{self.glibc[1]}, {self.arch})"


def _python_of_runtime(runtime: str) -> str:
    match = re.fullmatch(r"python(\d+\.\d+)", runtime)
    assert match, f"not a Python runtime: {runtime}"
    return match.group(1)


def _make_variable(directory: Path, name: str) -> str:
    """The value GNU make gives `name` in directory's Makefile."""
    proc = subprocess.run(
        ["make", "-s", "-C", str(directory), "--eval", f"__print__: ; @echo $({name})", "__print__"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return proc.stdout.strip()


@cache
def wheelhouses() -> dict[Path, tuple[Path, list[Target]]]:
    """Wheelhouse -> (the requirements installed from it, the targets that install them), from the templates."""
    found: dict[Path, tuple[Path, list[Target]]] = {}
    for fn in image_functions():
        match = PUBLIC_LAMBDA_PYTHON.match(fn.base_image)
        if not match:  # not a Lambda Python base image: test_image_functions_run_on_amazon_linux_2023 fails
            continue
        sources = copy_sources(fn.dockerfile)
        wheels = [s for s in sources if s.rstrip("/").endswith("/wheels")]
        reqs = [s for s in sources if s.endswith("requirements.txt")]
        assert len(wheels) == 1, f"{_rel(fn.dockerfile)}: expected one COPY of a wheels/ folder, found {wheels}"
        assert len(reqs) == 1, f"{_rel(fn.dockerfile)}: expected one COPY of a requirements.txt, found {reqs}"
        target = Target(f"{fn.name} on {fn.base_image}", match.group("version"), fn.arch)
        found[fn.context / wheels[0]] = (fn.context / reqs[0], [target])
    for template in TEMPLATES:
        t = load_template(_rel(template))
        functions = resources(t, "AWS::Serverless::Function")
        for name, layer in resources(t, "AWS::Serverless::LayerVersion").items():
            if layer.get("Metadata", {}).get("BuildMethod") != "makefile":
                continue
            content = (template.parent / layer["Properties"]["ContentUri"]).resolve()
            wheelhouse = Path(_make_variable(content, "WHEELHOUSE"))
            (arch,) = layer["Properties"].get("CompatibleArchitectures", ["x86_64"])
            targets = [
                Target(f"{_rel(template)}:{name} (CompatibleRuntimes)", _python_of_runtime(r), arch)
                for r in layer["Properties"]["CompatibleRuntimes"]
            ]
            for fname, zip_fn in functions.items():
                if {"Ref": name} in zip_fn["Properties"].get("Layers", []):
                    runtime = zip_fn["Properties"]["Runtime"]
                    consumer = f"{_rel(template)}:{fname} ({runtime}, layer {name})"
                    targets.append(Target(consumer, _python_of_runtime(runtime), arch))
            found[wheelhouse] = (content / "requirements.txt", targets)
    return found


def _accepted_interpreter_abis(python: str) -> set[tuple[str, str]]:
    """(interpreter, abi) pairs CPython `python` installs: its own ABI, the stable ABI, pure Python."""
    version = tuple(int(p) for p in python.split("."))
    abi = "cp" + python.replace(".", "")
    tags = [
        *cpython_tags(python_version=version, abis=[abi], platforms=["any"]),
        *compatible_tags(python_version=version, interpreter=abi, platforms=["any"]),
    ]
    return {(t.interpreter, t.abi) for t in tags}


def _platform_ok(platform: str, target: Target) -> bool:
    if platform == "any":
        return True
    match = re.fullmatch(r"manylinux_(\d+)_(\d+)_(\w+)", platform)
    if match:
        glibc, arch = (int(match.group(1)), int(match.group(2))), match.group(3)
    else:
        legacy, _, arch = platform.partition("_")
        if legacy not in LEGACY_MANYLINUX:
            return False  # musllinux, plain linux, macOS, Windows: never on Lambda
        glibc = LEGACY_MANYLINUX[legacy]
    return arch == target.arch and glibc <= target.glibc


def incompatibility(wheel: str, target: Target) -> str | None:
    """Why `wheel` does not install on `target`, or None when one of its tags does."""
    _name, _version, _build, tags = parse_wheel_filename(wheel)
    accepted = _accepted_interpreter_abis(target.python)
    ok: list[Tag] = [t for t in tags if (t.interpreter, t.abi) in accepted and _platform_ok(t.platform, target)]
    if ok:
        return None
    python_ok = [t for t in tags if (t.interpreter, t.abi) in accepted]
    if not python_ok:
        return f"built for {sorted({f'{t.interpreter}-{t.abi}' for t in tags})}, not CPython {target.python}"
    return f"needs platform {sorted({t.platform for t in tags})}, beyond glibc {target.glibc[0]}.{target.glibc[1]}"


WHEELHOUSE_IDS = [_rel(p) for p in wheelhouses()]


@pytest.mark.parametrize("wheelhouse", list(wheelhouses()), ids=WHEELHOUSE_IDS)
def test_every_downloaded_wheel_installs_on_its_aws_base(wheelhouse: Path) -> None:
    _requirements, targets = wheelhouses()[wheelhouse]
    wheels = sorted(p.name for p in wheelhouse.glob("*.whl"))
    assert wheels, f"no wheels in {_rel(wheelhouse)}: run `make wheels`"
    problems = [
        f"{_rel(wheelhouse)}/{wheel} does not install on {target}: {why}"
        for target in targets
        for wheel in wheels
        if (why := incompatibility(wheel, target))
    ]
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("wheelhouse", list(wheelhouses()), ids=WHEELHOUSE_IDS)
def test_the_wheelhouse_alone_resolves_the_requirements_for_each_target(wheelhouse: Path, tmp_path: Path) -> None:
    """What `pip install --no-index --find-links` in the image or layer build will do, for each target."""
    requirements, targets = wheelhouses()[wheelhouse]
    if not any(wheelhouse.glob("*.whl")):
        pytest.fail(f"no wheels in {_rel(wheelhouse)}: run `make wheels`")
    for target in {(t.python, t.arch) for t in targets}:
        flags = lambda_platform.pip_flags(*target)
        proc = subprocess.run(
            [sys.executable, "-m", "pip", "install", "--dry-run", "--quiet", "--no-index",
             "--find-links", str(wheelhouse), "--target", str(tmp_path / "t"), *flags, "-r", str(requirements)],
            capture_output=True, text=True, timeout=300, check=False,
            env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"},
        )  # fmt: skip
        assert proc.returncode == 0, f"{_rel(wheelhouse)} for CPython {target[0]}: {proc.stderr[-2000:]}"


def test_the_runtime_table_matches_aws() -> None:
    """The one hand-kept fact, stated once: python3.12+ run on Amazon Linux 2023 (glibc 2.34), older on AL2."""
    table = lambda_platform.RUNTIME_OS
    assert table["3.11"] == lambda_platform.AMAZON_LINUX_2
    assert table["3.11"].glibc == (2, 26)
    assert all(table[v] == lambda_platform.AMAZON_LINUX_2023 for v in ("3.12", "3.13"))
    assert lambda_platform.AMAZON_LINUX_2023.glibc == (2, 34)


def test_wheels_are_fetched_for_the_python_the_templates_name() -> None:
    pythons = {t.python for _reqs, targets in wheelhouses().values() for t in targets}
    assert pythons == {lambda_platform.LAMBDA_PYTHON}, (
        f"the templates target CPython {sorted(pythons)}; tools/lambda_platform.py downloads wheels for "
        f"{lambda_platform.LAMBDA_PYTHON}"
    )


def test_image_functions_run_on_amazon_linux_2023() -> None:
    """Image functions on a Lambda Python base of 3.12 or newer."""
    for fn in image_functions():
        match = PUBLIC_LAMBDA_PYTHON.match(fn.base_image)
        assert match, f"{fn.name}: {fn.base_image} is not public.ecr.aws/lambda/python:<version>"
        osname = lambda_platform.operating_system(match.group("version"))
        assert osname == lambda_platform.AMAZON_LINUX_2023, f"{fn.name}: {fn.base_image} is {osname.name}"


# ---------------------------------------------------------------- the local stand-in


def _stand_in_names(tmp_path: Path) -> dict[str, str]:
    """The image names tools/sam-local gives the stand-in and its rootfs, as its scripts see them."""
    proc = subprocess.run(
        ["bash", "-c", 'source tools/sam-local/env.sh && printf "%s\\n" "$LAMBDA_LOCAL_IMAGE" "$ROOTFS_TAG"'],
        cwd=ROOT, capture_output=True, text=True, check=True, timeout=60,
        env={**os.environ, "SAM_LOCAL_WORK": str(tmp_path)},
    )  # fmt: skip
    image, rootfs = proc.stdout.split()
    return {"LAMBDA_LOCAL_IMAGE": image, "ROOTFS_TAG": rootfs}


def registry_of(reference: str) -> str:
    """The registry an image reference resolves to, as Docker reads it (no host part means Docker Hub)."""
    first, sep, _rest = reference.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        return first
    return "docker.io"


def test_the_stand_in_never_carries_a_public_registry_name(tmp_path: Path) -> None:
    for variable, name in _stand_in_names(tmp_path).items():
        assert registry_of(name) == "localhost", (
            f"tools/sam-local/env.sh {variable}={name} resolves to registry {registry_of(name)}: the stand-in's "
            "names must stay under localhost/, so no build can take it for a public image"
        )
    # ...and the build script tags nothing else.
    script = (ROOT / "tools" / "sam-local" / "build-base-image.sh").read_text(encoding="utf-8")
    tags = re.findall(r"(?:\s-t|--tag)\s+(\S+)", script) + re.findall(r"docker import - (\S+)", script)
    assert tags, "build-base-image.sh tags no image?"
    assert set(tags) <= {'"$LAMBDA_LOCAL_IMAGE"', '"$ROOTFS_TAG"'}, f"build-base-image.sh also tags {tags}"


def test_the_templates_and_dockerfiles_never_name_the_stand_in(tmp_path: Path) -> None:
    names = _stand_in_names(tmp_path)
    files = [*TEMPLATES, ROOT / "samconfig.toml", *(fn.dockerfile for fn in image_functions())]
    for path in files:
        text = path.read_text(encoding="utf-8")
        for name in [*names.values(), "localhost/"]:
            assert name not in text, f"{_rel(path)} names {name}: a deploy build would use the local stand-in"
    for fn in image_functions():
        assert fn.base_image.startswith("public.ecr.aws/lambda/python:"), f"{fn.name} builds FROM {fn.base_image}"
        froms = [i.args for i in dockerfile_instructions(fn.dockerfile) if i.keyword == "FROM"]
        stages = {a[-1] for a in froms if len(a) == 3 and a[1].upper() == "AS"}
        assert all(a[0] == "${BASE_IMAGE}" or a[0] in stages for a in froms), (
            f"{_rel(fn.dockerfile)}: every stage must build FROM ${{BASE_IMAGE}} (or an earlier stage): {froms}"
        )


def _diff(a: Any, b: Any, path: str = "") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        return [d for k in sorted(set(a) | set(b), key=str) for d in _diff(a.get(k), b.get(k), f"{path}/{k}")]
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [d for i, (x, y) in enumerate(zip(a, b, strict=True)) for d in _diff(x, y, f"{path}/{i}")]
    return [] if a == b else [path]


def test_the_local_template_copies_change_only_the_base_image_and_tag(tmp_path: Path) -> None:
    image = _stand_in_names(tmp_path)["LAMBDA_LOCAL_IMAGE"]
    tree = local_templates.template_tree()
    assert {_rel(p) for p in tree} >= {"template.yaml", "stacks/inference.yaml", "stacks/data-quality.yaml"}
    for path, template in tree.items():
        copy = local_templates.localize(template, path, image, "sam-local")
        allowed = re.compile(
            r"^/Resources/[^/]+/(Metadata/DockerBuildArgs(/BASE_IMAGE)?|Metadata/DockerTag|Properties/Location)$"
            r"|^/Rules(/.*)?$"
        )
        unexpected = [d for d in _diff(template, copy) if not allowed.match(d)]
        assert not unexpected, f"the local copy of {_rel(path)} also changes {unexpected}"
        for name, res in copy["Resources"].items():
            meta = res.get("Metadata") or {}
            if "Dockerfile" in meta:
                assert meta["DockerBuildArgs"]["BASE_IMAGE"] == image, name
                assert meta["DockerTag"].endswith("-sam-local"), f"{name}: the local image must not take the deploy tag"
        assert "SamLocalCopyIsNotDeployable" in copy["Rules"], "the copy must refuse a deploy"


# ---------------------------------------------------------------- make build produces what the images COPY


def _dockerignore(context: Path) -> list[tuple[bool, re.Pattern[str]]]:
    patterns = []
    for raw in (context / ".dockerignore").read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negated = line.startswith("!")
        pattern = line.lstrip("!").strip().strip("/")
        regex = ""
        i = 0
        while i < len(pattern):
            if pattern.startswith("**/", i):
                regex, i = regex + "(?:.*/)?", i + 3
            elif pattern.startswith("**", i):
                regex, i = regex + ".*", i + 2
            elif pattern[i] == "*":
                regex, i = regex + "[^/]*", i + 1
            elif pattern[i] == "?":
                regex, i = regex + "[^/]", i + 1
            else:
                regex, i = regex + re.escape(pattern[i]), i + 1
        patterns.append((negated, re.compile(f"^{regex}$")))
    return patterns


def in_docker_context(context: Path, path: str) -> bool:
    """Docker's rule: the last pattern that matches the path or one of its parent folders decides."""
    parts = path.strip("/").split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    excluded = False
    for negated, regex in _dockerignore(context):
        if any(regex.match(p) for p in prefixes):
            excluded = not negated
    return not excluded


@cache
def make_database() -> tuple[dict[str, list[str]], list[str]]:
    """Explicit rules (target -> prerequisites) and pattern-rule targets of the root Makefile, as make reads it.

    `make -qp help` prints the database and, in question mode with a recipe-less goal, runs nothing.
    """
    env = {k: v for k, v in os.environ.items() if k not in ("MODELS", "MAKEFLAGS", "MFLAGS")}
    proc = subprocess.run(
        ["make", "-qp", "-f", "Makefile", "help"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    rules: dict[str, list[str]] = {}
    patterns = []
    previous = ""
    for line in proc.stdout.splitlines():
        match = re.match(r"^([^#\s=][^=]*?):(?![:=])\s*(.*)$", line)
        not_a_target, previous = previous.startswith("# Not a target"), line
        if not match or not_a_target:
            continue
        prereqs = match.group(2).replace("|", " ").split()
        for target in match.group(1).split():
            if "%" in target:
                patterns.append(target)
            rules.setdefault(target, [])
            rules[target] = sorted(set(rules[target]) | set(prereqs))
    return rules, patterns


def made_by(goal: str) -> set[str]:
    """Every target `make <goal>` may make: the prerequisite closure of goal."""
    rules, _patterns = make_database()
    seen, pending = set(), [goal]
    while pending:
        target = pending.pop()
        if target not in seen:
            seen.add(target)
            pending += rules.get(target, [])
    return seen


def _has_rule(target: str) -> bool:
    rules, patterns = make_database()
    return target in rules or any(re.fullmatch(re.escape(p).replace("%", ".+"), target) for p in patterns)


def _git_tracked(path: str) -> bool:
    proc = subprocess.run(["git", "ls-files", "--", path], cwd=ROOT, capture_output=True, text=True, check=True)
    return bool(proc.stdout.strip())


@pytest.mark.parametrize("fn", image_functions(), ids=lambda f: f.name)
def test_make_build_produces_every_file_the_dockerfile_copies(fn: ImageFunction) -> None:
    built = made_by("build")
    assert "build" in make_database()[0], "the Makefile has no `build` target"
    problems = []
    for source in copy_sources(fn.dockerfile):
        rel = _rel((fn.context / source).resolve()) if (fn.context / source).exists() else source.rstrip("/")
        folder = source.endswith("/") or (fn.context / source).is_dir()
        probe = f"{rel}/x" if folder else rel
        if not (in_docker_context(fn.context, rel) and in_docker_context(fn.context, probe)):
            problems.append(f"COPY {source}: excluded from the Docker context by .dockerignore")
        if _git_tracked(rel):
            continue
        makers = sorted(t for t in built if (t == rel or t.startswith(rel + "/")) and _has_rule(t))
        if not makers:
            problems.append(
                f"COPY {source}: not tracked by git, and no prerequisite of `make build` creates it "
                "(a fresh clone's `make build` would fail here)"
            )
    assert not problems, f"{_rel(fn.dockerfile)}:\n" + "\n".join(problems)


def test_make_build_runs_sam_build_after_its_inputs() -> None:
    proc = subprocess.run(
        ["make", "-n", "-f", "Makefile", "build"],
        cwd=ROOT,
        env={**os.environ, "MAKEFLAGS": "", "MAKELEVEL": ""},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    lines = proc.stdout.splitlines()
    sam_build = [i for i, line in enumerate(lines) if re.search(r"\bsam build\b", line)]
    assert sam_build, f"`make build` does not run `sam build`:\n{proc.stdout}{proc.stderr}"
    assert any("check-deploy-images.sh .aws-sam/build" in line for line in lines[sam_build[-1] :]), (
        "`make build` must check after `sam build` that no built image descends from the local stand-in"
    )


# ---------------------------------------------------------------- the build cache


def test_no_cached_build_of_a_layer_that_reads_outside_its_folder() -> None:
    """SAM's build cache keys a layer on its ContentUri folder: a Makefile that copies src/ in goes stale."""
    config = tomllib.loads((ROOT / "samconfig.toml").read_text(encoding="utf-8"))
    cached_envs = [env for env, cmds in config.items() if isinstance(cmds, dict)
                   if (cmds.get("build") or {}).get("parameters", {}).get("cached")]  # fmt: skip
    if not cached_envs:
        return
    for template in TEMPLATES:
        for name, layer in resources(load_template(_rel(template)), "AWS::Serverless::LayerVersion").items():
            if layer.get("Metadata", {}).get("BuildMethod") != "makefile":
                continue
            makefile = (template.parent / layer["Properties"]["ContentUri"] / "Makefile").read_text(encoding="utf-8")
            reads_outside = "REPO_ROOT" in makefile or "../" in makefile
            assert not reads_outside, (
                f"samconfig.toml sets `cached = true` for {cached_envs}, but {name}'s Makefile copies files from "
                "outside its ContentUri, which SAM's cache key does not cover: a code change would deploy a stale layer"
            )
