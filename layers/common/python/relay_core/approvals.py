"""Showing an approval and deciding it: the domain behind ``GET``/``POST /approvals/{id}``.

- :func:`show` verifies the link and reads the approval, and what the approver is
  approving: the analysis (its Markdown), the research document's sources and the
  analysis's quality check. It never writes: mail scanners and link previews may fetch
  the link any number of times. An artifact that cannot be read leaves the page with
  the summary and a note saying so, never an error page.
- :func:`decide` verifies the link and the form's CSRF token, records the decision
  with one conditional write (PENDING → APPROVED/REJECTED), then resumes the
  execution with ``SendTaskSuccess`` and ``{approved, feedback, decided_by, …}`` so
  the ApprovalDecision Choice state routes. If ``SendTaskSuccess`` fails, the
  record is put back to PENDING (or to EXPIRED when the task token has timed out),
  so a decision is never recorded for an execution that did not get it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from pydantic import ValidationError

from . import links
from .contracts import ApprovalRecordStatus
from .errors import SUPERSEDED_MESSAGE, ApprovalExpired, ApprovalSuperseded, InvalidInput, TaskTokenGone
from .models import ApprovalDecision, ArtifactRef, DecisionForm, QualityCheck, ResearchDocument, artifact_name
from .observability import logger, metrics
from .ports import ArtifactStore, TaskTokens, WorkflowRecords


@dataclass(frozen=True)
class SourceView:
    """One research source as the approval page lists it: its number, title and URI."""

    number: int
    title: str
    uri: str


@dataclass(frozen=True)
class ApprovalView:
    """What the approval page shows. Holds no task token.

    ``analysis_markdown`` is the analysis being approved (``None`` when it could not be
    read: ``analysis_problem`` says why, and the page shows ``summary`` instead);
    ``sources`` the research document's sources (``sources_problem`` when they could not
    be read); ``quality`` the analysis's quality check (``None`` for an analysis made
    before checks existed).
    """

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
    analysis_name: str = "the analysis"
    analysis_markdown: str | None = None
    analysis_problem: str | None = None
    sources: tuple[SourceView, ...] = field(default_factory=tuple)
    sources_problem: str | None = None
    quality: QualityCheck | None = None


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


def _ref(value: Any) -> ArtifactRef | None:
    """An artifact reference stored in the approval record (``None``: absent or malformed)."""
    try:
        return ArtifactRef.model_validate(value) if isinstance(value, dict) else None
    except ValidationError:
        return None


def _unreadable(what: str, ref: ArtifactRef | None, exc: Exception | None = None) -> str:
    """Why ``what`` is not shown, for the page (no bucket, key or exception text: the
    page is public behind the link); the cause goes to the log."""
    if ref is None:
        return f"The {what} could not be loaded: this approval request does not name it."
    if exc is None:
        return f"The {what} could not be loaded."
    logger.warning("approval page artifact unreadable", extra={"artifact": artifact_name(ref), "error": type(exc).__name__})
    return f"The {what} could not be loaded ({artifact_name(ref)} is missing or unreadable)."


def _read_analysis(store: ArtifactStore | None, ref: ArtifactRef | None) -> tuple[str | None, str | None]:
    """``(markdown, problem)``: the analysis, or why it could not be read."""
    if store is None or ref is None:
        return None, _unreadable("analysis", ref)
    try:
        return store.get_text(ref), None
    except Exception as exc:  # any store failure (missing, changed, access denied): the page still answers
        return None, _unreadable("analysis", ref, exc)


def _read_sources(store: ArtifactStore | None, ref: ArtifactRef | None) -> tuple[tuple[SourceView, ...], str | None]:
    """``(sources, problem)``: the research document's sources, or why they could not be read."""
    if store is None or ref is None:
        return (), _unreadable("list of sources", ref)
    try:
        document = ResearchDocument.model_validate_json(store.get_text(ref))
    except Exception as exc:  # a missing, changed or malformed research document
        return (), _unreadable("list of sources", ref, exc)
    return tuple(SourceView(number=s.number, title=s.title, uri=s.uri) for s in document.sources), None


def _quality(value: Any) -> QualityCheck | None:
    try:
        return QualityCheck.model_validate(value) if isinstance(value, dict) else None
    except ValidationError:
        return None


def show(
    records: WorkflowRecords,
    secret: bytes,
    approval_id: str,
    exp: Any,
    sig: Any,
    now: float | None = None,
    store: ArtifactStore | None = None,
) -> ApprovalView:
    """Verify the link and read the approval, and through ``store`` the analysis and the
    research document's sources (no writes). Without a store, or when an artifact cannot
    be read, the view says so (``analysis_problem``, ``sources_problem``) and the page
    shows the summary the record holds.

    Raises:
        ApprovalNotFound: bad signature or unknown id (indistinguishable on purpose).
        ApprovalExpired: the link has expired.
    """
    exp_int, item = _verified(records, secret, approval_id, exp, sig, now)
    analysis_ref = _ref(item.get("analysis"))
    markdown, analysis_problem = _read_analysis(store, analysis_ref)
    sources, sources_problem = _read_sources(store, _ref(item.get("research")))
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
        analysis_name=artifact_name(analysis_ref) if analysis_ref else "the analysis",
        analysis_markdown=markdown,
        analysis_problem=analysis_problem,
        sources=sources,
        sources_problem=sources_problem,
        quality=_quality(item.get("quality")),
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
