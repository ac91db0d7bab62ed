"""Infra fixtures: the app is synthesized once per session (by the pinned CDK CLI) and reused.

The synth runs the real stack code with the cdk-nag AwsSolutions plugin attached (an
unacknowledged finding fails the synth), offline, with no AWS credentials. It needs the
built layers (``python -m stacks.layer_build``; built on first use if missing).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from infra_support import ROOT, TEST_EMAIL, Synth, cdk_context, require_every_handler, run_lock  # noqa: E402

from stacks.offline_env import offline_env  # noqa: E402

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
os.environ.setdefault("CDK_DISABLE_CLI_TELEMETRY", "true")


@pytest.fixture(scope="session")
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The layers and the agent bundle (``stacks.layer_build.build_all``), built once per run.

    The build is cached by content under ``build/``; on a fresh clone it takes about a minute,
    so the pytest-xdist workers take turns (a run-wide lock) instead of both building it.
    """
    from stacks import layer_build

    with run_lock(tmp_path_factory, "layer-build"):
        return layer_build.build_all()


@dataclass
class CliSynth:
    """One ``npx --no-install cdk synth`` through the pinned CLI, offline: its version line,
    exit code, output tails and cloud assembly folder."""

    version: str
    returncode: int
    output: str
    outdir: Path


def _npx_cdk_synth(tmp: Path) -> CliSynth:
    cdk = ROOT / "node_modules" / ".bin" / "cdk"
    if not cdk.exists():
        pytest.fail("node_modules/.bin/cdk is missing: run `npm ci` (the Makefile's setup step)")
    home = tmp / "home"
    home.mkdir()
    version = subprocess.run(
        [str(cdk), "--version"], capture_output=True, text=True, env=offline_env(home), timeout=120
    )
    out = tmp / "cdk.out"
    result = subprocess.run(
        ["npx", "--no-install", "cdk", "synth", "--quiet", "--no-notices", "--no-version-reporting",
         "-c", f"approverEmail={TEST_EMAIL}", "--output", str(out)],
        cwd=ROOT, env=offline_env(home), capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    return CliSynth(version.stdout, result.returncode, result.stdout[-4000:] + result.stderr[-4000:], out)


@pytest.fixture(scope="session")
def cli_synth(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> CliSynth:
    """The app synthesized once per session by the pinned CDK CLI, as ``cdk deploy`` and
    ``make deploy-check`` run it (``cdk.json``'s ``python3 -m stacks.app``, cdk-nag attached),
    from the built layers (:func:`artifacts`). Fails, naming them, when a handler the stack
    deploys is missing from ``functions/`` (checked first: no build for a synth that cannot pass)."""
    require_every_handler(ROOT / "functions")
    request.getfixturevalue("artifacts")
    return _npx_cdk_synth(tmp_path_factory.mktemp("cli-synth"))


@pytest.fixture(scope="session")
def synth(tmp_path_factory: pytest.TempPathFactory, cli_synth: CliSynth, artifacts: Any) -> Synth:
    """The synthesized app: the stack object (for logical ids and tokens), its template
    and cloud assembly (cdk-nag's report, the staged assets).

    The template and assembly are the pinned CLI's synth (:func:`cli_synth`, the one synth
    of the session); the stack object comes from building the same app in-process (same
    code, same context; logical ids are deterministic) without synthesizing it again.
    """
    from aws_cdk import App
    from aws_cdk.assertions import Template

    from stacks.app import build_app

    assert cli_synth.returncode == 0, cli_synth.output
    outdir = cli_synth.outdir
    tmp = tmp_path_factory.mktemp("infra")
    _, stack = build_app(App(context=cdk_context(), outdir=str(tmp / "unsynthesized")), artifacts=artifacts)
    template_path = outdir / f"{stack.stack_name}.template.json"
    template = json.loads(template_path.read_text())
    return Synth(stack, template, Template.from_json(template), outdir, template_path)


@pytest.fixture
def synth_outdir_for_budget(synth: Synth) -> tuple[Path, int]:
    """The session synth's outdir and the smallest agent-function total in it (bytes)."""
    from stacks.budget import function_sizes

    agent_layer = synth.logical_id(synth.stack.workflow.deps_layer)
    return synth.outdir, min(
        s.total for s in function_sizes(synth.outdir, synth.template) if f"layer {agent_layer}" in s.parts
    )
