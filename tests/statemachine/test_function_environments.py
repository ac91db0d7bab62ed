"""Local functions behave like Lambda on the local engine: a Task whose function runs past
its timeout fails with Lambda's timeout error and the state's Retry runs; each function's
worker has the variables the stack gives that function and no other's."""

from __future__ import annotations

import json
from typing import Any

import pytest
from relay_core.contracts import ALL_FUNCTIONS, STATE_MACHINE_VARIABLE, TaskFunction

from .conftest import unique_name

SLEEPY = '''
import os
import time


def handler(event, context):
    if event.get("sleep"):
        time.sleep(event["sleep"])
    return {"variable": os.environ.get(event.get("variable", "")), "pid": os.getpid()}
'''


@pytest.fixture(scope="module")
def probe(relay: Any, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A function ``probe`` (1 s timeout) served by the runtime's Lambda endpoint."""
    folder = tmp_path_factory.mktemp("functions") / "probe"
    folder.mkdir()
    (folder / "app.py").write_text(SLEEPY)
    relay.add_function(TaskFunction("probe", (), "sleeps past its timeout", timeout_seconds=1), folder)
    return relay.lambdas.arn("probe")


def state_machine(relay: Any, function_arn: str) -> str:
    definition = {
        "StartAt": "Sleep",
        "States": {
            "Sleep": {
                "Type": "Task",
                "Resource": "arn:aws:states:::lambda:invoke",
                "Parameters": {"FunctionName": function_arn, "Payload.$": "$"},
                "Retry": [{"ErrorEquals": ["Sandbox.Timedout"], "IntervalSeconds": 1, "MaxAttempts": 1}],
                "End": True,
            }
        },
    }
    return relay.sfn.create_state_machine(
        name=unique_name("timeout"), definition=json.dumps(definition), roleArn=f"arn:aws:iam::{relay.account_id}:role/test", type="STANDARD"
    )["stateMachineArn"]


def test_a_task_past_its_functions_timeout_fails_with_lambdas_timeout_error_and_the_retry_runs(relay, probe):
    # Given a Task on a function with a 1 s timeout and a Retry on Lambda's timeout error
    arn = relay.sfn.start_execution(stateMachineArn=state_machine(relay, probe), name=unique_name("sleep"), input='{"sleep": 30}')["executionArn"]
    # When the handler sleeps past the timeout every time
    description = relay.wait(arn, timeout=120)
    history = relay.history(arn)
    # Then the Task failed with Sandbox.Timedout twice (the attempt and its retry) and so did the execution
    failures = [e["taskFailedEventDetails"] for e in history if e["type"] == "TaskFailed"]
    assert [f["error"] for f in failures] == ["Sandbox.Timedout", "Sandbox.Timedout"], history
    assert "Task timed out after 1.00 seconds" in failures[0]["cause"]
    assert sum(e["type"] == "TaskScheduled" for e in history) == 2
    assert (description["status"], description.get("error")) == ("FAILED", "Sandbox.Timedout")


def test_a_task_within_its_timeout_succeeds_on_a_new_worker_after_a_timeout(relay, probe):
    arn = relay.sfn.start_execution(stateMachineArn=state_machine(relay, probe), name=unique_name("quick"), input='{"variable": "PATH"}')["executionArn"]
    description = relay.wait(arn, timeout=60)
    assert description["status"] == "SUCCEEDED", description
    assert json.loads(description["output"])["Payload"]["variable"]


def invoke(relay: Any, name: str, event: dict[str, Any]) -> dict[str, Any]:
    import boto3

    answer = boto3.client("lambda", region_name="us-east-1", endpoint_url=relay.lambdas.url).invoke(
        FunctionName=name, Payload=json.dumps(event).encode()
    )
    return json.loads(answer["Payload"].read())


def test_each_function_has_the_variables_the_stack_gives_it_and_no_others(relay):
    # The state machine's ARN: the API and reconcile functions name it, the Task functions do not
    assert STATE_MACHINE_VARIABLE in ALL_FUNCTIONS["api"].variables and not ALL_FUNCTIONS["finalize"].variables
    api = relay.lambdas.environments("api").config.environment
    finalize = relay.lambdas.environments("finalize").config.environment
    assert api[STATE_MACHINE_VARIABLE] == relay.state_machine_arn and STATE_MACHINE_VARIABLE not in finalize
    # Each has its own name and memory, as Lambda sets them, and the stack's Powertools settings
    assert (finalize["AWS_LAMBDA_FUNCTION_NAME"], finalize["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"]) == ("finalize", "512")
    assert finalize["POWERTOOLS_SERVICE_NAME"] == "relay" and finalize["POWERTOOLS_LOGGER_LOG_EVENT"] == "false"
    # And the workers reach the in-memory AWS over HTTP, never through a global endpoint
    assert finalize["AWS_ENDPOINT_URL_S3"] == relay.aws.url and "AWS_ENDPOINT_URL" not in finalize
