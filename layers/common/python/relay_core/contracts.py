"""Facts shared by the stack, the local runtime and the handlers, defined once.

- The EventBridge rules that deliver *Step Functions Execution Status Change*
  events to the record-failure function (the stack creates them; the local
  runtime matches the same patterns with :func:`matches`).
- Which execution statuses can be redriven (Step Functions API reference,
  RedriveExecution: FAILED, TIMED_OUT or ABORTED Standard executions).
"""

from __future__ import annotations

from typing import Any

#: ``source`` and ``detail-type`` of execution status change events (Step Functions
#: developer guide, "Automating Step Functions event delivery with EventBridge").
STATUS_CHANGE_SOURCE = "aws.states"
STATUS_CHANGE_DETAIL_TYPE = "Step Functions Execution Status Change"
#: Executions RedriveExecution accepts.
REDRIVABLE_STATUSES = frozenset({"FAILED", "TIMED_OUT", "ABORTED"})
#: The function (folder in ``functions/``) the status-change rules target.
STATUS_CHANGE_FUNCTION = "record_failure"


def status_change_rules(state_machine_arn: str) -> dict[str, dict[str, Any]]:
    """The EventBridge event patterns, by rule name, for one state machine:

    - ``ExecutionStopped``: the execution FAILED, TIMED_OUT or was ABORTED;
    - ``ExecutionRedriven``: RUNNING again after a redrive (``redriveCount`` > 0).
    """
    base = {"source": [STATUS_CHANGE_SOURCE], "detail-type": [STATUS_CHANGE_DETAIL_TYPE]}
    return {
        "ExecutionStopped": base | {"detail": {"stateMachineArn": [state_machine_arn], "status": sorted(REDRIVABLE_STATUSES)}},
        "ExecutionRedriven": base
        | {"detail": {"stateMachineArn": [state_machine_arn], "status": ["RUNNING"], "redriveCount": [{"numeric": [">", 0]}]}},
    }


def _match_value(rule: list[Any], value: Any) -> bool:
    for option in rule:
        if isinstance(option, dict):
            if set(option) != {"numeric"}:
                raise ValueError(f"event pattern operator {sorted(option)} is not supported here")
            op, bound = option["numeric"]
            if not isinstance(value, int | float) or isinstance(value, bool):
                continue
            if {">": value > bound, ">=": value >= bound, "<": value < bound, "<=": value <= bound, "=": value == bound}[op]:
                return True
        elif option == value:
            return True
    return False


def matches(pattern: dict[str, Any], event: dict[str, Any]) -> bool:
    """Whether ``event`` matches an EventBridge ``pattern`` that uses exact values and
    ``{"numeric": [op, n]}`` only (the operators the rules above use).

    Raises:
        ValueError: the pattern uses another operator.
    """
    for key, rule in pattern.items():
        value = event.get(key)
        if isinstance(rule, dict):
            if not isinstance(value, dict) or not matches(rule, value):
                return False
        elif not _match_value(rule, value):
            return False
    return True


#: StopExecution ``error`` of a cancellation through the API (at most 256 characters).
CANCEL_ERROR = "Relay.Cancelled"


def cancel_cause(who: str, reason: str) -> str:
    """StopExecution ``cause`` of a cancellation: ``cancelled by {who}: {reason}`` (≤ 32,768 chars)."""
    return f"cancelled by {who}: {reason}"[:32768]


def canceller(cause: str | None) -> str | None:
    """``cancelled by {who}`` from a :func:`cancel_cause`, or ``None`` for another cause."""
    if not cause or not cause.startswith("cancelled by "):
        return None
    return cause.split(": ", 1)[0]


#: ``ExecutionAborted`` error the local runtime gives an execution that was running when
#: its process died (a failure to redrive, not a cancellation).
RUNTIME_STOPPED_ERROR = "Relay.RuntimeStopped"


#: Headers of the approval email that identify it (the body carries user text, so no
#: program may find an approval by reading the body).
WORKFLOW_ID_HEADER = "X-Relay-Workflow-Id"
APPROVAL_ID_HEADER = "X-Relay-Approval-Id"
