"""Helpers shared by the infra tests (imported as ``infra_support``; tests/ has no packages)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
#: The context the tests synthesize with: cdk.json's defaults plus an approver address.
TEST_EMAIL = "approver@example.com"


def cdk_context(**overrides: Any) -> dict[str, Any]:
    ctx = json.loads((ROOT / "cdk.json").read_text())["context"]
    ctx["approverEmail"] = TEST_EMAIL
    ctx.update(overrides)
    return ctx


@dataclass
class Synth:
    """One synthesized app: the stack object, its template (dict and assertions), the outdir."""

    stack: Any
    template: dict[str, Any]
    assertions: Any
    outdir: Path
    template_path: Path

    def resources(self, type_: str) -> dict[str, dict[str, Any]]:
        return {k: v for k, v in self.template["Resources"].items() if v["Type"] == type_}

    def logical_id(self, construct: Any) -> str:
        cfn = construct if hasattr(construct, "cfn_resource_type") else construct.node.default_child
        return str(self.stack.get_logical_id(cfn))


def run_shared_dir(tmp_path_factory: Any) -> Path:
    """A folder every pytest-xdist worker of this run shares (the run's base temp folder;
    without xdist, the session's own)."""
    import os

    base = Path(tmp_path_factory.getbasetemp())
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


@contextmanager
def run_lock(tmp_path_factory: Any, name: str) -> Iterator[None]:
    """Hold an exclusive lock shared by every worker of this run (``fcntl.flock`` on
    ``<run shared dir>/<name>.lock``); released when the block ends, or when the process dies."""
    import fcntl

    with (run_shared_dir(tmp_path_factory) / f"{name}.lock").open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def missing_handlers(functions_dir: Path) -> list[str]:
    """The handler folders the stack deploys (every Task, the status-change function, the
    API's) that have no ``app.py`` in ``functions_dir``."""
    from stacks.api import API_FUNCTIONS
    from stacks.workflow import RECONCILE_FUNCTION, STATUS_FUNCTION, TASK_FUNCTIONS

    return [s.name for s in (*TASK_FUNCTIONS, STATUS_FUNCTION, RECONCILE_FUNCTION, *API_FUNCTIONS) if not (functions_dir / s.name / "app.py").exists()]


def require_every_handler(functions_dir: Path) -> None:
    """Fail the test (never skip it) when a handler the stack deploys is missing: a stack
    whose function has no code cannot be deployed, and a skipped infra tier hides that."""
    import pytest

    missing = missing_handlers(functions_dir)
    if missing:
        pytest.fail(f"{functions_dir}: no app.py for {missing}: the stack deploys these handlers", pytrace=False)
