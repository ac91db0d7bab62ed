"""The untimed-states patch: a state without a timeout is evaluated in the thread that
runs the execution; a state with ``TimeoutSeconds`` keeps moto's own thread and still
times out."""

from __future__ import annotations

import json
import threading
import time

import boto3
import pytest
from moto import mock_aws
from moto.core import DEFAULT_ACCOUNT_ID

from relay.local import moto_patches
from relay.local.moto_patches import speed

DEFINITION = {
    "StartAt": "SendUntimed",
    "States": {
        "SendUntimed": {
            "Type": "Task",
            "Resource": "arn:aws:states:::sqs:sendMessage",
            "Parameters": {"QueueUrl.$": "$.queue", "MessageBody": "untimed"},
            "ResultPath": None,
            "Next": "WaitTimed",
        },
        "WaitTimed": {
            "Type": "Task",
            "Resource": "arn:aws:states:::sqs:sendMessage.waitForTaskToken",
            "Parameters": {"QueueUrl.$": "$.queue", "MessageBody": {"token.$": "$$.Task.Token"}},
            "TimeoutSeconds": 1,
            "End": True,
        },
    },
}


def test_an_untimed_state_runs_in_the_callers_thread_and_a_timed_one_still_times_out(monkeypatch):
    moto_patches.install()
    runs: list[bool] = []  # per evaluation: did it run in the thread that started it?
    original_run = speed._StateThread.run

    def recording_run(self: threading.Thread) -> None:
        runs.append(threading.current_thread() is not self)
        original_run(self)

    monkeypatch.setattr(speed._StateThread, "run", recording_run)
    for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}.items():
        monkeypatch.setenv(key, value)
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        queue = boto3.client("sqs", region_name="us-east-1").create_queue(QueueName="states")["QueueUrl"]
        sfn = boto3.client("stepfunctions", region_name="us-east-1")
        machine = sfn.create_state_machine(
            name="state-threads",
            definition=json.dumps(DEFINITION),
            roleArn=f"arn:aws:iam::{DEFAULT_ACCOUNT_ID}:role/test",
        )["stateMachineArn"]
        execution = sfn.start_execution(stateMachineArn=machine, input=json.dumps({"queue": queue}))["executionArn"]
        deadline = time.monotonic() + 60
        while (described := sfn.describe_execution(executionArn=execution))["status"] == "RUNNING":
            if time.monotonic() > deadline:
                pytest.fail("the execution did not end within 60 s")
            time.sleep(0.05)
        history = sfn.get_execution_history(executionArn=execution)["events"]
    assert described["status"] == "FAILED" and described["error"] == "States.Timeout"
    assert [e["type"] for e in history if e["type"].startswith("Task")][-1] == "TaskTimedOut"
    assert runs == [True, False]
