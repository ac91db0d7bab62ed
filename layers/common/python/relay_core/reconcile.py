"""Reconcile: what a lost status-change event would have recorded.

Step Functions delivers *Execution Status Change* events to EventBridge best effort
(EventBridge events reference, "Step Functions events"), and a target can still fail
after its retries (the rules' dead-letter queue keeps those). A workflow whose stop event
never reached the record-failure function would stay RUNNING forever. So a scheduled
function (``functions/reconcile``; ``relay reconcile`` locally) reads every RUNNING
workflow record, asks Step Functions (DescribeExecution) how its execution stands, and for
one that has stopped records exactly what the event would have:
:func:`relay_core.steps.record_status_change` with an event rebuilt from DescribeExecution.
Records never move backwards (:mod:`relay_core.transitions`), so reconciling a workflow
whose event arrives later, or twice, changes nothing.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from pydantic import BaseModel, ConfigDict, Field

from .contracts import (
    REDRIVABLE_STATUSES,
    STATUS_CHANGE_DETAIL_TYPE,
    STATUS_CHANGE_SOURCE,
    ExecutionStatus,
    RecordStatus,
)
from .errors import WorkflowNotFound
from .models import ExecutionStatusChange, StatusRecorded
from .observability import logger, metrics
from .ports import Executions, WorkflowRecords
from .steps import record_status_change

#: The record attributes reconciling reads.
RECONCILE_FIELDS = ("pk", "workflow_id", "status", "redrive_count")
#: Records read per page of the status index.
PAGE_SIZE = 100
#: The record statuses of a workflow whose execution should be running: what a lost stop
#: event leaves behind (a workflow waiting for its approval is AWAITING_APPROVAL).
OPEN_STATUSES = (RecordStatus.RUNNING, RecordStatus.AWAITING_APPROVAL)


class Reconciled(BaseModel):
    """What one reconcile pass found (:func:`reconcile`).

    Attributes:
        checked: RUNNING workflow records compared with their executions.
        recorded: what was recorded for each status change whose event was lost.
        unexplained: records that disagree with their execution in a way no status-change
            event explains (one line each, naming the workflow).
    """

    model_config = ConfigDict(extra="forbid")
    checked: int = Field(ge=0)
    recorded: list[StatusRecorded] = Field(default_factory=list)
    unexplained: list[str] = Field(default_factory=list)


def _epoch_ms(value: Any) -> int | None:
    if isinstance(value, datetime):
        return int(value.timestamp() * 1000)
    if isinstance(value, int | float):
        return int(value * 1000) if value < 10**11 else int(value)
    return None


def status_change_from(description: dict[str, Any]) -> ExecutionStatusChange:
    """The *Execution Status Change* event EventBridge would have delivered for the
    execution as DescribeExecution ``description`` shows it."""
    arn = str(description["executionArn"])
    parts = arn.split(":")
    return ExecutionStatusChange.model_validate(
        {
            "version": "0",
            "id": str(uuid.uuid4()),
            "detail-type": STATUS_CHANGE_DETAIL_TYPE,
            "source": STATUS_CHANGE_SOURCE,
            "account": parts[4] if len(parts) > 4 else "",
            "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "region": parts[3] if len(parts) > 3 else "",
            "resources": [arn],
            "detail": {
                "executionArn": arn,
                "stateMachineArn": description["stateMachineArn"],
                "name": description["name"],
                "status": description["status"],
                "startDate": _epoch_ms(description.get("startDate")),
                "stopDate": _epoch_ms(description.get("stopDate")),
                "error": description.get("error"),
                "cause": description.get("cause"),
                "redriveCount": int(description.get("redriveCount") or 0),
            },
        }
    )


def _open_records(records: WorkflowRecords) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every open workflow record, page by page: ``(status, item)``."""
    for status in OPEN_STATUSES:
        start_key: dict[str, Any] | None = None
        while True:
            items, start_key = records.list_workflows(status, limit=PAGE_SIZE, start_key=start_key, fields=RECONCILE_FIELDS)
            for item in items:
                yield str(status), item
            if not start_key:
                break


def reconcile(executions: Executions, records: WorkflowRecords) -> Reconciled:
    """Compare every open workflow record (RUNNING or AWAITING_APPROVAL, :data:`OPEN_STATUSES`)
    with its execution and record what the status-change events missed.

    - The execution FAILED, TIMED_OUT or was ABORTED: recorded as the stop event would have
      been (FAILED or CANCELLED, the failed state, error and cause; a pending approval expired).
    - It is RUNNING again after a redrive the record has not seen: the redrive is recorded.
    - It SUCCEEDED while the record is open: nothing the events would have written
      (FinalizeWorkflow and RecordRejection write those outcomes); named in ``unexplained``.
    - No such execution: named in ``unexplained``.

    Returns:
        :class:`~relay_core.models.Reconciled`: how many records were checked and what was
        recorded for each missed event.
    """
    checked = 0
    recorded: list[StatusRecorded] = []
    unexplained: list[str] = []
    for record_status, item in _open_records(records):
        checked += 1
        workflow_id = str(item.get("workflow_id") or str(item["pk"]).removeprefix("WORKFLOW#"))
        try:
            description = executions.describe(workflow_id)
        except WorkflowNotFound:
            unexplained.append(f"{workflow_id}: no execution of that name")
            continue
        status = str(description["status"])
        redrives = int(description.get("redriveCount") or 0)
        if status in REDRIVABLE_STATUSES or (status == ExecutionStatus.RUNNING and redrives > int(item.get("redrive_count") or 0)):
            result = record_status_change(status_change_from(description), executions, records)
            recorded.append(result)
            logger.warning(
                "status change recorded by reconcile: its event was lost",
                extra={"workflow_id": workflow_id, "status": status, "written": result.written},
            )
        elif status == ExecutionStatus.SUCCEEDED:
            unexplained.append(f"{workflow_id}: the execution SUCCEEDED but the record says {record_status}")
    if recorded:
        metrics.add_metric(name="StatusChangesReconciled", unit=MetricUnit.Count, value=len(recorded))
    logger.info("reconciled", extra={"checked": checked, "recorded": len(recorded), "unexplained": len(unexplained)})
    return Reconciled(checked=checked, recorded=recorded, unexplained=unexplained)
