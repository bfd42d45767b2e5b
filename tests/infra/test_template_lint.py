"""Every template passes cfn-lint, `sam validate --lint` and checkov with zero failed checks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.infra.cfn import CFN_LINT, CHECKOV, ROOT, SAM, TEMPLATES, load_template, run

pytestmark = pytest.mark.infra
IDS = [str(t.relative_to(ROOT)) for t in TEMPLATES]


def test_templates_found() -> None:
    assert {"template.yaml", "stacks/foundation.yaml", "stacks/billing.yaml"} <= set(IDS)


@pytest.mark.parametrize("template", TEMPLATES, ids=IDS)
def test_cfn_lint_clean(template: Path) -> None:
    result = run([str(CFN_LINT), str(template)])
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("template", TEMPLATES, ids=IDS)
def test_sam_validate_lint(template: Path) -> None:
    # `sam validate --lint` checks only the template it is given, so each file is linted on its own.
    result = run([str(SAM), "validate", "--lint", "-t", str(template)])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "is a valid SAM Template" in result.stdout + result.stderr


def test_checkov_no_failed_checks() -> None:
    args = [
        str(CHECKOV),
        "--quiet",
        "--compact",
        "--skip-download",
        "--framework",
        "cloudformation",
        "-o",
        "json",
    ]
    for template in TEMPLATES:
        args += ["-f", str(template)]
    result = run(args)
    report = json.loads(result.stdout)
    reports = report if isinstance(report, list) else [report]
    failed = [
        f"{c['check_id']} {c['resource']} ({c['file_path']})"
        for r in reports
        for c in r.get("results", {}).get("failed_checks", [])
    ]
    assert failed == [], "\n".join(failed)
    assert sum(r["summary"]["passed"] for r in reports) > 50


@pytest.mark.parametrize("template", TEMPLATES, ids=IDS)
def test_every_checkov_suppression_has_a_reason(template: Path) -> None:
    for name, res in load_template(str(template.relative_to(ROOT)))["Resources"].items():
        for skip in res.get("Metadata", {}).get("checkov", {}).get("skip", []):
            assert len(skip.get("comment", "")) >= 20, f"{name}: suppression {skip.get('id')} lacks a reason"
