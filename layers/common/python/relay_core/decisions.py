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

import contextlib
import html
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

from . import approvals
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
    exp_int = approvals.verify(secret, approval_id, exp, sig, now=now, check_expiry=False)
    item = records.get_approval(approval_id)
    if item.get("approval_status") == ApprovalRecordStatus.SUPERSEDED:
        raise ApprovalSuperseded(SUPERSEDED_MESSAGE)
    if item.get("approval_status") == ApprovalRecordStatus.EXPIRED and item.get("expired_reason"):
        raise ApprovalExpired(str(item["expired_reason"]))
    approvals.verify(secret, approval_id, exp, sig, now=now)
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
        csrf=approvals.csrf_token(secret, approval_id, exp_int),
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
    approvals.check_csrf(secret, approval_id, form.exp, form.csrf)
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


# ----- pages -----------------------------------------------------------------------
_STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:44rem;margin:2rem auto;padding:0 1rem;color:#1b1f24}"
    "pre{white-space:pre-wrap;background:#f5f6f8;padding:1rem;border-radius:6px}"
    "textarea{width:100%;min-height:6rem}button{font-size:1rem;padding:.5rem 1.2rem;margin:.5rem .5rem 0 0}"
    ".muted{color:#57606a}"
)


def page(title: str, body_html: str) -> str:
    """A complete HTML page with ``title`` (escaped) around ``body_html`` (already safe)."""
    t = html.escape(title)
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        '<meta name=viewport content="width=device-width,initial-scale=1">'
        '<meta name=referrer content=no-referrer>'
        f"<title>{t}</title><style>{_STYLE}</style></head><body><h1>{t}</h1>{body_html}</body></html>"
    )


def approval_page(view: ApprovalView) -> str:
    """The GET page: the request, and (while PENDING) two POST forms."""
    e = html.escape
    expires = datetime.fromtimestamp(view.expires_at, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    head = (
        f"<p class=muted>Workflow <code>{e(view.workflow_id)}</code> · revision {view.revision} of at most "
        f"{view.max_revisions} · link expires {e(expires)}</p>"
        f"<h2>Topic</h2><p id=topic>{e(view.topic)}</p><h2>Analysis summary</h2><pre id=summary>{e(view.summary)}</pre>"
    )
    if view.status != "PENDING":
        return page("Approval already decided", head + decided_html(view.status, view.decided_by, view.decided_at, view.feedback))
    hidden = (
        f'<input type=hidden name=exp value="{view.exp}"><input type=hidden name=sig value="{e(view.sig)}">'
        f'<input type=hidden name=csrf value="{e(view.csrf)}">'
    )
    action = f"/approvals/{e(view.approval_id)}"
    forms = (
        f'<form method=post action="{action}" id=approve-form>{hidden}<input type=hidden name=decision value=approve>'
        f'<label>Your name or email (optional) <input name=decided_by maxlength=254></label><br>'
        f"<button type=submit id=approve>Approve</button></form>"
        f'<form method=post action="{action}" id=reject-form>{hidden}<input type=hidden name=decision value=reject>'
        f'<label for=feedback>Feedback (required to reject; it goes back to the analyst)</label>'
        f"<textarea id=feedback name=feedback required maxlength=4000></textarea>"
        f"<button type=submit id=reject>Reject with feedback</button></form>"
    )
    return page("Approval requested", head + forms)


def decided_html(status: str, decided_by: str | None, decided_at: str | None, feedback: str | None) -> str:
    """The "already decided by … at …" paragraph."""
    e = html.escape
    text = f"<p id=decided>Already {e(status.lower())} by {e(decided_by or 'the system')} at {e(decided_at or 'an earlier time')}.</p>"
    if feedback:
        text += f"<p>Feedback: <q>{e(feedback)}</q></p>"
    return text


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


def decision_page(decision: ApprovalDecision, approval: Mapping[str, Any] | None = None) -> str:
    """The page after a successful POST: the decision and, truthfully, what happens next
    (:func:`next_step`, from the approval record's ``revision`` and ``max_revisions``)."""
    verb = "approved" if decision.approved else "rejected"
    revision = max_revisions = None
    with contextlib.suppress(TypeError, ValueError):
        if approval is not None and "revision" in approval and "max_revisions" in approval:
            revision, max_revisions = int(approval["revision"]), int(approval["max_revisions"])
    step = html.escape(next_step(decision, revision, max_revisions))
    extra = f"<p>Feedback sent to the analyst: <q>{html.escape(decision.feedback)}</q></p>" if decision.feedback else ""
    return page(f"Thank you: {verb}", f"<p id=result>You {verb} this analysis. {step}</p>{extra}")


def error_page(status: int, message: str) -> str:
    """Pages for 4xx answers; 404 reveals nothing about whether the id exists."""
    titles = {400: "Bad request", 404: "Not found", 409: "Already decided", 410: "Link no longer valid"}
    return page(titles.get(status, "Error"), f"<p id=error>{html.escape(message)}</p>")
