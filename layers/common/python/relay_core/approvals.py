"""Showing an approval and deciding it: the domain behind ``GET``/``POST /approvals/{id}``.

- :func:`show` verifies the link and reads the approval. It never writes: mail
  scanners and link previews may fetch the link any number of times.
- :func:`decide` verifies the link and the form's CSRF token, records the decision
  with one conditional write (PENDING → APPROVED/REJECTED), then resumes the
  execution with ``SendTaskSuccess`` and ``{approved, feedback, decided_by, …}`` so
  the ApprovalDecision Choice state routes. If ``SendTaskSuccess`` fails, the
  record is put back to PENDING (or to EXPIRED when the task token has timed out),
  so a decision is never recorded for an execution that did not get it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

from . import links
from .contracts import ApprovalRecordStatus
from .errors import SUPERSEDED_MESSAGE, ApprovalExpired, ApprovalSuperseded, InvalidInput, TaskTokenGone
from .models import ApprovalDecision, DecisionForm
from .observability import logger, metrics
from .ports import TaskTokens, WorkflowRecords


@dataclass(frozen=True)
class ApprovalView:
    """What the approval page shows. Holds no task token."""

    approval_id: str
    workflow_id: str
    status: str
    topic: str
    summary: str
    revision: int
    max_revisions: int
    expires_at: int
    exp: int
    sig: str
    csrf: str
    decided_by: str | None
    decided_at: str | None
    feedback: str | None


def _verified(records: WorkflowRecords, secret: bytes, approval_id: str, exp: Any, sig: Any, now: float | None) -> tuple[int, dict[str, Any]]:
    """Check the link's signature, then whether a newer request replaced it, then its expiry.

    Raises:
        ApprovalNotFound: bad signature or unknown id.
        ApprovalSuperseded: a newer request was sent (410, whether or not the link expired).
        ApprovalExpired: the link has expired.
    """
    exp_int = links.verify(secret, approval_id, exp, sig, now=now, check_expiry=False)
    item = records.get_approval(approval_id)
    if item.get("approval_status") == ApprovalRecordStatus.SUPERSEDED:
        raise ApprovalSuperseded(SUPERSEDED_MESSAGE)
    if item.get("approval_status") == ApprovalRecordStatus.EXPIRED and item.get("expired_reason"):
        raise ApprovalExpired(str(item["expired_reason"]))
    links.verify(secret, approval_id, exp, sig, now=now)
    return exp_int, item


def show(records: WorkflowRecords, secret: bytes, approval_id: str, exp: Any, sig: Any, now: float | None = None) -> ApprovalView:
    """Verify the link and read the approval (no writes).

    Raises:
        ApprovalNotFound: bad signature or unknown id (indistinguishable on purpose).
        ApprovalExpired: the link has expired.
    """
    exp_int, item = _verified(records, secret, approval_id, exp, sig, now)
    return ApprovalView(
        approval_id=approval_id,
        workflow_id=str(item["workflow_id"]),
        status=str(item["approval_status"]),
        topic=str(item.get("topic", "")),
        summary=str(item.get("summary", "")),
        revision=int(item.get("revision", 0)),
        max_revisions=int(item.get("max_revisions", 0)),
        expires_at=int(item.get("expires_at", exp_int)),
        exp=exp_int,
        sig=str(sig),
        csrf=links.csrf_token(secret, approval_id, exp_int),
        decided_by=item.get("decided_by"),
        decided_at=item.get("decided_at"),
        feedback=item.get("feedback") or None,
    )


def decide(records: WorkflowRecords, tokens: TaskTokens, secret: bytes, approval_id: str, form: DecisionForm, now: float | None = None) -> ApprovalDecision:
    """Record the decision and resume the execution.

    Args:
        records: approval records.
        tokens: resumes the waiting execution (SendTaskSuccess).
        secret: the link-signing secret.
        approval_id: from the URL path.
        form: the POSTed form.

    Raises:
        ApprovalNotFound / ApprovalExpired: the link does not verify or has expired.
        InvalidInput: bad CSRF token, or a rejection without feedback.
        ApprovalAlreadyDecided: someone decided first; nothing changes.
    """
    _verified(records, secret, approval_id, form.exp, form.sig, now)
    links.check_csrf(secret, approval_id, form.exp, form.csrf)
    approved = form.decision == "approve"
    feedback = form.feedback.strip() or None
    if not approved and not feedback:
        raise InvalidInput("feedback: required when rejecting (say what the analysis should change)")
    decided_by = form.decided_by or "approver (email link)"
    item = records.decide_approval(
        approval_id, ApprovalRecordStatus.APPROVED if approved else ApprovalRecordStatus.REJECTED, decided_by, feedback
    )
    decision = ApprovalDecision(
        approved=approved,
        feedback=feedback,
        decided_by=decided_by,
        decided_at=datetime.strptime(str(item["decided_at"]), "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC),
        approval_id=approval_id,
    )
    try:
        tokens.send_success(str(item["task_token"]), decision.model_dump_json())
    except TaskTokenGone as exc:
        records.reopen_approval(approval_id, ApprovalRecordStatus.EXPIRED)
        raise ApprovalExpired("this approval is no longer awaited (the workflow timed out or ended)") from exc
    except BaseException:
        records.reopen_approval(approval_id, ApprovalRecordStatus.PENDING)
        raise
    logger.info("approval decided", extra={"approval_id": approval_id, "approved": approved})
    metrics.add_metric(name="ApprovalsDecided", unit=MetricUnit.Count, value=1)
    return decision


# ----- what happens next (the approval pages say it: relay_core.pages) ---------------------
def next_step(decision: ApprovalDecision, revision: int | None, max_revisions: int | None) -> str:
    """What the workflow does after ``decision``, as the ApprovalDecision Choice state
    routes it (``statemachines/research_report.asl.json``): approved → WriteReport;
    rejected with feedback and ``revision < max_revisions`` → AnalyzeResearch again as
    revision ``revision + 1``; any other rejection → RecordRejection (ends REJECTED).

    Args:
        decision: the decision sent with ``SendTaskSuccess``.
        revision, max_revisions: from the approval record (``None`` when it could not be read).
    """
    if decision.approved:
        return "The workflow resumes: the report is written next."
    if not decision.feedback:
        return "The workflow ends REJECTED."
    if revision is None or max_revisions is None:
        return "The analysis goes back for revision if any revisions remain; otherwise the workflow ends REJECTED."
    if revision < max_revisions:
        return f"The analysis goes back for revision {revision + 1} of {max_revisions}."
    return f"The workflow ends REJECTED: all {max_revisions} revisions were used."
