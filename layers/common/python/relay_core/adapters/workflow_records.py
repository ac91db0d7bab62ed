"""Workflow and approval records in one DynamoDB table (port
:class:`relay_core.ports.WorkflowRecords`).

Table layout (single table, partition key ``pk`` of type S):

- workflow item: ``pk = "WORKFLOW#{workflow_id}"``, attributes ``status``
  (RUNNING | AWAITING_APPROVAL | COMPLETED | REJECTED | FAILED | CANCELLED),
  ``created_at`` (ISO-8601 UTC), ``topic``, ``revisions``, ``redrive_count`` (the
  ``$$.Execution.RedriveCount`` of the write that came last: 0, then 1 after the first redrive, …), optional
  ``report``, ``quality`` (a :class:`~relay_core.models.ArtifactQuality` map: the newest
  analysis's quality check, set with AWAITING_APPROVAL, then the report's, set with
  COMPLETED), ``failure``, ``cancel`` and ``redriven_from`` (the state the last redrive
  resumed from); the GSI ``status-created_at-index`` on (``status``, ``created_at``)
  lists workflows by status.
- approval item: ``pk = "APPROVAL#{approval_id}"``, attributes ``approval_status``
  (PENDING | APPROVED | REJECTED | EXPIRED | SUPERSEDED), ``workflow_id``, ``task_token``,
  ``expires_at`` (epoch seconds), ``ttl`` (epoch seconds, the table's TTL attribute),
  what the approval page shows (``topic``, ``summary``, ``analysis`` and ``research``
  artifact references, the analysis's ``quality`` check, ``revision``,
  ``max_revisions``) and once decided ``decided_by``, ``decided_at``, ``feedback``.
  Approval items have no ``status`` attribute, so they never appear in the status index.

Every state change is a conditional write, so a retried or concurrent call cannot
move a record backwards or decide an approval twice. The conditions state the rules
of :mod:`relay_core.transitions`. COMPLETED and REJECTED are final
(the execution succeeded). FAILED and CANCELLED are final for the redrive count that
wrote them: only a later redrive (``redrive_count`` greater than the stored one) moves
the record on, so a late write from before the stop, or a status change event
delivered out of order, never moves it backwards.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import boto3
from botocore.exceptions import ClientError

from ..contracts import (
    FINAL_STATUSES,
    RETENTION_SECONDS,
    STATUS_INDEX,
    STOPPED_STATUSES,
    TABLE_PARTITION_KEY,
    TABLE_TTL_ATTRIBUTE,
    ApprovalRecordStatus,
    RecordStatus,
)
from ..errors import (
    SUPERSEDED_MESSAGE,
    ApprovalAlreadyDecided,
    ApprovalExpired,
    ApprovalNotFound,
    ApprovalSuperseded,
    InvalidInput,
    WorkflowNotFound,
)
from ..models import utc_now


def _conditional_failed(exc: ClientError) -> bool:
    return exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"


class DynamoDBWorkflowRecords:
    """Workflow and approval items in the table ``table_name``.

    Args:
        table_name: the DynamoDB table.
        resource: a boto3 DynamoDB resource (defaults to ``boto3.resource("dynamodb")``).
    """

    def __init__(self, table_name: str, resource: Any | None = None):
        self._table = (resource or boto3.resource("dynamodb")).Table(table_name)

    # ----- workflows -------------------------------------------------------------
    def start_workflow(self, workflow_id: str, topic: str, execution_arn: str, redrive_count: int = 0) -> bool:
        """Record a workflow as RUNNING. Idempotent: a retried (or redriven) PlanResearch
        keeps the first record. Returns whether this call created it."""
        try:
            self._table.put_item(
                Item={
                    TABLE_PARTITION_KEY: f"WORKFLOW#{workflow_id}",
                    "workflow_id": workflow_id,
                    "status": RecordStatus.RUNNING,
                    "created_at": utc_now(),
                    "updated_at": utc_now(),
                    "topic": topic,
                    "execution_arn": execution_arn,
                    "revisions": 0,
                    "redrive_count": redrive_count,
                    TABLE_TTL_ATTRIBUTE: int(time.time()) + RETENTION_SECONDS,
                },
                ConditionExpression="attribute_not_exists(pk)",
            )
        except ClientError as exc:
            if not _conditional_failed(exc):
                raise
            if redrive_count:  # a redriven PlanResearch: the record may be FAILED before the redrive
                self.set_status(workflow_id, RecordStatus.RUNNING, redrive_count=redrive_count)
            return False
        return True

    def get_workflow(self, workflow_id: str) -> dict[str, Any]:
        """The workflow item. Raises :class:`WorkflowNotFound`."""
        item = self._table.get_item(Key={TABLE_PARTITION_KEY: f"WORKFLOW#{workflow_id}"}, ConsistentRead=True).get("Item")
        if not item:
            raise WorkflowNotFound(f"workflow {workflow_id!r} not found")
        return dict(item)

    def _update(self, workflow_id: str, sets: dict[str, Any], condition: str, values: dict[str, Any], remove: tuple[str, ...] = ()) -> bool:
        """One conditional UpdateItem of the workflow item; False when the condition failed.

        ``sets``: attribute → value (``created_at``/``workflow_id`` are set when missing,
        so a workflow that failed before PlanResearch recorded it still gets a record).
        ``condition`` may use ``#s`` (status), ``#rc`` (redrive_count), the status sets
        ``:final0…`` and ``:stop0…``, and ``values``.
        """
        names = {"#s": "status", "#rc": "redrive_count", "#u": "updated_at", "#c": "created_at", "#w": "workflow_id"}
        expression_values: dict[str, Any] = {":u": utc_now(), ":w": workflow_id, **values}
        parts = ["#u = :u", "#c = if_not_exists(#c, :u)", "#w = if_not_exists(#w, :w)"]
        for i, (key, value) in enumerate(sets.items()):
            names[f"#a{i}"] = key
            expression_values[f":a{i}"] = value
            parts.append(f"#a{i} = :a{i}")
        if ":final0" in condition:
            expression_values.update({f":final{i}": v for i, v in enumerate(sorted(FINAL_STATUSES))})
        if ":stop0" in condition:
            expression_values.update({f":stop{i}": v for i, v in enumerate(sorted(STOPPED_STATUSES))})
        expression = "SET " + ", ".join(parts)
        if remove:
            for i, key in enumerate(remove):
                names[f"#r{i}"] = key
            expression += " REMOVE " + ", ".join(f"#r{i}" for i in range(len(remove)))
        try:
            self._table.update_item(
                Key={TABLE_PARTITION_KEY: f"WORKFLOW#{workflow_id}"},
                UpdateExpression=expression,
                ConditionExpression=condition,
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=expression_values,
            )
        except ClientError as exc:
            if not _conditional_failed(exc):
                raise
            return False
        return True

    _FINAL = "(:final0, :final1)"
    _STOPPED = "(:stop0, :stop1)"

    def set_status(self, workflow_id: str, status: str, redrive_count: int = 0, **attributes: Any) -> bool:
        """Move a workflow to ``status`` and set ``attributes``, written by a step that
        ran at ``redrive_count`` (``$$.Execution.RedriveCount``: 0, or n after the n-th redrive).

        Refused (returns False, nothing written) when the record is COMPLETED or
        REJECTED, when a later redrive already wrote it, or when it is FAILED or
        CANCELLED at this or a later redrive count: a late or retried write never moves a
        record backwards.
        """
        condition = (
            "(attribute_not_exists(#rc) OR #rc <= :rc) AND (attribute_not_exists(#s) OR "
            f"(NOT (#s IN {self._FINAL}) AND NOT (#s IN {self._STOPPED})) OR "
            f"(#s IN {self._STOPPED} AND (attribute_not_exists(#rc) OR #rc < :rc)))"
        )
        return self._update(
            workflow_id, {"status": status, "redrive_count": redrive_count, **attributes}, condition, {":rc": redrive_count}
        )

    def record_stopped(self, workflow_id: str, status: str, redrive_count: int, **attributes: Any) -> bool:
        """The execution stopped (FAILED, TIMED_OUT, ABORTED) at ``redrive_count``:
        set ``status`` (FAILED or CANCELLED) and ``attributes`` unless a later redrive
        already wrote the record or it is COMPLETED/REJECTED. Returns whether it wrote."""
        condition = f"(attribute_not_exists(#rc) OR #rc <= :rc) AND (attribute_not_exists(#s) OR NOT (#s IN {self._FINAL}))"
        return self._update(workflow_id, {"status": status, "redrive_count": redrive_count, **attributes}, condition, {":rc": redrive_count})

    def record_redriven(self, workflow_id: str, redrive_count: int, redriven_from: str | None) -> bool:
        """The execution was redriven (the ``redrive_count``-th time): FAILED/CANCELLED →
        RUNNING, keeping the count and the state it resumed from, and clearing the
        last stop's ``failure``/``cancel``. If a step after that redrive already
        moved the record on, only the count and ``redriven_from`` are added. Returns
        whether it wrote."""
        sets: dict[str, Any] = {"redrive_count": redrive_count, "redriven_from": redriven_from or "", "redriven_at": utc_now()}
        values = {":rc": redrive_count}
        if self._update(
            workflow_id,
            {"status": RecordStatus.RUNNING, **sets},
            f"#s IN {self._STOPPED} AND (attribute_not_exists(#rc) OR #rc < :rc)",
            values,
            remove=("failure", "cancel"),
        ):
            return True
        return self._update(
            workflow_id,
            sets,
            f"attribute_exists(#s) AND (attribute_not_exists(#rc) OR #rc <= :rc) AND NOT (#s IN {self._STOPPED})",
            values,
            remove=("failure", "cancel"),
        )

    def list_workflows(
        self, status: str, limit: int = 20, start_key: dict[str, Any] | None = None, fields: Sequence[str] | None = None
    ) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
        """Workflows with ``status``, newest first, one page of at most ``limit`` items;
        with ``fields``, only those attributes of each (a ``ProjectionExpression``: the
        page is read in full either way, and costs the same capacity, but less is sent).

        Returns:
            ``(items, last_evaluated_key)``; pass the key back as ``start_key`` for the next page.

        Raises:
            InvalidInput: DynamoDB refused ``start_key`` (not a key it returned).
        """
        kwargs: dict[str, Any] = {
            "IndexName": STATUS_INDEX,
            "KeyConditionExpression": "#s = :s",
            "ExpressionAttributeNames": {"#s": "status"},
            "ExpressionAttributeValues": {":s": status},
            "ScanIndexForward": False,
            "Limit": limit,
        }
        if start_key:
            kwargs["ExclusiveStartKey"] = start_key
        if fields is not None:
            names = {f"#f{n}": name for n, name in enumerate(fields)}
            kwargs["ProjectionExpression"] = ", ".join(names)
            kwargs["ExpressionAttributeNames"] |= names
        try:
            page = self._table.query(**kwargs)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ValidationException":
                raise InvalidInput("next_token: not a token this API issued; start again without it") from None
            raise
        return [dict(i) for i in page.get("Items", [])], page.get("LastEvaluatedKey")

    # ----- approvals -------------------------------------------------------------
    def put_approval(self, approval_id: str, workflow_id: str, task_token: str, expires_at: int, details: dict[str, Any]) -> None:
        """Store a PENDING approval. The id is fresh randomness, so a collision is a bug: it raises."""
        self._table.put_item(
            Item={
                TABLE_PARTITION_KEY: f"APPROVAL#{approval_id}",
                "approval_id": approval_id,
                "workflow_id": workflow_id,
                "approval_status": ApprovalRecordStatus.PENDING,
                "task_token": task_token,
                "expires_at": expires_at,
                "created_at": utc_now(),
                TABLE_TTL_ATTRIBUTE: expires_at + RETENTION_SECONDS,
                **details,
            },
            ConditionExpression="attribute_not_exists(pk)",
        )

    def get_approval(self, approval_id: str) -> dict[str, Any]:
        """The approval item. Raises :class:`ApprovalNotFound`."""
        item = self._table.get_item(Key={TABLE_PARTITION_KEY: f"APPROVAL#{approval_id}"}, ConsistentRead=True).get("Item")
        if not item:
            raise ApprovalNotFound("approval not found")
        return dict(item)

    def decide_approval(self, approval_id: str, status: str, decided_by: str, feedback: str | None, reason: str | None = None) -> dict[str, Any]:
        """PENDING → ``status`` (APPROVED, REJECTED or EXPIRED) as one conditional write.
        ``reason`` (EXPIRED only) is what the link answers from then on (410).

        Returns:
            The item after the write (it still holds the task token, for SendTaskSuccess).

        Raises:
            ApprovalAlreadyDecided: it was not PENDING; carries who decided and when.
            ApprovalNotFound: no such approval.
        """
        decided_at = utc_now()
        values = {":s": status, ":by": decided_by, ":at": decided_at, ":f": feedback or "", ":pending": ApprovalRecordStatus.PENDING}
        expression = "SET approval_status = :s, decided_by = :by, decided_at = :at, feedback = :f"
        if reason:
            expression += ", expired_reason = :r"
            values[":r"] = reason
        try:
            result = self._table.update_item(
                Key={TABLE_PARTITION_KEY: f"APPROVAL#{approval_id}"},
                UpdateExpression=expression,
                ConditionExpression="attribute_exists(pk) AND approval_status = :pending",
                ExpressionAttributeValues=values,
                ReturnValues="ALL_NEW",
            )
        except ClientError as exc:
            if not _conditional_failed(exc):
                raise
            current = self.get_approval(approval_id)
            if current.get("approval_status") == ApprovalRecordStatus.SUPERSEDED:
                raise ApprovalSuperseded(SUPERSEDED_MESSAGE) from exc
            if current.get("approval_status") == ApprovalRecordStatus.EXPIRED and current.get("expired_reason"):
                raise ApprovalExpired(str(current["expired_reason"])) from exc
            raise ApprovalAlreadyDecided(
                f"already {current.get('approval_status', '').lower()} by {current.get('decided_by') or 'the system'} "
                f"at {current.get('decided_at') or 'an earlier time'}",
                decided_by=current.get("decided_by"),
                decided_at=current.get("decided_at"),
            ) from exc
        return dict(result["Attributes"])

    def reopen_approval(self, approval_id: str, status: str) -> None:
        """Undo a decision whose ``SendTaskSuccess`` failed: back to PENDING (decider
        cleared) so it can be decided again, or to EXPIRED when the token is dead."""
        if status == ApprovalRecordStatus.PENDING:
            expression = "SET approval_status = :s REMOVE decided_by, decided_at"
        else:
            expression = "SET approval_status = :s"
        self._table.update_item(
            Key={TABLE_PARTITION_KEY: f"APPROVAL#{approval_id}"},
            UpdateExpression=expression,
            ExpressionAttributeValues={":s": status},
        )

    def supersede_approval(self, approval_id: str) -> bool:
        """PENDING or EXPIRED → SUPERSEDED (a newer request replaced it). Decided
        approvals keep their decision. Returns whether it changed."""
        try:
            self._table.update_item(
                Key={TABLE_PARTITION_KEY: f"APPROVAL#{approval_id}"},
                UpdateExpression="SET approval_status = :s, superseded_at = :at",
                ConditionExpression="attribute_exists(pk) AND approval_status IN (:pending, :expired)",
                ExpressionAttributeValues={
                    ":s": ApprovalRecordStatus.SUPERSEDED,
                    ":at": utc_now(),
                    ":pending": ApprovalRecordStatus.PENDING,
                    ":expired": ApprovalRecordStatus.EXPIRED,
                },
            )
        except ClientError as exc:
            if not _conditional_failed(exc):
                raise
            return False
        return True

    def latest_approval_for(self, workflow_id: str) -> dict[str, Any] | None:
        """The workflow's newest approval item, from the pointer kept on the workflow item."""
        try:
            workflow = self.get_workflow(workflow_id)
        except WorkflowNotFound:
            return None
        approval_id = workflow.get("approval_id")
        if not approval_id:
            return None
        try:
            return self.get_approval(str(approval_id))
        except ApprovalNotFound:
            return None


@lru_cache(maxsize=8)
def workflow_records(table_name: str) -> DynamoDBWorkflowRecords:
    """The cached records adapter for ``table_name`` (one client per warm Lambda environment)."""
    return DynamoDBWorkflowRecords(table_name)
