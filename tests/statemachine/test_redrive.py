"""Redrive with the real handlers, agents, researcher runtime and email: a failed,
timed-out or stopped execution resumes at the state that failed, and nothing that
succeeded runs again — counted by handler and agent invocations, not only by history.

Faults are injected at the local endpoints (the Lambda endpoint fails one invocation
as a handler would; the AgentCore gateway answers 400), never in the code under test.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from relay.local.runtime import TABLE
from relay.local.servers import Fault
from relay.mailbox import approval_emails, approval_link, decide_by_link, fetch
from tests.support.polling import eventually

from .conftest import entered_states, unique_name

#: The Task functions of one approved run, and how often each runs.
ONCE = {"plan_research": 1, "compile_research": 1, "analyze": 1, "request_approval": 1, "write_report": 1, "finalize": 1}


class Run:
    """One execution driven to its end, approving the newest emailed link of its workflow."""

    def __init__(self, relay: Any, request: dict[str, Any], approve: bool = True):
        self.relay = relay
        self.name = unique_name("redrive")
        self.approve = approve
        self.handled: set[str] = set()
        self.invocations_before = len(relay.lambdas.invocations)
        self.agent_calls_before = len(relay.gateway.calls)
        self.arn = relay.start_execution(request, self.name)

    def emails(self) -> list[Any]:
        found = approval_emails(self.relay.outbox, self.name)
        return sorted(found, key=lambda pm: pm[0].stat().st_mtime_ns)

    def _answer(self) -> None:
        emails = self.emails()
        if not emails or not self.approve:
            return
        path, message = emails[-1]  # only the newest request can be decided
        if str(path) in self.handled:
            return
        self.handled.add(str(path))
        page = decide_by_link(approval_link(message), approve=True, decided_by="tester")
        assert page.status == 200, page.html

    def finish(self, timeout: float = 120) -> dict[str, Any]:
        for _ in self.relay.follow(self.arn, poll_seconds=0.05, timeout=timeout, on_poll=self._answer):
            pass
        return self.relay.describe(self.arn)

    def redrive(self) -> dict[str, Any]:
        self.handled |= {str(p) for p, _ in self.emails()}  # the links of the stopped attempt are spent
        self.relay.redrive(self.arn)
        return self.finish()

    def invocations(self) -> Counter[str]:
        calls = list(self.relay.lambdas.invocations)[self.invocations_before :]
        return Counter(name for name, _ in calls if name != "record_failure")

    def agent_questions(self) -> list[str]:
        return [c["payload"]["question_id"] for c in self.relay.gateway.calls[self.agent_calls_before :] if c["payload"]["workflow_id"] == self.name]

    def entered(self) -> Counter[str]:
        return Counter(entered_states(self.relay.history(self.arn)))

    def record(self) -> dict[str, Any]:
        self.relay.drain_events()
        return dict(boto3.resource("dynamodb").Table(TABLE).get_item(Key={"pk": f"WORKFLOW#{self.name}"})["Item"])


@pytest.mark.parametrize(
    ("state", "function"),
    [
        ("CompileResearch", "compile_research"),
        ("AnalyzeResearch", "analyze"),
        ("RequestApproval", "request_approval"),
        ("WriteReport", "write_report"),
        ("FinalizeWorkflow", "finalize"),
    ],
)
def test_a_redrive_resumes_at_the_failed_task_and_reruns_nothing_that_succeeded(relay, state, function):
    # Given a run whose <function> fails (a non-retried error) after every earlier state succeeded
    relay.lambdas.inject(Fault(error="AgentFailed", message=f"{function} broke", match=function))
    run = Run(relay, {"topic": "How do task tokens resume a waiting workflow?", "questions": 2})
    failed = run.finish()
    assert failed["status"] == "FAILED" and failed["error"] == "AgentFailed"
    assert (run.record()["status"], run.record()["failure"]["state"]) == ("FAILED", state)
    # When it is redriven
    done = run.redrive()
    # Then it succeeds, the failed state ran twice and every other state exactly once
    assert done["status"] == "SUCCEEDED" and done["redriveCount"] == 1
    assert run.invocations() == Counter(ONCE) + Counter({function: 1})
    assert sorted(run.agent_questions()) == ["q01", "q02"]
    entered = run.entered()
    assert entered[state] == 2
    assert all(count == 1 for name, count in entered.items() if name != state), entered
    record = run.record()
    assert (record["status"], record["redrive_count"], record["redriven_from"]) == ("COMPLETED", 1, state)
    assert "failure" not in record


def test_the_redriven_attempt_sees_its_redrive_count_in_the_context_object(relay):
    relay.lambdas.inject(Fault(error="AgentFailed", message="finalize broke", match="finalize"))
    run = Run(relay, {"topic": "Task tokens and redrive", "questions": 1})
    assert run.finish()["status"] == "FAILED"
    assert run.redrive()["status"] == "SUCCEEDED"
    import json

    scheduled = [e for e in relay.history(run.arn) if e["type"] == "TaskScheduled"]
    counts = [json.loads(e["taskScheduledEventDetails"]["parameters"])["Payload"].get("redrive_count") for e in scheduled]
    assert counts[0] == 0 and counts[-1] == 1  # PlanResearch in attempt 0, FinalizeWorkflow in attempt 1


def test_a_map_redrive_reruns_only_the_failed_iterations(relay):
    # Given 2 of 3 research iterations failing with a non-retried error, over a 0 % tolerance
    relay.gateway.inject(Fault(status=400, error="ValidationException", message="no document matches q02", match="q02"))
    relay.gateway.inject(Fault(status=400, error="ValidationException", message="no document matches q03", match="q03"))
    run = Run(relay, {"topic": "Retries, backoff and catching errors", "questions": 3, "tolerated_failure_percentage": 0})
    failed = run.finish()
    assert failed["status"] == "FAILED" and failed["error"] == "States.ExceedToleratedFailureThreshold"
    record = run.record()
    assert record["failure"]["state"] == "ResearchQuestions"
    assert "no document matches q02" in record["failure"]["cause"]  # the child's error, not only the threshold
    assert sorted(run.agent_questions()) == ["q01", "q02", "q03"]
    # When it is redriven, Then only q02 and q03 are asked again
    asked_before = len(run.agent_questions())
    assert run.redrive()["status"] == "SUCCEEDED"
    assert sorted(run.agent_questions()[asked_before:]) == ["q02", "q03"]
    assert run.invocations()["plan_research"] == 1
    assert run.entered()["ResearchQuestions"] == 2


def test_an_approval_timeout_is_redriven_with_a_new_email_and_the_old_link_is_superseded(relay):
    # Given a run whose approval times out
    run = Run(relay, {"topic": "Approval links that expire", "questions": 1, "approval_timeout_seconds": 4}, approve=False)
    timed_out = run.finish()
    assert timed_out["status"] == "FAILED" and timed_out["error"] == "States.Timeout"
    assert run.record()["failure"]["state"] == "RequestApproval"
    first_link = approval_link(run.emails()[0][1])
    # When it is redriven and the new email's link is approved
    run.approve = True
    assert run.redrive()["status"] == "SUCCEEDED"
    # Then a second email was sent, and the first link says a newer request replaced it
    assert len(run.emails()) == 2
    page = fetch(first_link)
    assert page.status == 410 and "newer approval request" in page.html
    entered = run.entered()
    assert [entered[s] for s in ("PlanResearch", "ResearchQuestions", "CompileResearch", "AnalyzeResearch")] == [1, 1, 1, 1]
    assert entered["RequestApproval"] == 2
    assert run.invocations() == Counter(ONCE) + Counter({"request_approval": 1})


def test_a_stopped_execution_is_redriven_to_success(relay):
    # Given a run stopped while it waits for approval
    run = Run(relay, {"topic": "Task token callbacks", "questions": 1}, approve=False)

    def stop_when_mailed() -> None:
        if run.emails() and relay.describe(run.arn)["status"] == "RUNNING":
            relay.sfn.stop_execution(executionArn=run.arn, error="Relay.Cancelled", cause="test")

    for _ in relay.follow(run.arn, poll_seconds=0.05, timeout=60, on_poll=stop_when_mailed):
        pass
    assert relay.describe(run.arn)["status"] == "ABORTED"
    assert run.record()["status"] == "CANCELLED"
    # When it is redriven and approved
    run.approve = True
    done = run.redrive()
    # Then it succeeds without re-running research or analysis
    assert done["status"] == "SUCCEEDED"
    assert run.invocations() == Counter(ONCE) + Counter({"request_approval": 1})
    assert run.record()["status"] == "COMPLETED"


def test_succeeded_and_running_executions_are_refused_with_the_reason(relay):
    # Given a run waiting for approval (RUNNING)
    run = Run(relay, {"topic": "Task token callbacks", "questions": 1}, approve=False)
    eventually(run.emails, what="the approval email")
    with pytest.raises(ClientError) as running:
        relay.redrive(run.arn)
    assert running.value.response["Error"]["Code"] == "ExecutionNotRedrivable"
    assert "RUNNING" in running.value.response["Error"]["Message"]
    # When it is approved and succeeds, Then a redrive is refused too, and nothing ran again
    run.approve = True
    assert run.finish()["status"] == "SUCCEEDED"
    before = len(relay.lambdas.invocations)
    with pytest.raises(ClientError) as succeeded:
        relay.redrive(run.arn)
    assert "SUCCEEDED" in succeeded.value.response["Error"]["Message"]
    assert len(relay.lambdas.invocations) == before


def test_a_failure_recording_the_rejection_is_redriven_and_ends_rejected_not_failed(relay):
    # Given a rejection with no revisions left whose RecordRejection fails once
    relay.lambdas.inject(Fault(error="AgentFailed", message="finalize broke", match="finalize"))
    run = Run(relay, {"topic": "Reviewer rejections", "questions": 1, "max_revisions": 0}, approve=False)
    eventually(run.emails, what="the approval email")
    page = decide_by_link(approval_link(run.emails()[-1][1]), approve=False, feedback="Not convincing.", decided_by="tester")
    assert page.status == 200
    failed = run.finish()
    assert failed["status"] == "FAILED" and run.record()["failure"]["state"] == "RecordRejection"
    # When it is redriven, Then only RecordRejection runs again and the workflow ends REJECTED (a success)
    done = run.redrive()
    assert done["status"] == "SUCCEEDED"
    assert run.entered()["RecordRejection"] == 2 and run.entered()["RequestApproval"] == 1
    assert run.invocations() == Counter({"plan_research": 1, "compile_research": 1, "analyze": 1, "request_approval": 1, "finalize": 2})
    assert run.record()["status"] == "REJECTED"
