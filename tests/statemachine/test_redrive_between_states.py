"""A redrive of an execution that stopped *between* two states, every state it entered
having exited (the process died after one state ended and before the next began, or a
StopExecution landed there), resumes at the next state with the last state's output:
the state that already completed never runs again (``resume_point``'s every-state-exited
branch, ``relay/local/moto_patches/redrive.py``). A Choice is evaluated again on its input.

The execution is put into the engine as the durable store restores one
(``restore_execution``) with exactly such a history, then redriven through the Step
Functions API.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from moto import mock_aws

from relay.local import moto_patches
from tests.support.polling import eventually

from .conftest import entered_states

#: Pass states only: every state's work is in the history (a Pass that ran again would show).
DEFINITION = {
    "StartAt": "First",
    "States": {
        "First": {"Type": "Pass", "Result": {"first": "done"}, "ResultPath": "$.first", "Next": "Second"},
        "Second": {"Type": "Pass", "Result": {"second": "done"}, "ResultPath": "$.second", "Next": "Route"},
        "Route": {"Type": "Choice", "Choices": [{"Variable": "$.go", "BooleanEquals": True, "Next": "Third"}], "Default": "Second"},
        "Third": {"Type": "Pass", "End": True},
    },
}
STARTED = datetime.now(UTC).isoformat()  # redrive accepts executions stopped less than 14 days ago


@pytest.fixture
def sfn() -> Iterator[Any]:
    moto_patches.install()
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        yield boto3.client("stepfunctions", region_name="us-east-1")


def event(number: int, kind: str, **details: Any) -> dict[str, Any]:
    return {"id": number, "previousEventId": number - 1, "type": kind, "timestamp": STARTED, **details}


def entered(number: int, kind: str, name: str, value: Any) -> dict[str, Any]:
    return event(number, kind, stateEnteredEventDetails={"name": name, "input": json.dumps(value)})


def exited(number: int, kind: str, name: str, value: Any) -> dict[str, Any]:
    return event(number, kind, stateExitedEventDetails={"name": name, "output": json.dumps(value)})


def stopped_between_states(sfn: Any, name: str, events: list[dict[str, Any]]) -> str:
    """An ABORTED execution of :data:`DEFINITION` with ``events`` as its history; returns its ARN."""
    machine = sfn.create_state_machine(
        name=f"between-{name}", definition=json.dumps(DEFINITION), roleArn="arn:aws:iam::123456789012:role/sfn", type="STANDARD"
    )["stateMachineArn"]
    meta = {"name": name, "status": "ABORTED", "start_date": STARTED, "stop_date": STARTED, "input": json.dumps({"go": True}),
            "output": None, "error": "States.Runtime", "cause": "stopped between two states", "redrive_count": 0}  # fmt: skip
    aborted = event(len(events) + 1, "ExecutionAborted", executionAbortedEventDetails={"error": "States.Runtime"})
    moto_patches.restore_execution(machine, meta, [*events, aborted], [])
    return str(machine.replace(":stateMachine:", ":execution:") + f":{name}")


def redriven(sfn: Any, arn: str) -> tuple[list[str], list[dict[str, Any]]]:
    """Redrive ``arn`` to its end: the states it entered after the redrive, and the whole history."""
    sfn.redrive_execution(executionArn=arn)
    eventually(lambda: sfn.describe_execution(executionArn=arn)["status"] != "RUNNING", what="the redriven execution to stop")
    assert sfn.describe_execution(executionArn=arn)["status"] == "SUCCEEDED"
    history = sfn.get_execution_history(executionArn=arn, maxResults=1000)["events"]
    after = next(i for i, e in enumerate(history) if e["type"] == "ExecutionRedriven")
    return entered_states(history[after:]), history


def test_a_redrive_between_two_states_resumes_at_the_next_state_with_the_last_output(sfn):
    # Given an execution that stopped after First exited and before Second was entered
    first_out = {"go": True, "first": {"first": "done"}}
    arn = stopped_between_states(sfn, "after-first", [
        event(1, "ExecutionStarted", executionStartedEventDetails={"input": json.dumps({"go": True})}),
        entered(2, "PassStateEntered", "First", {"go": True}),
        exited(3, "PassStateExited", "First", first_out),
    ])  # fmt: skip
    # When it is redriven
    states, history = redriven(sfn, arn)
    # Then it resumes at Second (First, which completed, does not run again), fed First's output
    assert states == ["Second", "Route", "Third"]
    second = next(e for e in history if e["type"] == "PassStateEntered" and e["stateEnteredEventDetails"]["name"] == "Second")
    assert json.loads(second["stateEnteredEventDetails"]["input"]) == first_out
    assert json.loads(sfn.describe_execution(executionArn=arn)["output"]) == {**first_out, "second": {"second": "done"}}


def test_a_redrive_after_a_choice_exited_evaluates_the_choice_again(sfn):
    # Given an execution that stopped after the Choice exited (the state it chose never entered)
    route_in = {"go": True, "first": {"first": "done"}, "second": {"second": "done"}}
    arn = stopped_between_states(sfn, "after-route", [
        event(1, "ExecutionStarted", executionStartedEventDetails={"input": json.dumps({"go": True})}),
        entered(2, "PassStateEntered", "First", {"go": True}),
        exited(3, "PassStateExited", "First", {"go": True, "first": {"first": "done"}}),
        entered(4, "PassStateEntered", "Second", {"go": True, "first": {"first": "done"}}),
        exited(5, "PassStateExited", "Second", route_in),
        entered(6, "ChoiceStateEntered", "Route", route_in),
        exited(7, "ChoiceStateExited", "Route", route_in),
    ])  # fmt: skip
    # When it is redriven, Then the Choice routes again (a Choice has no Next) and the run ends at Third
    states, _ = redriven(sfn, arn)
    assert states == ["Route", "Third"]


def test_resume_point_every_state_exited():
    # The branch itself: the Next of the last exited state, with its output; a Choice with its input; an end state: nothing
    first_out = {"first": 1}
    events = [entered(2, "PassStateEntered", "First", {}), exited(3, "PassStateExited", "First", first_out)]
    assert moto_patches.resume_point(events, DEFINITION) == ("Second", first_out)
    choice = [*events, entered(4, "ChoiceStateEntered", "Route", {"c": 1}), exited(5, "ChoiceStateExited", "Route", {"c": 1})]
    assert moto_patches.resume_point(choice, DEFINITION) == ("Route", {"c": 1})
    end = [entered(2, "PassStateEntered", "Third", {}), exited(3, "PassStateExited", "Third", {})]
    assert moto_patches.resume_point(end, DEFINITION) is None
