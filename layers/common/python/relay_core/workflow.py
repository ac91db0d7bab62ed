"""The workflow's steps: one function per Task state, called by the thin handlers.

Each step takes a parsed event model and the adapters it needs, and returns a
result model. Agents (``relay_agents``) are imported inside the steps that use
them, so the functions that need no model never pay for importing one.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from pydantic import ValidationError

from . import approvals
from .config import ApprovalSettings, RequestDefaults, load
from .errors import AgentFailed, InvalidInput, describe_validation_error
from .models import (
    Analysis,
    AnalyzeEvent,
    ApprovalRequested,
    CompiledResearch,
    CompileResearchEvent,
    FailureRecord,
    FinalizeEvent,
    FinalizeResult,
    Finding,
    Plan,
    PlanResearchEvent,
    PlanResult,
    RecordFailureEvent,
    Report,
    RequestApprovalEvent,
    ResearchQuestion,
    Review,
    WorkflowRequest,
    WriteReportEvent,
    clip,
)
from .notify import Message, Notifier
from .observability import logger, metrics
from .records import WorkflowRecords
from .store import ArtifactStore, artifact_key


def session_id_for(workflow_id: str, question_id: str) -> str:
    """A deterministic AgentCore runtime session id (34 characters, ≥ the 33 required).

    ``relay-`` + 24 hex characters of sha256(workflow_id) + ``-`` + question id, so a
    redriven execution reuses the same session for the same question.
    """
    digest = hashlib.sha256(workflow_id.encode("utf-8")).hexdigest()[:24]
    return f"relay-{digest}-{question_id}"


def parse_request(raw: dict[str, Any]) -> WorkflowRequest:
    """Validate an execution input, filling unset fields from the deployment defaults
    (:class:`relay_core.config.RequestDefaults`).

    Raises:
        InvalidInput: one line naming each bad field and its rule.
    """
    try:
        return WorkflowRequest.model_validate(load(RequestDefaults).apply(raw) if isinstance(raw, dict) else raw)
    except ValidationError as exc:
        raise InvalidInput(f"input: {describe_validation_error(exc)}") from exc


def plan_research(event: PlanResearchEvent, records: WorkflowRecords, planner: Callable[[str, int], list[str]] | None = None) -> PlanResult:
    """PlanResearch: validate the input, record the workflow as RUNNING, plan the questions.

    Args:
        event: the state's event.
        records: workflow records.
        planner: ``(topic, count) -> questions``; defaults to the planner agent.

    Raises:
        InvalidInput: the execution input is invalid (not retried).
        AgentFailed: the planner did not return the requested number of questions.
    """
    request = parse_request(event.request)
    records.start_workflow(event.workflow_id, request.topic, event.execution_arn)
    if planner is None:
        from relay_agents.planner import plan_questions

        planner = plan_questions
    questions = planner(request.topic, request.questions)
    if len(questions) != request.questions or any(not q.strip() for q in questions):
        raise AgentFailed(f"planner returned {len(questions)} usable questions, expected {request.questions}")
    items = [
        ResearchQuestion(
            id=f"q{i:02d}",
            question=q.strip(),
            runtime_arn=event.default_runtime_arn,
            session_id=session_id_for(event.workflow_id, f"q{i:02d}"),
        )
        for i, q in enumerate(questions, start=1)
    ]
    logger.info("planned research", extra={"questions": len(items)})
    metrics.add_metric(name="WorkflowsStarted", unit=MetricUnit.Count, value=1)
    metrics.add_metric(name="QuestionsPlanned", unit=MetricUnit.Count, value=len(items))
    return PlanResult(
        request=request,
        plan=Plan(workflow_id=event.workflow_id, topic=request.topic, questions=items),
        review=Review(),
    )


def compile_research(event: CompileResearchEvent, store: ArtifactStore) -> CompiledResearch:
    """CompileResearch: merge the Map's findings into ``research.md``, deduplicating sources.

    ``event.findings[i]`` is the answer to ``event.questions[i]``; an entry that is not
    a valid :class:`Finding` (``None`` or an error object from a failed iteration)
    marks that question as failed.

    Raises:
        AgentFailed: no question was answered.
    """
    sections: list[str] = []
    failed: list[str] = []
    sources: dict[str, tuple[int, str]] = {}
    for question, raw in zip(event.questions, event.findings + [None] * len(event.questions), strict=False):
        try:
            finding = Finding.model_validate(raw)
        except ValidationError:
            failed.append(question.id)
            sections.append(f"## {question.id}: {question.question}\n\n_No answer: this research branch failed._\n")
            continue
        text = store.get_text(finding.finding).strip()
        cites = []
        for source in finding.sources:
            number = sources.setdefault(source.uri, (len(sources) + 1, source.title))[0]
            cites.append(f"[{number}]")
        sections.append(f"## {question.id}: {question.question}\n\n{text}\n\nSources: {' '.join(cites) or 'none'}\n")
    answered = len(event.questions) - len(failed)
    if answered == 0:
        raise AgentFailed("no research question was answered")
    source_lines = [f"{n}. {title} <{uri}>" for uri, (n, title) in sorted(sources.items(), key=lambda kv: kv[1][0])]
    body = (
        f"# Research: {event.topic}\n\n"
        + "\n".join(sections)
        + "\n## Sources\n\n"
        + ("\n".join(source_lines) or "_none_")
        + "\n"
    )
    ref = store.put_text(artifact_key(event.workflow_id, "research.md"), body)
    logger.info("compiled research", extra={"answered": answered, "failed": failed, "bytes": ref.bytes})
    metrics.add_metric(name="QuestionsAnswered", unit=MetricUnit.Count, value=answered)
    metrics.add_metric(name="QuestionsFailed", unit=MetricUnit.Count, value=len(failed))
    return CompiledResearch(research=ref, answered=answered, failed_questions=failed, sources=len(sources))


def analyze(event: AnalyzeEvent, store: ArtifactStore, records: WorkflowRecords, analyst: Callable[..., Any] | None = None) -> Analysis:
    """AnalyzeResearch: the analyst agent's insights, risks and open questions; on a
    revision it addresses the reviewer's feedback. Writes ``analysis-r{revision}.md``."""
    research = store.get_text(event.research)
    if analyst is None:
        from relay_agents.analyst import analyze as analyst_agent

        analyst = analyst_agent
    result = analyst(event.topic, research, feedback=event.feedback, revision=event.revision)
    ref = store.put_text(artifact_key(event.workflow_id, f"analysis-r{event.revision}.md"), result.markdown)
    records.set_status(event.workflow_id, "RUNNING", revisions=event.revision)
    metrics.add_metric(name="AnalysesWritten", unit=MetricUnit.Count, value=1)
    return Analysis(analysis=ref, summary=clip(result.summary, 840), revision=event.revision)


def approval_email(event: RequestApprovalEvent, url: str, expires_at: datetime) -> tuple[str, str]:
    """The approval email's subject and plain-text body. The task token is not in it."""
    revision = f" (revision {event.revision} of at most {event.max_revisions})" if event.revision else ""
    subject = f"Approval needed: {clip(event.topic, 70)}{revision}"
    body = (
        f"Relay needs your decision on the analysis for:\n\n  {event.topic}\n\n"
        f"Summary{revision}:\n\n{event.analysis.summary}\n\n"
        f"Review and decide (approve, or reject with feedback):\n\n  {url}\n\n"
        f"This link expires at {expires_at.strftime('%Y-%m-%d %H:%M:%S UTC')}. Opening it changes nothing; "
        f"only the buttons on the page decide.\n\nWorkflow: {event.workflow_id}\n"
    )
    return subject, body


def request_approval(
    event: RequestApprovalEvent,
    records: WorkflowRecords,
    notifier: Notifier,
    settings: ApprovalSettings,
    secret: bytes,
    now: float | None = None,
) -> ApprovalRequested:
    """RequestApproval: store the task token under a fresh approval id and email a signed link.

    The link expires with the state's timeout (``timeout_seconds``), so a link never
    outlives its task token.
    """
    approval_id = approvals.new_approval_id()
    exp = int(now if now is not None else time.time()) + event.timeout_seconds
    expires_at = datetime.fromtimestamp(exp, UTC)
    records.put_approval(
        approval_id,
        event.workflow_id,
        event.task_token,
        exp,
        {
            "topic": event.topic,
            "summary": event.analysis.summary,
            "analysis": event.analysis.analysis.model_dump(mode="json"),
            "revision": event.revision,
            "max_revisions": event.max_revisions,
        },
    )
    records.set_status(event.workflow_id, "AWAITING_APPROVAL", approval_id=approval_id)
    url = approvals.approval_url(settings.api_base_url, secret, approval_id, exp)
    subject, body = approval_email(event, url, expires_at)
    where = notifier.send(Message(to=event.approver or settings.default_approver, subject=subject, body=body))
    logger.info("approval requested", extra={"approval_id": approval_id, "expires_at": exp})
    metrics.add_metric(name="ApprovalsRequested", unit=MetricUnit.Count, value=1)
    return ApprovalRequested(approval_id=approval_id, expires_at=expires_at, notified=where)


def write_report(event: WriteReportEvent, store: ArtifactStore, writer: Callable[..., str] | None = None) -> Report:
    """WriteReport: the writer agent's final Markdown report, written to ``report.md``."""
    research = store.get_text(event.research)
    analysis = store.get_text(event.analysis)
    if writer is None:
        from relay_agents.writer import write_report as writer_agent

        writer = writer_agent
    markdown = writer(event.topic, research, analysis, approval_feedback=event.approval.feedback)
    if not markdown.strip():
        raise AgentFailed("the writer returned an empty report")
    ref = store.put_text(artifact_key(event.workflow_id, "report.md"), markdown)
    metrics.add_metric(name="ReportWords", unit=MetricUnit.Count, value=len(markdown.split()))
    title = next((line.lstrip("# ").strip() for line in markdown.splitlines() if line.startswith("#")), event.topic)
    return Report(report=ref, title=clip(title, 200), words=len(markdown.split()))


def finalize(event: FinalizeEvent, store: ArtifactStore, records: WorkflowRecords, notifier: Notifier | None, to: str) -> FinalizeResult:
    """FinalizeWorkflow / RecordRejection: record the outcome; on COMPLETED presign the
    report (7 days) and send a completion notice."""
    metrics.add_metric(name=f"Workflows{event.outcome.title()}", unit=MetricUnit.Count, value=1)
    if event.outcome == "COMPLETED":
        if event.report is None:
            raise InvalidInput("report: required when outcome is COMPLETED")
        url = store.presigned_url(event.report)
        records.set_status(event.workflow_id, "COMPLETED", report=event.report.model_dump(mode="json"))
        if notifier is not None:
            notifier.send(
                Message(
                    to=to,
                    subject=f"Report ready: {event.workflow_id}",
                    body=f"The report for workflow {event.workflow_id} is ready (link valid 7 days):\n\n  {url}\n",
                )
            )
        return FinalizeResult(workflow_id=event.workflow_id, status="COMPLETED", report=event.report, report_url=url)
    records.set_status(event.workflow_id, "REJECTED")
    return FinalizeResult(workflow_id=event.workflow_id, status="REJECTED")


def _short_cause(cause: Any) -> str:
    """Lambda errors arrive as a JSON Cause with ``errorMessage``; keep just that."""
    if isinstance(cause, str):
        try:
            parsed = json.loads(cause)
        except ValueError:
            return cause
        if isinstance(parsed, dict) and "errorMessage" in parsed:
            return str(parsed["errorMessage"])
        return cause
    return json.dumps(cause) if cause is not None else ""


def record_failure(event: RecordFailureEvent, records: WorkflowRecords) -> FailureRecord:
    """RecordFailure: mark the workflow FAILED and say which state failed and why.

    A timed-out RequestApproval also expires the pending approval, so its link
    answers "expired" rather than offering a decision nobody is waiting for.
    """
    state, detail = next(iter(event.failure.items()))
    original = str(detail.get("Error") or "States.TaskFailed")
    # "States." names are reserved for the service (ASL spec, Errors); the Fail state
    # re-raises them as "Relay.<Name>" and the cause keeps the original.
    error = "Relay." + original.split(".", 1)[1] if original.startswith("States.") else original
    cause = clip(_short_cause(detail.get("Cause")), 1000)
    records.set_status(event.workflow_id, "FAILED", failure={"state": state, "error": original, "cause": cause})
    if state == "RequestApproval" and original == "States.Timeout":
        pending = records.latest_approval_for(event.workflow_id)
        if pending and pending.get("approval_status") == "PENDING":
            from .errors import ApprovalAlreadyDecided

            # Decided in the same instant the timeout fired: the record already says by whom.
            with contextlib.suppress(ApprovalAlreadyDecided):
                records.decide_approval(str(pending["approval_id"]), "EXPIRED", "timeout", None)
    logger.warning("workflow failed", extra={"failed_state": state, "error": original})
    metrics.add_metric(name="WorkflowsFailed", unit=MetricUnit.Count, value=1)
    return FailureRecord(workflow_id=event.workflow_id, state=state, error=error, cause=f"{state} failed ({original}): {cause}")
