"""What the client commands print: JSON that scripts parse whenever stdout is not a
terminal (or with --json), rich tables on a terminal, and help that is plain and unwrapped
when piped. No sockets: the API client's request method answers from a dict."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from relay import client as api
from relay import output
from relay.cli import main

pytestmark = pytest.mark.unit

PAGE = {
    "items": [
        {"workflow_id": "relay-1", "status": "COMPLETED", "topic": "[bold red]not markup[/]", "created_at": "2026-11-21T14:18:58Z",
         "updated_at": None, "revisions": 1},
        {"workflow_id": "relay-2", "status": "AWAITING_APPROVAL", "topic": "two\nlines \x1b[31mred", "created_at": "2026-11-21T15:00:00Z",
         "updated_at": None, "revisions": 0},
    ],
    "next_token": "tok-123",
}  # fmt: skip
STATUS = {"workflow_id": "relay-1", "status": "RUNNING", "current_state": "RequestApproval",
          "approval": {"approval_id": "a-1", "status": "PENDING", "revision": 0}, "report": None}  # fmt: skip
HISTORY = {
    "workflow_id": "relay-1",
    "events": [
        {"id": 1, "timestamp": "2026-11-21T14:18:58Z", "type": "ExecutionStarted", "executionStartedEventDetails": {"input": "{}"}},
        {"id": 2, "timestamp": "2026-11-21T14:18:59Z", "type": "TaskStateEntered", "stateEnteredEventDetails": {"name": "PlanResearch"}},
        {"id": 3, "timestamp": "2026-11-21T14:19:00Z", "type": "ExecutionFailed",
         "executionFailedEventDetails": {"error": "States.Timeout", "cause": "approval timed out"}},
    ],
    "next_token": None,
}  # fmt: skip


@pytest.fixture
def api_answers(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[tuple[str, str]]:
    """Every API request answers from the dicts above; the requests made are recorded."""
    for key in ("RELAY_API_URL", "RELAY_CONFIG", "RELAY_DATA_DIR", "RELAY_DEBUG"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    made: list[tuple[str, str]] = []

    def answer(self: api.RelayClient, method: str, path: str, body: Any = None, headers: Any = None) -> Any:
        made.append((method, path))
        return PAGE if path.startswith("/workflows?") or path == "/workflows" else HISTORY if "/history" in path else STATUS

    monkeypatch.setattr(api.RelayClient, "_request", answer)
    return made


@pytest.fixture
def terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    """stdout counts as a terminal (rich itself still sees a captured stream: no colour codes)."""
    monkeypatch.setattr(output, "is_terminal", lambda stream: True)
    monkeypatch.setenv("COLUMNS", "160")


URL = ["--api-url", "http://127.0.0.1:9"]


@pytest.mark.parametrize(("args", "expected"), [(["list"], PAGE), (["status", "relay-1"], STATUS), (["history", "relay-1"], HISTORY)])
def test_when_stdout_is_not_a_terminal_the_answer_is_the_apis_json(args, expected, api_answers, capsys):
    assert main([*args, *URL]) == 0
    assert json.loads(capsys.readouterr().out) == expected


def test_json_on_a_terminal_when_asked(api_answers, terminal, capsys):
    assert main(["list", "--json", *URL]) == 0
    assert json.loads(capsys.readouterr().out) == PAGE


def test_list_on_a_terminal_is_a_table_of_plain_text(api_answers, terminal, capsys):
    assert main(["list", "--status", "COMPLETED", *URL]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    header = next(line for line in lines if "workflow id" in line)
    assert all(name in header for name in ("status", "created", "updated", "revisions", "topic"))
    row = next(line for line in lines if "relay-1" in line)
    # user text is shown as typed, never as rich markup, and control characters are escaped
    assert "COMPLETED" in row and "[bold red]not markup[/]" in row
    assert "two\\nlines \\x1b[31mred" in out and "\x1b" not in out
    assert "more: relay list … --next-token tok-123" in out
    assert api_answers == [("GET", "/workflows?status=COMPLETED")]


def test_status_on_a_terminal_is_one_row_per_field(api_answers, terminal, capsys):
    assert main(["status", "relay-1", *URL]) == 0
    rows = {line.split()[0]: line.split()[1:] for line in capsys.readouterr().out.splitlines() if line.strip()}
    assert rows["current_state"] == ["RequestApproval"] and rows["approval.status"] == ["PENDING"]
    assert rows["report"] == ["-"]


def test_history_on_a_terminal_names_each_events_state_or_error(api_answers, terminal, capsys):
    assert main(["history", "relay-1", *URL]) == 0
    out = capsys.readouterr().out
    assert any("TaskStateEntered" in line and "PlanResearch" in line for line in out.splitlines())
    assert any("ExecutionFailed" in line and "States.Timeout approval timed out" in line for line in out.splitlines())
    assert "more:" not in out


def test_help_on_a_pipe_is_plain_and_unwrapped(capsys):
    assert main(["run", "--help"]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "╭" not in out
    corpus = next(line for line in out.splitlines() if "--corpus" in line)
    assert corpus.rstrip().endswith("(default: AWS docs in botocore)")
