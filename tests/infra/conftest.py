"""Infra fixtures: the app is synthesized once per session and the template reused.

The synth runs the real stack code with the cdk-nag AwsSolutions plugin attached (an
unacknowledged finding fails the synth), offline, with no AWS credentials. It needs the
built layers (``python -m stacks.layer_build``; built on first use if missing).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import warnings
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from infra_support import Synth, cdk_context  # noqa: E402

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
def synth(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    from aws_cdk import App
    from aws_cdk.assertions import Template

    from stacks.app import build_app

    tmp = tmp_path_factory.mktemp("infra")
    _functions_dir_for_tests(tmp)
    outdir = tmp / "cdk.out"
    app, stack = build_app(App(context=cdk_context(), outdir=str(outdir)))
    app.synth()
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
