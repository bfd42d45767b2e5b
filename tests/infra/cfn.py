"""Template helpers shared by the infrastructure tests."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from functools import cache
from pathlib import Path
from typing import Any

from cfnlint.decode import cfn_yaml

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = sorted([ROOT / "template.yaml", *(ROOT / "stacks").glob("*.yaml")])
SAM = ROOT / ".venv-sam" / "bin" / "sam"
CHECKOV = ROOT / ".venv-checkov" / "bin" / "checkov"


@cache
def _load(path: str) -> dict[str, Any]:
    # Round-trip through JSON so tests compare plain dicts/lists, with intrinsics as {"Fn::...": ...}.
    return json.loads(json.dumps(cfn_yaml.load(path)))


def load_template(relpath: str) -> dict[str, Any]:
    return _load(str(ROOT / relpath))


def resources(template: dict[str, Any], rtype: str) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in template["Resources"].items() if v["Type"] == rtype}


CFN_LINT = Path(sys.executable).parent / "cfn-lint"


def local_env(**extra: str) -> dict[str, str]:
    """Environment for SAM CLI and checkov: no telemetry, no credentials, no metadata probes."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(SAM_CLI_TELEMETRY="0", AWS_EC2_METADATA_DISABLED="true", BC_SKIP_MAPPING="TRUE")
    env["AWS_DEFAULT_REGION"] = "eu-west-1"
    env.update(extra)
    return env


def run(cmd: list[str], cwd: Path = ROOT, timeout: int = 600, **extra_env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        cmd, cwd=cwd, env=local_env(**extra_env), capture_output=True, text=True, timeout=timeout, check=False
    )
