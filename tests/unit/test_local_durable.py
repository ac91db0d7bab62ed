"""The durable store's history file: appended one event a line, readable as JSON at every
moment, a torn last line dropped on restore, older indented files still read."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest

from relay.local.durable import DurableStore, read_history

MACHINE = "arn:aws:states:us-east-1:123456789012:stateMachine:relay-research-report"
EXECUTION = MACHINE.replace(":stateMachine:", ":execution:") + ":wf-1"


def event(number: int, kind: str = "PassStateEntered", **details: Any) -> dict[str, Any]:
    return {"id": number, "previousEventId": number - 1, "type": kind, "timestamp": "2026-01-01T00:00:00.000Z", **details}


@pytest.fixture
def store(tmp_path: Path) -> DurableStore:
    return DurableStore(tmp_path, "bucket", "table", MACHINE)


def history_file(store: DurableStore) -> Path:
    return store.root / "executions" / "wf-1" / "history.json"


def test_each_report_is_appended_and_the_file_is_a_json_array_after_every_one(store):
    # Given an execution's events reported as the engine reports them: new ones only
    batches = [[event(1, "ExecutionStarted")], [event(2), event(3)], [event(4, "ExecutionSucceeded", output="{\n}")]]
    written: list[dict[str, Any]] = []
    for batch in batches:
        store.history_changed(EXECUTION, batch)
        written += batch
        # Then the file is the whole history so far, as JSON, after every report
        assert json.loads(history_file(store).read_text()) == written
    # And it holds one event a line (an append rewrites nothing before it)
    lines = history_file(store).read_text().splitlines()
    assert lines[0] == "[" and lines[-1] == "]" and len(lines) == len(written) + 2


def test_a_history_that_starts_again_at_event_1_is_written_whole(store):
    # Given a history already written, then reported again from its first event (a redrive)
    store.history_changed(EXECUTION, [event(1), event(2)])
    again = [event(1), event(2), event(3, "ExecutionRedriven")]
    store.history_changed(EXECUTION, again)
    # Then the file is that history, not the two appended
    assert json.loads(history_file(store).read_text()) == again


def test_events_that_do_not_follow_the_last_one_written_are_refused_naming_the_file(store):
    # Given a history of two events written
    store.history_changed(EXECUTION, [event(1), event(2)])
    # When event 4 arrives without event 3
    with pytest.raises(RuntimeError, match=r"history\.json: event 4 does not follow the last event written \(2\)"):
        store.history_changed(EXECUTION, [event(4)])
    # Then the file still holds the two events
    assert [e["id"] for e in json.loads(history_file(store).read_text())] == [1, 2]


def test_a_last_event_torn_by_a_crash_is_dropped_on_read_with_a_warning(store, caplog):
    # Given a history whose last append stopped halfway through the event's line
    store.history_changed(EXECUTION, [event(1), event(2)])
    store.history_changed(EXECUTION, [event(3, "TaskFailed", cause="x" * 200)])
    path = history_file(store)
    data = path.read_bytes()
    path.write_bytes(data[: data.rindex(b"x" * 200) + 50])
    # When it is read back (as a restart restores it)
    with caplog.at_level(logging.WARNING, logger="relay.local"):
        events = read_history(path)
    # Then the complete events are kept and the torn one is dropped, saying so
    assert [e["id"] for e in events] == [1, 2]
    assert "dropped a torn last event" in caplog.text and str(path) in caplog.text


def test_an_append_cut_at_any_byte_keeps_every_event_written_before_it(store):
    # Given a one-event history and the bytes an append of event 2 writes over its end
    store.history_changed(EXECUTION, [event(1)])
    path = history_file(store)
    before = path.read_bytes()
    store.history_changed(EXECUTION, [event(2)])
    after = path.read_bytes()
    end = len(before) - len(b"\n]\n")
    appended = after[end:]
    line_done = len(b",\n") + len(json.dumps(event(2)))
    for written in range(1, len(appended)):
        # When the process died after `written` bytes of that write reached the file
        torn = before[:end] + appended[:written] + before[end + written :]
        path.write_bytes(torn)
        # Then event 1 is always read back, and event 2 once its whole line was written
        expected = [1, 2] if written >= line_done else [1]
        assert [e["id"] for e in read_history(path)] == expected, torn


def test_an_unreadable_line_before_the_last_is_an_error_naming_the_file_and_line(tmp_path):
    path = tmp_path / "history.json"
    path.write_text('[\n{"id": 1},\n{"id": 2, oops},\n{"id": 3}\n]\n')
    with pytest.raises(ValueError, match=r"history\.json: line 3 is not an event, and lines follow it"):
        read_history(path)


def test_a_file_that_is_not_a_history_is_an_error(tmp_path):
    path = tmp_path / "history.json"
    path.write_text('{"events": ')
    with pytest.raises(ValueError, match=r"history\.json: not a history file"):
        read_history(path)


def test_an_indented_history_written_whole_by_earlier_versions_is_restored(store):
    # Given a data folder from before the one-event-a-line form
    folder = store.root / "executions" / "wf-1"
    folder.mkdir(parents=True)
    old = [event(1, "ExecutionStarted"), event(2, "ExecutionAborted")]
    (folder / "history.json").write_text(json.dumps(old, indent=1))
    (folder / "execution.json").write_text(json.dumps({"name": "wf-1", "status": "ABORTED", "start_date": "2026-01-01"}))
    # Then the store reads it as it is
    ((meta, history, memo, _),) = store.executions()
    assert meta["status"] == "ABORTED" and history == old and memo == []


def test_nothing_is_written_while_paused_or_for_another_state_machine(store):
    store.paused = True
    store.history_changed(EXECUTION, [event(1)])
    store.paused = False
    store.history_changed(EXECUTION.replace("relay-research-report", "other"), [event(1)])
    assert not (store.root / "executions").exists()
