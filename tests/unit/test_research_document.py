"""The research document: what CompileResearch hands AnalyzeResearch and WriteReport
(``research.json``), its rules, and ``research.md`` written from the same document."""

from __future__ import annotations

import re

import pytest
from pydantic import ValidationError
from relay_core import steps
from relay_core.errors import AgentFailed, InvalidInput
from relay_core.models import (
    ArtifactRef,
    CitedSource,
    CompileResearchEvent,
    ResearchDocument,
    ResearchFinding,
    ResearchQuestion,
    ResearchSource,
)

from tests.support.fakes import InMemoryArtifactStore

pytestmark = pytest.mark.unit


class MemoryStore(InMemoryArtifactStore):
    """The in-memory artifact store, remembering each object's content type."""

    def __init__(self) -> None:
        super().__init__(bucket="b")
        self.content_types: dict[str, str] = {}

    def put_text(self, key: str, text: str, content_type: str = "text/markdown; charset=utf-8") -> ArtifactRef:
        self.content_types[key] = content_type
        return super().put_text(key, text, content_type)


def finding(store: MemoryStore, qid: str, text: str, *sources: tuple[str, int]) -> dict:
    ref = store.put_text(f"workflows/wf-1/findings/{qid}.md", text)
    cited = [{"title": f"Title of {uri}", "uri": uri, "score": 1.0, "ref": n} for uri, n in sources]
    return {"question_id": qid, "summary": text[:40], "sources": cited, "finding": ref.model_dump()}


def compile_three(store: MemoryStore):
    questions = [ResearchQuestion(id=f"q{i:02d}", question=f"Question {i}?", runtime_arn="arn:r", session_id="s" * 33) for i in (1, 2, 3)]
    findings = [
        finding(store, "q01", "First answer [1] and [2].", ("doc://a", 1), ("doc://b", 2)),
        None,
        finding(store, "q03", "Third answer [1] and [2].", ("doc://c", 1), ("doc://a", 2)),
    ]
    event = CompileResearchEvent(workflow_id="wf-1", topic="Topic", questions=questions, findings=findings)
    return steps.compile_research(event, store)


def test_compile_research_writes_the_research_document_as_json_beside_research_md():
    # Given three questions, the second failed, sources shared between answers
    store = MemoryStore()
    # When CompileResearch runs
    result = compile_three(store)
    # Then research.json holds the document: findings in plan order, sources deduplicated
    assert result.document.key == "workflows/wf-1/research.json"
    assert store.content_types[result.document.key] == "application/json"
    document = steps.read_research(store, result.document)
    assert [(f.question_id, f.status) for f in document.findings] == [("q01", "answered"), ("q02", "failed"), ("q03", "answered")]
    assert [(s.number, s.uri) for s in document.sources] == [(1, "doc://a"), (2, "doc://b"), (3, "doc://c")]
    # And each citation maps the answer's own [ref] to the document's number
    assert document.findings[2].sources == [CitedSource(number=3, ref=1), CitedSource(number=1, ref=2)]
    assert document.findings[0].answer_markdown == "First answer [1] and [2]."
    assert document.failed_questions == ["q02"] and len(document.answered) == 2
    # And the counts in the state data agree with the document
    assert (result.answered, result.failed_questions, result.sources) == (2, ["q02"], 3)
    # And research.md, for people, says the same in the document's numbering
    markdown = store.get_text(result.markdown)
    assert result.markdown.key == "workflows/wf-1/research.md"
    assert "## q02: Question 2?\n\n_No answer: this research branch failed._" in markdown
    assert "Third answer [1] and [2].\n\nSources: [3] [1]" in markdown
    assert markdown.endswith("## Sources\n\n1. Title of doc://a <doc://a>\n2. Title of doc://b <doc://b>\n3. Title of doc://c <doc://c>\n")


def test_compile_research_with_nothing_answered_fails_and_writes_nothing():
    store = MemoryStore()
    questions = [ResearchQuestion(id="q01", question="Q?", runtime_arn="arn:r", session_id="s" * 33)]
    event = CompileResearchEvent(workflow_id="wf-1", topic="T", questions=questions, findings=[{"Error": "x"}])
    with pytest.raises(AgentFailed, match="no research question was answered"):
        steps.compile_research(event, store)
    assert store.objects == {}


def test_reading_research_md_as_the_document_is_a_clear_invalid_input():
    # Given the reference of research.md (what an execution started before research.json passes)
    store = MemoryStore()
    result = compile_three(store)
    # When it is read as the research document / Then the error names the object, not retried
    with pytest.raises(InvalidInput, match=r"^research: s3://b/workflows/wf-1/research.md is not a research document: "):
        steps.read_research(store, result.markdown)


def answered(qid: str, *numbers: int) -> ResearchFinding:
    return ResearchFinding(question_id=qid, question="Q?", status="answered", answer_markdown="A.",
                           sources=[CitedSource(number=n) for n in numbers])  # fmt: skip


SOURCES = [ResearchSource(number=1, title="A", uri="doc://a"), ResearchSource(number=2, title="B", uri="doc://b")]


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"findings": [answered("q01", 3)], "sources": SOURCES}, "findings.q01.sources: cites source 3, the document has 2"),
        ({"findings": [answered("q01"), answered("q01")], "sources": []}, "findings: question ids repeat (q01)"),
        ({"findings": [answered("q01")], "sources": [SOURCES[1]]}, "sources: must be numbered 1..1 in order, got [2]"),
        ({"findings": [answered("q01")], "sources": [SOURCES[0], SOURCES[0].model_copy(update={"number": 2})]}, "sources: each URI must appear once"),
        ({"findings": [], "sources": []}, "findings"),
    ],
)
def test_an_inconsistent_research_document_is_refused_naming_the_field(fields, message):
    with pytest.raises(ValidationError, match=re.escape(message)):
        ResearchDocument(workflow_id="wf-1", topic="T", **fields)


def test_a_failed_finding_holds_no_answer():
    with pytest.raises(ValidationError, match="q01: a failed finding has no summary, answer or sources"):
        ResearchFinding(question_id="q01", question="Q?", status="failed", answer_markdown="Something.")


def test_the_document_round_trips_through_json_and_looks_sources_up_by_number():
    document = ResearchDocument(workflow_id="wf-1", topic="T", findings=[answered("q01", 2, 1)], sources=SOURCES)
    assert ResearchDocument.model_validate_json(document.model_dump_json()) == document
    assert document.source(2).uri == "doc://b"
    with pytest.raises(KeyError, match="source 3: the document has 2 sources"):
        document.source(3)
