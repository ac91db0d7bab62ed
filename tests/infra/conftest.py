"""Infra fixtures: the app is synthesized once per session (by the pinned CDK CLI) and reused.

The synth runs the real stack code with the cdk-nag AwsSolutions plugin attached (an
unacknowledged finding fails the synth), offline, with no AWS credentials. It needs the
built layers (``python -m stacks.layer_build``; built on first use if missing).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from infra_support import ROOT, TEST_EMAIL, Synth, cdk_context, run_lock  # noqa: E402

from stacks.offline_env import offline_env  # noqa: E402

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
os.environ.setdefault("CDK_DISABLE_CLI_TELEMETRY", "true")


def _functions_dir_for_tests(tmp: Path) -> None:
    """Point the stack at a copy of ``functions/`` with stub handlers for folders not written yet.

    The infra tests check the stack, not the handlers; a missing folder is reported as a
    warning here (and fails the real ``cdk synth`` test), so this tier stays useful while
    the handlers are being written.
    """
    import stacks.functions as functions
    from stacks.api import API_FUNCTIONS
    from stacks.workflow import STATUS_FUNCTION, TASK_FUNCTIONS

    missing = [
        s.name
        for s in (*TASK_FUNCTIONS, STATUS_FUNCTION, *API_FUNCTIONS)
        if not (functions.FUNCTIONS_DIR / s.name / "app.py").exists()
    ]
    if not missing:
        return
    warnings.warn(f"functions/ lacks {missing}: infra tests use stub handlers for them", stacklevel=1)
    copy = tmp / "functions"
    shutil.copytree(functions.FUNCTIONS_DIR, copy, ignore=shutil.ignore_patterns("__pycache__"))
    for name in missing:
        (copy / name).mkdir(parents=True, exist_ok=True)
        (copy / name / "app.py").write_text("def handler(event, context):\n    raise NotImplementedError\n")
    functions.FUNCTIONS_DIR = copy


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


def _missing_handlers() -> list[str]:
    """Handler folders of the stack not written yet in the repository's ``functions/``."""
    from stacks.api import API_FUNCTIONS
    from stacks.workflow import STATUS_FUNCTION, TASK_FUNCTIONS

    return [
        s.name
        for s in (*TASK_FUNCTIONS, STATUS_FUNCTION, *API_FUNCTIONS)
        if not (ROOT / "functions" / s.name / "app.py").exists()
    ]


@pytest.fixture(scope="session")
def cli_synth(tmp_path_factory: pytest.TempPathFactory, artifacts: Any) -> CliSynth:
    """The app synthesized once per session by the pinned CDK CLI, as ``cdk deploy`` and
    ``make deploy-check`` run it (``cdk.json``'s ``python3 -m stacks.app``, cdk-nag attached).
    Skips when a handler folder is missing: a real synth needs every handler."""
    missing = _missing_handlers()
    if missing:
        pytest.skip(f"functions/{missing} not written yet: a real synth needs every handler")
    return _npx_cdk_synth(tmp_path_factory.mktemp("cli-synth"))


@pytest.fixture(scope="session")
def synth(tmp_path_factory: pytest.TempPathFactory, artifacts: Any, request: pytest.FixtureRequest) -> Synth:
    """The synthesized app: the stack object (for logical ids and tokens), its template
    and cloud assembly (cdk-nag's report, the staged assets).

    When every handler exists this is the pinned CLI's synth (:func:`cli_synth`, the one
    synth of the session): the template and assembly come from it, and the stack object
    from building the same app in-process (same code, same context; logical ids are
    deterministic) without synthesizing it a second time. Otherwise the app is synthesized
    in-process with stub handlers (:func:`_functions_dir_for_tests`).
    """
    from aws_cdk import App
    from aws_cdk.assertions import Template

    from stacks.app import build_app

    tmp = tmp_path_factory.mktemp("infra")
    if _missing_handlers():
        _functions_dir_for_tests(tmp)
        outdir = tmp / "cdk.out"
        app, stack = build_app(App(context=cdk_context(), outdir=str(outdir)), artifacts=artifacts)
        app.synth()
    else:
        cli = request.getfixturevalue("cli_synth")
        assert cli.returncode == 0, cli.output
        outdir = cli.outdir
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
