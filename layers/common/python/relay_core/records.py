"""Workflow and approval records in one DynamoDB table.

Table layout (single table, partition key ``pk`` of type S):

- workflow item: ``pk = "WORKFLOW#{workflow_id}"``, attributes ``status``
  (RUNNING | AWAITING_APPROVAL | COMPLETED | REJECTED | FAILED | CANCELLED),
  ``created_at`` (ISO-8601 UTC), ``topic``, ``revisions``, optional ``report``,
  ``failure`` and ``cancel``; the GSI ``status-created_at-index`` on
  (``status``, ``created_at``) lists workflows by status.
- approval item: ``pk = "APPROVAL#{approval_id}"``, attributes ``approval_status``
  (PENDING | APPROVED | REJECTED | EXPIRED), ``workflow_id``, ``task_token``,
  ``expires_at`` (epoch seconds), ``ttl`` (epoch seconds, the table's TTL attribute),
  and once decided ``decided_by``, ``decided_at``, ``feedback``. Approval items have
  no ``status`` attribute, so they never appear in the status index.

Every state change is a conditional write, so a retried or concurrent call cannot
move a record backwards or decide an approval twice.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

import boto3
from botocore.exceptions import ClientError

from .errors import ApprovalAlreadyDecided, ApprovalNotFound, WorkflowNotFound

#: The GSI listing workflows by status, newest first.
STATUS_INDEX = "status-created_at-index"
#: Records are kept this long after they are written, then DynamoDB TTL removes them.
RETENTION_SECONDS = 90 * 24 * 3600
TERMINAL_STATUSES = frozenset({"COMPLETED", "REJECTED", "FAILED", "CANCELLED"})


def utc_now() -> str:
    """The current time as ISO-8601 UTC with seconds, e.g. ``2026-11-21T14:00:00Z``."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _conditional_failed(exc: ClientError) -> bool:
    return exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"


class WorkflowRecords:
    """Workflow and approval items in the table ``table_name``.

    Args:
        table_name: the DynamoDB table.
        resource: a boto3 DynamoDB resource (defaults to ``boto3.resource("dynamodb")``).
    """

    def __init__(self, table_name: str, resource: Any | None = None):
        self._table = (resource or boto3.resource("dynamodb")).Table(table_name)

    # ----- workflows -------------------------------------------------------------
    def start_workflow(self, workflow_id: str, topic: str, execution_arn: str) -> None:
        """Record a workflow as RUNNING. Idempotent: a retried PlanResearch keeps the first record."""
        try:
            self._table.put_item(
                Item={
                    "pk": f"WORKFLOW#{workflow_id}",
                    "workflow_id": workflow_id,
                    "status": "RUNNING",
                    "created_at": utc_now(),
                    "updated_at": utc_now(),
                    "topic": topic,
                    "execution_arn": execution_arn,
                    "revisions": 0,
                    "ttl": int(time.time()) + RETENTION_SECONDS,
                },
                ConditionExpression="attribute_not_exists(pk)",
            )
        except ClientError as exc:
            if not _conditional_failed(exc):
                raise

    def get_workflow(self, workflow_id: str) -> dict[str, Any]:
        """The workflow item. Raises :class:`WorkflowNotFound`."""
        item = self._table.get_item(Key={"pk": f"WORKFLOW#{workflow_id}"}, ConsistentRead=True).get("Item")
        if not item:
            raise WorkflowNotFound(f"workflow {workflow_id!r} not found")
        return dict(item)

    def set_status(self, workflow_id: str, status: str, **attributes: Any) -> None:
        """Move a workflow to ``status`` and set ``attributes``; terminal statuses are final.

        The write creates the item when it is missing (a workflow that failed before
        PlanResearch recorded it still gets a FAILED record).
        """
        names = {"#s": "status", "#u": "updated_at", "#c": "created_at", "#w": "workflow_id"}
        values: dict[str, Any] = {":s": status, ":u": utc_now(), ":w": workflow_id}
        sets = ["#s = :s", "#u = :u", "#c = if_not_exists(#c, :u)", "#w = if_not_exists(#w, :w)"]
        for i, (key, value) in enumerate(attributes.items()):
            names[f"#a{i}"] = key
            values[f":a{i}"] = value
            sets.append(f"#a{i} = :a{i}")
        terminal = {f":t{i}": s for i, s in enumerate(sorted(TERMINAL_STATUSES))}
        values.update(terminal)
        condition = "attribute_not_exists(#s) OR NOT (#s IN (" + ", ".join(terminal) + "))"
        try:
            self._table.update_item(
                Key={"pk": f"WORKFLOW#{workflow_id}"},
                UpdateExpression="SET " + ", ".join(sets),
                ConditionExpression=condition,
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
            )
        except ClientError as exc:
            if not _conditional_failed(exc):
                raise
            # Already terminal: a late or retried write must not move it back.

    def list_workflows(self, status: str, limit: int = 20, start_key: dict[str, Any] | None = None) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
        """Workflows with ``status``, newest first, one page of at most ``limit`` items.

        Returns:
            ``(items, last_evaluated_key)``; pass the key back as ``start_key`` for the next page.
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
        page = self._table.query(**kwargs)
        return [dict(i) for i in page.get("Items", [])], page.get("LastEvaluatedKey")

    # ----- approvals -------------------------------------------------------------
    def put_approval(self, approval_id: str, workflow_id: str, task_token: str, expires_at: int, details: dict[str, Any]) -> None:
        """Store a PENDING approval. The id is fresh randomness, so a collision is a bug: it raises."""
        self._table.put_item(
            Item={
                "pk": f"APPROVAL#{approval_id}",
                "approval_id": approval_id,
                "workflow_id": workflow_id,
                "approval_status": "PENDING",
                "task_token": task_token,
                "expires_at": expires_at,
                "created_at": utc_now(),
                "ttl": expires_at + RETENTION_SECONDS,
                **details,
            },
            ConditionExpression="attribute_not_exists(pk)",
        )

    def get_approval(self, approval_id: str) -> dict[str, Any]:
        """The approval item. Raises :class:`ApprovalNotFound`."""
        item = self._table.get_item(Key={"pk": f"APPROVAL#{approval_id}"}, ConsistentRead=True).get("Item")
        if not item:
            raise ApprovalNotFound("approval not found")
        return dict(item)

    def decide_approval(self, approval_id: str, status: str, decided_by: str, feedback: str | None) -> dict[str, Any]:
        """PENDING → ``status`` (APPROVED, REJECTED or EXPIRED) as one conditional write.

        Returns:
            The item after the write (it still holds the task token, for SendTaskSuccess).

        Raises:
            ApprovalAlreadyDecided: it was not PENDING; carries who decided and when.
            ApprovalNotFound: no such approval.
        """
        decided_at = utc_now()
        try:
            result = self._table.update_item(
                Key={"pk": f"APPROVAL#{approval_id}"},
                UpdateExpression="SET approval_status = :s, decided_by = :by, decided_at = :at, feedback = :f",
                ConditionExpression="attribute_exists(pk) AND approval_status = :pending",
                ExpressionAttributeValues={
                    ":s": status,
                    ":by": decided_by,
                    ":at": decided_at,
                    ":f": feedback or "",
                    ":pending": "PENDING",
                },
                ReturnValues="ALL_NEW",
            )
        except ClientError as exc:
            if not _conditional_failed(exc):
                raise
            current = self.get_approval(approval_id)
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
        if status == "PENDING":
            expression = "SET approval_status = :s REMOVE decided_by, decided_at"
        else:
            expression = "SET approval_status = :s"
        self._table.update_item(
            Key={"pk": f"APPROVAL#{approval_id}"},
            UpdateExpression=expression,
            ExpressionAttributeValues={":s": status},
        )

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
def workflow_records(table_name: str) -> WorkflowRecords:
    """The cached records adapter for ``table_name`` (one client per warm Lambda environment)."""
    return WorkflowRecords(table_name)
