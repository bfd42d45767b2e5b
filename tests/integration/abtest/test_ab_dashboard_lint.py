"""The dashboard snippet embedded the way stacks/inference.yaml embeds it passes cfn-lint."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.infra
ROOT = Path(__file__).resolve().parents[3]
CFN_LINT = Path(sys.executable).parent / "cfn-lint"


def test_snippet_embedded_in_a_template_is_lint_clean(tmp_path: Path) -> None:
    if not CFN_LINT.exists():
        pytest.skip("cfn-lint not installed")
    body = (ROOT / "stacks" / "snippets" / "ab-dashboard.json").read_text()
    template = {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Parameters": {"ProjectPrefix": {"Type": "String"}, "EnvName": {"Type": "String"}},
        "Resources": {
            "AbDashboard": {
                "Type": "AWS::CloudWatch::Dashboard",
                "Properties": {
                    "DashboardName": {"Fn::Sub": "${ProjectPrefix}-${EnvName}-inference-ab"},
                    "DashboardBody": {
                        "Fn::Sub": [body, {"FunctionName": {"Fn::Sub": "${ProjectPrefix}-${EnvName}-ml-infer"}}]
                    },
                },
            }
        },
    }
    path = tmp_path / "ab-dashboard.json"
    path.write_text(json.dumps(template, indent=2))
    result = subprocess.run(
        [str(CFN_LINT), str(path), "--regions", "eu-west-1"], capture_output=True, text=True, timeout=300, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
