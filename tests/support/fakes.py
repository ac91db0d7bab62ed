"""In-memory fakes of the ports in :mod:`relay_core.ports`, for unit tests of the step
logic without moto. Each keeps the port's contract: the record rules come from
:mod:`relay_core.transitions` (the same rules the DynamoDB adapter states as
conditions; ``tests/unit/test_ports.py`` checks both agree), errors are the port's
domain errors, and every change is made under one lock (atomic, like a conditional
write)."""

from __future__ import annotations

import copy
import hashlib
import json
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from relay_core.contracts import (
    REDRIVABLE_STATUSES,
    ApprovalRecordStatus,
    ExecutionStatus,
    RecordStatus,
)
from relay_core.errors import (
    SUPERSEDED_MESSAGE,
    ApprovalAlreadyDecided,
    ApprovalExpired,
    ApprovalNotFound,
    ApprovalSuperseded,
    ArtifactIntegrityError,
    ArtifactNotFound,
    ExecutionExists,
    ExecutionNotRedrivable,
    InvalidInput,
    TaskTokenGone,
    WorkflowNotFound,
)
from relay_core.models import ArtifactRef, utc_now
from relay_core.ports import Message
from relay_core.transitions import RedriveUpdate, may_record_stopped, may_set_status, redriven_update


class InMemoryArtifactStore:
    """:class:`relay_core.ports.ArtifactStore` in a dict."""

    def __init__(self, bucket: str = "fake-artifacts"):
        self.bucket = bucket
        self.objects: dict[str, bytes] = {}

    def put_text(self, key: str, text: str, content_type: str = "text/markdown; charset=utf-8") -> ArtifactRef:
        body = text.encode("utf-8")
        self.objects[key] = body
        return ArtifactRef(bucket=self.bucket, key=key, bytes=len(body), sha256=hashlib.sha256(body).hexdigest())

    def get_text(self, ref: ArtifactRef) -> str:
        if ref.key not in self.objects or ref.bucket != self.bucket:
            raise ArtifactNotFound(f"artifact s3://{ref.bucket}/{ref.key} does not exist")
        body = self.objects[ref.key]
        if hashlib.sha256(body).hexdigest() != ref.sha256:
            raise ArtifactIntegrityError(f"artifact s3://{ref.bucket}/{ref.key}: sha256 does not match")
        return body.decode("utf-8")

    def presigned_url(self, ref: ArtifactRef, expires_in: int = 7 * 24 * 3600) -> str:
        return f"https://{ref.bucket}.example/{ref.key}?expires_in={expires_in}"


def _storable(attributes: dict[str, Any]) -> None:
    """Refuse what the DynamoDB adapter could not write: boto3's ``TypeSerializer`` takes
    no floats, models or datetimes (a record attribute such as ``quality`` must be given
    as JSON values, ``model_dump(mode="json")``).

    Raises:
        TypeError: naming the attribute.
    """
    from boto3.dynamodb.types import TypeSerializer

    serializer = TypeSerializer()
    for name, value in attributes.items():
        try:
            serializer.serialize(value)
        except TypeError as exc:
            raise TypeError(f"{name}: DynamoDB cannot store this value: {exc}") from None


class InMemoryWorkflowRecords:
    """:class:`relay_core.ports.WorkflowRecords` in dicts, with the rules of
    :mod:`relay_core.transitions` applied under one lock. Attribute values must be what
    the DynamoDB adapter can store (:func:`_storable`)."""

    def __init__(self) -> None:
        self.workflows: dict[str, dict[str, Any]] = {}
        self.approvals: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()

    # ----- workflows ---------------------------------------------------------------
    def start_workflow(self, workflow_id: str, topic: str, execution_arn: str, redrive_count: int = 0) -> bool:
        with self._lock:
            if workflow_id not in self.workflows:
                self.workflows[workflow_id] = {
                    "workflow_id": workflow_id,
                    "status": RecordStatus.RUNNING,
                    "created_at": utc_now(),
                    "topic": topic,
                    "execution_arn": execution_arn,
                    "revisions": 0,
                    "redrive_count": redrive_count,
                }
                return True
        if redrive_count:
            self.set_status(workflow_id, RecordStatus.RUNNING, redrive_count=redrive_count)
        return False

    def get_workflow(self, workflow_id: str) -> dict[str, Any]:
        with self._lock:
            if workflow_id not in self.workflows:
                raise WorkflowNotFound(f"workflow {workflow_id!r} not found")
            return copy.deepcopy(self.workflows[workflow_id])

    def _write(self, workflow_id: str, sets: dict[str, Any], remove: tuple[str, ...] = ()) -> None:
        _storable(sets)
        item = self.workflows.setdefault(workflow_id, {"workflow_id": workflow_id, "created_at": utc_now()})
        item.update(copy.deepcopy(sets))
        item["updated_at"] = utc_now()
        for key in remove:
            item.pop(key, None)

    def set_status(self, workflow_id: str, status: str, redrive_count: int = 0, **attributes: Any) -> bool:
        with self._lock:
            if not may_set_status(self.workflows.get(workflow_id), redrive_count):
                return False
            self._write(workflow_id, {"status": status, "redrive_count": redrive_count, **attributes})
            return True

    def record_stopped(self, workflow_id: str, status: str, redrive_count: int, **attributes: Any) -> bool:
        with self._lock:
            if not may_record_stopped(self.workflows.get(workflow_id), redrive_count):
                return False
            self._write(workflow_id, {"status": status, "redrive_count": redrive_count, **attributes})
            return True

    def record_redriven(self, workflow_id: str, redrive_count: int, redriven_from: str | None) -> bool:
        with self._lock:
            update = redriven_update(self.workflows.get(workflow_id), redrive_count)
            if update is RedriveUpdate.NONE:
                return False
            sets: dict[str, Any] = {"redrive_count": redrive_count, "redriven_from": redriven_from or "", "redriven_at": utc_now()}
            if update is RedriveUpdate.RESUME:
                sets["status"] = RecordStatus.RUNNING
            self._write(workflow_id, sets, remove=("failure", "cancel"))
            return True

    def list_workflows(
        self, status: str, limit: int = 20, start_key: dict[str, Any] | None = None, fields: Sequence[str] | None = None
    ) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
        with self._lock:
            items = sorted(
                (copy.deepcopy(w) | {"pk": f"WORKFLOW#{w['workflow_id']}"} for w in self.workflows.values() if w.get("status") == status),
                key=lambda w: (w["created_at"], w["pk"]),
                reverse=True,
            )
        if start_key is not None:
            if set(start_key) != {"pk", "status", "created_at"} or start_key["status"] != status:
                raise InvalidInput("next_token: not a token this API issued; start again without it")
            position = (start_key["created_at"], start_key["pk"])
            items = [w for w in items if (w["created_at"], w["pk"]) < position]
        page = items[:limit]
        last = {k: page[-1][k] for k in ("pk", "status", "created_at")} if len(items) > limit else None
        if fields is not None:
            page = [{k: v for k, v in item.items() if k in fields} for item in page]
        return page, last

    # ----- approvals -----------------------------------------------------------------
    def put_approval(self, approval_id: str, workflow_id: str, task_token: str, expires_at: int, details: dict[str, Any]) -> None:
        with self._lock:
            if approval_id in self.approvals:
                raise RuntimeError(f"approval id {approval_id} collided")
            _storable(details)
            self.approvals[approval_id] = {
                "approval_id": approval_id,
                "workflow_id": workflow_id,
                "approval_status": ApprovalRecordStatus.PENDING,
                "task_token": task_token,
                "expires_at": expires_at,
                "created_at": utc_now(),
                **copy.deepcopy(details),
            }

    def get_approval(self, approval_id: str) -> dict[str, Any]:
        with self._lock:
            if approval_id not in self.approvals:
                raise ApprovalNotFound("approval not found")
            return copy.deepcopy(self.approvals[approval_id])

    def decide_approval(
        self, approval_id: str, status: str, decided_by: str, feedback: str | None, reason: str | None = None
    ) -> dict[str, Any]:
        with self._lock:
            current = self.approvals.get(approval_id)
            if current is None:
                raise ApprovalNotFound("approval not found")
            if current["approval_status"] != ApprovalRecordStatus.PENDING:
                if current["approval_status"] == ApprovalRecordStatus.SUPERSEDED:
                    raise ApprovalSuperseded(SUPERSEDED_MESSAGE)
                if current["approval_status"] == ApprovalRecordStatus.EXPIRED and current.get("expired_reason"):
                    raise ApprovalExpired(str(current["expired_reason"]))
                raise ApprovalAlreadyDecided(
                    f"already {str(current['approval_status']).lower()} by {current.get('decided_by') or 'the system'}",
                    decided_by=current.get("decided_by"),
                    decided_at=current.get("decided_at"),
                )
            current.update(approval_status=status, decided_by=decided_by, decided_at=utc_now(), feedback=feedback or "")
            if reason:
                current["expired_reason"] = reason
            return copy.deepcopy(current)

    def reopen_approval(self, approval_id: str, status: str) -> None:
        with self._lock:
            current = self.approvals[approval_id]
            current["approval_status"] = status
            if status == ApprovalRecordStatus.PENDING:
                current.pop("decided_by", None)
                current.pop("decided_at", None)

    def supersede_approval(self, approval_id: str) -> bool:
        with self._lock:
            current = self.approvals.get(approval_id)
            if current is None or current["approval_status"] not in {ApprovalRecordStatus.PENDING, ApprovalRecordStatus.EXPIRED}:
                return False
            current.update(approval_status=ApprovalRecordStatus.SUPERSEDED, superseded_at=utc_now())
            return True

    def latest_approval_for(self, workflow_id: str) -> dict[str, Any] | None:
        with self._lock:
            approval_id = self.workflows.get(workflow_id, {}).get("approval_id")
            found = self.approvals.get(str(approval_id)) if approval_id else None
            return copy.deepcopy(found) if found else None


@dataclass
class _Execution:
    arn: str
    input: str
    status: str = ExecutionStatus.RUNNING
    redrive_count: int = 0
    events: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None
    cause: str | None = None


class InMemoryExecutions:
    """:class:`relay_core.ports.Executions` for one state machine. Tests drive the
    executions with :meth:`enter`, :meth:`fail` and :meth:`succeed`."""

    def __init__(self, state_machine_arn: str = "arn:aws:states:us-east-1:123456789012:stateMachine:fake"):
        self.state_machine_arn = state_machine_arn
        self.executions: dict[str, _Execution] = {}
        self._lock = threading.Lock()

    def arn(self, name: str) -> str:
        prefix, _, machine = self.state_machine_arn.rpartition(":stateMachine:")
        return f"{prefix}:execution:{machine}:{name}"

    def _get(self, name: str) -> _Execution:
        if name not in self.executions:
            raise WorkflowNotFound(f"workflow {name!r} not found")
        return self.executions[name]

    def _event(self, execution: _Execution, kind: str, **details: Any) -> None:
        execution.events.append({"id": len(execution.events) + 1, "type": kind, "timestamp": time.time(), **details})

    # ----- test drivers ------------------------------------------------------------------
    def enter(self, name: str, state: str, state_input: Any = None) -> None:
        """The execution enters ``state`` (a TaskStateEntered event)."""
        with self._lock:
            execution = self._get(name)
            self._event(execution, "TaskStateEntered", stateEnteredEventDetails={"name": state, "input": json.dumps(state_input)})

    def fail(self, name: str, error: str, cause: str) -> None:
        """The Task of the open state fails and so does the execution."""
        with self._lock:
            execution = self._get(name)
            self._event(execution, "TaskFailed", taskFailedEventDetails={"error": error, "cause": cause})
            self._event(execution, "ExecutionFailed", executionFailedEventDetails={"error": error, "cause": cause})
            execution.status, execution.error, execution.cause = ExecutionStatus.FAILED, error, cause

    # ----- the port ----------------------------------------------------------------------
    def start(self, name: str, input_json: str) -> str:
        with self._lock:
            if name in self.executions:
                raise ExecutionExists(f"execution {name!r} already exists")
            execution = self.executions[name] = _Execution(arn=self.arn(name), input=input_json)
            self._event(execution, "ExecutionStarted", executionStartedEventDetails={"input": input_json})
            return execution.arn

    def describe(self, name: str) -> dict[str, Any]:
        with self._lock:
            execution = self._get(name)
            return {
                "executionArn": execution.arn,
                "stateMachineArn": self.state_machine_arn,
                "name": name,
                "status": str(execution.status),
                "input": execution.input,
                "redriveCount": execution.redrive_count,
                **({"error": execution.error, "cause": execution.cause} if execution.error else {}),
            }

    def history_page(self, name: str, limit: int, next_token: str | None = None, reverse: bool = False) -> tuple[list[dict[str, Any]], str | None]:
        with self._lock:
            events = copy.deepcopy(self._get(name).events)
        if reverse:
            events.reverse()
        start = 0
        if next_token:
            if not next_token.isdigit():
                raise InvalidInput("next_token: not a token this API issued; start again without it")
            start = int(next_token)
        page = events[start : start + limit]
        return page, str(start + limit) if start + limit < len(events) else None

    def events(self, execution_arn: str) -> list[dict[str, Any]]:
        with self._lock:
            for execution in self.executions.values():
                if execution.arn == execution_arn:
                    return copy.deepcopy(execution.events)
        raise WorkflowNotFound(f"execution {execution_arn} not found")

    def map_run_failure(self, map_run_arn: str) -> tuple[str, str] | None:
        return None

    def redrive(self, name: str) -> dict[str, Any]:
        with self._lock:
            execution = self._get(name)
            if execution.status not in REDRIVABLE_STATUSES:
                raise ExecutionNotRedrivable(f"Execution is {execution.status}")
            execution.status, execution.error, execution.cause = ExecutionStatus.RUNNING, None, None
            execution.redrive_count += 1
            self._event(execution, "ExecutionRedriven", executionRedrivenEventDetails={"redriveCount": execution.redrive_count})
            return {"redriveDate": time.time()}

    def stop(self, name: str, error: str, cause: str, settle_seconds: float = 3.0) -> dict[str, Any]:
        with self._lock:
            execution = self._get(name)
            if execution.status == ExecutionStatus.RUNNING:
                execution.status, execution.error, execution.cause = ExecutionStatus.ABORTED, error, cause
                self._event(execution, "ExecutionAborted", executionAbortedEventDetails={"error": error, "cause": cause})
        return self.describe(name)


class InMemoryTaskTokens:
    """:class:`relay_core.ports.TaskTokens`: records what was sent; tokens in ``dead``
    raise :class:`TaskTokenGone`, and ``fail_with`` (if set) is raised once."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, dict[str, Any]]] = []
        self.dead: set[str] = set()
        self.fail_with: BaseException | None = None

    def send_success(self, task_token: str, output: str) -> None:
        if self.fail_with is not None:
            error, self.fail_with = self.fail_with, None
            raise error
        if task_token in self.dead:
            raise TaskTokenGone("SendTaskSuccess refused the task token: TaskTimedOut")
        self.sent.append((task_token, json.loads(output)))


class RecordingNotifier:
    """:class:`relay_core.ports.Notifier` that keeps every message."""

    def __init__(self) -> None:
        self.messages: list[Message] = []

    def send(self, message: Message) -> str:
        self.messages.append(message)
        return f"fake-message-{len(self.messages)}"
