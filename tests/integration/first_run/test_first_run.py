"""A new user's first ten minutes, on a fresh clone: every documented command works on its defaults, or
exits non-zero with one line that says what is missing and which command provides it (never a traceback).

The clone is a copy of the files git would commit (tracked and new, not ignored; working-tree contents) in
a temporary folder, so there is no `build/models`, no `.local` and no `.venv`; on CI's clean clone that is
the clone itself. The commands run from it with this environment's `.venv` (its `dqp`),
importing the copy's own `src` first. Commands that would train for minutes are checked on their refusal
path, or with the quickest documented settings (`dqp train --models baseline`).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import typer.main

from dq_platform.cli import app
from tests.support.aws import free_port

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[3]
DQP = Path(sys.executable).parent / "dqp"
TIMEOUT_S = 300

SAMPLE_MODELS_FIX = (
    "train the sample models with `make sample-models` (or `dqp train --sample --out build/models`), "
    "or pass --models a folder written by `dqp train`"
)
# What each command says on a fresh clone when it cannot work on its defaults: exactly one line on stderr.
REFUSALS = {
    "serve": f"error: no model to serve in build/models (no baseline/ or transformer/ folder); {SAMPLE_MODELS_FIX}",
    "evaluate": (
        "error: no model to evaluate in build/models (no baseline/manifest.json or transformer/manifest.json); "
        + SAMPLE_MODELS_FIX
    ),
    "explain": f"error: no model to explain in build/models (no transformer/manifest.json); {SAMPLE_MODELS_FIX}",
    "train": (
        "error: nothing to train on (no --data given); pass --data PATH (e.g. .local/dq/processed from "
        "`dqp dq run`, repeatable), or --sample to train on generated clauses"
    ),
    "dq run": (
        "error: nothing to check at .local/raw/incoming (it does not exist yet); write sample records there "
        "with `dqp sample records`, or pass --input PATH"
    ),
    "ab-report": (
        "error: no logs to read; give --logs FILE (what `dqp serve --log-file FILE` writes; the demo's is "
        ".local/demo/logs/serve.log) or --log-group NAME (CloudWatch)"
    ),
}
# The README's command table, as a user reads it.
MAKE_TARGETS = (
    "install",
    "lint",
    "test",
    "test-unit",
    "test-integration",
    "test-infra",
    "test-reliability",
    "validate",
    "build",
    "demo",
    "test-e2e",
    "sample-models",
    "bench",
)


def _copy_tracked_files(dest: Path) -> Path:
    try:
        listed = subprocess.run(
            ["git", "-C", str(ROOT), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            capture_output=True,
            check=True,
            timeout=60,
        ).stdout
    except (OSError, subprocess.CalledProcessError) as exc:
        pytest.skip(f"needs a git checkout to copy its tracked files: {exc}")
    for name in filter(None, listed.decode().split("\0")):
        source = ROOT / name
        if source.is_file():  # a tracked file deleted in the working tree is not in a clone either
            target = dest / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    return dest


def _env(clone: Path) -> dict[str, str]:
    """This machine's environment minus anything that points the CLI at AWS or at other models/data."""
    drop = ("AWS_", "POWERTOOLS_", "MODEL_", "AB_WEIGHTS", "ANALYTICS_", "DQP_", "_X_AMZN", "LAMBDA_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop) and k not in ("ENGINE", "PYTHONPATH")}
    env.update(
        PYTHONPATH=str(clone / "src"),  # the clone's own code, ahead of the editable install's
        AWS_EC2_METADATA_DISABLED="true",
        AWS_DEFAULT_REGION="eu-west-1",
        HF_HUB_OFFLINE="1",
        TOKENIZERS_PARALLELISM="false",
        COLUMNS="200",
    )
    return env


class Clone:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.env = _env(root)

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            args, cwd=self.root, env=self.env, capture_output=True, text=True, timeout=TIMEOUT_S, check=False
        )

    def dqp(self, *args: str) -> subprocess.CompletedProcess[str]:
        return self.run(str(DQP), *args)


def _fresh(tmp_path_factory: pytest.TempPathFactory, name: str) -> Clone:
    clone = Clone(_copy_tracked_files(tmp_path_factory.mktemp(name)))
    assert not (clone.root / "build").exists()
    assert not (clone.root / ".local").exists()
    where = clone.run(sys.executable, "-c", "import dq_platform; print(dq_platform.__file__)")
    assert where.stdout.strip() == str(clone.root / "src" / "dq_platform" / "__init__.py"), where.stderr
    return clone


@pytest.fixture(scope="module")
def clone(tmp_path_factory: pytest.TempPathFactory) -> Clone:
    """A fresh clone that the refusal checks leave as it was."""
    return _fresh(tmp_path_factory, "fresh-clone")


def _refused_in_one_line(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode != 0, done.stdout
    assert "Traceback" not in done.stderr + done.stdout
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    return lines[0]


def _commands() -> list[str]:
    """Every `dqp` command and sub-command, as `dqp --help` lists them."""
    root = typer.main.get_command(app)
    names: list[str] = []
    for name, command in getattr(root, "commands", {}).items():
        subs = getattr(command, "commands", None)  # a group (`dqp dq`, `dqp sample`) has sub-commands
        names += [f"{name} {sub}" for sub in subs] if subs else [name]
    return sorted(names)


def test_help_lists_every_command_and_each_has_help(clone: Clone) -> None:
    commands = _commands()
    assert commands == [
        "ab-report",
        "blend",
        "demo",
        "dq check",
        "dq run",
        "evaluate",
        "events",
        "explain",
        "openapi",
        "publish",
        "sample clauses",
        "sample records",
        "serve",
        "smoke",
        "train",
    ]
    top = clone.dqp("--help")
    assert top.returncode == 0, top.stderr
    for name in {c.split()[0] for c in commands}:
        assert re.search(rf"^\W*{name}\s", top.stdout, re.MULTILINE), f"dqp --help does not list {name}"
    for command in commands:
        done = clone.dqp(*command.split(), "--help")
        assert done.returncode == 0, (command, done.stderr)
        assert "Usage: dqp " + command in done.stdout
    version = clone.dqp("--version")
    assert (version.returncode, version.stdout.strip()) == (0, "0.1.0")
    readme = (clone.root / "README.md").read_text(encoding="utf-8")
    for name in {c.split()[0] for c in commands}:
        assert f"dqp {name}" in readme, f"the README never shows `dqp {name}`"


@pytest.mark.parametrize("command", sorted(REFUSALS))
def test_commands_that_need_something_first_say_what_and_which_command_provides_it(clone: Clone, command: str) -> None:
    assert _refused_in_one_line(clone.dqp(*command.split())) == REFUSALS[command]
    assert not (clone.root / "build").exists()  # a refusal writes nothing
    assert not (clone.root / ".local").exists()


def _listening(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def test_smoke_with_nothing_serving_says_to_start_the_api(clone: Clone) -> None:
    if _listening(3000):
        pytest.skip("something on this machine already listens on 127.0.0.1:3000, the default URL")
    assert _refused_in_one_line(clone.dqp("smoke")) == (
        "error: nothing answers at http://127.0.0.1:3000 (connection refused); start the API with `dqp serve` "
        "(or `make demo`), or pass --url"
    )
    port = free_port()
    assert _refused_in_one_line(clone.dqp("smoke", "--url", f"http://127.0.0.1:{port}")) == (
        f"error: nothing answers at http://127.0.0.1:{port} (connection refused); check the URL and that the API "
        "is up (`dqp serve`, or the deployed stage)"
    )


def test_demo_on_a_taken_port_stops_at_once_in_one_line(clone: Clone) -> None:
    """The demo itself (minutes of training) runs in tests/integration/demo; here, its first check."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        line = _refused_in_one_line(clone.dqp("demo", "--no-serve", "--port", str(port)))
    assert line == (
        f"demo failed: port {port} on 127.0.0.1 is already in use (an earlier demo's API?); stop it or pass --port"
    )
    assert not (clone.root / ".local").exists()


@pytest.fixture(scope="module")
def walked(tmp_path_factory: pytest.TempPathFactory) -> Clone:
    """A second fresh clone, for the commands that write (the walkthrough's steps)."""
    return _fresh(tmp_path_factory, "walkthrough")


def test_the_walkthrough_on_its_defaults(walked: Clone) -> None:
    """The README's walkthrough in order, each step on its defaults, each feeding the next."""
    done = walked.dqp("sample", "records")
    assert done.returncode == 0, done.stderr
    assert done.stdout == "wrote 1000 records (+0 malformed lines) to .local/raw/incoming/batch.csv\n"

    done = walked.dqp("dq", "check")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0] == "glue/rulesets/contracts.dqdl: 20 rules"

    done = walked.dqp("dq", "run")
    assert done.returncode == 0, done.stderr
    results = json.loads((walked.root / ".local" / "dq" / "results.json").read_text())
    assert results["status"] == "SUCCEEDED"
    assert results["rows_in"] == 1000 == results["rows_processed"] + results["rows_quarantined"]
    assert done.stdout.startswith(f"SUCCEEDED: rows in 1,000, processed {results['rows_processed']:,}, ")
    assert done.stdout.splitlines()[-1] == "results: .local/dq/results.json"

    # Documents to explain are there now; the models are not: the same one line names the command.
    assert _refused_in_one_line(walked.dqp("explain")) == REFUSALS["explain"]

    done = walked.dqp("sample", "clauses")
    assert done.returncode == 0, done.stderr
    assert done.stdout == "wrote 2000 clauses to .local/clauses.csv\n"

    # The quickest documented training (the baseline alone, seconds), into the default build/models.
    done = walked.dqp("train", "--data", ".local/clauses.csv", "--models", "baseline")
    assert done.returncode == 0, done.stderr
    assert (walked.root / "build" / "models" / "baseline" / "manifest.json").is_file()
    done = walked.dqp("evaluate", "--data", ".local/clauses.csv")
    assert done.returncode == 0, done.stderr
    assert "note: model transformer not evaluated" in done.stdout
    assert done.stdout.splitlines()[-1] == "wrote build/evaluation/evaluation.json and build/evaluation/pr_curves.png"


def test_generated_contract_files_regenerate_identically(walked: Clone) -> None:
    """`dqp openapi` and `dqp events` on their defaults rewrite the committed files byte for byte."""
    committed = {
        p: p.read_bytes()
        for p in [
            walked.root / "docs" / "openapi.json",
            *(walked.root / "events").glob("*.json"),
            *(walked.root / "functions" / "codedeploy_hook" / "events").glob("*.json"),
        ]
    }
    done = walked.dqp("openapi")
    assert (done.returncode, done.stdout) == (0, "wrote docs/openapi.json\n"), done.stderr
    done = walked.dqp("events")
    assert done.returncode == 0, done.stderr
    assert done.stdout
    for path, content in committed.items():
        assert path.read_bytes() == content, f"{path.relative_to(walked.root)} changed"
    for flag_check in (("openapi", "--check"), ("events", "--check")):
        done = walked.dqp(*flag_check)
        assert done.returncode == 0, done.stderr


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_every_documented_make_target_exists_and_is_listed(clone: Clone) -> None:
    readme = (clone.root / "README.md").read_text(encoding="utf-8")
    table = [line for line in readme.splitlines() if line.startswith("| `make ")]
    documented = {t for line in table for t in re.findall(r"`(?:make )?([a-z][a-z0-9-]*)`", line.split("|")[1])}
    assert documented == set(MAKE_TARGETS)
    listed = clone.run("make", "--no-print-directory", "help")
    assert listed.returncode == 0, listed.stderr
    helped = {line.split()[0] for line in listed.stdout.splitlines() if line.strip()}
    for target in MAKE_TARGETS:
        # -n prints each recipe without running it (no venv is created): the target and its inputs exist.
        dry = clone.run("make", "--no-print-directory", "-n", target)
        assert dry.returncode == 0, f"make -n {target}: {dry.stderr}"
    # `make help` lists the targets with a `##` description whose name matches [a-zA-Z_-]+: test-unit and
    # test-integration have no description, and the digit in test-e2e keeps it out (the README has all three).
    assert set(MAKE_TARGETS) - helped <= {"test-unit", "test-integration", "test-e2e"}
    assert not (clone.root / ".venv").exists()
