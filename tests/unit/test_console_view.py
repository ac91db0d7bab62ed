"""What the execution page shows, read from a history (relay.local.console.view) — and the
console's other pure parts: the Markdown of artifacts, the Step Functions API's redaction and
its moto dispatch, the start page's example input."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from relay.local.console.view import (
    CANCELLED,
    CAUGHT_ERROR,
    FAILED,
    IN_PROGRESS,
    SUCCEEDED,
    map_iterations,
    node_statuses,
    read_history,
    resolve_path,
)

ROOT = Path(__file__).resolve().parents[2]
T0 = datetime(2026, 11, 22, 12, 0, 0, tzinfo=UTC)
TOKEN = "AQCEAAAAKgAAAA+secret/token=="


class History:
    """Builds GetExecutionHistory events as boto3 returns them, one second apart unless told."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.ms = 0

    def add(self, kind: str, after_ms: int = 1000, **details: Any) -> History:
        self.ms += after_ms
        event: dict[str, Any] = {"id": len(self.events) + 1, "type": kind, "timestamp": T0 + timedelta(milliseconds=self.ms)}
        if details:
            key = kind[0].lower() + kind[1:] + "EventDetails"
            if kind.endswith("StateEntered"):
                key = "stateEnteredEventDetails"
            elif kind.endswith("StateExited"):
                key = "stateExitedEventDetails"
            event[key] = details
        self.events.append(event)
        return self

    def task(self, name: str, outcome: str = "TaskSucceeded", retries: int = 0, **extra: Any) -> History:
        self.add("TaskStateEntered", name=name, input=json.dumps({"in": name}))
        for _ in range(retries):
            self.add("TaskScheduled", resourceType="lambda", resource="invoke", parameters=json.dumps({"FunctionName": name}))
            self.add("TaskStarted", resourceType="lambda", resource="invoke")
            self.add("TaskFailed", resourceType="lambda", resource="invoke", error="ModelThrottled", cause="slow down")
        self.add("TaskScheduled", resourceType="lambda", resource="invoke", parameters=json.dumps({"FunctionName": name, **extra}))
        self.add("TaskStarted", resourceType="lambda", resource="invoke")
        if outcome == "TaskSucceeded":
            self.add("TaskSucceeded", resourceType="lambda", resource="invoke", output=json.dumps({"Payload": {"ok": name}}))
            self.add("TaskStateExited", name=name, output=json.dumps({"out": name}))
        elif outcome:
            self.add(outcome, resourceType="lambda", resource="invoke", error="AgentFailed", cause=f"{name} broke")
        return self


def test_a_retried_task_succeeds_with_its_attempts_input_output_and_redacted_parameters():
    history = History().add("ExecutionStarted", input="{}").task("PlanResearch", retries=2, Payload={"task_token": TOKEN})
    view = read_history(history.events, "RUNNING")
    entry = view.latest("PlanResearch")
    assert entry is not None and entry.status == SUCCEEDED
    assert (entry.attempts, entry.retries, len(entry.failures)) == (3, 2, 2)
    assert entry.input == {"in": "PlanResearch"} and entry.output == {"out": "PlanResearch"}
    assert entry.parameters == {"FunctionName": "PlanResearch", "Payload": {"task_token": "<redacted>"}}
    assert entry.duration_ms == 10_000  # ten events after it was entered, one second apart
    assert TOKEN not in json.dumps([r.detail for r in view.rows])
    assert [r.state for r in view.rows][:3] == [None, "PlanResearch", "PlanResearch"]
    assert [r.elapsed_ms for r in view.rows][:3] == [0, 1000, 2000]
    assert view.transitions == [(None, "PlanResearch")]


def test_a_failed_state_is_failed_with_its_error_and_cause_and_a_redrive_makes_its_newest_entry_count():
    history = History().add("ExecutionStarted").task("PlanResearch").task("WriteReport", outcome="TaskFailed")
    history.add("ExecutionFailed", error="AgentFailed", cause="WriteReport broke")
    view = read_history(history.events, "FAILED")
    failed = view.latest("WriteReport")
    assert failed is not None and (failed.status, failed.error, failed.cause) == (FAILED, "AgentFailed", "WriteReport broke")
    assert view.statuses() == {"PlanResearch": SUCCEEDED, "WriteReport": FAILED}

    history.add("ExecutionRedriven", redriveCount=1).task("WriteReport")
    view = read_history(history.events, "RUNNING")
    assert [e.status for e in view.entries["WriteReport"]] == [FAILED, SUCCEEDED]
    assert view.statuses()["WriteReport"] == SUCCEEDED


def test_a_running_state_is_in_progress_and_becomes_failed_when_the_execution_already_stopped():
    history = History().add("ExecutionStarted").task("AnalyzeResearch", outcome="")
    assert read_history(history.events, "RUNNING").statuses() == {"AnalyzeResearch": IN_PROGRESS}
    assert read_history(history.events, "FAILED").statuses() == {"AnalyzeResearch": FAILED}
    assert read_history(history.events, "ABORTED").statuses() == {"AnalyzeResearch": CANCELLED}


def test_a_stop_shows_the_waiting_state_cancelled_with_the_stop_reason():
    history = History().add("ExecutionStarted").task("RequestApproval", outcome="")
    history.add("TaskTimedOut", resourceType="lambda", resource="invoke.waitForTaskToken", error="States.Timeout")
    history.add("ExecutionAborted", error="Relay.Cancelled", cause="cancelled by console (local): not needed")
    entry = read_history(history.events, "ABORTED").latest("RequestApproval")
    assert entry is not None and (entry.status, entry.error, entry.cause) == (
        CANCELLED, "Relay.Cancelled", "cancelled by console (local): not needed",
    )


def test_a_failure_a_catch_handled_is_a_caught_error():
    history = History().add("ExecutionStarted").task("CompileResearch", outcome="TaskFailed")
    history.add("TaskStateExited", name="CompileResearch", output="{}")
    entry = read_history(history.events, "RUNNING").latest("CompileResearch")
    assert entry is not None and entry.status == CAUGHT_ERROR and entry.error == "AgentFailed"


def test_map_runs_and_their_iterations():
    history = History().add("ExecutionStarted").add("MapStateEntered", name="ResearchQuestions", input=json.dumps(
        {"plan": {"questions": [{"id": "q01", "question": "Why?"}, {"id": "q02", "question": "How?"}, {"id": "q03"}]}}
    ))
    history.add("MapStateStarted", length=3).add("MapRunStarted", mapRunArn="arn:aws:states:us-east-1:1:mapRun:m/ResearchQuestions:1")
    view = read_history(history.events, "RUNNING")
    assert view.map_runs == [{"state": "ResearchQuestions", "map_run_arn": "arn:aws:states:us-east-1:1:mapRun:m/ResearchQuestions:1", "status": "RUNNING"}]
    entry = view.latest("ResearchQuestions")
    assert entry is not None
    items = resolve_path(entry.input, "$.plan.questions")
    running = map_iterations(items, {0}, "RUNNING", "RUNNING")
    assert [(r["item"], r["status"]) for r in running] == [("Why?", "SUCCEEDED"), ("How?", "RUNNING"), ("q03", "RUNNING")]
    paths = {"ResearchQuestions": "ResearchQuestions", "AskResearcher": "ResearchQuestions/AskResearcher"}
    assert node_statuses(view, paths, {"ResearchQuestions": running})["ResearchQuestions/AskResearcher"] == IN_PROGRESS

    history.add("MapRunSucceeded").add("MapStateSucceeded").add("MapStateExited", name="ResearchQuestions", output="{}")
    view = read_history(history.events, "RUNNING")
    assert view.map_runs[0]["status"] == "SUCCEEDED"
    tolerated = map_iterations(items, {0, 2}, "SUCCEEDED", "RUNNING")
    assert [r["status"] for r in tolerated] == ["SUCCEEDED", "FAILED", "SUCCEEDED"]
    statuses = node_statuses(view, paths, {"ResearchQuestions": tolerated})
    assert statuses == {"ResearchQuestions": SUCCEEDED, "ResearchQuestions/AskResearcher": CAUGHT_ERROR}
    assert [r["status"] for r in map_iterations(items, {0}, "FAILED", "FAILED")] == ["SUCCEEDED", "FAILED", "FAILED"]
    assert [r["status"] for r in map_iterations(items, set(), None, "ABORTED")] == ["ABORTED"] * 3
    all_done = map_iterations(items, {0, 1, 2}, "SUCCEEDED", "SUCCEEDED")
    assert node_statuses(view, paths, {"ResearchQuestions": all_done})["ResearchQuestions/AskResearcher"] == SUCCEEDED


def test_resolve_path_reads_plain_field_paths_only():
    assert resolve_path({"a": {"b": [1]}}, "$.a.b") == [1]
    assert resolve_path({"a": 1}, "$") == {"a": 1}
    assert resolve_path({"a": 1}, "$.x.y") is None
    with pytest.raises(ValueError, match="only \\$.field.field"):
        resolve_path({}, "$.a[0]")


def test_timestamps_written_by_the_durable_store_read_the_same():
    history = History().add("ExecutionStarted").task("PlanResearch")
    as_text = [{**e, "timestamp": e["timestamp"].isoformat()} for e in history.events]
    assert [r.elapsed_ms for r in read_history(as_text).rows] == [r.elapsed_ms for r in read_history(history.events).rows]


# ----- artifacts, the Step Functions API, the start page -------------------------------------------
def test_artifacts_render_markdown_and_nothing_active():
    from relay.local.console.markdown import render_artifact

    html = render_artifact(
        "report.md",
        b"# Title\n\n<script>alert(1)</script>\n\n[x](javascript:alert(1)) [ok](https://example.com)\n\n"
        b'<img src=x onerror="alert(1)">\n\n| a | b |\n|---|---|\n| 1 | 2 |\n',
    )
    assert "<h1>Title</h1>" in html and "<table>" in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "<script" not in html  # shown as text
    assert "<img" not in html and 'href="javascript' not in html
    assert '<a href="https://example.com" rel="noopener noreferrer nofollow">ok</a>' in html
    assert render_artifact("data.json", b'{"a": "<b>"}') == "<pre>{&quot;a&quot;: &quot;&lt;b&gt;&quot;}</pre>"


def test_history_answers_of_the_step_functions_api_are_redacted():
    from relay.local.console.sfn_api import redact_history_answer

    answer = {"events": [{"id": 3, "type": "TaskScheduled", "timestamp": 1.5, "taskScheduledEventDetails": {
        "parameters": json.dumps({"Payload": {"task_token": TOKEN, "topic": "t"}})}}]}
    redacted = redact_history_answer(json.dumps(answer).encode())
    assert TOKEN.encode() not in redacted and b"<redacted>" in redacted
    assert json.loads(json.loads(redacted)["events"][0]["taskScheduledEventDetails"]["parameters"])["Payload"]["topic"] == "t"
    assert redact_history_answer(b'{"executions": []}') == b'{"executions": []}'
    assert redact_history_answer(b"not json") == b"not json"


def test_the_step_functions_api_dispatches_through_moto_s_response_layer(aws):
    """The moto internals sfn_api.dispatch uses exist and answer (a moto upgrade that moves them fails here)."""
    import boto3

    from relay.local.console.sfn_api import dispatch

    boto3.client("stepfunctions").create_state_machine(
        name="m", definition=json.dumps({"StartAt": "A", "States": {"A": {"Type": "Pass", "End": True}}}),
        roleArn="arn:aws:iam::123456789012:role/r",
    )
    headers = {
        "Content-Type": "application/x-amz-json-1.0", "X-Amz-Target": "AWSStepFunctions.ListStateMachines",
        "Authorization": "AWS4-HMAC-SHA256 Credential=testing/20261122/us-east-1/states/aws4_request, SignedHeaders=host, Signature=x",
    }
    status, answer_headers, body = dispatch("POST", "http://127.0.0.1:9/sfn/", headers, b"{}")
    assert status == 200 and [m["name"] for m in json.loads(body)["stateMachines"]] == ["m"]
    assert "status" not in {k.lower() for k in answer_headers}


def test_the_start_page_example_is_the_readme_s_and_valid():
    from relay_core.api_models import parse_workflow_request

    from relay.local.console.app import EXAMPLE_INPUT

    assert json.dumps(EXAMPLE_INPUT, indent=2) in (ROOT / "README.md").read_text()
    assert parse_workflow_request(json.dumps(EXAMPLE_INPUT)).questions == EXAMPLE_INPUT["questions"]


def test_the_change_feed_wakes_streams_from_the_engine_s_threads_and_ends_them_on_close():
    import asyncio
    import threading

    from relay.local.console.feed import ChangeFeed

    feed = ChangeFeed()

    async def scenario() -> tuple[bool, bool, bool]:
        wake = feed.subscribe()
        assert not wake.is_set()
        threading.Thread(target=feed.history_changed, args=("arn", [])).start()  # as the engine calls it
        await asyncio.wait_for(wake.wait(), timeout=30)
        woken = wake.is_set()
        wake.clear()
        threading.Thread(target=feed.close).start()
        await asyncio.wait_for(wake.wait(), timeout=30)
        feed.unsubscribe(wake)
        return woken, wake.is_set(), feed.closed

    assert asyncio.run(scenario()) == (True, True, True)
    assert feed.version == 2
    feed.item_changed("table", {}, None)  # no subscriber left: nothing to wake, no error
    assert feed.version == 3


def _ref(key: str) -> dict[str, Any]:
    return {"bucket": "relay-artifacts-local", "key": f"workflows/wf/{key}", "bytes": 10, "sha256": "0" * 64}


def _check(answered: int, unanswered: list[str]) -> dict[str, Any]:
    return {"assessment": _ref("x.quality.json"), "sentences": 4, "cited": 4, "grounded": 3, "repeated": 1, "fragments": 0,
            "questions": answered + len(unanswered), "answered": answered, "unanswered": unanswered}


def _exit(history: History, name: str, output: dict[str, Any]) -> History:
    return history.add("TaskStateEntered", name=name, input="{}").add("TaskStateExited", name=name, output=json.dumps(output))


def test_the_page_shows_the_newest_analysis_quality_check_and_the_report_s_once_written():
    from relay.local.console.view import quality_checks

    # Given a history with two analyses (a revision) whose state data carry their quality checks
    history = History().add("ExecutionStarted")
    _exit(history, "AnalyzeResearch", {"analysis": {"analysis": _ref("analysis-r0.md"), "quality": _check(1, ["Q2?", "Q3?"])}})
    _exit(history, "AnalyzeResearch", {"analysis": {"analysis": _ref("analysis-r1.md"), "quality": _check(2, ["Q3?"])}})
    # When the page's view is read before the report
    checks = quality_checks(read_history(history.events, "RUNNING"))
    # Then it shows the newest analysis's check: headline and the unanswered question by name
    assert [(c["artifact"], c["headline"], c["unanswered"]) for c in checks] == [
        ("analysis-r1.md", "2 of 3 questions answered · 75 % of sentences grounded · 1 repeated", ["Q3?"])
    ]
    # And once WriteReport has written the report, the report's check follows it
    _exit(history, "WriteReport", {"analysis": {}, "report": {"report": _ref("report.md"), "quality": _check(3, [])}})
    checks = quality_checks(read_history(history.events, "SUCCEEDED"))
    assert [(c["state"], c["artifact"], c["unanswered"]) for c in checks] == [
        ("AnalyzeResearch", "analysis-r1.md", ["Q3?"]), ("WriteReport", "report.md", [])
    ]
    assert checks[1]["headline"].startswith("3 of 3 questions answered")


def test_an_analysis_without_a_quality_check_shows_none():
    from relay.local.console.view import quality_checks

    history = _exit(History().add("ExecutionStarted"), "AnalyzeResearch", {"analysis": {"analysis": _ref("analysis-r0.md")}})
    assert quality_checks(read_history(history.events, "RUNNING")) == []


def test_heartbeats_are_shown_by_map_item_from_the_engine_s_open_tasks():
    from relay.local.console.view import heartbeats_by_item
    from relay.local.moto_patches import OpenTask

    # Given the engine waits on two research iterations, one of which has heartbeated
    beating = OpenTask("arn:x", "AskResearcher", "q01", started=100.0, heartbeats=4, last_heartbeat=103.5)
    silent = OpenTask("arn:x", "AskResearcher", "q02", started=101.0)
    other = OpenTask("arn:x", "RequestApproval", None, started=99.0)
    # Then each is found by its item's id, with its count and times in ms; a task with no item is left out
    assert heartbeats_by_item([beating, silent, other]) == {
        "q01": {"heartbeats": 4, "last_heartbeat_ms": 103_500, "waiting_since_ms": 100_000},
        "q02": {"heartbeats": 0, "last_heartbeat_ms": None, "waiting_since_ms": 101_000},
    }
