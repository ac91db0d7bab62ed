"""AskResearcher by callback on the local engine, with the real researcher runtime: the
gateway answers at once, the researcher heartbeats while it works and calls Step
Functions back itself (``invokeAgentRuntime.waitForTaskToken``).

Heartbeat clocks are shortened through settings: the engine's ``HeartbeatSeconds``
(300 in the definition) by :func:`relay.local.moto_patches.set_heartbeat_time_scale`, the
researcher's interval by ``RELAY_RESEARCH_HEARTBEAT_SECONDS``.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from relay.local import moto_patches
from relay.local.servers import Fault

from .test_real_paths import run

pytestmark = pytest.mark.statemachine

#: 300 s × 0.005 = 1.5 s without a heartbeat fails the task.
HEARTBEAT_SCALE = 0.005
HEARTBEAT_TIMEOUT = 300 * HEARTBEAT_SCALE


@pytest.fixture
def short_heartbeats(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("RELAY_RESEARCH_HEARTBEAT_SECONDS", "0.3")
    moto_patches.set_heartbeat_time_scale(HEARTBEAT_SCALE)
    try:
        yield
    finally:
        moto_patches.set_heartbeat_time_scale(1.0)


def calls_for(relay: Any, name: str, before: int) -> list[dict[str, Any]]:
    return [c for c in relay.gateway.calls[before:] if c["payload"]["workflow_id"] == name]


def test_a_researcher_working_several_heartbeat_intervals_succeeds_through_its_heartbeats(relay, short_heartbeats, monkeypatch):
    import relay_agents.researcher as researcher

    # Given a researcher that takes three heartbeat timeouts (4.5 s) to answer
    real_research = researcher.research
    work_seconds = 3 * HEARTBEAT_TIMEOUT

    def slow_research(question: str, **kwargs: Any) -> Any:
        time.sleep(work_seconds)
        return real_research(question, **kwargs)

    monkeypatch.setattr(researcher, "research", slow_research)
    from relay.local.console.app import Console

    console = Console(relay)
    seen: dict[str, int] = {}
    shown: list[dict[str, Any]] = []
    pushed_before = console.feed.version
    stop = threading.Event()

    def watch() -> None:  # what the console reads: the engine's open callback tasks
        while not stop.is_set():
            for execution in relay.sfn.list_executions(stateMachineArn=relay.state_machine_arn, statusFilter="RUNNING")["executions"]:
                for task in moto_patches.open_tasks(execution["executionArn"]):
                    seen[task.item or ""] = max(seen.get(task.item or "", 0), task.heartbeats)
                    if task.heartbeats >= 3 and not shown:  # the execution page's view, mid-research
                        shown.extend(console.view(execution["name"])["map_runs"][-1]["iterations"])
            time.sleep(0.1)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    before = len(relay.gateway.calls)
    try:
        # When a workflow researches one question
        name, description, history = run(relay, {"topic": "Task token heartbeats", "questions": 1}, [(True, "")])
    finally:
        stop.set()
        watcher.join()
        console.close()
    # Then it succeeds with the researcher asked once, by callback, and its finding compiled
    assert description["status"] == "SUCCEEDED", description
    (call,) = calls_for(relay, name, before)
    assert call["callback"] is True
    compiled = next(e for e in history if e.get("stateEnteredEventDetails", {}).get("name") == "CompileResearch")
    (finding,) = json.loads(compiled["stateEnteredEventDetails"]["input"])["findings"]
    assert finding["question_id"] == "q01" and finding["finding"]["key"].endswith("findings/q01.md")
    # And the task stayed open past three heartbeat timeouts on the researcher's heartbeats
    # (4.5 s of work at one heartbeat per 0.3 s: about 15 heartbeats)
    assert seen.get("q01", 0) >= 10
    # And the console's Map Run showed the running iteration's last heartbeat, pushed to
    # the page on each heartbeat (no history event records one)
    (row,) = shown
    assert row["status"] == "RUNNING" and row["heartbeat"]["heartbeats"] >= 3
    assert row["heartbeat"]["last_heartbeat_ms"] >= row["heartbeat"]["waiting_since_ms"]
    assert console.feed.version - pushed_before >= seen["q01"]


def test_a_researcher_that_dies_without_a_callback_times_out_by_heartbeat_and_is_asked_again(relay, short_heartbeats):
    # Given a researcher runtime that accepts q01 and then dies (no heartbeat, no result)
    relay.gateway.inject(Fault(lost=True, match="q01"))
    before = len(relay.gateway.calls)
    started = time.monotonic()
    # When a workflow researches it
    name, description, history = run(relay, {"topic": "Task token heartbeats", "questions": 1}, [(True, "")])
    # Then after HeartbeatSeconds the Retry asked again (same session, a new task token)
    # and the workflow succeeded
    assert description["status"] == "SUCCEEDED", description
    calls = calls_for(relay, name, before)
    assert len(calls) == 2 and all(c["callback"] for c in calls)
    assert calls[0]["session"] == calls[1]["session"]
    assert time.monotonic() - started >= HEARTBEAT_TIMEOUT


def test_a_researcher_that_never_calls_back_fails_the_map_with_heartbeat_timeouts_and_a_redrive_asks_again(relay, short_heartbeats):
    # Given a researcher runtime that dies after accepting q01, on every attempt
    relay.gateway.inject(Fault(lost=True, match="q01", times=3))
    before = len(relay.gateway.calls)
    name, description, history = run(relay, {"topic": "Task token heartbeats", "questions": 1}, [])
    # Then the Retry asked twice more (MaxAttempts 2), the iteration failed with
    # States.HeartbeatTimeout and the Map failed past its tolerated failures
    assert description["status"] == "FAILED"
    assert description["error"] == "States.ExceedToleratedFailureThreshold"
    assert "States.HeartbeatTimeout" in description["cause"]
    assert len(calls_for(relay, name, before)) == 3
    # When it is redriven, the researcher (alive again) is asked once more and it succeeds
    relay.redrive(description["executionArn"])
    decided: set[Any] = set()
    for _ in relay.follow(description["executionArn"], poll_seconds=0.05, timeout=120, on_poll=lambda: _approve(relay, name, decided)):
        pass
    assert relay.describe(description["executionArn"])["status"] == "SUCCEEDED"
    assert len(calls_for(relay, name, before)) == 4


def _approve(relay: Any, name: str, decided: set[Any]) -> None:
    from relay.mailbox import approval_emails, approval_link, decide_by_link

    for path, message in approval_emails(relay.outbox, name):
        if path not in decided:
            decided.add(path)
            decide_by_link(approval_link(message), approve=True, feedback="", decided_by="tester")


def test_a_result_sent_before_the_call_returns_ends_the_task_at_once(relay, short_heartbeats, monkeypatch):
    import relay_agents.agentcore_app as agentcore_app

    # Given a researcher that finishes and calls back before its answer to the call
    # reaches the engine (a fast research, a slow network back)
    accept = agentcore_app.accept

    def slow_answer(*args: Any) -> dict[str, Any]:
        answer = accept(*args)
        time.sleep(1.0)  # the offline research takes well under this
        return answer

    monkeypatch.setattr(agentcore_app, "accept", slow_answer)
    before = len(relay.gateway.calls)
    # When a workflow researches one question
    name, description, history = run(relay, {"topic": "Task token heartbeats", "questions": 1}, [(True, "")])
    # Then the early result ended the task: no heartbeat timeout, the researcher asked once
    assert description["status"] == "SUCCEEDED", description
    assert len(calls_for(relay, name, before)) == 1
