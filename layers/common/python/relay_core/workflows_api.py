"""Starting, describing, listing and cancelling workflows: the domain behind ``/workflows``.

The workflow id is the execution name. Sources of truth:

- the execution (DescribeExecution, GetExecutionHistory) for ``status`` and
  ``current_state``;
- the workflow record (port :class:`relay_core.ports.WorkflowRecords`) for revisions, the report,
  the newest quality check, the newest approval, failures and cancellations, and for
  listing by status.

Idempotency: ``POST /workflows`` with an ``Idempotency-Key`` names the execution
``api-`` + the first 40 hex characters of sha256(key). StartExecution is itself
idempotent for the same name and input while the execution runs, and answers
``ExecutionAlreadyExists`` otherwise (AWS Step Functions API reference,
StartExecution); on that error the existing execution's input is compared with
this request's, so a retry returns the same workflow and the same key with a
different body is a 409 conflict. The input is serialised canonically (sorted
keys, defaults applied), so equal requests are byte-equal inputs.
"""

from __future__ import annotations

import contextlib
import hashlib
import heapq
import json
import secrets
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from .api_models import (
    RECORD_STATUSES,
    ApprovalStatus,
    CancelInfo,
    CancelledWorkflow,
    FailureInfo,
    HistoryPage,
    HistoryQuery,
    IndexKey,
    ListQuery,
    PageToken,
    QualityStatus,
    RedrivenWorkflow,
    ReportLocation,
    StartedWorkflow,
    WorkflowList,
    WorkflowStatus,
    WorkflowSummary,
)
from .contracts import CANCEL_ERROR, REDRIVABLE_STATUSES, RecordStatus, cancel_cause
from .cost import execution_cost
from .errors import (
    ApprovalAlreadyDecided,
    ApprovalExpired,
    ApprovalNotFound,
    ApprovalSuperseded,
    ExecutionExists,
    ExecutionNotRedrivable,
    WorkflowConflict,
    WorkflowNotFound,
)
from .history import open_state
from .models import ArtifactQuality, ArtifactRef, WorkflowRequest, utc_now
from .observability import logger
from .ports import Executions, WorkflowRecords
from .steps import parse_request

#: Lifetime of the presigned report URL in GET /workflows/{id}, seconds.
REPORT_URL_SECONDS = 3600


# ----- start ---------------------------------------------------------------------------------
def execution_name(idempotency_key: str | None) -> str:
    """The execution name (= workflow id) for a start request.

    ``api-`` + sha256(key)[:40] (44 characters) with a key, so retries land on the same
    name; else ``wf-YYYYmmdd-HHMMSS-`` + 8 random hex characters (sortable, unique).
    """
    if idempotency_key is not None:
        return "api-" + hashlib.sha256(idempotency_key.encode("utf-8")).hexdigest()[:40]
    return f"wf-{datetime.now(UTC).strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(4)}"


def canonical_input(request: WorkflowRequest) -> str:
    """The execution input: every field with defaults applied, sorted keys, no spaces."""
    return json.dumps(request.model_dump(mode="json", exclude_none=True), sort_keys=True, separators=(",", ":"))


def status_url(base_url: str, workflow_id: str) -> str:
    return f"{base_url.rstrip('/')}/workflows/{workflow_id}"


def start_workflow(executions: Executions, request: WorkflowRequest, idempotency_key: str | None, base_url: str) -> tuple[StartedWorkflow, bool]:
    """Start (or find again) the workflow for ``request``.

    Returns:
        ``(started, replayed)``: ``replayed`` is True when an earlier call with the
        same Idempotency-Key and body had already started it.

    Fields the caller left out take the deployment defaults, as PlanResearch fills them
    for an execution started elsewhere (console, CLI), and a request that cannot finish
    within the deployed execution timeout is refused before anything starts.

    Raises:
        WorkflowConflict: the key was used before with a different body.
        InvalidInput: a deployment default is invalid for this request, or the request
            may take longer than the execution timeout (both numbers named).
    """
    request = parse_request(request.model_dump(mode="json", exclude_unset=True))
    name = execution_name(idempotency_key)
    body = canonical_input(request)

    def same_as_existing() -> bool:
        """True if execution ``name`` exists with this input; raises on a different input."""
        try:
            existing = executions.describe(name)
        except WorkflowNotFound:
            return False
        if json.loads(existing.get("input") or "null") != json.loads(body):
            raise WorkflowConflict("Idempotency-Key: already used for a different request body; use a new key for a new workflow")
        return True

    replayed = idempotency_key is not None and same_as_existing()
    if not replayed:
        try:
            executions.start(name, body)
        except ExecutionExists:
            # A concurrent retry started it between our look and our start.
            if idempotency_key is None:
                raise
            replayed = same_as_existing()
            if not replayed:
                raise
    logger.info("workflow started", extra={"workflow_id": name, "replayed": replayed, "questions": request.questions})
    return StartedWorkflow(workflow_id=name, status_url=status_url(base_url, name)), replayed


# ----- describe -----------------------------------------------------------------------------
def console_url(execution_arn: str) -> str:
    """The Step Functions console page of an execution (region taken from the ARN)."""
    region = execution_arn.split(":")[3]
    return f"https://{region}.console.aws.amazon.com/states/home?region={region}#/v2/executions/details/{execution_arn}"


def current_state(events_newest_first: list[dict[str, Any]]) -> str | None:
    """The most recently entered top-level state. Events inside an inline Map or
    Parallel iteration (between ``*IterationStarted`` and its end) are skipped."""
    depth = 0
    for event in events_newest_first:
        kind = str(event.get("type", ""))
        if kind.endswith(("IterationSucceeded", "IterationFailed", "IterationAborted")):
            depth += 1
        elif kind.endswith("IterationStarted"):
            depth = max(0, depth - 1)
        elif depth == 0 and kind.endswith("StateEntered"):
            return str(event.get("stateEnteredEventDetails", {}).get("name")) or None
    return None


def _approval_status(item: dict[str, Any], execution_status: str, now: float) -> ApprovalStatus:
    status = str(item.get("approval_status", "PENDING"))
    expires = int(item.get("expires_at", 0))
    # A pending approval nobody waits for any more (link expired, execution ended) is expired.
    if status == "PENDING" and (now >= expires or execution_status != "RUNNING"):
        status = "EXPIRED"
    return ApprovalStatus(
        approval_id=str(item["approval_id"]) if item.get("approval_id") else None,
        status=status,  # type: ignore[arg-type]
        revision=int(item.get("revision", 0)),
        expires_at=datetime.fromtimestamp(expires, UTC),
        decided_by=item.get("decided_by") or None,
        decided_at=item.get("decided_at") or None,
        feedback=item.get("feedback") or None,
    )


def describe_workflow(
    executions: Executions,
    records: WorkflowRecords,
    workflow_id: str,
    presign: Callable[[ArtifactRef], str] | None = None,
    now: float | None = None,
) -> WorkflowStatus:
    """``GET /workflows/{id}``.

    Args:
        presign: ``ArtifactRef -> URL`` for the report link (``None``: no URL).

    Raises:
        WorkflowNotFound: no execution with that name on this state machine.
    """
    execution = executions.describe(workflow_id)
    status = str(execution["status"])
    # One read of the history serves both the cost and the current state.
    history = executions.events(str(execution["executionArn"]))
    try:
        record: dict[str, Any] = records.get_workflow(workflow_id)
    except WorkflowNotFound:
        record = {}  # PlanResearch has not recorded it yet
    approval = None
    if record.get("approval_id"):
        try:
            approval = _approval_status(records.get_approval(str(record["approval_id"])), status, now or time.time())
        except ApprovalNotFound:
            approval = None
    report = None
    if isinstance(record.get("report"), dict):
        ref = ArtifactRef.model_validate(record["report"])
        report = ReportLocation(
            location=f"s3://{ref.bucket}/{ref.key}", bytes=ref.bytes, sha256=ref.sha256, url=presign(ref) if presign else None
        )
    failure = FailureInfo.model_validate(record["failure"]) if isinstance(record.get("failure"), dict) else None
    quality = _quality(record.get("quality"), workflow_id)
    cancel = CancelInfo.model_validate(record["cancel"]) if isinstance(record.get("cancel"), dict) else None
    topic = record.get("topic")
    if topic is None:
        try:
            topic = json.loads(execution.get("input") or "{}").get("topic")
        except (ValueError, AttributeError):
            topic = None
    return WorkflowStatus(
        workflow_id=workflow_id,
        status=status,
        record_status=record.get("status"),
        current_state=current_state(sorted(history, key=lambda e: int(e.get("id", 0)), reverse=True)),
        topic=topic,
        started_at=execution.get("startDate"),
        stopped_at=execution.get("stopDate"),
        approval=approval,
        revisions=int(record.get("revisions", 0)),
        report=report,
        failure=failure,
        cancel=cancel,
        redrive_count=int(execution.get("redriveCount") or 0),
        redriven_from=record.get("redriven_from") or None,
        redrive_date=execution.get("redriveDate"),
        console_url=console_url(str(execution["executionArn"])),
        cost=execution_cost(history),
        quality=quality,
    )


def _quality(value: Any, workflow_id: str) -> QualityStatus | None:
    """The record's ``quality`` (an :class:`ArtifactQuality`: written by RequestApproval
    for the analysis, then by FinalizeWorkflow for the report) as the API shows it; ``None``
    when there is none, or it cannot be read (logged: the rest of the status still answers)."""
    if not isinstance(value, dict):
        return None
    try:
        return QualityStatus.of(ArtifactQuality.model_validate(value))
    except ValidationError as exc:
        logger.warning("workflow record quality unreadable", extra={"workflow_id": workflow_id, "errors": exc.error_count()})
        return None


# ----- list ------------------------------------------------------------------------------------
#: The record attributes a list page reads: the summary's, and the index key's.
SUMMARY_FIELDS = ("pk", "workflow_id", "status", "topic", "created_at", "updated_at", "revisions")


def _summary(item: dict[str, Any]) -> WorkflowSummary:
    return WorkflowSummary(
        workflow_id=str(item.get("workflow_id") or str(item["pk"]).removeprefix("WORKFLOW#")),
        status=str(item["status"]),
        topic=item.get("topic"),
        created_at=str(item["created_at"]),
        updated_at=item.get("updated_at"),
        revisions=int(item.get("revisions", 0)),
    )


def _index_key(item: dict[str, Any]) -> IndexKey:
    return IndexKey(pk=str(item["pk"]), status=item["status"], created_at=str(item["created_at"]))


def list_workflows(records: WorkflowRecords, query: ListQuery) -> WorkflowList:
    """``GET /workflows``: newest first from the status index, ``query.limit`` per page.

    Without a status filter every status is queried and the pages are merged by
    ``created_at``; the token remembers where each status stopped, so no workflow
    is skipped or repeated across pages.

    Raises:
        InvalidInput: a ``next_token`` this API did not issue for this filter.
    """
    statuses = [query.status] if query.status else list(RECORD_STATUSES)
    if query.next_token:
        token = PageToken.decode(query.next_token, query.status)
    else:
        token = PageToken(filter=query.status or "*", keys={s: None for s in statuses})  # type: ignore[misc]
    fetched: dict[RecordStatus, tuple[list[dict[str, Any]], dict[str, Any] | None]] = {}
    for status in statuses:
        if status in token.done:
            continue
        start = token.keys.get(status)  # type: ignore[call-overload]
        items, last = records.list_workflows(
            status, limit=query.limit, start_key=start.model_dump() if start else None, fields=SUMMARY_FIELDS
        )
        fetched[status] = (items, last)
    streams = [[(str(i["created_at"]), status, n, i) for n, i in enumerate(items)] for status, (items, _) in fetched.items()]
    taken = list(heapq.merge(*streams, key=lambda t: t[0], reverse=True))[: query.limit]
    keys = dict(token.keys)
    done = set(token.done)
    for status, (items, last) in fetched.items():
        used = [t for t in taken if t[1] == status]
        if len(used) == len(items):
            if last is None:
                done.add(status)  # type: ignore[arg-type]
            else:
                keys[status] = _index_key(items[-1]) if items else IndexKey.model_validate(last)  # type: ignore[index]
        elif used:
            keys[status] = _index_key(used[-1][3])  # type: ignore[index]
    remaining = [s for s in statuses if s not in done]
    next_token = None
    if remaining:
        next_token = PageToken(filter=token.filter, keys=keys, done=sorted(done)).encode()
    return WorkflowList(items=[_summary(t[3]) for t in taken], next_token=next_token)


# ----- cancel --------------------------------------------------------------------------------
def cancel_workflow(executions: Executions, records: WorkflowRecords, workflow_id: str, reason: str, who: str) -> CancelledWorkflow:
    """``POST /workflows/{id}/cancel``: StopExecution, then record who and why.

    The workflow record moves to CANCELLED with ``cancel = {by, reason, at}``; a
    pending approval becomes EXPIRED (decided by ``cancelled by {who}``), so its link
    answers "already decided" instead of offering a decision nobody awaits.

    Raises:
        WorkflowNotFound: no such execution.
        WorkflowConflict: the execution is not RUNNING.
    """
    execution = executions.describe(workflow_id)
    if execution["status"] != "RUNNING":
        raise WorkflowConflict(f"workflow {workflow_id} is {execution['status']}; only RUNNING workflows can be cancelled")
    cancel = CancelInfo(by=who, reason=reason, at=utc_now())
    stopped = executions.stop(workflow_id, error=CANCEL_ERROR, cause=cancel_cause(who, reason))
    records.record_stopped(workflow_id, "CANCELLED", int(execution.get("redriveCount") or 0), cancel=cancel.model_dump())
    try:
        record = records.get_workflow(workflow_id)
    except WorkflowNotFound:
        record = {}
    if record.get("approval_id"):
        # Decided (or gone) already: the record says by whom.
        with contextlib.suppress(ApprovalAlreadyDecided, ApprovalNotFound, ApprovalExpired, ApprovalSuperseded):
            records.decide_approval(str(record["approval_id"]), "EXPIRED", f"cancelled by {who}", reason)
    logger.info("workflow cancelled", extra={"workflow_id": workflow_id, "by": who, "reason_chars": len(reason)})
    return CancelledWorkflow(workflow_id=workflow_id, status=str(stopped["status"]), cancel=cancel)


# ----- redrive and history ---------------------------------------------------------------------
def redrive_workflow(executions: Executions, workflow_id: str, base_url: str) -> RedrivenWorkflow:
    """``POST /workflows/{id}/redrive``: RedriveExecution, resuming at the state that
    failed (Step Functions API reference, RedriveExecution).

    Raises:
        WorkflowNotFound: no such execution.
        WorkflowConflict: the execution is not FAILED, TIMED_OUT or ABORTED (a repeated
            request while the redrive runs finds it RUNNING and changes nothing), or
            Step Functions refused (``ExecutionNotRedrivable``: its reason is the message).
    """
    execution = executions.describe(workflow_id)
    status = str(execution["status"])
    if status not in REDRIVABLE_STATUSES:
        running = f" (redrive {execution.get('redriveCount')} in progress)" if status == "RUNNING" and execution.get("redriveCount") else ""
        raise WorkflowConflict(
            f"workflow {workflow_id} is {status}{running}; only FAILED, TIMED_OUT or ABORTED workflows can be redriven"
        )
    resumed = open_state(executions.events(str(execution["executionArn"])))
    try:
        answer = executions.redrive(workflow_id)
    except ExecutionNotRedrivable as exc:
        raise WorkflowConflict(f"workflow {workflow_id} cannot be redriven: {exc}") from None
    count = int(executions.describe(workflow_id).get("redriveCount") or int(execution.get("redriveCount") or 0) + 1)
    logger.info("workflow redriven", extra={"workflow_id": workflow_id, "redrive_count": count, "resumed_from": resumed and resumed.name})
    return RedrivenWorkflow(
        workflow_id=workflow_id,
        status="RUNNING",
        redrive_count=count,
        redriven_from=resumed.name if resumed else None,
        redrive_date=answer["redriveDate"],
        status_url=status_url(base_url, workflow_id),
    )


#: What a task token is replaced with in history answers.
REDACTED = "<redacted>"
_TOKEN_KEYS = frozenset({"task_token", "TaskToken", "taskToken"})


def _redact(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: (REDACTED if k in _TOKEN_KEYS else _redact(v)) for k, v in value.items()}
    if isinstance(value, list):
        return [_redact(v) for v in value]
    if isinstance(value, str) and value[:1] in "{[" and any(k in value for k in _TOKEN_KEYS):
        try:
            parsed = json.loads(value)
        except ValueError:
            return value
        return json.dumps(_redact(parsed), separators=(",", ":"))
    return value


def redact_event(event: dict[str, Any]) -> dict[str, Any]:
    """A history event with every task token (``task_token``/``TaskToken`` keys, also
    inside JSON-encoded parameters) replaced by :data:`REDACTED`, and timestamps as ISO text."""
    out = _redact(event)
    if isinstance(out.get("timestamp"), datetime):
        out["timestamp"] = out["timestamp"].isoformat()
    return dict(out)


def workflow_history(executions: Executions, workflow_id: str, query: HistoryQuery) -> HistoryPage:
    """``GET /workflows/{id}/history``: one page of the execution history, redacted.

    Raises:
        WorkflowNotFound: no such execution.
        InvalidInput: a ``next_token`` Step Functions did not issue.
    """
    events, token = executions.history_page(workflow_id, query.limit, query.next_token, query.reverse)
    return HistoryPage(workflow_id=workflow_id, events=[redact_event(e) for e in events], next_token=token)
