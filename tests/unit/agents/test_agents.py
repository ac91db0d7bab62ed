from __future__ import annotations

import re
import threading

import pytest
from relay_agents.analyst import analyze
from relay_agents.planner import plan_questions
from relay_agents.provenance import OFFLINE_NOTICE
from relay_agents.researcher import research
from relay_agents.writer import write_report
from relay_core.errors import AgentFailed, InvalidInput
from relay_core.models import SUMMARY_MAX_CHARS

pytestmark = pytest.mark.unit

TOPIC = "How do Step Functions task tokens pause a workflow for human approval?"


@pytest.mark.parametrize("count", range(1, 11))
def test_planner_returns_exactly_n_distinct_questions(count, folder_corpus):
    questions = plan_questions(TOPIC, count, corpus=folder_corpus)
    assert len(questions) == count
    assert len({q.lower() for q in questions}) == count
    assert all(q.strip() and q.endswith("?") for q in questions)


def test_planner_questions_come_from_the_topic_keyphrases(folder_corpus):
    questions = plan_questions("Serverless data pipelines", 3, corpus=folder_corpus)
    assert sum("Serverless data pipelines" in q for q in questions) >= 2


def test_planner_rejects_bad_counts(folder_corpus):
    with pytest.raises(InvalidInput, match="count"):
        plan_questions(TOPIC, 0, corpus=folder_corpus)
    with pytest.raises(InvalidInput, match="topic"):
        plan_questions("  ", 3, corpus=folder_corpus)


def test_researcher_cites_the_folder_files(folder_corpus, docs_folder):
    result = research("How do heartbeat timeouts and task tokens work?", corpus=folder_corpus)
    uris = [s.uri for s in result.sources]
    assert (docs_folder / "task-tokens.md").as_uri() in uris
    assert 1 <= len(result.sources) <= 8
    assert f"[Callback task tokens]({(docs_folder / 'task-tokens.md').as_uri()})" in result.answer_markdown
    assert len(result.summary) <= SUMMARY_MAX_CHARS and "[" not in result.summary
    assert OFFLINE_NOTICE in result.answer_markdown


def test_researcher_with_nothing_found_fails(folder_corpus):
    with pytest.raises(AgentFailed, match="no document"):
        research("zebra quokka", corpus=folder_corpus)


def test_concurrent_research_keeps_sources_apart(folder_corpus, docs_folder):
    questions = {
        "map": "What does MaxConcurrency limit in the Map state?",
        "approval": "What does the approval email carry instead of the task token?",
    }
    results: dict[str, object] = {}

    def run(key: str) -> None:
        results[key] = research(questions[key], corpus=folder_corpus)

    threads = [threading.Thread(target=run, args=(k,)) for k in questions for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results["map"].sources[0].uri.endswith("map-state.txt")
    assert results["approval"].sources[0].uri.endswith("approvals.html")


@pytest.fixture
def research_doc(folder_corpus, memory_store):
    """Compiled research: two researched questions and a failed one, through CompileResearch
    (relay_core.steps.compile_research), read back as the research document."""
    from relay_core import steps
    from relay_core.contracts import artifact_key
    from relay_core.models import CompileResearchEvent, Finding, ResearchQuestion

    asked = ["How do task tokens and heartbeats work?", "How does the approval email work?", "What does it cost?"]
    findings = []
    for i, q in enumerate(asked[:2], 1):
        r = research(q, corpus=folder_corpus)
        ref = memory_store.put_text(artifact_key("wf", f"findings/q{i:02d}.md"), r.answer_markdown)
        findings.append(Finding(question_id=f"q{i:02d}", summary=r.summary, sources=r.sources, finding=ref).model_dump())
    questions = [ResearchQuestion(id=f"q{i:02d}", question=q, runtime_arn="arn:r", session_id="s" * 33) for i, q in enumerate(asked, 1)]
    event = CompileResearchEvent(workflow_id="wf", topic=TOPIC, questions=questions, findings=[*findings, None])
    compiled = steps.compile_research(event, memory_store)
    return steps.read_research(memory_store, compiled.document)


def test_analyst_sections_and_summary(research_doc):
    result = analyze(TOPIC, research_doc)
    for section in ("## Key insights", "## Risks", "## Open questions"):
        assert section in result.markdown
    assert "Reviewer feedback addressed" not in result.markdown
    assert "Unanswered: q03: What does it cost?" in result.markdown
    assert OFFLINE_NOTICE in result.markdown
    assert 0 < len(result.summary) <= 840


def test_analyst_addresses_feedback_visibly_and_deterministically(research_doc):
    feedback = "Explain heartbeat timeouts in more depth."
    plain = analyze(TOPIC, research_doc)
    revised = analyze(TOPIC, research_doc, feedback=feedback, revision=1)
    assert revised.markdown != plain.markdown
    assert "## Reviewer feedback addressed (revision 1)" in revised.markdown
    assert f"> {feedback}" in revised.markdown
    addressed = revised.markdown.split("## Reviewer feedback addressed")[1]
    # The feedback's subject is stated in the analysis, and the section says where (once).
    assert re.search(r"heartbeat timeouts: addressed in the (executive summary|key insights) \(sentence \d\)", addressed)
    before = revised.markdown.split("## Reviewer feedback addressed")[0]
    assert before.count("SendTaskHeartbeat") == 1 and "SendTaskHeartbeat" not in addressed
    assert revised.markdown == analyze(TOPIC, research_doc, feedback=feedback, revision=1).markdown


def test_writer_report_has_every_part_and_provenance(research_doc):
    analysis = analyze(TOPIC, research_doc).markdown
    report = write_report(TOPIC, research_doc, analysis, approval_feedback="Ship it, but mention cost.")
    assert report.startswith(f"# {TOPIC}\n")
    for part in ("## Executive summary", "## Findings", "## Analysis", "## Sources", "## Approval notes"):
        assert part in report
    assert "> Ship it, but mention cost." in report
    assert "task-tokens.md" in report.split("## Sources")[1]
    assert OFFLINE_NOTICE in report
    assert report.rstrip().endswith(
        "_Provenance: written by Relay's offline extractive model (relay-offline-extractive; no LLM) for Relay._"
    )
    findings = report.split("## Findings")[1].split("## Analysis")[0]
    cited = {int(n) for n in re.findall(r"\[(\d+)\]", findings)}
    assert cited and cited <= set(range(1, len(research_doc.sources) + 1))  # the report's source numbers
    assert "_No answer: this research branch failed._" in findings


def test_writer_and_analyst_reject_research_with_no_answered_question(research_doc):
    nothing = research_doc.model_copy(
        update={"findings": [f.model_copy(update={"status": "failed", "summary": "", "answer_markdown": "", "sources": []}) for f in research_doc.findings], "sources": []}
    )
    with pytest.raises(InvalidInput, match="research: has no answered question"):
        write_report(TOPIC, nothing, "analysis")
    with pytest.raises(InvalidInput, match="research: has no answered question"):
        analyze(TOPIC, nothing)
