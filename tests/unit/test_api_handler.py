"""The workflows API handler (functions/api) in-process, on API Gateway proxy events, against moto.

moto records executions without running them here, so every test controls the
execution's status itself (StopExecution) and writes workflow/approval records as
the workflow's own functions would.
"""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import boto3
import pytest
from relay_core import workflows_api
from relay_core.adapters.step_functions import StepFunctionsExecutions
from relay_core.adapters.workflow_records import DynamoDBWorkflowRecords

from tests.support.apigw import MotoStores, call, load_function

TOKEN = "AQCEAAAAKgAAAAMAAAAAAAAAAbcdefTASKTOKEN-secret-value-0123456789"


@pytest.fixture(scope="module")
def api() -> Any:
    return load_function("api")


@pytest.fixture(scope="module")
def moto_stores(tmp_path_factory) -> Any:
    with MotoStores(tmp_path_factory.mktemp("api")) as stores:
        yield stores


@pytest.fixture
def env(moto_stores) -> dict[str, Any]:
    """Empty stores and a fresh state machine (no executions) for each test."""
    arn = moto_stores.reset()
    return {"arn": arn, "sfn": moto_stores.sfn, "records": DynamoDBWorkflowRecords("relay-workflows-local"), "stores": moto_stores}


def executions(env: dict[str, Any]) -> list[dict[str, Any]]:
    return env["stores"].executions()


def execution_input(env: dict[str, Any], name: str) -> dict[str, Any]:
    arn = StepFunctionsExecutions(env["arn"], env["sfn"]).arn(name)
    return json.loads(env["sfn"].describe_execution(executionArn=arn)["input"])


# ----- POST /workflows --------------------------------------------------------------------------
def test_start_answers_202_with_the_workflow_id_and_status_url(api, env, lambda_context):
    # Given a valid request
    status, headers, body = call(api, lambda_context, "POST", "/workflows", {"topic": "Task tokens", "questions": 2})
    # Then one execution named by the workflow id runs with the validated input, defaults applied
    assert status == 202, body
    assert body["status_url"] == f"https://abc123.execute-api.us-east-1.amazonaws.com/v1/workflows/{body['workflow_id']}"
    assert headers["Location"] == body["status_url"]
    assert [e["name"] for e in executions(env)] == [body["workflow_id"]]
    assert execution_input(env, body["workflow_id"]) == {
        "topic": "Task tokens", "questions": 2, "max_concurrency": 3, "tolerated_failure_percentage": 34,
        "approval_timeout_seconds": 86400, "max_revisions": 2,
    }


def test_a_retry_with_the_same_idempotency_key_returns_the_same_workflow(api, env, lambda_context):
    # Given a start with an Idempotency-Key
    first = call(api, lambda_context, "POST", "/workflows", {"topic": "Task tokens"}, {"Idempotency-Key": "retry-1"})
    # When the client retries, spelling out a default
    again = call(api, lambda_context, "POST", "/workflows", {"topic": "Task tokens", "questions": 3}, {"idempotency-key": "retry-1"})
    # Then it gets the same workflow and no second execution starts
    assert first[0] == again[0] == 202
    assert first[2] == again[2]
    assert first[2]["workflow_id"] == workflows_api.execution_name("retry-1")
    assert again[1]["Idempotent-Replayed"] == "true"
    assert len(executions(env)) == 1


def test_a_retry_after_the_execution_ended_still_returns_the_same_workflow(api, env, lambda_context):
    _, _, body = call(api, lambda_context, "POST", "/workflows", {"topic": "Task tokens"}, {"Idempotency-Key": "k"})
    env["sfn"].stop_execution(executionArn=executions(env)[0]["executionArn"])
    status, _, again = call(api, lambda_context, "POST", "/workflows", {"topic": "Task tokens"}, {"Idempotency-Key": "k"})
    assert (status, again) == (202, body)
    assert len(executions(env)) == 1


def test_the_same_key_with_a_different_body_is_a_409_and_starts_nothing(api, env, lambda_context):
    call(api, lambda_context, "POST", "/workflows", {"topic": "Task tokens"}, {"Idempotency-Key": "k"})
    status, _, body = call(api, lambda_context, "POST", "/workflows", {"topic": "Other topic"}, {"Idempotency-Key": "k"})
    assert status == 409
    assert body["message"].startswith("Idempotency-Key: already used for a different request body")
    assert len(executions(env)) == 1


@pytest.mark.parametrize(
    ("body", "named"),
    [
        (None, "body: required"),
        ("", "body: required"),
        ("{", "body: not valid JSON"),
        ("[1, 2]", "body: must be a JSON object, not list"),
        ("[" * 100_000, "body: not valid JSON"),
        ({}, "topic: Field required"),
        ({"topic": "   "}, "topic: String should have at least 1 character"),
        ({"topic": "x" * 2001}, "topic: String should have at most 2000 characters"),
        ({"topic": "x", "questions": 41}, "questions: Input should be less than or equal to 40"),
        ({"topic": "x", "questions": "three"}, "questions: must be a JSON integer"),
        ({"topic": "x", "questions": "3"}, "questions: must be a JSON integer"),
        ({"topic": "x", "questions": True}, "questions: must be a JSON integer"),
        ({"topic": "x", "questions": 3.0}, "questions: must be a JSON integer"),
        ('{"topic": "x", "max_revisions": 1e0}', "max_revisions: must be a JSON integer"),
        ({"topic": "x", "tolerated_failure_percentage": "34"}, "tolerated_failure_percentage: must be a JSON number"),
        ({"topic": "x", "tolerated_failure_percentage": False}, "tolerated_failure_percentage: must be a JSON number"),
        ({"topic": 3}, "topic: must be a JSON string"),
        ({"topic": "a\u0000b"}, "topic: must not contain control characters (only tab and newline are allowed)"),
        ({"topic": "bell\u0007"}, "topic: must not contain control characters"),
        ({"topic": "c1\u0085"}, "topic: must not contain control characters"),
        ({"topic": "x", "approver": "a\u0000@example.com"}, "approver: must not contain control characters"),
        ({"topic": "x", "max_revisions": 11}, "max_revisions: Input should be less than or equal to 10"),
        ({"topic": "x", "tolerated_failure_percentage": 101}, "tolerated_failure_percentage: Input should be less than or equal to 100"),
        ({"topic": "x", "approval_timeout_seconds": 0}, "approval_timeout_seconds: Input should be greater than or equal to 1"),
        ({"topic": "x", "approver": "not an email"}, "approver: value is not a valid email address"),
        ({"topic": "x", "question": 2}, "question: Extra inputs are not permitted"),
        (b"\xff\xfe", "body: not valid UTF-8"),
    ],
)
def test_bad_bodies_get_a_400_naming_the_field_and_start_nothing(api, env, lambda_context, body, named):
    status, headers, answer = call(api, lambda_context, "POST", "/workflows", body)
    assert status == 400, answer
    assert headers["Content-Type"] == "application/json"
    assert answer["message"].startswith(named), answer
    assert executions(env) == []


# ----- timeouts that agree: a request that cannot finish within the execution timeout ------------
def test_a_request_longer_than_the_execution_timeout_is_a_400_naming_both_numbers(api, env, lambda_context, monkeypatch):
    # Given the deployed execution timeout of the default settings (a day × 3 rounds + a day)
    monkeypatch.setenv("RELAY_EXECUTION_TIMEOUT_SECONDS", "345600")
    # When a request asks for a 7-day approval window with the default 2 revisions
    status, headers, answer = call(api, lambda_context, "POST", "/workflows", {"topic": "x", "approval_timeout_seconds": 604800})
    # Then it is refused in one line naming what it may take and the timeout; nothing starts
    assert status == 400, answer
    message = answer["message"]
    assert "\n" not in message
    assert "1900800 s" in message and "execution timeout of 345600 s" in message, message
    assert executions(env) == []


def test_a_request_that_fits_the_execution_timeout_starts(api, env, lambda_context, monkeypatch):
    monkeypatch.setenv("RELAY_EXECUTION_TIMEOUT_SECONDS", "345600")
    status, _, body = call(api, lambda_context, "POST", "/workflows", {"topic": "x", "approval_timeout_seconds": 86400, "max_revisions": 2})
    assert status == 202, body


def test_fields_left_out_take_the_deployment_defaults_and_are_checked_with_them(api, env, lambda_context, monkeypatch):
    # Given deployment defaults of no revision (the execution timeout sized for them: 2 days)
    monkeypatch.setenv("RELAY_DEFAULT_MAX_REVISIONS", "0")
    monkeypatch.setenv("RELAY_EXECUTION_TIMEOUT_SECONDS", "172800")
    # When a request leaves max_revisions out, it starts with the deployment's 0
    status, _, body = call(api, lambda_context, "POST", "/workflows", {"topic": "x"})
    assert status == 202, body
    assert execution_input(env, body["workflow_id"])["max_revisions"] == 0
    # and one asking for 2 revisions of a day each is refused
    status, _, answer = call(api, lambda_context, "POST", "/workflows", {"topic": "x", "max_revisions": 2})
    assert status == 400 and "execution timeout of 172800 s" in answer["message"], answer


@pytest.mark.parametrize("key", ["", " lead", "trail ", "tab\there", "é", "x" * 256])
def test_a_malformed_idempotency_key_is_a_400(api, env, lambda_context, key):
    status, _, answer = call(api, lambda_context, "POST", "/workflows", {"topic": "x"}, {"Idempotency-Key": key})
    assert status == 400 and answer["message"].startswith("Idempotency-Key: must be 1-255 printable ASCII")
    assert executions(env) == []


# ----- GET /workflows/{id} ----------------------------------------------------------------------
def test_status_shows_execution_status_record_approval_and_console_url_but_never_the_token(api, env, lambda_context):
    # Given a running workflow waiting for its second approval
    _, _, started = call(api, lambda_context, "POST", "/workflows", {"topic": "Task tokens"})
    wid = started["workflow_id"]
    records: DynamoDBWorkflowRecords = env["records"]
    records.start_workflow(wid, "Task tokens", "arn")
    records.put_approval("appr-1", wid, TOKEN, int(time.time()) + 3600, {"revision": 1, "topic": "Task tokens"})
    records.set_status(wid, "AWAITING_APPROVAL", approval_id="appr-1", revisions=1)
    # When the caller asks for its status
    status, _, body = call(api, lambda_context, "GET", f"/workflows/{wid}")
    # Then
    assert status == 200
    assert body["workflow_id"] == wid and body["status"] == "RUNNING" and body["record_status"] == "AWAITING_APPROVAL"
    assert body["approval"]["status"] == "PENDING" and body["approval"]["revision"] == 1
    assert body["revisions"] == 1 and body["report"] is None and body["topic"] == "Task tokens"
    assert body["console_url"] == (
        "https://us-east-1.console.aws.amazon.com/states/home?region=us-east-1#/v2/executions/details/"
        f"{env['arn'].replace(':stateMachine:', ':execution:')}:{wid}"
    )
    # the approval is identified (so `relay approve` finds its email by header), never linkable:
    # no task token, no signature
    assert body["approval"]["approval_id"] == "appr-1"
    assert TOKEN not in json.dumps(body) and "sig=" not in json.dumps(body)


def test_a_pending_approval_of_a_stopped_execution_shows_as_expired(api, env, lambda_context):
    _, _, started = call(api, lambda_context, "POST", "/workflows", {"topic": "Task tokens"})
    wid = started["workflow_id"]
    env["records"].put_approval("appr-2", wid, TOKEN, int(time.time()) + 3600, {})
    env["records"].set_status(wid, "AWAITING_APPROVAL", approval_id="appr-2")
    env["sfn"].stop_execution(executionArn=executions(env)[0]["executionArn"])
    body = call(api, lambda_context, "GET", f"/workflows/{wid}")[2]
    assert body["status"] == "ABORTED" and body["approval"]["status"] == "EXPIRED"


def test_a_finished_workflow_shows_where_its_report_is(api, env, lambda_context):
    from relay_core.adapters.artifact_store import S3ArtifactStore

    _, _, started = call(api, lambda_context, "POST", "/workflows", {"topic": "Task tokens"})
    wid = started["workflow_id"]
    store = S3ArtifactStore("relay-artifacts-local")
    report = store.put_text(f"workflows/{wid}/report.md", "# Report\n")
    env["records"].set_status(wid, "COMPLETED", report=report.model_dump(mode="json"))
    body = call(api, lambda_context, "GET", f"/workflows/{wid}")[2]
    assert body["report"]["location"] == f"s3://relay-artifacts-local/workflows/{wid}/report.md"
    assert body["report"]["bytes"] == report.bytes and body["report"]["url"].startswith("https://")


@pytest.mark.parametrize(("path", "status", "named"), [
    ("/workflows/does-not-exist", 404, "workflow 'does-not-exist' not found"),
    ("/workflows/has%20space", 400, "workflow_id: must be 1-80 characters"),
    ("/workflows/" + "a" * 81, 400, "workflow_id: must be 1-80 characters"),
    ("/workflows/a/b", 404, "no route GET /workflows/a/b"),
])
def test_unknown_or_malformed_ids_are_4xx_naming_the_problem(api, env, lambda_context, path, status, named):
    answer = call(api, lambda_context, "GET", path)
    assert answer[0] == status and answer[2]["message"].startswith(named)


def test_current_state_is_the_newest_top_level_state_entered():
    # Given a history (newest first) whose newest events belong to an inline Map iteration
    events = [
        {"id": 9, "type": "TaskStateEntered", "stateEnteredEventDetails": {"name": "InnerTask"}},
        {"id": 8, "type": "MapIterationStarted"},
        {"id": 7, "type": "MapIterationSucceeded"},
        {"id": 6, "type": "TaskStateEntered", "stateEnteredEventDetails": {"name": "InnerTask"}},
        {"id": 5, "type": "MapIterationStarted"},
        {"id": 4, "type": "MapStateEntered", "stateEnteredEventDetails": {"name": "ResearchQuestions"}},
        {"id": 2, "type": "TaskStateEntered", "stateEnteredEventDetails": {"name": "PlanResearch"}},
    ]
    # Then completed iterations are skipped (the running one has no end event yet)
    assert workflows_api.current_state(events[2:]) == "ResearchQuestions"
    assert workflows_api.current_state([]) is None


# ----- GET /workflows ------------------------------------------------------------------------------
def _records(env: dict[str, Any], statuses: list[str]) -> list[str]:
    """Workflow records created one second apart (created_at has second resolution)."""
    table = boto3.resource("dynamodb").Table("relay-workflows-local")
    ids = []
    for i, status in enumerate(statuses):
        wid = f"wf-{i:03d}"
        created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(1_700_000_000 + i))
        table.put_item(Item={"pk": f"WORKFLOW#{wid}", "workflow_id": wid, "status": status, "created_at": created, "topic": f"t{i}"})
        ids.append(wid)
    return ids


def _all_pages(api: Any, ctx: Any, query: str) -> list[list[str]]:
    pages, token = [], None
    while True:
        suffix = query + (f"&next_token={token}" if token else "")
        status, _, body = call(api, ctx, "GET", "/workflows?" + suffix)
        assert status == 200, body
        pages.append([i["workflow_id"] for i in body["items"]])
        token = body["next_token"]
        if not token:
            return pages


def test_list_by_status_pages_newest_first_without_gaps_or_repeats(api, env, lambda_context):
    ids = _records(env, ["COMPLETED"] * 5 + ["FAILED"])
    pages = _all_pages(api, lambda_context, "status=COMPLETED&limit=2")
    assert [len(p) for p in pages][:3] == [2, 2, 1]
    assert sum(pages, []) == list(reversed(ids[:5]))


def test_list_without_status_merges_every_status_newest_first(api, env, lambda_context):
    statuses = ["COMPLETED", "FAILED", "RUNNING", "COMPLETED", "CANCELLED", "AWAITING_APPROVAL", "REJECTED", "COMPLETED"]
    ids = _records(env, statuses)
    pages = _all_pages(api, lambda_context, "limit=3")
    assert sum(pages, []) == list(reversed(ids))
    assert all(len(p) <= 3 for p in pages)


@pytest.mark.parametrize(("query", "named"), [
    ("status=DONE", "status: Input should be 'RUNNING'"),
    ("limit=0", "limit: Input should be greater than or equal to 1"),
    ("limit=101", "limit: Input should be less than or equal to 100"),
    ("limit=ten", "limit: Input should be a valid integer"),
    ("sort=asc", "sort: Extra inputs are not permitted"),
    ("status=RUNNING&status=FAILED", "status: give this query parameter once"),
    ("next_token=garbage", "next_token: not a token this API issued"),
    ("next_token=" + base64.urlsafe_b64encode(b'{"filter":"*","keys":{"RUNNING":{"pk":"X","status":"RUNNING","created_at":"y"}}}').decode(),
     "next_token: not a token this API issued"),
])
def test_bad_list_queries_are_400_naming_the_parameter(api, env, lambda_context, query, named):
    status, _, body = call(api, lambda_context, "GET", "/workflows?" + query)
    assert status == 400 and body["message"].startswith(named), body


def test_a_token_for_one_status_is_refused_for_another(api, env, lambda_context):
    _records(env, ["COMPLETED"] * 3)
    token = call(api, lambda_context, "GET", "/workflows?status=COMPLETED&limit=1")[2]["next_token"]
    status, _, body = call(api, lambda_context, "GET", f"/workflows?status=FAILED&next_token={token}")
    assert status == 400 and body["message"] == "next_token: was issued for a different status filter"


# ----- POST /workflows/{id}/cancel ------------------------------------------------------------------
def test_cancel_stops_the_execution_and_records_who_and_why(api, env, lambda_context):
    # Given a workflow waiting for approval
    _, _, started = call(api, lambda_context, "POST", "/workflows", {"topic": "Task tokens"})
    wid = started["workflow_id"]
    env["records"].start_workflow(wid, "Task tokens", "arn")
    env["records"].put_approval("appr-3", wid, TOKEN, int(time.time()) + 3600, {})
    env["records"].set_status(wid, "AWAITING_APPROVAL", approval_id="appr-3")
    # When an IAM caller cancels it with a reason
    status, _, body = call(api, lambda_context, "POST", f"/workflows/{wid}/cancel", {"reason": "  duplicate request "})
    # Then the execution is aborted, the record says who and why, and the link is spent
    assert status == 200, body
    assert body["status"] == "ABORTED"
    assert body["cancel"]["by"] == "arn:aws:iam::123456789012:user/tester" and body["cancel"]["reason"] == "duplicate request"
    record = env["records"].get_workflow(wid)
    assert record["status"] == "CANCELLED" and record["cancel"]["reason"] == "duplicate request"
    approval = env["records"].get_approval("appr-3")
    assert approval["approval_status"] == "EXPIRED" and approval["decided_by"].startswith("cancelled by arn:aws:iam::")
    # And a second cancel is a conflict that changes nothing
    again = call(api, lambda_context, "POST", f"/workflows/{wid}/cancel", {"reason": "again"})
    assert again[0] == 409 and again[2]["message"] == f"workflow {wid} is ABORTED; only RUNNING workflows can be cancelled"
    assert env["records"].get_workflow(wid)["cancel"]["reason"] == "duplicate request"


def test_locally_the_caller_is_named_by_header_but_an_iam_identity_wins(api, env, lambda_context):
    ids = [call(api, lambda_context, "POST", "/workflows", {"topic": f"t{i}"})[2]["workflow_id"] for i in range(2)]
    local = call(api, lambda_context, "POST", f"/workflows/{ids[0]}/cancel", {"reason": "r"}, {"X-Relay-User": "ann"}, user_arn=None)
    iam = call(api, lambda_context, "POST", f"/workflows/{ids[1]}/cancel", {"reason": "r"}, {"X-Relay-User": "mallory"})
    assert local[2]["cancel"]["by"] == "ann (local)"
    assert iam[2]["cancel"]["by"] == "arn:aws:iam::123456789012:user/tester"


@pytest.mark.parametrize(("body", "named"), [
    (None, "body: required"),
    ({}, "reason: Field required"),
    ({"reason": " "}, "reason: String should have at least 1 character"),
    ({"reason": "x" * 1001}, "reason: String should have at most 1000 characters"),
    ({"reason": "ok", "force": True}, "force: Extra inputs are not permitted"),
])
def test_cancel_without_a_good_reason_is_a_400_and_stops_nothing(api, env, lambda_context, body, named):
    wid = call(api, lambda_context, "POST", "/workflows", {"topic": "t"})[2]["workflow_id"]
    status, _, answer = call(api, lambda_context, "POST", f"/workflows/{wid}/cancel", body)
    assert status == 400 and answer["message"].startswith(named)
    assert executions(env)[0]["status"] == "RUNNING"


def test_cancelling_an_unknown_workflow_is_a_404(api, env, lambda_context):
    status, _, body = call(api, lambda_context, "POST", "/workflows/nope/cancel", {"reason": "r"})
    assert status == 404 and body["message"] == "workflow 'nope' not found"


# ----- faults of ours -------------------------------------------------------------------------------
def test_a_misconfigured_function_is_a_500_that_blames_nobody_else(api, env, lambda_context, monkeypatch):
    monkeypatch.delenv("RELAY_STATE_MACHINE_ARN")
    status, _, body = call(api, lambda_context, "POST", "/workflows", {"topic": "t"})
    assert (status, body) == (500, {"message": "internal error"})
