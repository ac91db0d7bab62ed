"""The step logic of ``relay_core.steps``, ``approvals`` and ``workflows_api`` on the
in-memory fakes of the ports (``tests/support/fakes.py``): no moto, no boto3 client,
no agent — the agents are plain callables, as a handler passes them."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest
from relay_core import approvals, links, steps, workflows_api
from relay_core.api_models import ListQuery
from relay_core.config import ApprovalSettings, load
from relay_core.contracts import ApprovalRecordStatus, RecordStatus, artifact_key
from relay_core.errors import (
    AgentFailed,
    ApprovalExpired,
    ExecutionExists,
    InvalidInput,
    WorkflowConflict,
)
from relay_core.models import (
    AnalyzeEvent,
    ArtifactRef,
    CitedSource,
    CompileResearchEvent,
    DecisionForm,
    FinalizeEvent,
    PlanResearchEvent,
    QualityCheck,
    RequestApprovalEvent,
    ResearchDocument,
    ResearchFinding,
    ResearchSource,
    WorkflowRequest,
    WriteReportEvent,
)

from tests.support.fakes import (
    InMemoryArtifactStore,
    InMemoryExecutions,
    InMemoryTaskTokens,
    InMemoryWorkflowRecords,
    RecordingNotifier,
)

RUNTIME = "arn:aws:bedrock-agentcore:us-east-1:123456789012:runtime/researcher"
SECRET = b"k" * 32
TOKEN = "AQCEAAAAKgAAAAMAAAAAAAAAAbcdefTASKTOKEN-0123456789"


@pytest.fixture
def records() -> InMemoryWorkflowRecords:
    return InMemoryWorkflowRecords()


@pytest.fixture
def store() -> InMemoryArtifactStore:
    return InMemoryArtifactStore()


@pytest.fixture(autouse=True)
def approval_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The settings RequestApproval reads (no file or service is touched: the notifier is a fake)."""
    for key, value in {
        "RELAY_ARTIFACT_BUCKET": "fake-artifacts",
        "RELAY_TABLE_NAME": "fake-workflows",
        "RELAY_API_BASE_URL": "http://127.0.0.1:9",
        "RELAY_OUTBOX_DIR": "unused-outbox",
    }.items():
        monkeypatch.setenv(key, value)


def settings() -> ApprovalSettings:
    return load(ApprovalSettings)


def plan_event(questions: int = 2, redrive_count: int = 0) -> PlanResearchEvent:
    return PlanResearchEvent(
        workflow_id="wf-1",
        execution_arn="arn:aws:states:us-east-1:123456789012:execution:relay:wf-1",
        request={"topic": "Task tokens", "questions": questions},
        default_runtime_arn=RUNTIME,
        redrive_count=redrive_count,
    )


# ----- PlanResearch ---------------------------------------------------------------------------
def test_plan_research_records_the_workflow_and_asks_the_planner_for_the_requested_count(records) -> None:
    asked: list[tuple[str, int]] = []

    def planner(topic: str, count: int) -> list[str]:
        asked.append((topic, count))
        return [f"Question {i}?" for i in range(count)]

    result = steps.plan_research(plan_event(questions=3), records, planner)
    assert asked == [("Task tokens", 3)]
    assert [q.id for q in result.plan.questions] == ["q01", "q02", "q03"]
    assert {q.runtime_arn for q in result.plan.questions} == {RUNTIME}
    assert records.get_workflow("wf-1")["status"] == RecordStatus.RUNNING


def test_plan_research_refuses_a_planner_that_returns_the_wrong_number(records) -> None:
    with pytest.raises(AgentFailed, match="1 usable questions, expected 2"):
        steps.plan_research(plan_event(questions=2), records, lambda topic, count: ["Only one?"])


def test_a_redriven_plan_research_moves_a_failed_record_back_to_running(records) -> None:
    steps.plan_research(plan_event(), records, lambda t, n: ["a?", "b?"])
    records.record_stopped("wf-1", RecordStatus.FAILED, 0, failure={"state": "PlanResearch"})
    steps.plan_research(plan_event(redrive_count=1), records, lambda t, n: ["a?", "b?"])
    assert records.get_workflow("wf-1")["status"] == RecordStatus.RUNNING
    assert records.get_workflow("wf-1")["redrive_count"] == 1


def test_plan_research_refuses_invalid_input_naming_the_field(records) -> None:
    event = plan_event()
    event.request["questions"] = 0
    with pytest.raises(InvalidInput, match="questions"):
        steps.plan_research(event, records, lambda t, n: [])
    assert records.workflows == {}


# ----- CompileResearch, AnalyzeResearch, WriteReport --------------------------------------------
def _finding(store: InMemoryArtifactStore, qid: str, text: str, uri: str) -> dict[str, Any]:
    ref = store.put_text(artifact_key("wf-1", f"findings/{qid}.md"), text)
    return {"question_id": qid, "summary": text[:50], "sources": [{"title": uri, "uri": uri}], "finding": ref.model_dump()}


def _questions() -> list[dict[str, Any]]:
    return [{"id": f"q0{i}", "question": f"Q{i}?", "runtime_arn": RUNTIME, "session_id": "s" * 33} for i in (1, 2)]


def test_compile_research_marks_a_failed_branch_and_deduplicates_sources(store) -> None:
    findings = [_finding(store, "q01", "Answer one.", "doc://a"), {"Error": "States.TaskFailed"}]
    result = steps.compile_research(
        CompileResearchEvent(workflow_id="wf-1", topic="T", questions=_questions(), findings=findings), store
    )
    assert (result.answered, result.failed_questions, result.sources) == (1, ["q02"], 1)
    assert "this research branch failed" in store.get_text(result.markdown)


def test_compile_research_fails_when_no_question_was_answered(store) -> None:
    with pytest.raises(AgentFailed, match="no research question was answered"):
        steps.compile_research(CompileResearchEvent(workflow_id="wf-1", topic="T", questions=_questions(), findings=[None, None]), store)
    assert store.objects == {}


#: A compiled research document, as CompileResearch writes it to research.json.
RESEARCH = ResearchDocument(
    workflow_id="wf-1", topic="T",
    findings=[ResearchFinding(question_id="q01", question="Q1?", status="answered", answer_markdown="A [1].", sources=[CitedSource(number=1, ref=1)])],
    sources=[ResearchSource(number=1, title="Doc", uri="doc://a")],
)  # fmt: skip


def _research(store: InMemoryArtifactStore) -> ArtifactRef:
    return store.put_text(artifact_key("wf-1", "research.json"), RESEARCH.model_dump_json(), content_type="application/json")


@dataclass
class _Analysis:
    markdown: str
    summary: str


def test_analyze_passes_research_and_feedback_to_the_analyst_and_stores_its_analysis(store, records) -> None:
    research = _research(store)
    seen: dict[str, Any] = {}

    def analyst(topic: str, research: ResearchDocument, *, feedback: str | None, revision: int) -> _Analysis:
        seen.update(topic=topic, research=research, feedback=feedback, revision=revision)
        return _Analysis(markdown="## Key insights\n\nX", summary="S" * 2000)

    result = steps.analyze(AnalyzeEvent(workflow_id="wf-1", topic="T", research=research, revision=1, feedback="more"), store, records, analyst)
    assert seen == {"topic": "T", "research": RESEARCH, "feedback": "more", "revision": 1}
    assert store.get_text(result.analysis) == "## Key insights\n\nX"
    assert result.analysis.key == "workflows/wf-1/analysis-r1.md"
    assert len(result.summary) <= 840
    assert records.get_workflow("wf-1")["revisions"] == 1


def _decision() -> dict[str, Any]:
    return {"approved": True, "decided_by": "a@example.com", "decided_at": "2026-01-01T00:00:00Z", "approval_id": "ap-1", "feedback": "tighten"}


def test_write_report_refuses_an_empty_report_and_writes_nothing(store) -> None:
    research = _research(store)
    analysis = store.put_text("workflows/wf-1/analysis-r0.md", "A")
    event = WriteReportEvent(workflow_id="wf-1", topic="T", research=research, analysis=analysis, approval=_decision())
    with pytest.raises(AgentFailed, match="empty report"):
        steps.write_report(event, store, lambda *a, **k: "  \n")
    assert "workflows/wf-1/report.md" not in store.objects


def test_write_report_gives_the_writer_the_approvers_feedback_and_strips_raw_html(store) -> None:
    research = _research(store)
    analysis = store.put_text("workflows/wf-1/analysis-r0.md", "A")
    event = WriteReportEvent(workflow_id="wf-1", topic="T", research=research, analysis=analysis, approval=_decision())
    feedback: list[str | None] = []

    def writer(topic: str, research: ResearchDocument, analysis_md: str, *, approval_feedback: str | None) -> str:
        feedback.append(approval_feedback)
        return "# Title\n\n<script>alert(1)</script> text"

    report = steps.write_report(event, store, writer)
    assert feedback == ["tighten"]
    assert report.title == "Title"
    assert "<script>" not in store.get_text(report.report)


# ----- RequestApproval and the decision ---------------------------------------------------------
def _approval_event(
    store: InMemoryArtifactStore, redrive_count: int = 0, quality: QualityCheck | None = None, research: ArtifactRef | None = None
) -> RequestApprovalEvent:
    ref = store.put_text("workflows/wf-1/analysis-r0.md", "analysis")
    return RequestApprovalEvent(
        workflow_id="wf-1",
        task_token=TOKEN,
        topic="Task tokens",
        analysis={"analysis": ref.model_dump(), "summary": "Short summary.", "revision": 0, "quality": quality},
        research=research,
        revision=0,
        max_revisions=2,
        timeout_seconds=3600,
        redrive_count=redrive_count,
    )


def _check(answered: int = 2, unanswered: tuple[str, ...] = ("How long can a task token wait?",), fragments: int = 0) -> QualityCheck:
    return QualityCheck(
        sentences=8, cited=8, grounded=7, repeated=0, fragments=fragments,
        questions=answered + len(unanswered), answered=answered, unanswered=list(unanswered),
    )


def test_the_approval_email_holds_the_summary_the_quality_headline_and_the_unanswered_questions(store, records) -> None:
    # Given an analysis whose quality check leaves one planned question unanswered
    notifier = RecordingNotifier()
    event = _approval_event(store, quality=_check(fragments=1, unanswered=("How long can a\x07 task token\nwait?",)))
    # When approval is requested
    steps.request_approval(event, records, notifier, settings(), SECRET, now=1_000_000)
    # Then the email carries the summary, the headline and the unanswered question by name, in that order
    [message] = notifier.messages
    body = message.body
    assert "Short summary." in body
    assert "Quality check of analysis-r0.md:" in body
    headline = "2 of 3 questions answered · 87 % of sentences grounded · 0 repeated · 1 not prose"
    assert f"  {headline}\n  Unanswered:\n  - How long can a task token wait?\n" in body
    assert body.index("Short summary.") < body.index(headline) < body.index("/approvals/")
    assert "\x07" not in body


def test_the_approval_email_names_every_unanswered_question_it_lists_and_counts_the_rest(store, records) -> None:
    check = _check(answered=0, unanswered=tuple(f"Question {i}?" for i in range(10))).model_copy(update={"questions": 14})
    body = steps.quality_block(check, "analysis-r1.md")
    assert body.count("\n  - Question ") == 10 and "  - … and 4 more\n" in body
    assert steps.quality_block(None, "analysis-r0.md") == "Quality check of analysis-r0.md: not available (it was not checked).\n"


def test_request_approval_keeps_what_the_page_shows_and_records_the_analysis_quality(store, records) -> None:
    # Given an analysis with its quality check and the research document it was made from
    research = _research(store)
    event = _approval_event(store, quality=_check(), research=research)
    # When approval is requested
    result = steps.request_approval(event, records, RecordingNotifier(), settings(), SECRET)
    # Then the approval record keeps the research reference and the quality check for the page
    approval = records.get_approval(result.approval_id)
    assert approval["research"] == research.model_dump(mode="json")
    assert QualityCheck.model_validate(approval["quality"]) == _check()
    # And the workflow record keeps the check, naming the analysis it assessed
    recorded = records.get_workflow("wf-1")["quality"]
    assert recorded["artifact"] == "analysis-r0.md" and recorded["unanswered"] == ["How long can a task token wait?"]


def test_request_approval_emails_a_signed_link_without_the_task_token(store, records) -> None:
    notifier = RecordingNotifier()
    result = steps.request_approval(_approval_event(store), records, notifier, settings(), SECRET, now=1_000_000)
    [message] = notifier.messages
    assert TOKEN not in message.body and TOKEN not in message.subject
    assert f"/approvals/{result.approval_id}?" in message.body
    assert records.get_workflow("wf-1")["status"] == RecordStatus.AWAITING_APPROVAL
    assert records.get_approval(result.approval_id)["task_token"] == TOKEN


def test_a_redriven_request_approval_supersedes_the_undecided_one(store, records) -> None:
    first = steps.request_approval(_approval_event(store), records, RecordingNotifier(), settings(), SECRET)
    second = steps.request_approval(_approval_event(store, redrive_count=1), records, RecordingNotifier(), settings(), SECRET)
    assert records.get_approval(first.approval_id)["approval_status"] == ApprovalRecordStatus.SUPERSEDED
    assert records.get_approval(second.approval_id)["approval_status"] == ApprovalRecordStatus.PENDING


def _form(approval_id: str, exp: int, decision: str = "approve", feedback: str = "") -> DecisionForm:
    return DecisionForm(
        decision=decision,
        feedback=feedback,
        exp=exp,
        sig=links.sign(SECRET, approval_id, exp),
        csrf=links.csrf_token(SECRET, approval_id, exp),
    )


def _pending(store, records) -> tuple[str, int]:
    requested = steps.request_approval(_approval_event(store), records, RecordingNotifier(), settings(), SECRET)
    return requested.approval_id, int(requested.expires_at.timestamp())


def test_a_decision_resumes_the_execution_with_the_decision(store, records) -> None:
    approval_id, exp = _pending(store, records)
    tokens = InMemoryTaskTokens()
    decision = approvals.decide(records, tokens, SECRET, approval_id, _form(approval_id, exp, "reject", "cite more"))
    [(token, output)] = tokens.sent
    assert token == TOKEN
    assert output["approved"] is False and output["feedback"] == "cite more" == decision.feedback
    assert records.get_approval(approval_id)["approval_status"] == ApprovalRecordStatus.REJECTED


def test_a_decision_for_a_dead_task_token_leaves_the_approval_expired(store, records) -> None:
    approval_id, exp = _pending(store, records)
    tokens = InMemoryTaskTokens()
    tokens.dead.add(TOKEN)
    with pytest.raises(ApprovalExpired):
        approvals.decide(records, tokens, SECRET, approval_id, _form(approval_id, exp))
    assert records.get_approval(approval_id)["approval_status"] == ApprovalRecordStatus.EXPIRED


def test_a_decision_that_could_not_be_sent_is_open_again(store, records) -> None:
    approval_id, exp = _pending(store, records)
    tokens = InMemoryTaskTokens()
    tokens.fail_with = ConnectionError("Step Functions unreachable")
    with pytest.raises(ConnectionError):
        approvals.decide(records, tokens, SECRET, approval_id, _form(approval_id, exp))
    approval = records.get_approval(approval_id)
    assert approval["approval_status"] == ApprovalRecordStatus.PENDING and "decided_by" not in approval
    # and it can be decided again
    approvals.decide(records, tokens, SECRET, approval_id, _form(approval_id, exp))
    assert len(tokens.sent) == 1


# ----- FinalizeWorkflow --------------------------------------------------------------------------
def test_finalize_completed_records_the_report_and_notifies(store, records) -> None:
    report = store.put_text("workflows/wf-1/report.md", "# R")
    notifier = RecordingNotifier()
    event = FinalizeEvent(workflow_id="wf-1", outcome="COMPLETED", report=report, quality=_check(answered=3, unanswered=()))
    result = steps.finalize(event, store, records, notifier, "a@example.com")
    assert result.report_url and records.get_workflow("wf-1")["status"] == RecordStatus.COMPLETED
    assert [m.to for m in notifier.messages] == ["a@example.com"]
    # the report's quality check is recorded, put in the execution output and in the notice
    assert records.get_workflow("wf-1")["quality"]["artifact"] == "report.md"
    assert result.quality == _check(answered=3, unanswered=())
    assert "3 of 3 questions answered · 87 % of sentences grounded · 0 repeated" in notifier.messages[0].body


def test_the_status_shows_the_newest_analysis_quality_then_the_report_s(store, records) -> None:
    # Given a workflow's execution, recorded by PlanResearch
    executions = InMemoryExecutions()
    executions.start("wf-1", json.dumps({"topic": "Task tokens"}))
    records.start_workflow("wf-1", "Task tokens", executions.arn("wf-1"))
    # Then before any analysis there is no quality check
    assert workflows_api.describe_workflow(executions, records, "wf-1").quality is None
    # When the analysis goes to approval
    steps.request_approval(_approval_event(store, quality=_check()), records, RecordingNotifier(), settings(), SECRET)
    # Then the status shows the analysis's check
    quality = workflows_api.describe_workflow(executions, records, "wf-1").quality
    assert quality is not None and quality.artifact == "analysis-r0.md"
    assert quality.headline == "2 of 3 questions answered · 87 % of sentences grounded · 0 repeated"
    assert quality.unanswered == ["How long can a task token wait?"]
    # When the report is finalized with its own check
    report = store.put_text("workflows/wf-1/report.md", "# R")
    report_check = _check(answered=3, unanswered=()).model_copy(update={"assessment": store.put_text("workflows/wf-1/report.quality.json", "{}")})
    steps.finalize(FinalizeEvent(workflow_id="wf-1", outcome="COMPLETED", report=report, quality=report_check), store, records, None, "a@example.com")
    # Then the status shows the report's, with where the full assessment is
    status = workflows_api.describe_workflow(executions, records, "wf-1")
    assert status.quality is not None and status.quality.artifact == "report.md"
    assert status.quality.headline == "3 of 3 questions answered · 87 % of sentences grounded · 0 repeated"
    assert status.quality.unanswered == [] and status.quality.grounded_percent == 87
    assert status.quality.assessment == "s3://fake-artifacts/workflows/wf-1/report.quality.json"
    assert status.model_dump(mode="json")["quality"]["artifact"] == "report.md"


def test_the_approval_page_view_survives_a_changed_analysis_and_a_malformed_research_document(store, records) -> None:
    # Given an approval whose analysis object was overwritten and whose research is not a research document
    research = store.put_text("workflows/wf-1/research.json", '{"not": "research"}')
    requested = steps.request_approval(_approval_event(store, research=research), records, RecordingNotifier(), settings(), SECRET)
    store.objects["workflows/wf-1/analysis-r0.md"] = b"changed after the reference was taken"
    exp = int(requested.expires_at.timestamp())
    # When the page's view is read
    view = approvals.show(records, SECRET, requested.approval_id, exp, links.sign(SECRET, requested.approval_id, exp), store=store)
    # Then it says what could not be loaded and keeps the summary
    assert view.analysis_markdown is None and view.analysis_problem and "analysis-r0.md" in view.analysis_problem
    assert view.sources == () and view.sources_problem and "research.json" in view.sources_problem
    assert view.summary == "Short summary." and view.quality is None


def test_finalize_completed_without_a_report_is_invalid_and_records_nothing(store, records) -> None:
    with pytest.raises(InvalidInput, match="report: required"):
        steps.finalize(FinalizeEvent(workflow_id="wf-1", outcome="COMPLETED"), store, records, None, "a@example.com")
    assert records.workflows == {}


# ----- the /workflows domain on the Executions port ----------------------------------------------
def test_start_with_an_idempotency_key_that_loses_a_race_returns_the_same_workflow() -> None:
    executions = InMemoryExecutions()
    request = WorkflowRequest(topic="T")
    original_start = executions.start

    def racing_start(name: str, input_json: str) -> str:
        original_start(name, input_json)  # a concurrent retry got there first
        raise ExecutionExists(name)

    executions.start = racing_start  # type: ignore[method-assign]
    started, replayed = workflows_api.start_workflow(executions, request, "key-1", "http://api")
    assert replayed is True and started.workflow_id.startswith("api-")


def test_start_without_a_key_surfaces_a_name_collision() -> None:
    executions = InMemoryExecutions()

    def colliding_start(name: str, input_json: str) -> str:
        raise ExecutionExists(name)

    executions.start = colliding_start  # type: ignore[method-assign]
    with pytest.raises(ExecutionExists):
        workflows_api.start_workflow(executions, WorkflowRequest(topic="T"), None, "http://api")


def test_redrive_refuses_a_running_execution_and_resumes_a_failed_one() -> None:
    executions = InMemoryExecutions()
    executions.start("wf-1", json.dumps({"topic": "T"}))
    with pytest.raises(WorkflowConflict, match="is RUNNING"):
        workflows_api.redrive_workflow(executions, "wf-1", "http://api")
    executions.enter("wf-1", "WriteReport", {"x": 1})
    executions.fail("wf-1", "AgentFailed", "empty report")
    redriven = workflows_api.redrive_workflow(executions, "wf-1", "http://api")
    assert (redriven.redrive_count, redriven.redriven_from) == (1, "WriteReport")
    assert executions.describe("wf-1")["status"] == "RUNNING"


def test_cancel_stops_the_execution_and_expires_the_pending_approval(store, records) -> None:
    executions = InMemoryExecutions()
    executions.start("wf-1", "{}")
    approval_id, _ = _pending(store, records)
    cancelled = workflows_api.cancel_workflow(executions, records, "wf-1", "wrong topic", "ops@example.com")
    assert cancelled.status == "ABORTED"
    assert records.get_workflow("wf-1")["status"] == RecordStatus.CANCELLED
    assert records.get_approval(approval_id)["approval_status"] == ApprovalRecordStatus.EXPIRED


def test_list_pages_through_every_status_newest_first(records) -> None:
    for i, status in enumerate([RecordStatus.RUNNING, RecordStatus.COMPLETED, RecordStatus.FAILED]):
        records.workflows[f"wf-{i}"] = {"workflow_id": f"wf-{i}", "status": status, "created_at": f"2026-01-0{i + 1}T00:00:00Z", "topic": "T"}
    first = workflows_api.list_workflows(records, ListQuery(limit=2))
    second = workflows_api.list_workflows(records, ListQuery(limit=2, next_token=first.next_token))
    assert [w.workflow_id for w in first.items] + [w.workflow_id for w in second.items] == ["wf-2", "wf-1", "wf-0"]
    assert second.next_token is None
