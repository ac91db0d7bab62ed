"""Every path through the workflow with the real handlers, agents (offline model),
researcher runtime, email and approval pages, on the local engine.

Faults are injected at the local endpoints (the AgentCore gateway answers 429 or
400; the Lambda endpoint fails an invocation as a handler would), never inside the
code under test. Retry waits are scaled by 0.01.
"""

from __future__ import annotations

import json
from typing import Any

import boto3

from relay.local.runtime import TABLE
from relay.local.servers import Fault
from relay.mailbox import approval_emails, approval_link, decide_by_link, fetch

from .conftest import entered_states, unique_name

#: Payload discipline: every state's input and output stays under 32 KiB.
PAYLOAD_LIMIT = 32 * 1024


def run(relay: Any, request: dict[str, Any], decisions: list[tuple[bool, str]], timeout: float = 120) -> tuple[str, dict, list[dict]]:
    """Start an execution and answer each approval email with the next scripted decision."""
    name = unique_name("real")
    arn = relay.start_execution(request, name)
    handled = {p for p, _ in approval_emails(relay.outbox)}

    def answer_emails() -> None:
        for path, message in approval_emails(relay.outbox, name):
            if path in handled:
                continue
            handled.add(path)
            if decisions:
                approve, feedback = decisions.pop(0)
                page = decide_by_link(approval_link(message), approve=approve, feedback=feedback, decided_by="tester")
                assert page.status == 200, page.html

    for _ in relay.follow(arn, poll_seconds=0.05, timeout=timeout, on_poll=answer_emails):
        pass
    return name, relay.describe(arn), relay.history(arn)


def workflow_item_after_events(relay: Any, workflow_id: str) -> dict[str, Any]:
    """The record once every status-change event has reached the record-failure function."""
    relay.drain_events()
    return workflow_item(workflow_id)


def workflow_item(workflow_id: str) -> dict[str, Any]:
    return boto3.resource("dynamodb").Table(TABLE).get_item(Key={"pk": f"WORKFLOW#{workflow_id}"})["Item"]


def emails_for(relay: Any, workflow_id: str) -> list[Any]:
    return [m for _, m in approval_emails(relay.outbox, workflow_id)]


def test_approved_first_time_writes_a_report_citing_the_corpus(relay, corpus_dir):
    name, description, history = run(relay, {"topic": "How do task tokens resume a waiting workflow?", "questions": 2}, [(True, "")])
    assert description["status"] == "SUCCEEDED", description
    report = relay.artifacts(name)["report.md"].decode()
    cited = [p.name for p in corpus_dir.iterdir() if p.name in report]
    assert cited, report
    assert "offline extractive model" in report
    assert workflow_item(name)["status"] == "COMPLETED"
    output = json.loads(description["output"])
    assert output["report"]["key"] == f"workflows/{name}/report.md"
    # The report's quality check: assessed beside it, in the execution output, in the record,
    # and answered by GET /workflows/{id} (the API handler's describe, on the same stores)
    from relay_core.adapters.step_functions import StepFunctionsExecutions
    from relay_core.adapters.workflow_records import DynamoDBWorkflowRecords
    from relay_core.models import QualityAssessment, QualityCheck
    from relay_core.workflows_api import describe_workflow

    assessment = QualityAssessment.model_validate_json(relay.artifacts(name)["report.quality.json"])
    check = QualityCheck.model_validate(output["quality"])
    assert check.assessment is not None and check.assessment.key == f"workflows/{name}/report.quality.json"
    assert check == assessment.check(check.assessment)
    assert workflow_item(name)["quality"]["artifact"] == "report.md"
    status = describe_workflow(StepFunctionsExecutions(relay.state_machine_arn, client=relay.sfn), DynamoDBWorkflowRecords(TABLE), name)
    assert status.quality is not None and status.quality.artifact == "report.md"
    assert status.quality.headline == assessment.check().headline() and status.quality.questions == 2
    # And the approval email carried the analysis's quality check
    (email,) = emails_for(relay, name)
    analysis_check = QualityAssessment.model_validate_json(relay.artifacts(name)["analysis-r0.quality.json"]).check()
    assert "Quality check of analysis-r0.md:" in email.get_content() and analysis_check.headline() in email.get_content()


def test_rejected_with_feedback_goes_back_to_analysis_then_approved(relay):
    feedback = "Explain what happens when the approval link expires."
    name, description, history = run(relay, {"topic": "Approval links for reviewers", "questions": 2}, [(False, feedback), (True, "")])
    assert description["status"] == "SUCCEEDED", description
    assert entered_states(history).count("AnalyzeResearch") == 2
    artifacts = relay.artifacts(name)
    assert feedback in artifacts["analysis-r1.md"].decode()
    assert feedback not in artifacts["analysis-r0.md"].decode()
    assert len(emails_for(relay, name)) == 2
    # the first link is spent: its page now says who decided, and offers no form
    first = fetch(approval_link(emails_for(relay, name)[0]))
    assert first.status == 200 and "Already rejected by tester" in first.html and "<form" not in first.html


def test_rejected_with_no_revisions_left_ends_rejected_and_is_not_a_failure(relay):
    delivered = len(relay.deliveries)
    name, description, history = run(relay, {"topic": "Reviewer rejections and feedback", "questions": 1, "max_revisions": 0}, [(False, "Not convincing.")])
    assert description["status"] == "SUCCEEDED"
    assert json.loads(description["output"]) == {"workflow_id": name, "status": "REJECTED"}
    assert entered_states(history)[-2:] == ["RecordRejection", "ReportRejected"]
    assert workflow_item_after_events(relay, name)["status"] == "REJECTED"
    # no status-change event reached the failure recorder for it
    assert not [e for e, _ in relay.deliveries[delivered:] if e["detail"]["name"] == name]


def test_one_research_branch_failing_within_tolerance_still_reports(relay):
    relay.gateway.inject(Fault(status=400, error="ValidationException", message="bad question", match="q02"))
    name, description, history = run(relay, {"topic": "Retries, backoff and catching errors", "questions": 3}, [(True, "")])
    assert description["status"] == "SUCCEEDED", description
    research = relay.artifacts(name)["research.md"].decode()
    assert "## q02:" in research and "this research branch failed" in research


def test_throttled_agent_is_retried_with_backoff_then_succeeds(relay):
    relay.gateway.inject(Fault(status=429, error="ThrottlingException", message="Rate exceeded", match="q01"))
    before = len(relay.gateway.calls)
    name, description, history = run(relay, {"topic": "Task token heartbeats", "questions": 1}, [(True, "")])
    assert description["status"] == "SUCCEEDED", description
    calls = [c for c in relay.gateway.calls[before:] if c["payload"]["workflow_id"] == name]
    assert len(calls) == 2  # throttled once, retried once
    assert calls[0]["session"] == calls[1]["session"] and len(calls[0]["session"]) >= 33


def test_a_runtime_client_error_is_retried_by_its_sdk_error_name_then_succeeds(relay):
    # The gateway answers 424 RuntimeClientError, as AgentCore does when the agent itself
    # fails; Step Functions names it BedrockAgentCore.RuntimeClientErrorException, which
    # the Retry must name exactly.
    relay.gateway.inject(Fault(status=424, error="RuntimeClientError", message="agent failed", match="q01"))
    before = len(relay.gateway.calls)
    name, description, history = run(relay, {"topic": "Task token heartbeats", "questions": 1}, [(True, "")])
    assert description["status"] == "SUCCEEDED", description
    calls = [c for c in relay.gateway.calls[before:] if c["payload"]["workflow_id"] == name]
    assert len(calls) == 2  # failed once, retried once


def test_writer_failing_fails_at_write_report_and_is_recorded_from_outside(relay):
    relay.lambdas.inject(Fault(error="AgentFailed", message="the writer returned an empty report", match="write_report"))
    name, description, history = run(relay, {"topic": "SendTaskSuccess and SendTaskFailure", "questions": 1}, [(True, "")])
    assert description["status"] == "FAILED"
    assert description["error"] == "AgentFailed"
    assert json.loads(description["cause"])["errorMessage"] == "the writer returned an empty report"
    assert entered_states(history)[-1] == "WriteReport"
    record = workflow_item_after_events(relay, name)
    assert record["status"] == "FAILED"
    assert record["failure"]["state"] == "WriteReport"
    assert record["failure"]["cause"] == "the writer returned an empty report"


def test_approval_timeout_fails_the_workflow_and_expires_the_link(relay):
    name, description, history = run(relay, {"topic": "Approval links that expire", "questions": 1, "approval_timeout_seconds": 2}, [])
    assert description["status"] == "FAILED"
    assert description["error"] == "States.Timeout"
    failure = workflow_item_after_events(relay, name)["failure"]
    assert (failure["state"], failure["error"]) == ("RequestApproval", "States.Timeout")
    link = approval_link(emails_for(relay, name)[0])
    assert fetch(link).status == 410


def test_invalid_console_input_fails_in_plan_research_without_retry(relay):
    name, description, history = run(relay, {"topic": "", "questions": 0}, [])
    assert description["status"] == "FAILED"
    assert description["error"] == "InvalidInput"
    assert "topic" in description["cause"] and "questions" in description["cause"]
    assert sum(1 for e in history if e["type"] == "TaskScheduled") == 1  # PlanResearch once, not retried
    assert workflow_item_after_events(relay, name)["failure"]["state"] == "PlanResearch"


def test_stopping_an_execution_that_waits_for_approval_aborts_it(relay):
    # Given an execution waiting for its task token
    name = unique_name("stop")
    arn = relay.start_execution({"topic": "Task token callbacks", "questions": 1}, name)

    def stop_when_mailed() -> None:
        if emails_for(relay, name) and relay.describe(arn)["status"] == "RUNNING":
            relay.sfn.stop_execution(executionArn=arn, error="Relay.Cancelled", cause="test")

    # When it is stopped, Then it ends ABORTED instead of waiting forever
    for _ in relay.follow(arn, poll_seconds=0.05, timeout=60, on_poll=stop_when_mailed):
        pass
    assert relay.describe(arn)["status"] == "ABORTED"
