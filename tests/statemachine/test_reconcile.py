"""A status-change event lost on the way to the record-failure function is recorded by
the reconcile function, on the local engine with the real handlers: the local EventBridge
gives an event up after DELIVERY_ATTEMPTS failed deliveries, as EventBridge does after its
retries, and reconcile (invoked through the local Lambda endpoint, as relay serve and
relay reconcile invoke it) records what the event would have."""

from __future__ import annotations

from typing import Any

import boto3

from relay.local.runtime import DELIVERY_ATTEMPTS, TABLE
from relay.local.servers import Fault
from relay.reconcile import describe, invoke_reconcile

from .conftest import unique_name


def record(workflow_id: str) -> dict[str, Any]:
    return boto3.resource("dynamodb").Table(TABLE).get_item(Key={"pk": f"WORKFLOW#{workflow_id}"})["Item"]


def test_a_dropped_failure_event_leaves_the_record_running_until_reconcile_records_it(relay) -> None:
    # Given a workflow failing at CompileResearch whose status-change event is never delivered
    relay.lambdas.inject(Fault(error="CompileFailed", message="the research could not be merged", match="compile_research"))
    relay.lambdas.inject(Fault(error="DeliveryFailed", message="dropped", match="record_failure", times=DELIVERY_ATTEMPTS))
    name = unique_name("reconcile")
    arn = relay.start_execution({"topic": "Task token heartbeats", "questions": 1}, name)
    assert relay.wait(arn)["status"] == "FAILED"
    relay.drain_events()
    assert record(name)["status"] == "RUNNING"  # the event was lost: nobody recorded the failure
    # When the reconcile function runs
    result = invoke_reconcile(relay.lambdas.url)
    # Then the record says what the event would have: FAILED at CompileResearch, with the error
    item = record(name)
    assert item["status"] == "FAILED"
    assert (item["failure"]["state"], item["failure"]["error"]) == ("CompileResearch", "CompileFailed")
    assert item["failure"]["cause"] == "the research could not be merged"
    mine = [r for r in result["recorded"] if r["workflow_id"] == name]
    assert len(mine) == 1 and mine[0]["record_status"] == "FAILED" and mine[0]["written"]
    assert any(name in line and "CompileResearch" in line for line in describe(result))
    # and a redrive is recorded by its own (delivered) event as before
    relay.redrive(arn)
    relay.drain_events()
    item = record(name)
    assert (item["status"], item["redrive_count"]) in {("RUNNING", 1), ("AWAITING_APPROVAL", 1)}
    relay.sfn.stop_execution(executionArn=arn, error="Test.Done", cause="end of test")
    assert relay.wait(arn)["status"] == "ABORTED"  # follows until the stop event is published
    relay.drain_events()
    assert record(name)["status"] == "CANCELLED"  # delivered: nothing left for reconcile
    # and another pass finds nothing more to record for it
    again = invoke_reconcile(relay.lambdas.url)
    assert not [r for r in again["recorded"] if r["workflow_id"] == name]
