"""Reading a Step Functions execution history: which state failed, and why.

Events are the ``GetExecutionHistory`` event dicts, oldest first (``type``, ``id``,
``timestamp`` and one ``…EventDetails`` member). The rule is the one
``RedriveExecution`` applies (Step Functions developer guide, "Restarting state
machine executions with redrive"): a state is unsuccessful when the history has its
``…StateEntered`` event and no matching ``…StateExited`` event. Events inside inline
Map or Parallel iterations (between ``…IterationStarted`` and its end) are skipped:
the top-level state holding them is the one that failed. A Distributed Map's
iterations run as child executions and are not in the parent history at all.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

#: Every history event type that records a failure (Step Functions API reference,
#: ``HistoryEventType``): one attempt of a state failed (a Task, Lambda or activity call, a
#: Map Run, an evaluation), a Map or Parallel state failed, or the execution stopped
#: unsuccessfully (:data:`EXECUTION_FAILURE_EVENTS`). Each carries ``error`` and ``cause``
#: in its details (:func:`event_details`) but ``MapStateFailed`` and ``ParallelStateFailed``,
#: which have none. The one table: the status-change function, ``relay run``'s progress
#: and the local console all read failures by it.
FAILURE_EVENTS: frozenset[str] = frozenset(
    {
        "TaskFailed", "TaskTimedOut", "TaskStartFailed", "TaskSubmitFailed",
        "LambdaFunctionFailed", "LambdaFunctionTimedOut", "LambdaFunctionScheduleFailed", "LambdaFunctionStartFailed",
        "ActivityFailed", "ActivityTimedOut", "ActivityScheduleFailed",
        "MapRunFailed", "MapStateFailed", "ParallelStateFailed", "EvaluationFailed",
        "ExecutionFailed", "ExecutionAborted", "ExecutionTimedOut",
    }
)  # fmt: skip
#: The failure events that stop the execution (the others end a state or one of its attempts).
EXECUTION_FAILURE_EVENTS: frozenset[str] = frozenset({"ExecutionFailed", "ExecutionAborted", "ExecutionTimedOut"})


def event_details(event: dict[str, Any]) -> dict[str, Any]:
    """The event's one ``…EventDetails`` member (``{}`` when it has none): a
    ``GetExecutionHistory`` event carries at most one, named after its type."""
    for key, value in event.items():
        if key.endswith("EventDetails") and isinstance(value, dict):
            return value
    return {}


@dataclass(frozen=True)
class OpenState:
    """A state entered and never exited: its name, the input it was given, and the
    id of its ``…StateEntered`` event."""

    name: str
    input: Any
    entered_event_id: int


def _top_level(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    depth = 0
    out = []
    for event in events:
        kind = str(event.get("type", ""))
        if kind.endswith("IterationStarted"):
            depth += 1
        elif kind.endswith(("IterationSucceeded", "IterationFailed", "IterationAborted")):
            depth = max(0, depth - 1)
        elif depth == 0:
            out.append(event)
    return out


def open_state(events: list[dict[str, Any]]) -> OpenState | None:
    """The last top-level state entered and not exited, or ``None`` when every entered
    state exited. ``events`` oldest first."""
    stack: list[OpenState] = []
    for event in _top_level(events):
        kind = str(event.get("type", ""))
        if kind.endswith("StateEntered"):
            details = event.get("stateEnteredEventDetails") or {}
            raw = details.get("input")
            stack.append(OpenState(str(details.get("name")), json.loads(raw) if raw else None, int(event.get("id", 0))))
        elif kind.endswith("StateExited"):
            name = (event.get("stateExitedEventDetails") or {}).get("name")
            for i in range(len(stack) - 1, -1, -1):
                if stack[i].name == name:
                    del stack[i]
                    break
    return stack[-1] if stack else None


def last_redrive(events: list[dict[str, Any]]) -> int:
    """The index in ``events`` of the last ``ExecutionRedriven`` event (0 if none)."""
    for i in range(len(events) - 1, -1, -1):
        if events[i].get("type") == "ExecutionRedriven":
            return i
    return 0


def failure_after(events: list[dict[str, Any]], event_id: int) -> tuple[str, str] | None:
    """``(error, cause)`` of the last failure event after event ``event_id``; a
    ``MapRunFailed`` is preferred over the execution-level event that follows it."""
    found: tuple[str, str] | None = None
    for event in events:
        if int(event.get("id", 0)) <= event_id:
            continue
        kind = str(event.get("type", ""))
        if kind not in FAILURE_EVENTS:
            continue
        details = event_details(event)
        error, cause = str(details.get("error") or ""), str(details.get("cause") or "")
        if kind in EXECUTION_FAILURE_EVENTS and found is not None:
            continue  # the state's own failure says more than the execution's summary
        if error or cause:
            found = (error, cause)
    return found


def map_run_arn(events: list[dict[str, Any]], after_event_id: int) -> str | None:
    """The ``mapRunArn`` of the first ``MapRunStarted`` event after ``after_event_id``."""
    for event in events:
        if int(event.get("id", 0)) > after_event_id and event.get("type") == "MapRunStarted":
            return (event.get("mapRunStartedEventDetails") or {}).get("mapRunArn")
    return None


def short_cause(cause: Any) -> str:
    """Lambda errors arrive as a JSON cause ``{errorMessage, errorType, stackTrace}``;
    keep just the message. Anything else is returned as text."""
    if isinstance(cause, str):
        try:
            parsed = json.loads(cause)
        except ValueError:
            return cause
        if isinstance(parsed, dict) and "errorMessage" in parsed:
            return str(parsed["errorMessage"])
        return cause
    return json.dumps(cause) if cause is not None else ""
