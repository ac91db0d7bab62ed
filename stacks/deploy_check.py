"""``make deploy-check``: everything ``cdk deploy`` would check that can run offline, in one
command (CI runs it after ``make test``).

Steps, in order; the first failure stops the check and exits 1:

1. **build** — ``stacks.layer_build``: layers and runtime bundle from the hashed locks;
   prints each artifact's size and each kind of function's total against the budget.
2. **synth** — ``npx --no-install cdk synth`` through the CLI pinned in ``package.json``,
   offline (fake credentials, the Region from ``CDK_DEFAULT_REGION``/``AWS_REGION``/
   ``AWS_DEFAULT_REGION``, else us-east-1), with a valid ``approverEmail``; the context is validated
   first, and cdk-nag AwsSolutions runs in the synth (an unacknowledged finding fails).
3. **cdk-nag** — the synth's ``validation-report.json`` says ``success`` with no violation.
4. **cfn-lint** — the template, zero errors and zero warnings (ignored rules, each with
   its reason, in ``tests/infra/cfnlintrc.yaml``).
5. **asl-validator** — the ASL definition file, with the npm ``asl-validator`` pinned in
   ``package.json`` (an implementation independent of Step Functions and of moto).
6. **parliament** — every IAM and resource policy of the template (``stacks.iam_lint``).
7. **budget** — every function's code + layers ≤ 75 % of Lambda's 262,144,000 B, the
   runtime bundle within 75 % of AgentCore's quotas, on the staged assets
   (``stacks.budget``).

Usage: ``python -m stacks.deploy_check [--out DIR]`` (default ``build/deploy-check``).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .layer_build import ROOT
from .offline_env import offline_env

ASL = ROOT / "statemachines" / "research_report.asl.json"
CFN_LINT_CONFIG = ROOT / "tests" / "infra" / "cfnlintrc.yaml"


def _tool(name: str) -> str:
    beside = Path(sys.executable).with_name(name)
    found = str(beside) if beside.exists() else shutil.which(name)
    if not found:
        sys.exit(f"deploy-check: {name} is not installed (make setup-test)")
    return found


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "deploy-check")
    args = parser.parse_args(argv)
    out: Path = args.out
    shutil.rmtree(out, ignore_errors=True)
    home = Path(tempfile.mkdtemp(prefix="relay-deploy-check-"))
    env = offline_env(home)
    # Keep the deploy Region (offline_env pins us-east-1) so the model/Region check is yours.
    import os

    region = next((os.environ[k] for k in ("CDK_DEFAULT_REGION", "AWS_REGION", "AWS_DEFAULT_REGION")
                   if os.environ.get(k)), None)  # fmt: skip
    if region:
        env.update(AWS_REGION=region, AWS_DEFAULT_REGION=region)
    py = sys.executable
    template = out / "Relay.template.json"

    def nag() -> None:
        report = json.loads((out / "validation-report.json").read_text())
        (plugin,) = [r for r in report["pluginReports"] if r["pluginName"] == "AwsSolutions"]
        print(f"cdk-nag AwsSolutions: {plugin['conclusion']}, {len(plugin['violations'])} violations, "
              f"{len(plugin.get('suppressedViolations', []))} acknowledged with reasons")  # fmt: skip
        if plugin["conclusion"] != "success" or plugin["violations"]:
            raise SystemExit(1)

    steps: list[tuple[str, list[str] | object]] = [
        ("build", [py, "-m", "stacks.layer_build"]),
        ("synth", ["npx", "--no-install", "cdk", "synth", "--quiet", "--no-notices", "--no-version-reporting",
                   "-c", "approverEmail=approver@example.com", "--output", str(out)]),
        ("cdk-nag", nag),
        ("cfn-lint", [_tool("cfn-lint"), "--config-file", str(CFN_LINT_CONFIG), "--", str(template)]),
        ("asl-validator", ["npx", "--no-install", "asl-validator", "--json-path", str(ASL.relative_to(ROOT))]),
        ("parliament", [py, "-m", "stacks.iam_lint", str(template)]),
        ("budget", [py, "-m", "stacks.budget", str(out)]),
    ]  # fmt: skip
    try:
        for name, step in steps:
            start = time.perf_counter()
            print(f"== deploy-check: {name}", flush=True)
            if callable(step):
                step()
            else:
                result = subprocess.run(step, cwd=ROOT, env=env)  # type: ignore[arg-type]
                if result.returncode != 0:
                    sys.exit(f"deploy-check: {name} failed (exit {result.returncode})")
            print(f"== deploy-check: {name} ok ({time.perf_counter() - start:.1f} s)", flush=True)
    finally:
        shutil.rmtree(home, ignore_errors=True)
    print("deploy-check: all offline deploy checks passed")


if __name__ == "__main__":
    main()
