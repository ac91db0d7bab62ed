"""Fixtures for the state machine tier: the ASL file on the local engine."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
MOCK_CONFIG = ROOT / "statemachines" / "test" / "MockConfigFile.json"
_names = itertools.count(1)


def unique_name(prefix: str) -> str:
    return f"{prefix}-{next(_names):04d}"


def entered_states(history: list[dict[str, Any]]) -> list[str]:
    """State names in the order the execution entered them (top level; Map iterations
    of a Distributed Map run as child executions and do not appear here)."""
    return [e["stateEnteredEventDetails"]["name"] for e in history if e["type"].endswith("StateEntered")]


def state_input(history: list[dict[str, Any]], name: str) -> dict[str, Any]:
    import json

    for event in history:
        if event["type"].endswith("StateEntered") and event["stateEnteredEventDetails"]["name"] == name:
            return json.loads(event["stateEnteredEventDetails"]["input"])
    raise AssertionError(f"state {name} was never entered")


@pytest.fixture(scope="module")
def corpus_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small corpus of real text about task tokens and approvals."""
    folder = tmp_path_factory.mktemp("corpus")
    (folder / "task-tokens.md").write_text(
        "# Task tokens\n\nA Task state with the waitForTaskToken integration pattern pauses the execution "
        "and passes a task token to the integrated service. The execution resumes when SendTaskSuccess or "
        "SendTaskFailure is called with that token. A task token can wait up to one year in a Standard workflow. "
        "If a heartbeat is configured, SendTaskHeartbeat must be called before HeartbeatSeconds elapse.\n"
    )
    (folder / "approvals.txt").write_text(
        "Human approval steps email a reviewer a link. The reviewer approves or rejects. Rejections should carry "
        "feedback so the analysis can be revised. Links must expire and must not be decided twice. Mail scanners "
        "fetch links before people do, so opening a link must not decide anything.\n"
    )
    (folder / "retries.html").write_text(
        "<html><body><h1>Retries</h1><p>Retriers use IntervalSeconds, MaxAttempts and BackoffRate. "
        "JitterStrategy FULL spreads retries. Errors such as States.Timeout and States.TaskFailed can be caught "
        "with a Catch field and routed to a recovery state.</p></body></html>"
    )
    return folder


@pytest.fixture(scope="module")
def relay(tmp_path_factory: pytest.TempPathFactory, corpus_dir: Path) -> Iterator[Any]:
    """One local runtime per module: real handlers, real agents (offline model), retry waits × 0.01."""
    from relay.local.runtime import LocalRelay

    with LocalRelay(
        data_dir=tmp_path_factory.mktemp("relay"),
        corpus=str(corpus_dir),
        retry_time_scale=0.01,
        mock_config=MOCK_CONFIG,
    ) as runtime:
        yield runtime
