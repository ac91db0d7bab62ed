"""``aws-sdk:<service>:<action>.waitForTaskToken`` tasks on the local engine, and the
task-token patches (``relay/local/moto_patches/task_tokens.py``), each through the API
as a worker calls it, on a small definition: an ``aws-sdk:sqs:sendMessage`` task that
sends its token to a queue and waits for it to come back.

- moto 5.2.5 runs the aws-sdk callback pattern itself (no patch): the task waits and
  SendTaskSuccess's output is its result;
- ``heartbeat-timeout-name``: a worker that stops heartbeating fails the task with
  ``States.HeartbeatTimeout`` (moto 5.2.5: ``States.Timeout``), which a Retry matches;
- ``closed-task-tokens``: a duplicate or late callback is refused with ``TaskTimedOut``
  (moto 5.2.5 accepts it and does nothing), and a retried attempt gets a new token;
- ``early-heartbeats``: each accepted heartbeat is counted for the console.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws
from moto.core import DEFAULT_ACCOUNT_ID

from relay.local import moto_patches
from tests.support.polling import eventually

pytestmark = pytest.mark.statemachine


def callback_definition(retry: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    task: dict[str, Any] = {
        "Type": "Task",
        "Resource": "arn:aws:states:::aws-sdk:sqs:sendMessage.waitForTaskToken",
        "Parameters": {"QueueUrl.$": "$.queue", "MessageBody.$": "States.JsonToString(States.Array($.question, $$.Task.Token))"},
        "HeartbeatSeconds": 100,
        "TimeoutSeconds": 1000,
        "End": True,
    }
    if retry:
        task["Retry"] = retry
    return {"StartAt": "Ask", "States": {"Ask": task}}


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Any, Any]]:
    moto_patches.install()
    for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}.items():
        monkeypatch.setenv(key, value)
    # HeartbeatSeconds 100 become 1 s
    moto_patches.set_heartbeat_time_scale(0.01)
    try:
        with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
            yield boto3.client("stepfunctions", region_name="us-east-1"), boto3.client("sqs", region_name="us-east-1")
    finally:
        moto_patches.set_heartbeat_time_scale(1.0)


def started(sfn: Any, sqs: Any, name: str, definition: dict[str, Any]) -> tuple[str, str]:
    queue = sqs.create_queue(QueueName=name)["QueueUrl"]
    machine = sfn.create_state_machine(
        name=name, definition=json.dumps(definition), roleArn=f"arn:aws:iam::{DEFAULT_ACCOUNT_ID}:role/test"
    )["stateMachineArn"]
    arn = sfn.start_execution(stateMachineArn=machine, name=f"{name}-1", input=json.dumps({"queue": queue, "question": {"id": "q01"}}))
    return str(arn["executionArn"]), queue


def next_token(sqs: Any, queue: str) -> str:
    messages = eventually(lambda: sqs.receive_message(QueueUrl=queue).get("Messages"), what="a task token")
    sqs.delete_message(QueueUrl=queue, ReceiptHandle=messages[0]["ReceiptHandle"])
    question, token = json.loads(messages[0]["Body"])
    assert question == {"id": "q01"}
    return str(token)


def stopped(sfn: Any, arn: str) -> dict[str, Any]:
    return dict(eventually(lambda: (d := sfn.describe_execution(executionArn=arn))["status"] != "RUNNING" and d, what="the end"))


def history(sfn: Any, arn: str) -> list[dict[str, Any]]:
    return list(sfn.get_execution_history(executionArn=arn)["events"])


def test_an_aws_sdk_wait_for_task_token_task_waits_through_heartbeats_and_returns_the_callback_output(aws):
    sfn, sqs = aws
    arn, queue = started(sfn, sqs, "callback-ok", callback_definition())
    token = next_token(sqs, queue)
    # When the worker heartbeats for three heartbeat intervals (1 s each) ...
    for _ in range(6):
        sfn.send_task_heartbeat(taskToken=token)
        time.sleep(0.5)  # half the (scaled) HeartbeatSeconds: the worker's own pace
        assert sfn.describe_execution(executionArn=arn)["status"] == "RUNNING"
        (task,) = moto_patches.open_tasks(arn)
    assert task.state == "Ask" and task.item == "q01" and task.heartbeats >= 5 and task.last_heartbeat is not None
    # ... and then succeeds
    sfn.send_task_success(taskToken=token, output=json.dumps({"finding": "done"}))
    described = stopped(sfn, arn)
    # Then the task's result is the callback's output, and nothing timed out
    assert described["status"] == "SUCCEEDED" and json.loads(described["output"]) == {"finding": "done"}
    assert "TaskTimedOut" not in [e["type"] for e in history(sfn, arn)]
    assert moto_patches.open_tasks(arn) == []


def test_a_worker_that_stops_heartbeating_fails_the_task_with_states_heartbeat_timeout(aws):
    sfn, sqs = aws
    arn, queue = started(sfn, sqs, "callback-silent", callback_definition())
    next_token(sqs, queue)
    # When the worker never calls back: after HeartbeatSeconds (scaled to 1 s)
    described = stopped(sfn, arn)
    # Then the task times out by its heartbeat, under the name Step Functions gives it
    assert (described["status"], described.get("error")) == ("FAILED", "States.HeartbeatTimeout")
    (timed_out,) = [e for e in history(sfn, arn) if e["type"] == "TaskTimedOut"]
    assert timed_out["taskTimedOutEventDetails"]["error"] == "States.HeartbeatTimeout"


def test_a_heartbeat_timeout_is_retried_with_a_new_token_and_the_old_one_is_refused(aws):
    sfn, sqs = aws
    retry = [{"ErrorEquals": ["States.HeartbeatTimeout"], "IntervalSeconds": 1, "MaxAttempts": 1}]
    arn, queue = started(sfn, sqs, "callback-retried", callback_definition(retry))
    first = next_token(sqs, queue)
    # Given the first attempt timed out by heartbeat and the Retry asked again
    second = next_token(sqs, queue)
    assert second != first
    # When the first worker calls back late
    with pytest.raises(ClientError) as late:
        sfn.send_task_success(taskToken=first, output="{}")
    # Then Step Functions refuses its token, and the second attempt's callback ends the task
    assert late.value.response["Error"]["Code"] == "TaskTimedOut"
    sfn.send_task_success(taskToken=second, output=json.dumps({"attempt": 2}))
    described = stopped(sfn, arn)
    assert described["status"] == "SUCCEEDED" and json.loads(described["output"]) == {"attempt": 2}


def test_a_duplicate_callback_is_refused_with_task_timed_out(aws):
    sfn, sqs = aws
    arn, queue = started(sfn, sqs, "callback-twice", callback_definition())
    token = next_token(sqs, queue)
    sfn.send_task_success(taskToken=token, output=json.dumps({"n": 1}))
    assert stopped(sfn, arn)["status"] == "SUCCEEDED"
    # When the same token is used again, for any callback
    for call in (
        lambda: sfn.send_task_success(taskToken=token, output=json.dumps({"n": 2})),
        lambda: sfn.send_task_failure(taskToken=token, error="Relay.AgentFailed", cause="late"),
        lambda: sfn.send_task_heartbeat(taskToken=token),
    ):
        with pytest.raises(ClientError) as refused:
            call()
        # Then it is refused as Step Functions refuses a closed task's token
        assert refused.value.response["Error"]["Code"] == "TaskTimedOut"
    assert json.loads(sfn.describe_execution(executionArn=arn)["output"]) == {"n": 1}
