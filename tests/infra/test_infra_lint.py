"""Linters on the synthesized app: cdk-nag (AwsSolutions), cfn-lint, and the pinned npm CLI."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from infra_support import ROOT, Synth

pytestmark = pytest.mark.infra

CFN_LINT_CONFIG = Path(__file__).with_name("cfnlintrc.yaml")


def cfn_lint() -> str:
    beside = Path(sys.executable).with_name("cfn-lint")
    found = str(beside) if beside.exists() else shutil.which("cfn-lint")
    if not found:
        pytest.fail("cfn-lint is not installed (pip install -e '.[dev]')")
    return found


def test_cdk_nag_reports_no_unacknowledged_finding(synth: Synth) -> None:
    report = json.loads((synth.outdir / "validation-report.json").read_text())
    (nag,) = [r for r in report["pluginReports"] if r["pluginName"] == "AwsSolutions"]
    assert nag["conclusion"] == "success"
    assert nag["violations"] == []
    # every acknowledgement carries a written reason
    suppressed = nag.get("suppressedViolations", [])
    assert suppressed, "expected the deliberate findings to be acknowledged, not absent"
    for v in suppressed:
        assert v["acknowledgedId"] == f"AwsSolutions::{v['ruleName']}"
        assert len(v.get("reason", "")) >= 60, (v["ruleName"], v["acknowledgedAt"])


def test_cfn_lint_has_no_errors_or_warnings(synth: Synth) -> None:
    result = subprocess.run(
        [cfn_lint(), "--config-file", str(CFN_LINT_CONFIG), "--format", "parseable", "--",
         str(synth.template_path)],
        capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == ""


def test_npx_cdk_synth_runs_offline_with_the_pinned_cli(cli_synth) -> None:
    # The session's one synth (conftest.cli_synth): `npx --no-install cdk synth` with the pinned
    # CLI, offline, through cdk.json's app command; the other infra tests check its output.
    pinned = json.loads((ROOT / "package.json").read_text())["devDependencies"]["aws-cdk"]
    assert cli_synth.version.startswith(pinned), cli_synth.version
    assert cli_synth.returncode == 0, cli_synth.output
    template = json.loads((cli_synth.outdir / "Relay.template.json").read_text())
    assert any(r["Type"] == "AWS::StepFunctions::StateMachine" for r in template["Resources"].values())


def test_parliament_finds_nothing_beyond_the_reasoned_ignores(synth: Synth) -> None:
    from stacks.iam_lint import IGNORED, lint, policies

    # Given every identity and resource policy of the template, rendered without intrinsics
    failing, ignored, checked = lint(synth.template)
    # Then parliament reports nothing that is not ignored with a written reason
    assert checked == len(policies(synth.template)) >= 12
    assert failing == []
    assert all(len(reason) >= 60 for reason in IGNORED.values())
    # And the linter really runs: a wildcard-resource s3 policy with a typo'd action is caught
    from parliament import analyze_policy_string

    bad = analyze_policy_string(json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "s3:GetObjekt", "Resource": "arn:aws:s3:::b/*"}]}))  # fmt: skip
    assert [f.issue for f in bad.findings] == ["UNKNOWN_ACTION"]
    assert ignored, "the AgentCore actions are expected among the ignored findings"


def test_asl_validator_accepts_the_definition_file() -> None:
    from stacks.deploy_check import ASL

    cli = ROOT / "node_modules" / ".bin" / "asl-validator"
    if not cli.exists():
        pytest.fail("node_modules/.bin/asl-validator is missing: run `npm ci` (the Makefile's setup step)")
    result = subprocess.run([str(cli), "--json-path", str(ASL)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and "is valid" in result.stdout, result.stdout + result.stderr
