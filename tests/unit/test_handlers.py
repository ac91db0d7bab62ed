"""The Lambda handlers against moto: each parses its event, does its one job and
returns its result model; bad input raises an error naming the field."""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import pytest
from relay_core.errors import AgentFailed, InvalidInput
from relay_core.store import ArtifactStore, artifact_key

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


def test_plan_research_rejects_bad_input_naming_every_field(stores, lambda_context):
    with pytest.raises(InvalidInput) as err:
        handler("plan_research")(plan_event({"topic": "x" * 2001, "questions": 41, "surprise": 1}), lambda_context)
    message = str(err.value)
    assert "topic" in message and "questions" in message and "surprise" in message
    assert item("WORKFLOW#wf-1") == {}  # nothing recorded for an input that never started


def put_finding(store: ArtifactStore, qid: str, text: str, uri: str) -> dict:
    ref = store.put_text(artifact_key("wf-1", f"findings/{qid}.md"), text)
    return {"question_id": qid, "summary": text[:50], "sources": [{"title": uri, "uri": uri, "score": 1.0}], "finding": ref.model_dump()}


def questions(n: int) -> list[dict]:
    return [{"id": f"q{i:02d}", "question": f"Q{i}?", "runtime_arn": "arn:r", "session_id": "s" * 33} for i in range(1, n + 1)]


def test_compile_research_merges_findings_dedupes_sources_and_marks_failures(stores, lambda_context):
    store = ArtifactStore(BUCKET)
    findings = [put_finding(store, "q01", "First answer.", "doc://a"), None, put_finding(store, "q03", "Third answer.", "doc://a")]
    result = handler("compile_research")({"workflow_id": "wf-1", "topic": "T", "questions": questions(3), "findings": findings}, lambda_context)
    assert result["answered"] == 2 and result["failed_questions"] == ["q02"] and result["sources"] == 1
    research = store.get_text(__import__("relay_core.models", fromlist=["ArtifactRef"]).ArtifactRef(**result["research"]))
    assert "First answer." in research and "Third answer." in research and "this research branch failed" in research


def test_compile_research_fails_when_nothing_was_answered(stores, lambda_context):
    with pytest.raises(AgentFailed, match="no research question was answered"):
        handler("compile_research")({"workflow_id": "wf-1", "topic": "T", "questions": questions(2), "findings": [None, {"Error": "x"}]}, lambda_context)


def approval_event(token: str = "AAAA+token/with=chars") -> dict:
    store = ArtifactStore(BUCKET)
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

    from relay_core import approvals as links

    from relay.local.mail import approval_link

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
    ref = ArtifactStore(BUCKET).put_text(artifact_key("wf-1", "report.md"), "# Report\n")
    result = handler("finalize")({"workflow_id": "wf-1", "outcome": "COMPLETED", "report": ref.model_dump()}, lambda_context)
    assert result["status"] == "COMPLETED" and "report.md" in result["report_url"]
    assert item("WORKFLOW#wf-1")["status"] == "COMPLETED"


def test_record_failure_names_the_state_and_keeps_terminal_status_final(stores, lambda_context):
    cause = json.dumps({"errorMessage": "the writer returned an empty report", "errorType": "AgentFailed"})
    result = handler("record_failure")({"workflow_id": "wf-1", "failure": {"WriteReport": {"Error": "AgentFailed", "Cause": cause}}}, lambda_context)
    assert result == {"workflow_id": "wf-1", "state": "WriteReport", "error": "AgentFailed",
                      "cause": "WriteReport failed (AgentFailed): the writer returned an empty report"}
    assert item("WORKFLOW#wf-1")["status"] == "FAILED"
    # a late write cannot move a terminal workflow back
    from relay_core.records import WorkflowRecords

    WorkflowRecords(TABLE).set_status("wf-1", "RUNNING")
    assert item("WORKFLOW#wf-1")["status"] == "FAILED"


def test_record_failure_renames_reserved_states_errors(stores, lambda_context):
    result = handler("record_failure")({"workflow_id": "wf-2", "failure": {"RequestApproval": {"Error": "States.Timeout", "Cause": ""}}}, lambda_context)
    assert result["error"] == "Relay.Timeout" and "(States.Timeout)" in result["cause"]
