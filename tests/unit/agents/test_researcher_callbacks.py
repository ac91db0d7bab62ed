"""The researcher's callback path (``relay_agents.agentcore_app`` + ``relay_agents.callbacks``):
the envelope ``[request, task token]`` is answered at once, the research runs as an
AgentCore asynchronous task (``/ping`` HealthyBusy), heartbeats while it works, and ends
with one SendTaskSuccess (the Finding) or SendTaskFailure (a ``Relay.*`` name); a token
Step Functions refuses is logged and dropped. No sockets: the app runs in-process and
Step Functions is a recording fake (or botocore's Stubber for the adapter)."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from relay_core.errors import ModelThrottled, NoMatchingDocument
from relay_core.models import Finding
from starlette.testclient import TestClient

from tests.support.polling import eventually

pytestmark = pytest.mark.unit

BUCKET = "relay-artifacts-test"
SESSION = "s" * 40
REQUEST = {"workflow_id": "wf-123", "question_id": "q01", "question": "How do heartbeat timeouts and task tokens work?"}
TOKEN = "AQCEAAAAKgAAAAMAAAAAAAAAAcallback+token/with=signs"


class RecordingCallbacks:
    """Stands in for :class:`relay_agents.callbacks.TaskCallbacks`; records every call."""

    def __init__(self, accept: bool = True):
        self.calls: list[tuple[str, str, tuple[Any, ...]]] = []
        self.accept = accept
        self.ended = threading.Event()

    def heartbeat(self, task_token: str) -> bool:
        self.calls.append(("heartbeat", task_token, ()))
        return self.accept

    def succeed(self, task_token: str, output: str) -> bool:
        self.calls.append(("success", task_token, (output,)))
        self.ended.set()
        return self.accept

    def fail(self, task_token: str, error: str, cause: str) -> bool:
        self.calls.append(("failure", task_token, (error, cause)))
        self.ended.set()
        return self.accept

    def of(self, kind: str) -> list[tuple[Any, ...]]:
        return [args for k, _, args in self.calls if k == kind]


@pytest.fixture
def callbacks(monkeypatch) -> RecordingCallbacks:
    import relay_agents.callbacks as module

    fake = RecordingCallbacks()
    monkeypatch.setattr(module, "task_callbacks", lambda: fake)
    monkeypatch.setenv("RELAY_RESEARCH_HEARTBEAT_SECONDS", "0.05")
    return fake


def post(client: TestClient, body: Any) -> Any:
    return client.post("/invocations", json=body, headers={"X-Amzn-Bedrock-AgentCore-Runtime-Session-Id": SESSION})


def test_a_callback_request_is_answered_at_once_researched_busy_with_heartbeats_then_succeeds(s3, callbacks, monkeypatch):
    import relay_agents.researcher as researcher
    from relay_agents.agentcore_app import app

    release = threading.Event()
    real_research = researcher.research

    def slow_research(question: str, **kwargs: Any) -> Any:
        release.wait(10)
        return real_research(question, **kwargs)

    monkeypatch.setattr(researcher, "research", slow_research)
    with TestClient(app) as client:
        # When AskResearcher's envelope arrives
        answer = post(client, [REQUEST, TOKEN])
        # Then it is accepted at once, and the runtime says it is busy while it researches
        assert answer.status_code == 200 and answer.json() == {"status": "accepted", "question_id": "q01"}
        assert client.get("/ping").json()["status"] == "HealthyBusy"
        # heartbeating every 0.05 s while the research runs
        eventually(lambda: len(callbacks.of("heartbeat")) >= 3, timeout=5, what="three heartbeats")
        release.set()
        assert callbacks.ended.wait(30)
        eventually(lambda: client.get("/ping").json()["status"] == "Healthy", timeout=5, what="Healthy again")
    # And it ends with exactly one SendTaskSuccess whose output is the Finding, for its token
    ((output,),) = callbacks.of("success")
    assert callbacks.of("failure") == [] and {token for _, token, _ in callbacks.calls} == {TOKEN}
    finding = Finding.model_validate_json(output)
    assert finding.question_id == "q01" and finding.finding.key == "workflows/wf-123/findings/q01.md"
    stored = s3.get_object(Bucket=BUCKET, Key=finding.finding.key)["Body"].read()
    assert len(stored) == finding.finding.bytes
    # no heartbeat after the result
    last = max(i for i, (kind, _, _) in enumerate(callbacks.calls) if kind == "heartbeat")
    assert last < [kind for kind, _, _ in callbacks.calls].index("success")


@pytest.mark.parametrize(
    ("error", "name"),
    [
        (ModelThrottled("researcher: model throttled: ThrottlingException"), "Relay.ModelThrottled"),
        (NoMatchingDocument("no document in the corpus matches 'q'"), "Relay.NoMatchingDocument"),
        (RuntimeError("boom"), "Relay.InternalError"),
    ],
)
def test_a_research_error_ends_in_one_send_task_failure_with_its_relay_name(s3, callbacks, monkeypatch, error, name):
    import relay_agents.researcher as researcher
    from relay_agents.agentcore_app import app

    def failing(question: str, **kwargs: Any) -> Any:
        raise error

    monkeypatch.setattr(researcher, "research", failing)
    with TestClient(app) as client:
        assert post(client, [REQUEST, TOKEN]).status_code == 200
        assert callbacks.ended.wait(30)
    ((sent, cause),) = callbacks.of("failure")
    assert sent == name and str(error) in cause
    assert callbacks.of("success") == []


def test_an_invalid_callback_request_is_refused_synchronously_and_never_calls_back(s3, callbacks):
    from relay_agents.agentcore_app import app

    with TestClient(app) as client:
        bad = post(client, [{"workflow_id": "wf-123", "question_id": "question-1", "question": "x"}, TOKEN])
        assert bad.status_code == 400 and bad.json()["error"] == "ValidationException" and "question_id" in bad.json()["message"]
        assert client.get("/ping").json()["status"] == "Healthy"
        empty_token = post(client, [REQUEST, ""])
        assert empty_token.status_code == 400
    time.sleep(0.2)  # the heartbeat interval, four times: nothing was started
    assert callbacks.calls == []


def test_heartbeats_stop_when_step_functions_refuses_the_token(s3, monkeypatch):
    from relay_agents.callbacks import run_with_callbacks

    # Given a task that timed out meanwhile: every callback is refused
    refused = RecordingCallbacks(accept=False)
    outcome = run_with_callbacks(lambda: (time.sleep(0.5), "{}")[1], TOKEN, refused, 0.05)  # type: ignore[arg-type]
    # Then one heartbeat was tried, none after its refusal, and the result is dropped too
    assert len(refused.of("heartbeat")) == 1
    assert outcome == "succeeded dropped"


@pytest.mark.parametrize("code", ["TaskTimedOut", "InvalidToken", "TaskDoesNotExist"])
def test_a_refused_token_is_logged_and_dropped_without_the_token(aws_credentials, caplog, code):
    from relay_agents.callbacks import TaskCallbacks

    client = boto3.client("stepfunctions", region_name="us-east-1")
    with Stubber(client) as stub:
        stub.add_client_error("send_task_success", service_error_code=code, http_status_code=400)
        # When a duplicate or late callback is refused
        assert TaskCallbacks(client).succeed(TOKEN, "{}") is False
    # Then it is logged as dropped, naming the error and never the token
    (record,) = [r for r in caplog.records if r.getMessage() == "callback dropped"]
    assert record.__dict__["error"] == code and record.__dict__["action"] == "SendTaskSuccess"
    assert TOKEN not in repr(record.__dict__)


def test_any_other_step_functions_error_propagates(aws_credentials):
    from botocore.exceptions import ClientError
    from relay_agents.callbacks import TaskCallbacks

    client = boto3.client("stepfunctions", region_name="us-east-1")
    with Stubber(client) as stub:
        stub.add_client_error("send_task_heartbeat", service_error_code="AccessDeniedException", http_status_code=400)
        with pytest.raises(ClientError):
            TaskCallbacks(client).heartbeat(TOKEN)


def test_the_heartbeat_interval_setting_is_checked(monkeypatch):
    from relay_agents.callbacks import CallbackSettings
    from relay_core.errors import ConfigurationError

    monkeypatch.setenv("RELAY_RESEARCH_HEARTBEAT_SECONDS", "0.5")
    assert CallbackSettings.from_env().heartbeat_seconds == 0.5
    monkeypatch.setenv("RELAY_RESEARCH_HEARTBEAT_SECONDS", "soon")
    with pytest.raises(ConfigurationError, match="RELAY_RESEARCH_HEARTBEAT_SECONDS"):
        CallbackSettings.from_env()


def test_envelope_and_plain_requests_are_told_apart():
    from relay_agents.callbacks import parse_envelope

    assert parse_envelope(REQUEST) is None
    assert parse_envelope([REQUEST, TOKEN]) == (REQUEST, TOKEN)
    assert parse_envelope(json.loads(json.dumps([REQUEST, TOKEN]))) == (REQUEST, TOKEN)


def test_the_agent_card_describes_the_callback_and_its_error_names():
    from relay_agents.agentcore_app import agent_card
    from relay_agents.callbacks import FAILURE_NAMES, UNKNOWN_FAILURE

    callback = agent_card()["callback"]
    assert callback["answer"]["status"] == "accepted"
    assert callback["sends"] == ["states:SendTaskHeartbeat", "states:SendTaskSuccess", "states:SendTaskFailure"]
    assert set(callback["errors"]) == {name for _, name in FAILURE_NAMES} | {UNKNOWN_FAILURE}
    assert all(name.startswith("Relay.") for name in callback["errors"])
