"""What the execution page shows, computed from the execution history: pure functions, no I/O.

Statuses are the Step Functions console's legend for a state in the graph view:
``IN_PROGRESS``, ``SUCCEEDED``, ``FAILED``, ``CANCELLED``, ``CAUGHT_ERROR`` (a failure a
``Catch`` handled) and, for a state with no entry in the history, ``NOT_RUN``. The
newest entry of a state decides its colour (after a redrive the failed state is
entered again; a revision loop enters AnalyzeResearch again).

Events are GetExecutionHistory events as boto3 returns them (``timestamp`` a
``datetime``) or as the durable store writes them (ISO-8601 text). Every event is
passed through :func:`relay_core.workflows_api.redact_event` before anything here
reads it, so no task token reaches a page.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from pydantic import ValidationError
from relay_core.history import EXECUTION_FAILURE_EVENTS, FAILURE_EVENTS, event_details
from relay_core.models import ArtifactRef, QualityCheck, artifact_name
from relay_core.workflows_api import redact_event

IN_PROGRESS, SUCCEEDED, FAILED, CANCELLED, CAUGHT_ERROR, NOT_RUN = (
    "IN_PROGRESS", "SUCCEEDED", "FAILED", "CANCELLED", "CAUGHT_ERROR", "NOT_RUN",
)
_SUCCESS_EVENTS = {"TaskSucceeded", "LambdaFunctionSucceeded", "MapRunSucceeded", "MapStateSucceeded"}


def timestamp_ms(value: Any) -> int:
    """Epoch milliseconds of an event timestamp (``datetime`` or ISO-8601 text).

    Raises:
        ValueError: text that is not ISO-8601.
    """
    if isinstance(value, datetime):
        return int(value.timestamp() * 1000)
    return int(datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp() * 1000)


def _json(text: Any) -> Any:
    """A JSON text as a value (``None`` stays ``None``; text that is not JSON stays text)."""
    if text is None or not isinstance(text, str):
        return text
    try:
        return json.loads(text)
    except ValueError:
        return text


@dataclass
class Attempt:
    """One failed attempt of a Task (then retried, caught, or the end of the execution)."""

    error: str
    cause: str
    at_ms: int


@dataclass
class StateEntry:
    """One entry into a state: what the state-details panel shows."""

    name: str
    status: str
    entered_event_id: int
    entered_ms: int
    exited_ms: int | None = None
    input: Any = None
    output: Any = None
    parameters: Any = None
    error: str | None = None
    cause: str | None = None
    #: How many times its Task was scheduled in this entry (1 + retries).
    attempts: int = 0
    failures: list[Attempt] = field(default_factory=list)
    #: Whether the last Task event of the entry was a success (else a failure it exited on: caught).
    last_task_ok: bool = True

    @property
    def retries(self) -> int:
        return max(0, self.attempts - 1)

    @property
    def duration_ms(self) -> int | None:
        return None if self.exited_ms is None else self.exited_ms - self.entered_ms

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out.pop("last_task_ok")
        out["retries"] = self.retries
        out["duration_ms"] = self.duration_ms
        return out


@dataclass
class EventRow:
    """One row of the event history table."""

    id: int
    type: str
    state: str | None
    timestamp_ms: int
    elapsed_ms: int
    detail: dict[str, Any]


@dataclass
class HistoryView:
    """Everything :func:`read_history` finds in a history."""

    entries: dict[str, list[StateEntry]] = field(default_factory=dict)
    rows: list[EventRow] = field(default_factory=list)
    #: ``(from state, to state)`` transitions taken, in order (``None`` = the scope's Start/End).
    transitions: list[tuple[str | None, str | None]] = field(default_factory=list)
    map_runs: list[dict[str, Any]] = field(default_factory=list)

    def latest(self, name: str) -> StateEntry | None:
        entries = self.entries.get(name)
        return entries[-1] if entries else None

    def statuses(self) -> dict[str, str]:
        """State name → status of its newest entry (states never entered are absent: ``NOT_RUN``)."""
        return {name: entries[-1].status for name, entries in self.entries.items() if entries}


def read_history(events: list[dict[str, Any]], execution_status: str = "RUNNING") -> HistoryView:
    """Walk a history once (oldest first) and return each state's entries, the event table
    rows (task tokens redacted), the transitions taken and the Map Runs started.

    ``execution_status`` is DescribeExecution's: a state still open at the end of the
    history is IN_PROGRESS while the execution runs, else FAILED (CANCELLED when ABORTED)
    — the engine shows a new status a moment before it records the event that says so.
    """
    view = HistoryView()
    open_states: list[StateEntry] = []
    started_ms: int | None = None
    last_exited: str | None = None
    for raw in events:
        event = redact_event(raw)
        kind = str(event.get("type", ""))
        at = timestamp_ms(event.get("timestamp")) if event.get("timestamp") is not None else 0
        started_ms = at if started_ms is None else started_ms
        details = event_details(event)
        current = open_states[-1] if open_states else None
        if kind.endswith("StateEntered"):
            entry = StateEntry(
                name=str(details.get("name")), status=IN_PROGRESS, entered_event_id=int(event.get("id", 0)),
                entered_ms=at, input=_json(details.get("input")),
            )
            if not open_states:
                view.transitions.append((last_exited, entry.name))
            view.entries.setdefault(entry.name, []).append(entry)
            open_states.append(entry)
            current = entry
        elif kind.endswith("StateExited"):
            name = str(details.get("name"))
            for index in range(len(open_states) - 1, -1, -1):
                if open_states[index].name == name:
                    entry = open_states.pop(index)
                    entry.exited_ms, entry.output = at, _json(details.get("output"))
                    entry.status = CAUGHT_ERROR if (entry.failures and not entry.last_task_ok) else SUCCEEDED
                    if not open_states:
                        last_exited = name
                        if kind.startswith(("Succeed", "Fail")):
                            view.transitions.append((name, None))
                    break
        if kind == "MapRunStarted":
            view.map_runs.append({"state": current.name if current else None, "map_run_arn": details.get("mapRunArn"), "status": "RUNNING"})
        elif kind in {"MapRunSucceeded", "MapRunFailed", "MapRunAborted"} and view.map_runs:
            view.map_runs[-1]["status"] = kind.removeprefix("MapRun").upper()
            if kind == "MapRunFailed":
                view.map_runs[-1]["error"], view.map_runs[-1]["cause"] = details.get("error"), details.get("cause")
        if kind == "TaskScheduled" and current is not None:
            current.attempts += 1
            current.parameters = _json(details.get("parameters"))
        elif kind in FAILURE_EVENTS and kind not in EXECUTION_FAILURE_EVENTS and current is not None:
            error, cause = str(details.get("error") or ""), str(details.get("cause") or "")
            current.failures.append(Attempt(error=error, cause=cause, at_ms=at))
            current.error, current.cause, current.last_task_ok = error or current.error, cause or current.cause, False
        elif kind in _SUCCESS_EVENTS and current is not None:
            current.last_task_ok = True
        elif kind in EXECUTION_FAILURE_EVENTS:  # the status of a state still open when it stopped
            status = CANCELLED if kind == "ExecutionAborted" else FAILED
            for entry in open_states:
                entry.status = status
                if status == CANCELLED and details.get("error"):  # why it was stopped, not what the stop interrupted
                    entry.error, entry.cause = str(details["error"]), str(details.get("cause") or "") or None
                entry.error = entry.error or str(details.get("error") or "") or None
                entry.cause = entry.cause or str(details.get("cause") or "") or None
            if kind == "ExecutionTimedOut":
                for entry in open_states:
                    entry.error = entry.error or "States.Timeout"
            open_states.clear()
        elif kind == "ExecutionSucceeded" and last_exited is not None:
            view.transitions.append((last_exited, None))
        elif kind == "ExecutionRedriven":
            last_exited = None
        view.rows.append(
            EventRow(
                id=int(event.get("id", 0)), type=kind, state=current.name if current else None,
                timestamp_ms=at, elapsed_ms=at - (started_ms or at), detail=details,
            )
        )
    if execution_status != "RUNNING":
        stopped = CANCELLED if execution_status == "ABORTED" else FAILED
        for entry in open_states:
            entry.status = stopped
    return view


def resolve_path(value: Any, path: str) -> Any:
    """A JSONPath of plain fields (``$``, ``$.plan.questions``) applied to ``value``; ``None``
    when a field is missing. Raises ``ValueError`` for any other JSONPath syntax."""
    if path == "$":
        return value
    if not path.startswith("$.") or any(c in path for c in "[]*?@()"):
        raise ValueError(f"ItemsPath {path!r}: only $.field.field paths are read here")
    for part in path[2:].split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def item_label(item: Any) -> str:
    """A Map item in one line: its ``question`` (or ``id``) field, else its JSON."""
    if isinstance(item, dict):
        for key in ("question", "name", "id"):
            if isinstance(item.get(key), str):
                return item[key]
    return json.dumps(item)[:200]


def map_iterations(
    items: list[Any] | None, kept: set[int], map_status: str | None, execution_status: str
) -> list[dict[str, Any]]:
    """Each Map iteration's status: SUCCEEDED when its output is kept (every iteration
    that succeeds is), else from the Map Run's outcome: RUNNING while it runs (running
    or waiting its turn under MaxConcurrency), FAILED once the Map Run ended (failed, or
    succeeded within ``ToleratedFailurePercentage``), ABORTED when the execution was stopped.

    Args:
        items: the Map's items (its ItemsPath applied to the state input).
        kept: indexes of the iterations that finished (``relay.local.moto_patches.memo_entries``).
        map_status: the Map Run's status (RUNNING, SUCCEEDED, FAILED, ABORTED) or ``None``.
        execution_status: DescribeExecution's status.
    """
    unfinished = "RUNNING"
    if map_status in {"SUCCEEDED", "FAILED"} or (map_status != "ABORTED" and execution_status in {"FAILED", "TIMED_OUT"}):
        unfinished = "FAILED"  # every iteration that succeeded is kept: the others failed
    elif map_status == "ABORTED" or execution_status == "ABORTED":
        unfinished = "ABORTED"
    return [
        {"index": index, "item": item_label(item), "status": "SUCCEEDED" if index in kept else unfinished}
        for index, item in enumerate(items or [])
    ]


def heartbeats_by_item(open_tasks: list[Any]) -> dict[str, dict[str, Any]]:
    """The callback tasks the local engine waits on (``relay.local.moto_patches.open_tasks``),
    by their Map item's id: ``{"heartbeats", "last_heartbeat_ms", "waiting_since_ms"}``.

    Step Functions' history has no heartbeat event, so this is the local engine's own
    record (each SendTaskHeartbeat it accepted for the iteration's open task), and the
    console labels it so."""
    found: dict[str, dict[str, Any]] = {}
    for task in open_tasks:
        if task.item is None:
            continue
        last = task.last_heartbeat
        found[str(task.item)] = {
            "heartbeats": int(task.heartbeats),
            "last_heartbeat_ms": int(last * 1000) if last is not None else None,
            "waiting_since_ms": int(task.started * 1000),
        }
    return found


def node_statuses(view: HistoryView, paths: dict[str, str], iterations: dict[str, list[dict[str, Any]]]) -> dict[str, str]:
    """Graph node id → status: each entered state's newest entry; the states inside a
    Distributed Map (whose events are in its child executions, not this history) take
    the status of the Map's iterations: IN_PROGRESS while any runs, FAILED when any
    failed (CAUGHT_ERROR when the Map succeeded all the same, within its tolerated
    failure percentage), SUCCEEDED when all succeeded.

    Args:
        paths: state name → node id (:func:`relay.local.console.graph.state_paths`).
        iterations: Map state name → :func:`map_iterations` of its newest Map Run.
    """
    out = {paths.get(name, name): status for name, status in view.statuses().items()}
    for map_name, rows in iterations.items():
        map_id = paths.get(map_name, map_name)
        statuses = {row["status"] for row in rows}
        if not statuses:
            continue
        map_status = out.get(map_id)
        if "RUNNING" in statuses:
            inner = IN_PROGRESS
        elif "FAILED" in statuses:
            # failures the Map tolerated (it succeeded) are handled errors: the console's "caught"
            inner = CAUGHT_ERROR if map_status == SUCCEEDED else FAILED
        elif "ABORTED" in statuses:
            inner = CANCELLED
        else:
            inner = SUCCEEDED
        for node_id in paths.values():
            if node_id.startswith(map_id + "/"):
                out[node_id] = inner
    return out


#: Where each quality check is in state data: the state whose output carries it, the
#: field its result is at (its ResultPath), and the field naming the assessed artifact.
QUALITY_SOURCES = (("AnalyzeResearch", "analysis", "analysis"), ("WriteReport", "report", "report"))


def quality_checks(view: HistoryView) -> list[dict[str, Any]]:
    """The quality checks the execution page shows: the newest analysis's and, once
    WriteReport succeeded, the report's, read from those states' output (state data:
    ``$.analysis.quality``, ``$.report.quality``). Each is ``{"state", "artifact",
    "headline", "unanswered", "unlisted", …}`` with :class:`QualityCheck`'s figures; a
    state whose output holds no check (before checks existed) is left out."""
    found = []
    for state, path, ref_field in QUALITY_SOURCES:
        for entry in reversed(view.entries.get(state, [])):
            result = entry.output.get(path) if isinstance(entry.output, dict) else None
            if not isinstance(result, dict) or not isinstance(result.get("quality"), dict):
                continue
            try:
                check = QualityCheck.model_validate(result["quality"])
                artifact = artifact_name(ArtifactRef.model_validate(result.get(ref_field)))
            except ValidationError:
                continue
            found.append(
                {
                    "state": state,
                    "artifact": artifact,
                    "headline": check.headline(),
                    "unanswered": check.unanswered,
                    "unlisted": check.unlisted,
                    **check.model_dump(mode="json", exclude={"unanswered"}),
                }
            )
            break
    return found
