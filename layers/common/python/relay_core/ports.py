"""The ports: what the domain code (``workflow``, ``approvals``, ``workflows_api``)
needs from the outside world, as :class:`typing.Protocol` types.

The domain never imports boto3, botocore or an adapter. Each port has:

- an AWS adapter in :mod:`relay_core.adapters` (the only code that holds a boto3
  client or catches ``ClientError``, translating service errors into the
  :mod:`relay_core.errors` named below);
- an in-memory fake in ``tests/support/fakes.py`` for unit tests of the step logic
  without moto, checked against the AWS adapter by ``tests/unit/test_ports.py``.

The composition roots (each ``functions/*/app.py`` handler, and the local runtime)
build the adapters and the agents and pass them in.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from .models import ArtifactRef


class ArtifactStore(Protocol):
    """Large text (findings, research, analyses, reports) by key, in one bucket.
    Adapter: :class:`relay_core.adapters.artifact_store.S3ArtifactStore`."""

    def put_text(self, key: str, text: str, content_type: str = "text/markdown; charset=utf-8") -> ArtifactRef:
        """Write ``text`` (UTF-8) at ``key`` in one atomic write; its reference (bytes, sha256)."""
        ...

    def get_text(self, ref: ArtifactRef) -> str:
        """The text ``ref`` points at.

        Raises:
            ArtifactNotFound: no such object.
            ArtifactIntegrityError: the bytes' sha256 differs from ``ref.sha256``.
        """
        ...

    def presigned_url(self, ref: ArtifactRef, expires_in: int = 7 * 24 * 3600) -> str:
        """A GET URL for ``ref``, valid ``expires_in`` seconds (at most 7 days)."""
        ...


class WorkflowRecords(Protocol):
    """Workflow and approval records. Every state change is one conditional write whose
    rule is in :mod:`relay_core.transitions`. Adapter:
    :class:`relay_core.adapters.workflow_records.DynamoDBWorkflowRecords`."""

    def start_workflow(self, workflow_id: str, topic: str, execution_arn: str, redrive_count: int = 0) -> bool:
        """Record the workflow as RUNNING; a retry keeps the first record. Whether this
        call created the record (``False`` for a retry or a redrive)."""
        ...

    def get_workflow(self, workflow_id: str) -> dict[str, Any]:
        """The workflow record. Raises :class:`~relay_core.errors.WorkflowNotFound`."""
        ...

    def set_status(self, workflow_id: str, status: str, redrive_count: int = 0, **attributes: Any) -> bool:
        """Move to ``status`` and set ``attributes`` (JSON values: ``approval_id``,
        ``revisions``, ``report``, ``quality`` …) if :func:`~relay_core.transitions.may_set_status`
        allows, in the same write; whether it wrote."""
        ...

    def record_stopped(self, workflow_id: str, status: str, redrive_count: int, **attributes: Any) -> bool:
        """The execution stopped: ``status`` (FAILED/CANCELLED) if
        :func:`~relay_core.transitions.may_record_stopped` allows; whether it wrote."""
        ...

    def record_redriven(self, workflow_id: str, redrive_count: int, redriven_from: str | None) -> bool:
        """The execution was redriven (:func:`~relay_core.transitions.redriven_update`); whether it wrote."""
        ...

    def list_workflows(
        self, status: str, limit: int = 20, start_key: dict[str, Any] | None = None, fields: Sequence[str] | None = None
    ) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
        """One page of workflows with ``status``, newest first: ``(items, last_key)``.
        ``fields``: only these attributes of each item (``None``: all of them).

        Raises:
            InvalidInput: ``start_key`` was not a key this store returned (``next_token``).
        """
        ...

    def put_approval(self, approval_id: str, workflow_id: str, task_token: str, expires_at: int, details: dict[str, Any]) -> None:
        """Store a PENDING approval (a fresh id; a collision raises) with ``details``: what the
        approval page shows (JSON values; see :func:`relay_core.steps.request_approval`)."""
        ...

    def get_approval(self, approval_id: str) -> dict[str, Any]:
        """The approval record. Raises :class:`~relay_core.errors.ApprovalNotFound`."""
        ...

    def decide_approval(
        self, approval_id: str, status: str, decided_by: str, feedback: str | None, reason: str | None = None
    ) -> dict[str, Any]:
        """PENDING → ``status`` in one conditional write; the record after it (with the task token).

        Raises:
            ApprovalAlreadyDecided / ApprovalSuperseded / ApprovalExpired: it was not PENDING.
            ApprovalNotFound: no such approval.
        """
        ...

    def reopen_approval(self, approval_id: str, status: str) -> None:
        """Undo a decision whose SendTaskSuccess failed: back to PENDING or to EXPIRED."""
        ...

    def supersede_approval(self, approval_id: str) -> bool:
        """PENDING or EXPIRED → SUPERSEDED; whether it changed."""
        ...

    def latest_approval_for(self, workflow_id: str) -> dict[str, Any] | None:
        """The workflow's newest approval record, if any."""
        ...


class ExecutionHistory(Protocol):
    """Reads execution histories: what recording a status change needs."""

    def events(self, execution_arn: str) -> list[dict[str, Any]]:
        """Every GetExecutionHistory event, oldest first."""
        ...

    def map_run_failure(self, map_run_arn: str) -> tuple[str, str] | None:
        """``(error, cause)`` of a failed child execution of the Map Run, if one can be read."""
        ...


class Executions(ExecutionHistory, Protocol):
    """Executions of the one state machine (workflow id = execution name). Adapter:
    :class:`relay_core.adapters.step_functions.StepFunctionsExecutions`."""

    state_machine_arn: str

    def arn(self, name: str) -> str:
        """The execution ARN of execution ``name``."""
        ...

    def start(self, name: str, input_json: str) -> str:
        """StartExecution; the execution ARN.

        Raises:
            ExecutionExists: an execution with that name exists (Step Functions keeps
                names for 90 days after the execution closes).
        """
        ...

    def describe(self, name: str) -> dict[str, Any]:
        """DescribeExecution's answer. Raises :class:`~relay_core.errors.WorkflowNotFound`."""
        ...

    def history_page(
        self, name: str, limit: int, next_token: str | None = None, reverse: bool = False
    ) -> tuple[list[dict[str, Any]], str | None]:
        """One GetExecutionHistory page: ``(events, next_token)``.

        Raises:
            WorkflowNotFound: no such execution.
            InvalidInput: ``next_token`` was not issued for this history.
        """
        ...

    def redrive(self, name: str) -> dict[str, Any]:
        """RedriveExecution. Raises :class:`~relay_core.errors.ExecutionNotRedrivable` with the reason."""
        ...

    def stop(self, name: str, error: str, cause: str, settle_seconds: float = 3.0) -> dict[str, Any]:
        """StopExecution, then DescribeExecution's answer once it is no longer RUNNING."""
        ...


class TaskTokens(Protocol):
    """Resuming an execution waiting on a task token (``.waitForTaskToken``). Adapter:
    :class:`relay_core.adapters.step_functions.StepFunctionsTaskTokens`."""

    def send_success(self, task_token: str, output: str) -> None:
        """SendTaskSuccess with ``output`` (JSON text).

        Raises:
            TaskTokenGone: the token timed out, its execution ended, or it is not a token.
        """
        ...


@dataclass(frozen=True)
class Message:
    """An email: ``to`` (one address), ``subject``, a plain-text ``body`` and extra
    ``headers`` (e.g. :data:`relay_core.contracts.WORKFLOW_ID_HEADER`), which identify
    the message to programs so nothing has to be read out of the body. SNS email
    delivery carries no custom headers; the outbox writes them."""

    to: str
    subject: str
    body: str
    headers: dict[str, str] = field(default_factory=dict)


class Notifier(Protocol):
    """Delivers emails. Adapters: :mod:`relay_core.adapters.notifiers` (SNS deployed, an
    ``.eml`` outbox locally)."""

    def send(self, message: Message) -> str:
        """Deliver ``message``; where it went (a message id or a file path)."""
        ...
