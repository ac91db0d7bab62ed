"""LocalRelay without its servers: following an execution reads only what is new, moto's
Batch package loads only when used, and start-up runs without the cyclic collector."""

from __future__ import annotations

import gc
import subprocess
import sys
import textwrap
from types import SimpleNamespace
from typing import Any

from relay.local import runtime
from relay.local.runtime import LocalRelay
from relay.run import starting_up

ARN = "arn:aws:states:us-east-1:123456789012:execution:relay-research-report:wf-1"
OTHER = "arn:aws:states:us-east-1:123456789012:execution:relay-research-report:wf-1:child"


class FakeStepFunctions:
    """DescribeExecution and GetExecutionHistory (maxResults, reverseOrder) over a list,
    counting the events each call returns."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.status = "RUNNING"
        self.returned: list[int] = []
        self.describes = 0

    def describe_execution(self, executionArn: str) -> dict[str, Any]:
        assert executionArn == ARN
        self.describes += 1
        return {"executionArn": ARN, "status": self.status}

    def get_execution_history(
        self, executionArn: str, maxResults: int = 100, reverseOrder: bool = False, nextToken: str | None = None
    ) -> dict[str, Any]:
        assert executionArn == ARN and nextToken is None
        ordered = list(reversed(self.events)) if reverseOrder else list(self.events)
        page = [dict(e) for e in ordered[:maxResults]]
        self.returned.append(len(page))
        return {"events": page}


def test_follow_reads_each_event_once_and_only_when_its_execution_changed(monkeypatch):
    # Given a runtime (not started) whose Step Functions client is a fake (and no periodic status check)
    monkeypatch.setattr(runtime, "STATUS_RECHECK_SECONDS", float("inf"))
    relay = LocalRelay("unused")
    sfn = FakeStepFunctions()
    relay.sfn = sfn
    notifier = relay._notifier
    next_id = iter(range(1, 1000))

    def add(count: int) -> None:  # the engine appends events and reports the new ones
        new = [{"id": next(next_id), "type": "PassStateEntered"} for _ in range(count)]
        sfn.events.extend(new)
        notifier.history_changed(ARN, new)

    # The engine's steps, one per poll: bursts of events, another execution's events, the end
    steps = iter(
        [
            lambda: add(3),
            lambda: notifier.history_changed(OTHER, [{"id": 1, "type": "MapIterationStarted"}] * 5),
            lambda: add(1),
            lambda: add(4),
            lambda: None,
            lambda: finish(),
        ]
    )

    def finish() -> None:
        add(1)
        sfn.status = "SUCCEEDED"
        relay._published[ARN] = "SUCCEEDED"
        notifier.execution_changed(SimpleNamespace(exec_arn=ARN), None)

    add(2)  # already in the history when following starts
    ids = [int(e["id"]) for e in relay.follow(ARN, poll_seconds=0.001, on_poll=lambda: next(steps, lambda: None)())]
    # Then every event is yielded once, in order
    assert ids == list(range(1, 12))
    # And after the first read, each read returned just the new events (no re-read of the
    # history, and nothing read when only another execution changed or nothing did)
    assert sfn.returned == [2, 3, 1, 4, 1]
    # And the execution was described at the start and at its status change only
    assert sfn.describes == 2


def test_follow_reads_further_back_when_more_events_arrived_than_reported():
    # Given events the notifier has not reported yet (they arrive while the page is read)
    relay = LocalRelay("unused")
    sfn = FakeStepFunctions()
    relay.sfn = sfn
    sfn.events = [{"id": i, "type": "PassStateEntered"} for i in (1, 2)]
    relay._notifier.history_changed(ARN, sfn.events)
    followed = relay.follow(ARN, poll_seconds=0.001)
    assert [next(followed)["id"], next(followed)["id"]] == [1, 2]
    sfn.events += [{"id": i, "type": "PassStateEntered"} for i in (3, 4, 5)]
    relay._notifier.history_changed(ARN, sfn.events[2:3])  # only event 3 reported so far
    # Then the page grows until it reaches back to the last event yielded
    assert [next(followed)["id"] for _ in range(3)] == [3, 4, 5]
    assert sfn.returned == [2, 1, 2, 4]  # the first read, then pages of 1, 2 and 4 events


def test_follow_notices_a_status_change_nobody_reported(monkeypatch):
    # Given an execution that stops without the engine reporting it (the safety net)
    monkeypatch.setattr(runtime, "STATUS_RECHECK_SECONDS", 0.0)
    relay = LocalRelay("unused")
    sfn = FakeStepFunctions()
    relay.sfn = sfn
    sfn.events = [{"id": 1, "type": "ExecutionStarted"}]

    def stop_silently() -> None:
        if sfn.status != "RUNNING":
            return
        sfn.events.append({"id": 2, "type": "ExecutionAborted"})
        sfn.status = "ABORTED"
        relay._published[ARN] = "ABORTED"  # what follow waits for before it returns

    # Then following it ends, with every event
    assert [e["type"] for e in relay.follow(ARN, poll_seconds=0.001, on_poll=stop_silently)] == [
        "ExecutionStarted",
        "ExecutionAborted",
    ]


def test_moto_batch_loads_only_when_batch_is_used():
    # In a fresh interpreter: defer moto.batch, then import the Step Functions interpreter
    script = textwrap.dedent(
        """
        import sys
        from relay.local.runtime import defer_moto_batch
        defer_moto_batch()
        import moto.stepfunctions.parser.models  # imports moto.batch.utils
        from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import state_task_service_batch
        assert state_task_service_batch.JobStatus.SUCCEEDED
        print("ec2 before", "moto.ec2" in sys.modules)
        import boto3
        from moto import mock_aws
        with mock_aws():
            print("batch", boto3.client("batch", region_name="us-east-1").describe_job_queues()["jobQueues"])
        print("ec2 after", "moto.ec2" in sys.modules)
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    # Then EC2 (moto.batch's models' dependency) was not imported by the interpreter,
    # and a Batch call under mock_aws still works, loading it then
    assert result.stdout.split("\n")[:3] == ["ec2 before False", "batch []", "ec2 after True"]


def test_starting_up_runs_without_the_collector_then_freezes_and_restores_it():
    was = gc.isenabled()
    try:
        gc.enable()
        with starting_up():
            assert not gc.isenabled()
            made = [object() for _ in range(10)]
        assert gc.isenabled() and gc.get_freeze_count() >= len(made)
        gc.unfreeze()
        # A caller that runs without the collector keeps it off
        gc.disable()
        with starting_up():
            pass
        assert not gc.isenabled()
    finally:
        gc.unfreeze()
        (gc.enable if was else gc.disable)()
