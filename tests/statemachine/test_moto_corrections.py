"""Three corrections of moto's Step Functions API (``relay/local/moto_patches/engine.py``),
each through the API as a client calls it, on a small definition:

- ``send-task-failure-cause``: SendTaskFailure's ``cause`` reaches the failed task and the
  execution (moto 5.2.5 and 5.2.6 drop it);
- ``history-paging``: GetExecutionHistory honours ``maxResults``, ``nextToken`` and
  ``reverseOrder`` (moto 5.2.5 and 5.2.6 answer everything at once), and refuses a token it
  did not issue with Step Functions' ``InvalidToken``;
- ``list-executions-by-map-run``: ListExecutions by ``mapRunArn`` answers an empty list
  (moto 5.2.5 and 5.2.6 refuse it: they require a ``stateMachineArn``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws
from moto.core import DEFAULT_ACCOUNT_ID

from relay.local import moto_patches
from tests.support.polling import eventually

WAIT = {
    "StartAt": "Wait",
    "States": {
        "Wait": {
            "Type": "Task",
            "Resource": "arn:aws:states:::sqs:sendMessage.waitForTaskToken",
            "Parameters": {"QueueUrl.$": "$.queue", "MessageBody": {"token.$": "$$.Task.Token"}},
            "End": True,
        }
    },
}
PASSES = {
    "StartAt": "P1",
    "States": {f"P{n}": {"Type": "Pass", **({"Next": f"P{n + 1}"} if n < 5 else {"End": True})} for n in range(1, 6)},
}


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Any, Any]]:
    moto_patches.install()
    for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}.items():
        monkeypatch.setenv(key, value)
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        yield boto3.client("stepfunctions", region_name="us-east-1"), boto3.client("sqs", region_name="us-east-1")


def started(sfn: Any, name: str, definition: dict[str, Any], execution_input: dict[str, Any]) -> str:
    machine = sfn.create_state_machine(
        name=name, definition=json.dumps(definition), roleArn=f"arn:aws:iam::{DEFAULT_ACCOUNT_ID}:role/test"
    )["stateMachineArn"]
    return str(sfn.start_execution(stateMachineArn=machine, name=f"{name}-1", input=json.dumps(execution_input))["executionArn"])


def stopped(sfn: Any, arn: str) -> dict[str, Any]:
    return dict(eventually(lambda: (d := sfn.describe_execution(executionArn=arn))["status"] != "RUNNING" and d, what="the end"))


def test_send_task_failure_keeps_its_cause(aws):
    sfn, sqs = aws
    queue = sqs.create_queue(QueueName="tokens")["QueueUrl"]
    arn = started(sfn, "cause", WAIT, {"queue": queue})
    # Given the task token the waiting task sent
    messages = eventually(lambda: sqs.receive_message(QueueUrl=queue).get("Messages"), what="the task token")
    token = json.loads(messages[0]["Body"])["token"]
    # When the worker fails the task with an error and a cause
    sfn.send_task_failure(taskToken=token, error="Research.Failed", cause="the corpus had nothing on it")
    # Then the task and the execution fail with both
    described = stopped(sfn, arn)
    assert (described["status"], described.get("error"), described.get("cause")) == (
        "FAILED", "Research.Failed", "the corpus had nothing on it",
    )  # fmt: skip
    failed = [e for e in sfn.get_execution_history(executionArn=arn)["events"] if e["type"] == "TaskFailed"]
    assert failed[0]["taskFailedEventDetails"]["cause"] == "the corpus had nothing on it"


def test_get_execution_history_pages(aws):
    sfn, _ = aws
    arn = started(sfn, "paging", PASSES, {})
    assert stopped(sfn, arn)["status"] == "SUCCEEDED"
    everything = sfn.get_execution_history(executionArn=arn, maxResults=1000)["events"]
    # When the history is read two events a page, Then the pages are the history in order, then reversed
    for reverse in (False, True):
        pages, token = [], None
        while True:
            page = sfn.get_execution_history(executionArn=arn, maxResults=2, reverseOrder=reverse, **({"nextToken": token} if token else {}))
            assert len(page["events"]) <= 2
            pages += page["events"]
            token = page.get("nextToken")
            if not token:
                break
        assert [e["id"] for e in pages] == [e["id"] for e in (reversed(everything) if reverse else everything)]
    assert len(everything) == 12  # started, 5 × entered/exited, succeeded: more than one page


def test_get_execution_history_refuses_a_token_it_did_not_issue(aws):
    sfn, _ = aws
    arn = started(sfn, "foreign-token", PASSES, {})
    assert stopped(sfn, arn)["status"] == "SUCCEEDED"
    # When a page is asked for with a token this API never issued
    with pytest.raises(ClientError) as refused:
        sfn.get_execution_history(executionArn=arn, maxResults=2, nextToken="not-a-token!")
    # Then it is Step Functions' InvalidToken, as a client error (HTTP 400) naming the token
    error = refused.value.response
    assert (error["Error"]["Code"], error["ResponseMetadata"]["HTTPStatusCode"]) == ("InvalidToken", 400)
    assert "nextToken" in error["Error"]["Message"]


def test_list_executions_by_map_run_answers_none(aws):
    sfn, _ = aws
    map_run = f"arn:aws:states:us-east-1:{DEFAULT_ACCOUNT_ID}:mapRun:machine/ResearchQuestions:0123"
    assert sfn.list_executions(mapRunArn=map_run)["executions"] == []
