"""The workflow's steps: one function per Task state, called by the thin handlers.

Each step takes a parsed event model, the ports it needs (:mod:`relay_core.ports`)
and, for the agent steps, the agent as a callable (:class:`Planner`, :class:`Analyst`,
:class:`Writer`), and returns a result model. The handlers in ``functions/`` build the
adapters and agents and pass them in: this module imports no adapter and no agent.
"""

from __future__ import annotations

import contextlib
import hashlib
import time
from datetime import UTC, datetime
from typing import Any, Protocol

from aws_lambda_powertools.metrics import MetricUnit
from pydantic import TypeAdapter, ValidationError

from . import links
from .config import ApprovalSettings, ExecutionLimits, RequestDefaults, load
from .contracts import (
    APPROVAL_ID_HEADER,
    RUNTIME_STOPPED_ERROR,
    WORKFLOW_ID_HEADER,
    ApprovalRecordStatus,
    ExecutionStatus,
    RecordStatus,
    artifact_key,
    canceller,
)
from .errors import (
    AgentFailed,
    ApprovalAlreadyDecided,
    ApprovalExpired,
    ApprovalSuperseded,
    InvalidInput,
    describe_validation_error,
)
from .history import failure_after, last_redrive, map_run_arn, open_state, short_cause
from .models import (
    ANALYSIS_SUMMARY_MAX_CHARS,
    MAX_SOURCE_PASSAGES,
    Analysis,
    AnalyzeEvent,
    ApprovalRequested,
    ArtifactQuality,
    ArtifactRef,
    CitedSource,
    CompiledResearch,
    CompileResearchEvent,
    Evidence,
    ExecutionStatusChange,
    FinalizeEvent,
    FinalizeResult,
    Finding,
    ModelUsage,
    Plan,
    PlanResearchEvent,
    PlanResult,
    QualityCheck,
    Report,
    RequestApprovalEvent,
    ResearchDocument,
    ResearchFinding,
    ResearchQuestion,
    ResearchSource,
    Review,
    StatusRecorded,
    WorkflowRequest,
    WriteReportEvent,
    artifact_name,
    clip,
    utc_now,
)
from .observability import logger, metrics
from .ports import ArtifactStore, ExecutionHistory, Message, Notifier, WorkflowRecords
from .quality import assess
from .safe_text import markdown_safe, plain_text

#: Parses a finding's evidence artifact.
EVIDENCE_LIST = TypeAdapter(list[Evidence])


class Planner(Protocol):
    """``(topic, count) -> questions``: the planner agent (``relay_agents.planner.plan_questions``)."""

    def __call__(self, topic: str, count: int, /) -> list[str]: ...


class AnalysisText(Protocol):
    """What an analyst returns: ``markdown`` (the analysis) and a plain-text ``summary``."""

    @property
    def markdown(self) -> str: ...

    @property
    def summary(self) -> str: ...


class Analyst(Protocol):
    """The analyst agent (``relay_agents.analyst.analyze``)."""

    def __call__(self, topic: str, research: ResearchDocument, /, *, feedback: str | None, revision: int) -> AnalysisText: ...


class Writer(Protocol):
    """The writer agent (``relay_agents.writer.write_report``): the report's Markdown."""

    def __call__(self, topic: str, research: ResearchDocument, analysis_markdown: str, /, *, approval_feedback: str | None) -> str: ...


def session_id_for(workflow_id: str, question_id: str) -> str:
    """A deterministic AgentCore runtime session id (34 characters, ≥ the 33 required).

    ``relay-`` + 24 hex characters of sha256(workflow_id) + ``-`` + question id, so a
    redriven execution reuses the same session for the same question.
    """
    digest = hashlib.sha256(workflow_id.encode("utf-8")).hexdigest()[:24]
    return f"relay-{digest}-{question_id}"


def parse_request(raw: dict[str, Any]) -> WorkflowRequest:
    """Validate an execution input, filling unset fields from the deployment defaults
    (:class:`relay_core.config.RequestDefaults`), and refuse a request that cannot finish
    within the deployed execution timeout (:class:`relay_core.config.ExecutionLimits`).

    Raises:
        InvalidInput: one line naming each bad field and its rule, or the time the request
            may take and the execution timeout.
    """
    try:
        request = WorkflowRequest.model_validate(load(RequestDefaults).apply(raw) if isinstance(raw, dict) else raw)
    except ValidationError as exc:
        raise InvalidInput(f"input: {describe_validation_error(exc)}") from exc
    conflict = request.timeout_conflict(load(ExecutionLimits).execution_timeout_seconds)
    if conflict:
        raise InvalidInput(f"input: {conflict}")
    return request


def plan_research(event: PlanResearchEvent, records: WorkflowRecords, planner: Planner) -> PlanResult:
    """PlanResearch: validate the input, record the workflow as RUNNING, plan the questions.

    Args:
        event: the state's event.
        records: workflow records.
        planner: ``(topic, count) -> questions`` (the handler passes the planner agent).

    Raises:
        InvalidInput: the execution input is invalid (not retried).
        AgentFailed: the planner did not return the requested number of questions.
    """
    request = parse_request(event.request)
    if records.start_workflow(event.workflow_id, request.topic, event.execution_arn, redrive_count=event.redrive_count):
        # once per workflow, however it was started (API, CLI, console) and however often this step is retried
        metrics.add_metric(name="WorkflowsStarted", unit=MetricUnit.Count, value=1)
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
    metrics.add_metric(name="QuestionsPlanned", unit=MetricUnit.Count, value=len(items))
    return PlanResult(
        request=request,
        plan=Plan(workflow_id=event.workflow_id, topic=request.topic, questions=items),
        review=Review(),
    )


def compile_research(event: CompileResearchEvent, store: ArtifactStore) -> CompiledResearch:
    """CompileResearch: merge the Map's findings into one :class:`ResearchDocument`,
    deduplicating sources by URI, and write it twice: ``research.json`` (the document the
    next steps read) and ``research.md`` (the same research for people). The topic,
    questions, findings and source titles are user or corpus text: the Markdown passes
    through :func:`~relay_core.safe_text.markdown_safe` (no raw HTML); the JSON holds the
    text as given (whoever renders it makes it safe).

    ``event.findings[i]`` is the answer to ``event.questions[i]``; an entry that is not
    a valid :class:`Finding` (``None`` or an error object from a failed iteration)
    marks that question as failed.

    Returns:
        The references of both artifacts, the counts (answered, failed, sources) and the
        research's model tokens (the answered findings' ``usage`` summed, if reported).

    Raises:
        AgentFailed: no question was answered.
    """
    findings: list[ResearchFinding] = []
    sources: dict[str, ResearchSource] = {}
    usage: ModelUsage | None = None
    for question, raw in zip(event.questions, event.findings + [None] * len(event.questions), strict=False):
        try:
            finding = Finding.model_validate(raw)
        except ValidationError:
            findings.append(ResearchFinding(question_id=question.id, question=question.question, status="failed"))
            continue
        if finding.usage is not None:
            usage = finding.usage if usage is None else usage + finding.usage
        cited = []
        for source in finding.sources:
            known = sources.setdefault(source.uri, ResearchSource(number=len(sources) + 1, title=source.title, uri=source.uri))
            cited.append(CitedSource(number=known.number, ref=source.ref))
        for passage in read_evidence(store, finding.evidence):
            known_source = sources.get(passage.uri)
            if known_source is not None and passage.text not in known_source.passages and len(known_source.passages) < MAX_SOURCE_PASSAGES:
                known_source.passages.append(passage.text)
        findings.append(
            ResearchFinding(
                question_id=question.id,
                question=question.question,
                status="answered",
                summary=finding.summary,
                answer_markdown=store.get_text(finding.finding).strip(),
                sources=cited,
            )
        )
    document = ResearchDocument(workflow_id=event.workflow_id, topic=event.topic, findings=findings, sources=list(sources.values()))
    answered, failed = len(document.answered), document.failed_questions
    if answered == 0:
        raise AgentFailed("no research question was answered")
    json_ref = store.put_text(
        artifact_key(event.workflow_id, "research.json"), document.model_dump_json(indent=2), content_type="application/json"
    )
    md_ref = store.put_text(artifact_key(event.workflow_id, "research.md"), markdown_safe(research_markdown(document)))
    logger.info("compiled research", extra={"answered": answered, "failed": failed, "bytes": json_ref.bytes})
    metrics.add_metric(name="QuestionsAnswered", unit=MetricUnit.Count, value=answered)
    metrics.add_metric(name="QuestionsFailed", unit=MetricUnit.Count, value=len(failed))
    return CompiledResearch(
        document=json_ref, markdown=md_ref, answered=answered, failed_questions=failed, sources=len(sources), usage=usage
    )


def read_evidence(store: ArtifactStore, ref: ArtifactRef | None) -> list[Evidence]:
    """The passages a finding's researcher read (``findings/<id>.evidence.json``); none
    when the finding has no evidence artifact.

    Raises:
        InvalidInput: the object is not a JSON list of :class:`Evidence` (names the object).
        ArtifactNotFound, ArtifactIntegrityError: from :meth:`ArtifactStore.get_text`.
    """
    if ref is None:
        return []
    try:
        return EVIDENCE_LIST.validate_json(store.get_text(ref))
    except ValidationError as exc:
        raise InvalidInput(f"evidence: s3://{ref.bucket}/{ref.key} is not a list of passages: {describe_validation_error(exc)}") from exc


def research_markdown(document: ResearchDocument) -> str:
    """``research.md`` for people (before :func:`~relay_core.safe_text.markdown_safe`):
    ``# Research: <topic>``, one ``## <id>: <question>`` section per finding (the answer
    and a ``Sources: [n] …`` line in the document's numbering, or "No answer" when its
    branch failed), then ``## Sources`` as ``n. Title <uri>``."""
    sections = []
    for finding in document.findings:
        heading = f"## {finding.question_id}: {finding.question}\n\n"
        if finding.status == "failed":
            sections.append(heading + "_No answer: this research branch failed._\n")
            continue
        cites = " ".join(f"[{cited.number}]" for cited in finding.sources) or "none"
        sections.append(heading + f"{finding.answer_markdown}\n\nSources: {cites}\n")
    source_lines = [f"{source.number}. {source.title} <{source.uri}>" for source in document.sources]
    return (
        f"# Research: {document.topic}\n\n"
        + "\n".join(sections)
        + "\n## Sources\n\n"
        + ("\n".join(source_lines) or "_none_")
        + "\n"
    )


def read_research(store: ArtifactStore, ref: ArtifactRef) -> ResearchDocument:
    """The research document ``ref`` points at (``research.json``).

    Raises:
        InvalidInput: the object is not a research document (e.g. an execution started
            before research.json existed passes research.md); names the object and the
            failing fields. Not retried: reading it again gives the same bytes.
        ArtifactNotFound, ArtifactIntegrityError: from :meth:`ArtifactStore.get_text`.
    """
    try:
        return ResearchDocument.model_validate_json(store.get_text(ref))
    except ValidationError as exc:
        raise InvalidInput(
            f"research: s3://{ref.bucket}/{ref.key} is not a research document: {describe_validation_error(exc)}"
        ) from exc


def analyze(event: AnalyzeEvent, store: ArtifactStore, records: WorkflowRecords, analyst: Analyst) -> Analysis:
    """AnalyzeResearch: the analyst's insights, risks and open questions from the research
    document (:func:`read_research`; the handler passes the analyst agent); on a revision
    it addresses the reviewer's feedback. Writes ``analysis-r{revision}.md`` and its
    quality assessment ``analysis-r{revision}.quality.json`` (:func:`store_quality`),
    whose short form (:class:`QualityCheck`) the approval email and page show."""
    research = read_research(store, event.research)
    result = analyst(event.topic, research, feedback=event.feedback, revision=event.revision)
    name = f"analysis-r{event.revision}.md"
    ref = store.put_text(artifact_key(event.workflow_id, name), result.markdown)
    quality = store_quality(store, event.workflow_id, name, result.markdown, research)
    records.set_status(event.workflow_id, RecordStatus.RUNNING, redrive_count=event.redrive_count, revisions=event.revision)
    metrics.add_metric(name="AnalysesWritten", unit=MetricUnit.Count, value=1)
    return Analysis(
        analysis=ref, summary=clip(result.summary, ANALYSIS_SUMMARY_MAX_CHARS), revision=event.revision, quality=quality
    )


def quality_name(artifact: str) -> str:
    """The quality assessment's artifact name for an artifact: ``report.md`` →
    ``report.quality.json``."""
    return artifact.rsplit(".", 1)[0] + ".quality.json"


def store_quality(store: ArtifactStore, workflow_id: str, artifact: str, markdown: str, research: ResearchDocument) -> QualityCheck:
    """Assess ``markdown`` (:func:`relay_core.quality.assess`), write the assessment beside
    the artifact (:func:`quality_name`) and return its short form."""
    assessment = assess(markdown, research, artifact=artifact)
    ref = store.put_text(
        artifact_key(workflow_id, quality_name(artifact)), assessment.model_dump_json(indent=2), content_type="application/json"
    )
    check = assessment.check(ref)
    logger.info("quality checked", extra={"artifact": artifact, "quality": check.headline()})
    metrics.add_metric(name="SentencesGroundedPercent", unit=MetricUnit.Percent, value=check.grounded_percent)
    return check


def quality_block(check: QualityCheck | None, artifact: str) -> str:
    """The plain-text quality check of ``artifact`` for emails: a ``Quality check of
    <artifact>:`` line, the headline (:meth:`QualityCheck.headline`) and each unanswered
    question by name (the questions are model text: control characters removed), e.g.::

        Quality check of analysis-r0.md:

          2 of 3 questions answered · 92 % of sentences grounded · 0 repeated
          Unanswered:
          - How does a heartbeat keep a task alive?

    ``None`` (an analysis made before checks existed) says it was not checked."""
    if check is None:
        return f"Quality check of {artifact}: not available (it was not checked).\n"
    lines = [f"Quality check of {artifact}:", "", f"  {check.headline()}"]
    if check.unanswered:
        lines.append("  Unanswered:")
        lines += [f"  - {' '.join(plain_text(question).split())}" for question in check.unanswered]
    if check.unlisted:
        lines.append(f"  - … and {check.unlisted} more")
    return "\n".join(lines) + "\n"


def approval_email(event: RequestApprovalEvent, url: str, expires_at: datetime) -> tuple[str, str]:
    """The approval email's subject and plain-text body: the topic, the analysis's
    summary, its quality check (:func:`quality_block`) and the signed link. The task
    token is not in it. The topic, summary and questions are user/model text: control
    characters other than tab and newline are removed
    (:func:`~relay_core.safe_text.plain_text`); the subject is one line."""
    revision = f" (revision {event.revision} of at most {event.max_revisions})" if event.revision else ""
    topic, summary = plain_text(event.topic), plain_text(event.analysis.summary)
    subject = f"Approval needed: {clip(topic, 70)}{revision}"
    body = (
        f"Relay needs your decision on the analysis for:\n\n  {topic}\n\n"
        f"Executive summary{revision}:\n\n{summary}\n\n"
        f"{quality_block(event.analysis.quality, artifact_name(event.analysis.analysis))}\n"
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

    The approval record keeps what the approval page shows: the topic, the analysis (its
    reference and summary), the research document it was made from (``research``: the
    page lists its sources) and the analysis's quality check (``quality``). The workflow
    record keeps the quality check too (``quality``, an :class:`ArtifactQuality` naming
    ``analysis-r{n}.md``), for ``GET /workflows/{id}``.

    The link expires with the state's timeout (``timeout_seconds``), so a link never
    outlives its task token. A previous request of the workflow that nobody decided (a
    redriven RequestApproval asks again) becomes SUPERSEDED: its link answers 410.
    """
    previous = records.latest_approval_for(event.workflow_id)
    if previous is not None and previous.get("approval_status") in {ApprovalRecordStatus.PENDING, ApprovalRecordStatus.EXPIRED}:
        records.supersede_approval(str(previous["approval_id"]))
    approval_id = links.new_approval_id()
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
            "research": event.research.model_dump(mode="json") if event.research else None,
            "quality": event.analysis.quality.model_dump(mode="json") if event.analysis.quality else None,
            "revision": event.revision,
            "max_revisions": event.max_revisions,
        },
    )
    quality: dict[str, Any] = {}
    if event.analysis.quality is not None:
        quality["quality"] = ArtifactQuality.of(event.analysis.analysis, event.analysis.quality).model_dump(mode="json")
    records.set_status(
        event.workflow_id, RecordStatus.AWAITING_APPROVAL, redrive_count=event.redrive_count, approval_id=approval_id, **quality
    )
    url = links.approval_url(settings.api_base_url, secret, approval_id, exp)
    subject, body = approval_email(event, url, expires_at)
    headers = {WORKFLOW_ID_HEADER: event.workflow_id, APPROVAL_ID_HEADER: approval_id}
    where = notifier.send(Message(to=event.approver or settings.default_approver, subject=subject, body=body, headers=headers))
    logger.info("approval requested", extra={"approval_id": approval_id, "expires_at": exp})
    metrics.add_metric(name="ApprovalsRequested", unit=MetricUnit.Count, value=1)
    return ApprovalRequested(approval_id=approval_id, expires_at=expires_at, notified=where)


def write_report(event: WriteReportEvent, store: ArtifactStore, writer: Writer) -> Report:
    """WriteReport: the writer's final Markdown report from the research document
    (:func:`read_research`) and the approved analysis (the handler passes the writer
    agent), written to ``report.md`` after :func:`~relay_core.safe_text.markdown_safe`
    (whatever writer wrote it, the topic, feedback and passages in it hold no raw HTML),
    and its quality assessment to ``report.quality.json`` (:func:`store_quality`)."""
    research = read_research(store, event.research)
    analysis = store.get_text(event.analysis)
    markdown = writer(event.topic, research, analysis, approval_feedback=event.approval.feedback)
    if not markdown.strip():
        raise AgentFailed("the writer returned an empty report")
    safe = markdown_safe(markdown)
    ref = store.put_text(artifact_key(event.workflow_id, "report.md"), safe)
    quality = store_quality(store, event.workflow_id, "report.md", safe, research)
    metrics.add_metric(name="ReportWords", unit=MetricUnit.Count, value=len(markdown.split()))
    title = next((line.lstrip("# ").strip() for line in markdown.splitlines() if line.startswith("#")), event.topic)
    return Report(report=ref, title=clip(plain_text(title), 200), words=len(markdown.split()), quality=quality)


def finalize(event: FinalizeEvent, store: ArtifactStore, records: WorkflowRecords, notifier: Notifier | None, to: str) -> FinalizeResult:
    """FinalizeWorkflow / RecordRejection: record the outcome; on COMPLETED record the
    report and its quality check (the workflow record's ``quality`` then names
    ``report.md``), presign the report (7 days) and send a completion notice carrying
    the quality check (:func:`quality_block`)."""
    metrics.add_metric(name=f"Workflows{event.outcome.title()}", unit=MetricUnit.Count, value=1)
    if event.outcome == "COMPLETED":
        if event.report is None:
            raise InvalidInput("report: required when outcome is COMPLETED")
        url = store.presigned_url(event.report)
        attributes: dict[str, Any] = {"report": event.report.model_dump(mode="json")}
        if event.quality is not None:
            attributes["quality"] = ArtifactQuality.of(event.report, event.quality).model_dump(mode="json")
        records.set_status(event.workflow_id, RecordStatus.COMPLETED, redrive_count=event.redrive_count, **attributes)
        if notifier is not None:
            notifier.send(
                Message(
                    to=to,
                    subject=f"Report ready: {event.workflow_id}",
                    body=(
                        f"The report for workflow {event.workflow_id} is ready (link valid 7 days):\n\n  {url}\n\n"
                        + quality_block(event.quality, artifact_name(event.report))
                    ),
                )
            )
        return FinalizeResult(
            workflow_id=event.workflow_id, status="COMPLETED", report=event.report, report_url=url, quality=event.quality
        )
    records.set_status(event.workflow_id, RecordStatus.REJECTED, redrive_count=event.redrive_count)
    return FinalizeResult(workflow_id=event.workflow_id, status="REJECTED")


#: Record status for each stopped execution status.
STOPPED_RECORD_STATUS = {
    ExecutionStatus.FAILED: RecordStatus.FAILED,
    ExecutionStatus.TIMED_OUT: RecordStatus.FAILED,
    ExecutionStatus.ABORTED: RecordStatus.CANCELLED,
}


def record_status_change(change: ExecutionStatusChange, history: ExecutionHistory, records: WorkflowRecords) -> StatusRecorded:
    """The record-failure function: an execution stopped or was redriven.

    - FAILED, TIMED_OUT, ABORTED: the record becomes FAILED (CANCELLED when aborted)
      with ``failure = {state, error, cause, at}``; the state is the last one entered
      and not exited in the history, the error and cause are that state's own failure
      (for a Map, the first failed iteration's when it can be read). A pending approval
      is expired: nobody waits for it any more.
    - RUNNING with ``redriveCount`` > 0: the record returns to RUNNING, keeping the count
      and the state the redrive resumed from.

    Out-of-order or repeated events change nothing (see :meth:`WorkflowRecords.record_stopped`).
    """
    detail = change.detail
    workflow_id = detail.name
    events = history.events(detail.executionArn)
    if detail.status == ExecutionStatus.RUNNING:
        before = events[: last_redrive(events)] if detail.redriveCount else events
        resumed = open_state(before)
        state = resumed.name if resumed else None
        written = records.record_redriven(workflow_id, detail.redriveCount, state)
        logger.info("workflow redriven", extra={"redrive_count": detail.redriveCount, "resumed_from": state, "written": written})
        metrics.add_metric(name="WorkflowsRedriven", unit=MetricUnit.Count, value=1)
        return StatusRecorded(
            workflow_id=workflow_id, status=detail.status, record_status=RecordStatus.RUNNING, redrive_count=detail.redriveCount, state=state, written=written
        )
    if detail.status not in STOPPED_RECORD_STATUS:
        raise InvalidInput(f"detail.status: {detail.status} is not a status this function records")
    since_redrive = events[last_redrive(events):]
    failed = open_state(since_redrive)
    error, cause = detail.error or "", detail.cause or ""
    if failed is not None and detail.status != "ABORTED":  # an abort's reason is the StopExecution's
        own = failure_after(since_redrive, failed.entered_event_id)
        if own is not None:
            error, cause = own[0] or error, own[1] or cause
        arn = map_run_arn(since_redrive, failed.entered_event_id)
        child = history.map_run_failure(arn) if arn else None
        if child is not None:
            cause = f"{short_cause(cause)} First failed iteration: {child[0]}: {short_cause(child[1])}"
    if error == "States.Timeout" and not cause and failed is not None:
        cause = f"{failed.name} timed out"
    if detail.status == "TIMED_OUT":
        error = error or "States.Timeout"
        cause = cause or "the execution timed out"
    record_status = STOPPED_RECORD_STATUS[ExecutionStatus(detail.status)]
    if detail.status == "ABORTED" and detail.error == RUNTIME_STOPPED_ERROR:
        record_status = RecordStatus.FAILED  # the local runtime died under it: a failure to redrive, not a cancellation
    state = failed.name if failed else None
    failure = {"state": state or "", "error": error, "cause": clip(short_cause(cause), 1000), "at": utc_now()}
    written = records.record_stopped(workflow_id, record_status, detail.redriveCount, failure=failure)
    if written:
        pending = records.latest_approval_for(workflow_id)
        if pending and pending.get("approval_status") == ApprovalRecordStatus.PENDING:
            # Decided in the same instant the execution stopped: the record already says by whom.
            with contextlib.suppress(ApprovalAlreadyDecided, ApprovalExpired, ApprovalSuperseded):
                who = canceller(detail.cause) if detail.status == "ABORTED" else None
                reason = None if who else (
                    f"Nobody waits for this approval any more: the workflow stopped ({clip(short_cause(cause) or error, 200)}). "
                    f"Resume it with a redrive (relay redrive {workflow_id}); a new approval email will be sent."
                )
                records.decide_approval(str(pending["approval_id"]), ApprovalRecordStatus.EXPIRED, who or f"execution {detail.status}", None, reason=reason)
    logger.info("workflow stopped", extra={"status": detail.status, "failed_state": state, "error": error, "written": written})
    if detail.status != "ABORTED":
        metrics.add_metric(name="WorkflowsFailed", unit=MetricUnit.Count, value=1)
    return StatusRecorded(
        workflow_id=workflow_id,
        status=detail.status,
        record_status=record_status,
        redrive_count=detail.redriveCount,
        state=state,
        error=error,
        cause=failure["cause"],
        written=written,
    )
