"""Reports and pages are safe: hostile topics, feedback and passages reach
research.md, analysis-r*.md, report.md and the approval email inert (no raw HTML, no
control characters), through the real workflow steps and agents (offline model)."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from relay_core import steps
from relay_core.models import (
    Analysis,
    ApprovalDecision,
    ArtifactRef,
    CompiledResearch,
    CompileResearchEvent,
    RequestApprovalEvent,
    ResearchQuestion,
    WriteReportEvent,
)

TOPIC = 'Tokens <script>alert("t")</script> & <img src=x onerror=alert(1)>'
FEEDBACK = "Add <iframe src=javascript:alert(2)></iframe> and [me](javascript:alert(3))"
PASSAGE = "Task tokens resume executions. <b onmouseover=alert(4)>bold</b> Heartbeats keep waits alive for long tasks."
#: Raw HTML that would be active if rendered.
ACTIVE = re.compile(r"<(script|img|iframe|b)\b|javascript:", re.IGNORECASE)


class MemoryStore:
    """The artifact store port, in memory."""

    def __init__(self) -> None:
        self.objects: dict[str, str] = {}

    def put_text(self, key: str, text: str, content_type: str = "text/markdown; charset=utf-8") -> ArtifactRef:
        import hashlib

        self.objects[key] = text
        data = text.encode("utf-8")
        return ArtifactRef(bucket="b", key=key, bytes=len(data), sha256=hashlib.sha256(data).hexdigest())

    def get_text(self, ref: ArtifactRef) -> str:
        return self.objects[ref.key]


@pytest.fixture
def compiled(tmp_path) -> tuple[MemoryStore, CompiledResearch]:
    store = MemoryStore()
    finding = store.put_text("workflows/wf/findings/q01.md", f"- {PASSAGE} [1]\n\n**Sources**\n- [1] [Guide <b>x</b>](https://example.com/guide)")
    question = ResearchQuestion(id="q01", question="What about <script>q()</script>?", runtime_arn="arn:r", session_id="s" * 40)
    event = CompileResearchEvent(
        workflow_id="wf", topic=TOPIC, questions=[question],
        findings=[{"question_id": "q01", "summary": "s", "sources": [{"title": "Guide <b>x</b>", "uri": "https://example.com/guide"}],
                   "finding": finding.model_dump()}],
    )
    return store, steps.compile_research(event, store)  # type: ignore[arg-type]


@pytest.fixture
def research(compiled) -> tuple[MemoryStore, ArtifactRef]:
    """The research document (research.json) CompileResearch wrote."""
    store, result = compiled
    return store, result.document


def test_research_md_holds_no_raw_html(compiled):
    store, result = compiled
    ref = result.markdown
    text = store.get_text(ref)
    assert not ACTIVE.search(text), text
    assert "&lt;script>alert" in text and "<https://example.com/guide>" in text  # escaped text, live autolink


def test_analysis_md_from_the_offline_model_holds_no_raw_html(research):
    from relay_agents.analyst import analyze
    from relay_agents.offline import OfflineModel

    store, ref = research
    result = analyze(TOPIC, steps.read_research(store, ref), feedback=FEEDBACK, revision=1, model=OfflineModel())  # type: ignore[arg-type]
    assert not ACTIVE.search(result.markdown), result.markdown
    assert "&lt;iframe" in result.markdown  # the feedback is quoted, escaped
    assert not re.search(r"[\x00-\x08\x0b-\x1f]", result.summary)


def test_report_md_holds_no_raw_html_whatever_the_writer_returns(research):
    store, ref = research
    analysis = store.put_text("workflows/wf/analysis-r0.md", "## Key insights\n\n- ok")
    event = WriteReportEvent(
        workflow_id="wf", topic=TOPIC, research=ref, analysis=analysis,
        approval=ApprovalDecision(approved=True, feedback=FEEDBACK, decided_by="a", decided_at=datetime.now(UTC), approval_id="x"),
    )

    def hostile_writer(topic: str, research: str, analysis: str, approval_feedback: str | None = None) -> str:
        return f"# {topic}\n\n<script>steal()</script>\n\n> {approval_feedback}\n\n<div onclick=x()>hi</div>\x07\n"

    report = steps.write_report(event, store, writer=hostile_writer)  # type: ignore[arg-type]
    text = store.get_text(report.report)
    assert not ACTIVE.search(text) and "<div" not in text and "\x07" not in text, text
    assert text.startswith("# Tokens &lt;script>alert(\"t\")&lt;/script> &amp; &lt;img")


def test_report_md_from_the_offline_writer_holds_no_raw_html(research):
    from relay_agents.offline import OfflineModel
    from relay_agents.writer import write_report

    store, ref = research
    analysis = store.put_text("workflows/wf/analysis-r0.md", "## Key insights\n\n- Task tokens resume executions of workflows.")
    event = WriteReportEvent(
        workflow_id="wf", topic=TOPIC, research=ref, analysis=analysis,
        approval=ApprovalDecision(approved=True, feedback=FEEDBACK, decided_by="a", decided_at=datetime.now(UTC), approval_id="x"),
    )
    report = steps.write_report(event, store, writer=lambda *a, **k: write_report(*a, **k, model=OfflineModel()))  # type: ignore[arg-type]
    text = store.get_text(report.report)
    assert not ACTIVE.search(text), text
    assert "&lt;iframe" in text  # the approval notes are quoted, escaped


def test_the_approval_email_is_plain_text_without_control_characters():
    ref = ArtifactRef(bucket="b", key="k", bytes=0, sha256="0" * 64)
    event = RequestApprovalEvent(
        workflow_id="wf", task_token="t", topic="Topic\x1b[31m red\x00\r\nnext", revision=1, max_revisions=2, timeout_seconds=60,
        analysis=Analysis(analysis=ref, summary="Sum\x07mary\x85 here", revision=1),
    )
    subject, body = steps.approval_email(event, "https://example.com/approvals/x", datetime.now(UTC))
    for text in (subject, body):
        assert not re.search(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]", text), repr(text)
    assert "\n" not in subject and "Topic[31m red" in subject
    assert "Summary here" in body
