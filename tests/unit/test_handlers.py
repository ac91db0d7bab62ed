"""The Lambda handlers against moto: each parses its event, does its one job and
returns its result model; bad input raises an error naming the field."""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import pytest
from relay_core.adapters.artifact_store import S3ArtifactStore
from relay_core.contracts import artifact_key
from relay_core.errors import AgentFailed, InvalidInput

from relay.local.runtime import BUCKET, TABLE
from relay.local.servers import load_handler

FUNCTIONS = Path(__file__).resolve().parents[2] / "functions"


@pytest.fixture
def corpus(tmp_path, monkeypatch):
    folder = tmp_path / "corpus"
    folder.mkdir()
    (folder / "tokens.md").write_text(
        "# Task tokens\n\nA waitForTaskToken task pauses until SendTaskSuccess is called with its task token. "
        "Task tokens expire when the task times out. Approvers decide through a signed link.\n"
    )
    monkeypatch.setenv("RELAY_CORPUS", str(folder))
    monkeypatch.setenv("RELAY_CACHE_DIR", str(tmp_path / "cache"))
    from relay_agents.corpus import corpus_from_settings

    corpus_from_settings.cache_clear()
    yield folder
    corpus_from_settings.cache_clear()


def handler(name: str):
    return load_handler(FUNCTIONS / name).handler


def item(pk: str) -> dict:
    return boto3.resource("dynamodb").Table(TABLE).get_item(Key={"pk": pk}).get("Item") or {}


def plan_event(request: dict) -> dict:
    return {
        "workflow_id": "wf-1",
        "execution_arn": "arn:aws:states:us-east-1:123456789012:execution:sm:wf-1",
        "request": request,
        "default_runtime_arn": "arn:aws:bedrock-agentcore:us-east-1:123456789012:runtime/r",
    }


def test_plan_research_plans_n_questions_and_records_the_workflow(stores, corpus, lambda_context):
    result = handler("plan_research")(plan_event({"topic": "Task tokens and approvals", "questions": 2}), lambda_context)
    questions = result["plan"]["questions"]
    assert [q["id"] for q in questions] == ["q01", "q02"]
    assert all(len(q["session_id"]) >= 33 for q in questions)
    assert len({q["session_id"] for q in questions}) == 2
    assert result["request"]["max_revisions"] == 2 and result["review"] == {"revision": 0, "feedback": None}
    assert item("WORKFLOW#wf-1")["status"] == "RUNNING"


def test_plan_research_applies_deployment_defaults(stores, corpus, lambda_context, monkeypatch):
    monkeypatch.setenv("RELAY_DEFAULT_MAX_REVISIONS", "5")
    result = handler("plan_research")(plan_event({"topic": "Task tokens", "questions": 1}), lambda_context)
    assert result["request"]["max_revisions"] == 5


def test_plan_research_refuses_a_request_longer_than_the_execution_timeout(stores, lambda_context, monkeypatch):
    # An execution started outside the API (console, CLI) is refused at its first state, not retried
    monkeypatch.setenv("RELAY_EXECUTION_TIMEOUT_SECONDS", "345600")
    with pytest.raises(InvalidInput) as err:
        handler("plan_research")(plan_event({"topic": "x", "questions": 1, "approval_timeout_seconds": 604800}), lambda_context)
    assert "1900800 s" in str(err.value) and "execution timeout of 345600 s" in str(err.value)
    assert item("WORKFLOW#wf-1") == {}


def test_plan_research_rejects_bad_input_naming_every_field(stores, lambda_context):
    with pytest.raises(InvalidInput) as err:
        handler("plan_research")(plan_event({"topic": "x" * 2001, "questions": 41, "surprise": 1}), lambda_context)
    message = str(err.value)
    assert "topic" in message and "questions" in message and "surprise" in message
    assert item("WORKFLOW#wf-1") == {}  # nothing recorded for an input that never started


def put_finding(store: S3ArtifactStore, qid: str, text: str, uri: str) -> dict:
    ref = store.put_text(artifact_key("wf-1", f"findings/{qid}.md"), text)
    return {"question_id": qid, "summary": text[:50], "sources": [{"title": uri, "uri": uri, "score": 1.0}], "finding": ref.model_dump()}


def questions(n: int) -> list[dict]:
    return [{"id": f"q{i:02d}", "question": f"Q{i}?", "runtime_arn": "arn:r", "session_id": "s" * 33} for i in range(1, n + 1)]


def test_compile_research_merges_findings_dedupes_sources_and_marks_failures(stores, lambda_context):
    store = S3ArtifactStore(BUCKET)
    findings = [put_finding(store, "q01", "First answer.", "doc://a"), None, put_finding(store, "q03", "Third answer.", "doc://a")]
    result = handler("compile_research")({"workflow_id": "wf-1", "topic": "T", "questions": questions(3), "findings": findings}, lambda_context)
    assert result["answered"] == 2 and result["failed_questions"] == ["q02"] and result["sources"] == 1
    research = store.get_text(__import__("relay_core.models", fromlist=["ArtifactRef"]).ArtifactRef(**result["markdown"]))
    assert "First answer." in research and "Third answer." in research and "this research branch failed" in research


def test_compile_research_fails_when_nothing_was_answered(stores, lambda_context):
    with pytest.raises(AgentFailed, match="no research question was answered"):
        handler("compile_research")({"workflow_id": "wf-1", "topic": "T", "questions": questions(2), "findings": [None, {"Error": "x"}]}, lambda_context)


def approval_event(token: str = "AAAA+token/with=chars") -> dict:
    store = S3ArtifactStore(BUCKET)
    ref = store.put_text(artifact_key("wf-1", "analysis-r0.md"), "analysis")
    return {
        "workflow_id": "wf-1", "task_token": token, "topic": "Tokens",
        "analysis": {"analysis": ref.model_dump(), "summary": "A summary.", "revision": 0},
        "revision": 0, "max_revisions": 2, "timeout_seconds": 3600, "approver": None,
    }


def test_request_approval_stores_the_token_and_mails_a_link_without_it(stores, lambda_context, tmp_path):
    token = "AAAA+secret-task-token/with=padding"
    result = handler("request_approval")(approval_event(token), lambda_context)
    approval = item(f"APPROVAL#{result['approval_id']}")
    assert approval["task_token"] == token and approval["approval_status"] == "PENDING"
    assert len(result["approval_id"]) >= 22  # 128 random bits, base64url
    (eml,) = (tmp_path / "outbox").glob("*.eml")
    text = eml.read_text()
    assert f"/approvals/{result['approval_id']}?exp=" in text and "&sig=" in text.replace("=\n", "").replace("=3D", "=")
    assert token not in text and "secret-task-token" not in text
    assert item("WORKFLOW#wf-1")["status"] == "AWAITING_APPROVAL"


def _decision_event(tmp_path, approval_id: str) -> dict:
    from email import message_from_bytes
    from email.policy import default

    from relay_core import links

    from relay.mailbox import approval_link

    (eml,) = (tmp_path / "outbox").glob("*.eml")
    link = approval_link(message_from_bytes(eml.read_bytes(), policy=default))
    query = dict(part.split("=", 1) for part in link.split("?", 1)[1].split("&"))
    secret = (tmp_path / "signing.key").read_text().strip().encode()
    csrf = links.csrf_token(secret, approval_id, int(query["exp"]))
    return {
        "httpMethod": "POST", "path": f"/approvals/{approval_id}", "resource": "/approvals/{approval_id}",
        "headers": {"Content-Type": "application/x-www-form-urlencoded"},
        "body": f"decision=approve&exp={query['exp']}&sig={query['sig']}&csrf={csrf}", "isBase64Encoded": False,
        "requestContext": {"stage": "test"}, "queryStringParameters": None, "pathParameters": {"approval_id": approval_id},
    }


@pytest.mark.parametrize(("code", "status", "approval_status"), [("TaskTimedOut", 410, "EXPIRED"), ("ServiceUnavailable", 500, "PENDING")])
def test_a_decision_that_cannot_resume_the_execution_is_not_left_recorded(stores, lambda_context, tmp_path, code, status, approval_status):
    # Given a pending approval, and Step Functions refusing SendTaskSuccess
    from botocore.stub import Stubber

    result = handler("request_approval")(approval_event(), lambda_context)
    approvals_fn = load_handler(FUNCTIONS / "approvals")
    stubber = Stubber(approvals_fn._sfn())
    stubber.add_client_error("send_task_success", service_error_code=code, http_status_code=400 if code == "TaskTimedOut" else 503)
    # When the approver decides
    with stubber:
        response = approvals_fn.handler(_decision_event(tmp_path, result["approval_id"]), lambda_context)
    assert response["statusCode"] == status if status != 500 else response["statusCode"] >= 500
    # Then the approval is expired (dead token) or open again (transient fault), never left decided
    approval = item(f"APPROVAL#{result['approval_id']}")
    assert approval["approval_status"] == approval_status
    assert "decided_by" not in approval or approval_status == "EXPIRED"


def test_finalize_completes_with_a_presigned_report_url(stores, lambda_context):
    ref = S3ArtifactStore(BUCKET).put_text(artifact_key("wf-1", "report.md"), "# Report\n")
    result = handler("finalize")({"workflow_id": "wf-1", "outcome": "COMPLETED", "report": ref.model_dump()}, lambda_context)
    assert result["status"] == "COMPLETED" and "report.md" in result["report_url"]
    assert item("WORKFLOW#wf-1")["status"] == "COMPLETED"


ARN = "arn:aws:states:us-east-1:123456789012:execution:relay:wf-1"
SM_ARN = "arn:aws:states:us-east-1:123456789012:stateMachine:relay"


def status_event(status: str, redrive_count: int = 0, name: str = "wf-1", **detail: object) -> dict:
    """An EventBridge *Step Functions Execution Status Change* event."""
    return {
        "version": "0", "id": "e1", "source": "aws.states", "account": "123456789012", "time": "2026-11-22T00:00:00Z",
        "region": "us-east-1", "resources": [ARN], "detail-type": "Step Functions Execution Status Change",
        "detail": {"executionArn": ARN, "stateMachineArn": SM_ARN, "name": name, "status": status,
                   "redriveCount": redrive_count, **detail},
    }  # fmt: skip


def entered(event_id: int, name: str, kind: str = "Task") -> dict:
    return {"id": event_id, "type": f"{kind}StateEntered", "stateEnteredEventDetails": {"name": name, "input": "{}"}}


def exited(event_id: int, name: str, kind: str = "Task") -> dict:
    return {"id": event_id, "type": f"{kind}StateExited", "stateExitedEventDetails": {"name": name, "output": "{}"}}


class FakeHistory:
    """The ExecutionHistory port with scripted events (no Step Functions)."""

    def __init__(self, events: list[dict], child: tuple[str, str] | None = None):
        self._events = events
        self.child = child

    def events(self, execution_arn: str) -> list[dict]:
        return list(self._events)

    def map_run_failure(self, map_run_arn: str) -> tuple[str, str] | None:
        return self.child


def record_failure_with(monkeypatch, history: FakeHistory):
    module = load_handler(FUNCTIONS / "record_failure")
    monkeypatch.setattr(module, "executions_for", lambda arn: history)
    return module


def test_record_failure_names_the_state_that_entered_and_never_exited(stores, lambda_context, monkeypatch):
    # Given a history that failed in WriteReport after its Retry was exhausted
    cause = json.dumps({"errorMessage": "the writer returned an empty report", "errorType": "AgentFailed"})
    history = FakeHistory([
        {"id": 1, "type": "ExecutionStarted"}, entered(2, "PlanResearch"), exited(3, "PlanResearch"),
        entered(4, "WriteReport"), {"id": 5, "type": "TaskFailed", "taskFailedEventDetails": {"error": "AgentFailed", "cause": cause}},
        {"id": 6, "type": "ExecutionFailed", "executionFailedEventDetails": {"error": "AgentFailed", "cause": cause}},
    ])  # fmt: skip
    # When the FAILED event arrives
    result = record_failure_with(monkeypatch, history).handler(status_event("FAILED", error="AgentFailed", cause=cause), lambda_context)
    # Then the record names the state, the error and the short cause
    assert (result["state"], result["error"], result["cause"], result["written"]) == ("WriteReport", "AgentFailed", "the writer returned an empty report", True)
    failure = item("WORKFLOW#wf-1")["failure"]
    assert (item("WORKFLOW#wf-1")["status"], failure["state"], failure["error"]) == ("FAILED", "WriteReport", "AgentFailed")


def test_a_failed_map_records_the_first_failed_iterations_error(stores, lambda_context, monkeypatch):
    history = FakeHistory([
        entered(1, "ResearchQuestions", "Map"),
        {"id": 2, "type": "MapRunStarted", "mapRunStartedEventDetails": {"mapRunArn": "arn:aws:states:us-east-1:1:mapRun:relay/ResearchQuestions:x"}},
        {"id": 3, "type": "MapRunFailed", "mapRunFailedEventDetails": {"error": "States.ExceedToleratedFailureThreshold", "cause": "2 of 3 failed"}},
    ], child=("NoDocumentMatches", "no document in the corpus matches the question"))  # fmt: skip
    result = record_failure_with(monkeypatch, history).handler(status_event("FAILED"), lambda_context)
    assert result["state"] == "ResearchQuestions" and result["error"] == "States.ExceedToleratedFailureThreshold"
    assert "NoDocumentMatches: no document in the corpus matches the question" in result["cause"]


def test_status_events_out_of_order_never_move_the_record_backwards(stores, lambda_context, monkeypatch):
    from relay_core.adapters.workflow_records import DynamoDBWorkflowRecords

    records = DynamoDBWorkflowRecords(TABLE)
    records.start_workflow("wf-1", "topic", ARN)
    history = FakeHistory([entered(1, "WriteReport"), {"id": 2, "type": "ExecutionRedriven"}, entered(3, "WriteReport")])
    module = record_failure_with(monkeypatch, history)
    # Given the execution failed before any redrive (redrive count 0) and was recorded
    assert module.handler(status_event("FAILED", 0), lambda_context)["written"] is True
    # a late write from before the redrive cannot move it back
    assert records.set_status("wf-1", "RUNNING", redrive_count=0) is False
    assert item("WORKFLOW#wf-1")["status"] == "FAILED"
    # When the first redrive's event arrives, Then it is RUNNING again, resumed from WriteReport
    result = module.handler(status_event("RUNNING", 1), lambda_context)
    assert (result["written"], result["state"]) == (True, "WriteReport")
    record = item("WORKFLOW#wf-1")
    assert (record["status"], record["redrive_count"], record["redriven_from"]) == ("RUNNING", 1, "WriteReport")
    assert "failure" not in record
    # And a FAILED event from before the redrive delivered late changes nothing
    assert module.handler(status_event("FAILED", 0), lambda_context)["written"] is False
    assert item("WORKFLOW#wf-1")["status"] == "RUNNING"
    # steps after the redrive move it on; a completed workflow is final
    assert records.set_status("wf-1", "COMPLETED", redrive_count=1) is True
    assert module.handler(status_event("FAILED", 1), lambda_context)["written"] is False
    assert item("WORKFLOW#wf-1")["status"] == "COMPLETED"


def test_a_step_after_a_redrive_may_write_before_the_redrive_event(stores, monkeypatch, lambda_context):
    from relay_core.adapters.workflow_records import DynamoDBWorkflowRecords

    records = DynamoDBWorkflowRecords(TABLE)
    records.start_workflow("wf-1", "topic", ARN)
    records.record_stopped("wf-1", "FAILED", 0, failure={"state": "RequestApproval", "error": "States.Timeout", "cause": ""})
    # RequestApproval after the first redrive writes first
    assert records.set_status("wf-1", "AWAITING_APPROVAL", redrive_count=1, approval_id="a2") is True
    # then the RUNNING event: keeps AWAITING_APPROVAL, adds the count and the state
    history = FakeHistory([entered(1, "RequestApproval"), {"id": 2, "type": "ExecutionRedriven"}, entered(3, "RequestApproval")])
    assert record_failure_with(monkeypatch, history).handler(status_event("RUNNING", 1), lambda_context)["written"] is True
    record = item("WORKFLOW#wf-1")
    assert (record["status"], record["approval_id"], record["redriven_from"]) == ("AWAITING_APPROVAL", "a2", "RequestApproval")
    assert "failure" not in record


def test_record_failure_refuses_an_event_that_is_not_a_status_change(stores, lambda_context, monkeypatch):
    module = record_failure_with(monkeypatch, FakeHistory([]))
    with pytest.raises(Exception, match="detail"):
        module.handler({"detail-type": "Scheduled Event", "detail": {}}, lambda_context)


def test_agent_handlers_report_the_model_tokens_their_agent_used(stores, corpus, lambda_context):
    # Given the offline model (it estimates its usage at four characters per token)
    # When PlanResearch runs
    result = handler("plan_research")(plan_event({"topic": "Task tokens and approvals", "questions": 2}), lambda_context)
    # Then its result carries the planner's tokens for the cost, under the model's id
    usage = result["usage"]
    assert usage["model"] == "relay-offline-extractive"
    assert usage["inputTokens"] > 0 and usage["outputTokens"] > 0


def test_compile_research_sums_the_findings_tokens(stores, lambda_context):
    from relay_core.adapters.artifact_store import S3ArtifactStore

    store = S3ArtifactStore(BUCKET)
    findings = [put_finding(store, q, f"Answer {q}.", f"doc://{q}") for q in ("q01", "q02")]
    findings[0]["usage"] = {"model": "m", "inputTokens": 100, "outputTokens": 10}
    findings[1]["usage"] = {"model": "m", "inputTokens": 50, "outputTokens": 5}
    questions = [{"id": q, "question": f"{q}?", "runtime_arn": "arn:aws:bedrock-agentcore:us-east-1:123456789012:runtime/r",
                  "session_id": "s" * 33} for q in ("q01", "q02")]
    result = handler("compile_research")({"workflow_id": "wf-1", "topic": "T", "questions": questions, "findings": findings}, lambda_context)
    assert result["usage"] == {"model": "m", "inputTokens": 150, "outputTokens": 15}


def _emitted(out: str, name: str) -> int:
    """How many times the EMF lines Powertools printed to stdout carry metric ``name``."""
    count = 0
    for line in out.splitlines():
        try:
            blob = json.loads(line)
        except ValueError:
            continue
        if isinstance(blob, dict) and "_aws" in blob:
            names = [m["Name"] for d in blob["_aws"]["CloudWatchMetrics"] for m in d["Metrics"]]
            count += names.count(name) * (len(blob[name]) if isinstance(blob.get(name), list) else 1)
    return count


def test_a_workflow_started_through_the_api_counts_once_in_workflows_started(stores, corpus, lambda_context, monkeypatch, capsys):
    # Given the API pointed at a state machine (moto records the execution without running it)
    from relay_core.adapters.step_functions import executions_for

    from tests.support.apigw import call, create_state_machine, load_function

    monkeypatch.setenv("RELAY_STATE_MACHINE_ARN", create_state_machine())
    executions_for.cache_clear()
    capsys.readouterr()
    # When a workflow is started through the API, and its PlanResearch runs (then is retried)
    status, _headers, body = call(load_function("api"), lambda_context, "POST", "/workflows", {"topic": "Task tokens", "questions": 1})
    assert status == 202, body
    event = {**plan_event({"topic": "Task tokens", "questions": 1}), "workflow_id": body["workflow_id"]}
    handler("plan_research")(event, lambda_context)
    handler("plan_research")(event, lambda_context)
    executions_for.cache_clear()
    # Then the dashboard's WorkflowsStarted counts it once
    assert _emitted(capsys.readouterr().out, "WorkflowsStarted") == 1


class RedrivableExecution:
    """The Executions port for one FAILED execution that a redrive sets RUNNING again."""

    def __init__(self, history: list[dict]):
        self.history, self.redrive_count = history, 0

    def describe(self, workflow_id: str) -> dict:
        status = "RUNNING" if self.redrive_count else "FAILED"
        return {"executionArn": ARN, "name": workflow_id, "status": status, "redriveCount": self.redrive_count}

    def events(self, execution_arn: str) -> list[dict]:
        return list(self.history)

    def redrive(self, workflow_id: str) -> dict:
        self.redrive_count += 1
        return {"redriveDate": "2026-11-22T00:00:00Z"}


def test_a_workflow_redriven_through_the_api_counts_once_in_workflows_redriven(stores, lambda_context, monkeypatch, capsys):
    # Given a workflow that failed in WriteReport, and the API and record-failure functions
    from relay_core.adapters.workflow_records import DynamoDBWorkflowRecords

    from tests.support.apigw import call, load_function

    DynamoDBWorkflowRecords(TABLE).start_workflow("wf-1", "topic", ARN)
    history = [entered(1, "WriteReport"), {"id": 2, "type": "ExecutionRedriven"}, entered(3, "WriteReport")]
    api = load_function("api")
    monkeypatch.setattr(api, "executions_for", lambda arn: RedrivableExecution(history[:1]))
    monkeypatch.setenv("RELAY_STATE_MACHINE_ARN", SM_ARN)
    capsys.readouterr()
    # When it is redriven through the API, and the status change (RUNNING again) reaches record-failure
    status, _headers, body = call(api, lambda_context, "POST", "/workflows/wf-1/redrive", {})
    assert status == 202, body
    record_failure_with(monkeypatch, FakeHistory(history)).handler(status_event("RUNNING", 1), lambda_context)
    # Then the dashboard's WorkflowsRedriven counts it once
    assert _emitted(capsys.readouterr().out, "WorkflowsRedriven") == 1
