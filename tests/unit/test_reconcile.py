"""Reconcile (relay_core.reconcile): a status-change event that never reached the
record-failure function is recorded by the next reconcile pass, as the event would have
been; nothing else changes. With the in-memory fakes (tests/support/fakes.py)."""

from __future__ import annotations

from typing import Any

import pytest
from relay_core.contracts import ApprovalRecordStatus, RecordStatus
from relay_core.reconcile import reconcile, status_change_from
from relay_core.steps import record_status_change

from tests.support.fakes import InMemoryExecutions, InMemoryWorkflowRecords

pytestmark = pytest.mark.unit


@pytest.fixture
def world() -> tuple[InMemoryExecutions, InMemoryWorkflowRecords]:
    return InMemoryExecutions(), InMemoryWorkflowRecords()


def started(world: tuple[InMemoryExecutions, InMemoryWorkflowRecords], name: str, state: str = "PlanResearch") -> None:
    executions, records = world
    arn = executions.start(name, "{}")
    records.start_workflow(name, f"topic of {name}", arn)
    executions.enter(name, state)


def test_a_failure_whose_event_was_dropped_is_recorded_by_reconcile(world) -> None:
    executions, records = world
    # Given a workflow failing at WriteReport, and its status-change event lost on the way
    started(world, "wf-dropped", "WriteReport")
    executions.fail("wf-dropped", "AgentFailed", "the writer returned an empty report")
    assert records.get_workflow("wf-dropped")["status"] == RecordStatus.RUNNING
    # When reconcile runs
    result = reconcile(executions, records)
    # Then the record says what the event would have: FAILED at WriteReport with the error
    record = records.get_workflow("wf-dropped")
    assert record["status"] == RecordStatus.FAILED
    assert (record["failure"]["state"], record["failure"]["error"]) == ("WriteReport", "AgentFailed")
    assert record["failure"]["cause"] == "the writer returned an empty report"
    assert result.checked == 1 and [r.workflow_id for r in result.recorded] == ["wf-dropped"]
    assert result.recorded[0].written and result.unexplained == []
    # and a second pass finds nothing left to do
    again = reconcile(executions, records)
    assert (again.checked, again.recorded) == (0, [])


def test_reconcile_records_what_the_record_failure_function_would_have(world) -> None:
    executions, records = world
    # Given two workflows failing the same way: one's event delivered, the other's dropped
    for name in ("wf-delivered", "wf-lost"):
        started(world, name, "CompileResearch")
        executions.fail(name, "States.TaskFailed", "boom")
    description = executions.describe("wf-delivered")
    record_status_change(status_change_from(description), executions, records)
    reconcile(executions, records)
    # Then both records agree but for their names and times
    delivered, lost = (records.get_workflow(n) for n in ("wf-delivered", "wf-lost"))
    strip = lambda r: {k: v for k, v in r.items() if k not in {"workflow_id", "topic", "execution_arn", "created_at", "updated_at"}}  # noqa: E731
    assert strip(delivered) | {"failure": None} == strip(lost) | {"failure": None}
    assert {k: v for k, v in delivered["failure"].items() if k != "at"} == {k: v for k, v in lost["failure"].items() if k != "at"}


def test_running_executions_are_left_alone_and_disagreements_are_named(world) -> None:
    executions, records = world
    started(world, "wf-running")
    # a record whose execution succeeded (FinalizeWorkflow writes that outcome, not an event)
    started(world, "wf-succeeded")
    executions.executions["wf-succeeded"].status = "SUCCEEDED"
    # a record without an execution
    records.start_workflow("wf-orphan", "t", executions.arn("wf-orphan"))
    result = reconcile(executions, records)
    assert result.checked == 3 and result.recorded == []
    assert sorted(result.unexplained) == [
        "wf-orphan: no execution of that name",
        "wf-succeeded: the execution SUCCEEDED but the record says RUNNING",
    ]
    assert {records.get_workflow(n)["status"] for n in ("wf-running", "wf-succeeded", "wf-orphan")} == {RecordStatus.RUNNING}


def test_a_lost_abort_cancels_the_record_and_expires_its_pending_approval(world) -> None:
    executions, records = world
    started(world, "wf-stopped", "RequestApproval")
    records.put_approval("a" * 32, "wf-stopped", "token", 2_000_000_000, {})
    records.set_status("wf-stopped", RecordStatus.AWAITING_APPROVAL, approval_id="a" * 32)
    executions.stop("wf-stopped", "Relay.Cancelled", "stopped by someone")
    reconcile(executions, records)
    assert records.get_workflow("wf-stopped")["status"] == RecordStatus.CANCELLED
    assert records.get_approval("a" * 32)["approval_status"] == ApprovalRecordStatus.EXPIRED


def test_a_lost_stop_and_redrive_record_the_redrive(world) -> None:
    executions, records = world
    # Given a workflow that failed and was redriven, both events lost: the record still says RUNNING, attempt 0
    started(world, "wf-redriven", "AnalyzeResearch")
    executions.fail("wf-redriven", "ModelThrottled", "slow down")
    executions.redrive("wf-redriven")
    result = reconcile(executions, records)
    record = records.get_workflow("wf-redriven")
    assert record["status"] == RecordStatus.RUNNING and int(record["redrive_count"]) == 1
    assert [r.record_status for r in result.recorded] == [RecordStatus.RUNNING]


def test_the_event_rebuilt_from_describe_execution_has_eventbridges_shape(world) -> None:
    executions, _ = world
    started(world, "wf-shape")
    executions.fail("wf-shape", "E", "C")
    change: Any = status_change_from(executions.describe("wf-shape"))
    assert change.source == "aws.states" and change.detail_type == "Step Functions Execution Status Change"
    assert (change.detail.name, change.detail.status, change.detail.error, change.detail.redriveCount) == ("wf-shape", "FAILED", "E", 0)
    assert change.region == "us-east-1" and change.resources == [executions.arn("wf-shape")]
