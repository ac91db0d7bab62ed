"""The infra tier fails, never skips, when a handler the stack deploys is missing."""

from __future__ import annotations

import shutil

import pytest
from infra_support import ROOT, missing_handlers, require_every_handler


def test_every_handler_the_stack_deploys_is_in_functions() -> None:
    assert missing_handlers(ROOT / "functions") == []


def test_a_deleted_handler_fails_the_infra_tests_naming_it(tmp_path) -> None:
    # Given functions/ without PlanResearch's handler
    functions = tmp_path / "functions"
    shutil.copytree(ROOT / "functions", functions, ignore=shutil.ignore_patterns("__pycache__"))
    (functions / "plan_research" / "app.py").unlink()
    # When the synth fixture checks the handlers / Then the test fails (a skip would hide it), naming the handler
    with pytest.raises(pytest.fail.Exception, match=r"no app\.py for \['plan_research'\]"):
        require_every_handler(functions)
