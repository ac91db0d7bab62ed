"""Each agent driven by a scripted model that answers like a real LLM (tests/support/
scripted_model.py), not by the offline model: a tool call, a malformed answer and a
refusal per agent, and what the agent does with each.

| agent | tool call | malformed answer | refusal |
|---|---|---|---|
| planner | searches, then plans | no numbered list: one follow-up in the same conversation, then ``AgentFailed`` | ``AgentFailed``, no follow-up |
| researcher | searches; a call with bad arguments gets the tool's validation error and is made again | no citations and no sources list: cites the best retrieved sources; no search at all: the researcher searches the question for it and asks again | ``AgentFailed``, not a finding |
| analyst | it has no tools: an invented call gets "Unknown tool" and the agent carries on | no "Key insights" section: the summary comes from the whole analysis; no prose: ``AgentFailed`` | ``AgentFailed`` |
| writer | as the analyst | no title and no sources section: the topic becomes the title and the research document's sources are appended | ``AgentFailed`` |

A refusal is a refusal stop reason (Bedrock's ``guardrail_intervened`` /
``content_filtered``, Anthropic's ``refusal``) or a bare refusal text; neither is retried
by the state machine (``AgentFailed`` is not in any Retry list).
"""

from __future__ import annotations

import json

import pytest
from relay_agents.analyst import analyze
from relay_agents.planner import plan_questions
from relay_agents.prompts import read_tag
from relay_agents.researcher import research
from relay_agents.writer import write_report
from relay_core.errors import AgentFailed, NoMatchingDocument
from relay_core.models import CitedSource, ResearchDocument, ResearchFinding, ResearchSource

from tests.support.scripted_model import ScriptedModel, tool_call

pytestmark = pytest.mark.unit

TOPIC = "How do Step Functions task tokens pause a workflow for human approval?"
REFUSAL = "I'm sorry, but I can't help with that request."


def refused_by(stop_reason: str) -> dict:
    """An assistant turn ended by a refusal stop reason (its text is what the provider sent)."""
    return {"role": "assistant", "content": [{"text": "Content blocked."}], "stopReason": stop_reason}


def last_user_text(call: dict) -> str:
    """The text of the last user message the model was sent in ``call``."""
    user = [m for m in call["messages"] if m["role"] == "user" and any("text" in b for b in m["content"])]
    return "".join(b.get("text", "") for b in user[-1]["content"])


@pytest.fixture
def document(docs_folder) -> ResearchDocument:
    """A research document: one answered question citing two sources, one failed question."""
    tokens, approvals = (docs_folder / "task-tokens.md").as_uri(), (docs_folder / "guide/approvals.html").as_uri()
    return ResearchDocument(
        workflow_id="wf-1",
        topic=TOPIC,
        findings=[
            ResearchFinding(
                question_id="q01",
                question="How do task tokens pause a workflow?",
                status="answered",
                summary="A task token pauses the workflow until SendTaskSuccess.",
                answer_markdown=(
                    "A task token pauses the workflow until a worker calls SendTaskSuccess [1]. "
                    "The approval email carries a signed link, never the task token [2].\n\n"
                    f"**Sources**\n- [1] [Callback task tokens]({tokens})\n- [2] [Human approval pattern]({approvals})\n"
                ),
                sources=[CitedSource(number=1, ref=1), CitedSource(number=2, ref=2)],
            ),
            ResearchFinding(question_id="q02", question="What does it cost?", status="failed"),
        ],
        sources=[
            ResearchSource(number=1, title="Callback task tokens", uri=tokens),
            ResearchSource(number=2, title="Human approval pattern", uri=approvals),
        ],
    )


# ------------------------------------------------------------------------- planner


def test_planner_searches_the_corpus_then_plans_from_a_numbered_list(folder_corpus):
    # Given a model that searches first, then answers with a numbered list
    model = ScriptedModel([
        tool_call("search_documents", {"query": "task token approval", "max_results": 3}),
        "1. How does a task token pause a workflow?\n2. How is an approval sent back?",
    ])  # fmt: skip
    # When the planner plans two questions
    questions = plan_questions(TOPIC, 2, model=model, corpus=folder_corpus)
    # Then the questions are the list items, and the search really ran against the corpus
    assert questions == ["How does a task token pause a workflow?", "How is an approval sent back?"]
    (result,) = model.tool_results
    assert result["status"] == "success" and result["content"][0]["json"]["results"]
    assert [spec["name"] for spec in model.calls[0]["tool_specs"]] == ["search_documents"]


def test_planner_follows_up_once_in_the_same_conversation_when_the_answer_is_not_a_list(folder_corpus):
    # Given a model that first answers in prose, then with a list
    model = ScriptedModel(["You could look at task tokens and at approvals.", "1. What is a task token?\n2. Who approves?"])
    # When the planner plans two questions
    questions = plan_questions(TOPIC, 2, model=model, corpus=folder_corpus)
    # Then it asked once more, in the same conversation, and took the second answer
    assert questions == ["What is a task token?", "Who approves?"]
    assert len(model.calls) == 2
    assert last_user_text(model.calls[1]) == "You gave 0 questions; give exactly 2 distinct questions as a numbered list."
    assert any(m["role"] == "assistant" and "You could look at" in json.dumps(m) for m in model.calls[1]["messages"])


def test_planner_fails_when_the_follow_up_is_still_short(folder_corpus):
    model = ScriptedModel(["Task tokens, mostly.", "1. What is a task token?"])
    with pytest.raises(AgentFailed, match=r"^planner: asked for 3 questions, got 1$"):
        plan_questions(TOPIC, 3, model=model, corpus=folder_corpus)
    assert len(model.calls) == 2  # exactly one follow-up


def test_planner_keeps_the_first_n_when_the_model_gives_more(folder_corpus):
    model = ScriptedModel(["1. A?\n2. B?\n3. A?\n4. C?"])
    assert plan_questions(TOPIC, 2, model=model, corpus=folder_corpus) == ["A?", "B?"]


def test_planner_refusal_fails_without_a_follow_up(folder_corpus):
    model = ScriptedModel([REFUSAL])
    with pytest.raises(AgentFailed, match=r"^planner: the model declined to answer: \"I'm sorry, but I can't help"):
        plan_questions(TOPIC, 3, model=model, corpus=folder_corpus)
    assert len(model.calls) == 1


def test_planner_refusal_in_the_follow_up_is_named_as_a_refusal(folder_corpus):
    model = ScriptedModel(["Task tokens, mostly.", "I cannot do that."])
    with pytest.raises(AgentFailed, match=r"^planner: the model declined to answer: 'I cannot do that\.'$"):
        plan_questions(TOPIC, 3, model=model, corpus=folder_corpus)


# ---------------------------------------------------------------------- researcher


def test_researcher_cites_what_it_found_and_records_each_citation_number(folder_corpus, docs_folder):
    # Given a model that searches, then answers citing the passage it used
    model = ScriptedModel([
        tool_call("search_documents", {"query": "heartbeat task token", "max_results": 3}),
        "Heartbeat timeouts fail the task when the worker stops calling SendTaskHeartbeat [1].",
    ])  # fmt: skip
    # When the researcher answers
    result = research("What do heartbeats do?", model=model, corpus=folder_corpus)
    # Then the finding cites the document behind [1], with the number the text uses
    (source,) = result.sources
    assert source.uri == (docs_folder / "task-tokens.md").as_uri() and source.ref == 1
    assert f"- [1] [Callback task tokens]({source.uri})" in result.answer_markdown


def test_researcher_tool_call_with_bad_arguments_gets_the_validation_error_and_is_made_again(folder_corpus):
    # Given a model whose first call lacks the required query
    model = ScriptedModel([
        tool_call("search_documents", {"max_results": 2}, tool_use_id="bad"),
        tool_call("search_documents", {"query": "Map state MaxConcurrency"}, tool_use_id="good"),
        "MaxConcurrency limits how many iterations run at the same time [1].",
    ])  # fmt: skip
    result = research("What does MaxConcurrency do?", model=model, corpus=folder_corpus)
    # Then Strands answered the bad call with an error naming the field, and the good call ran
    bad, good = model.tool_results
    assert bad["status"] == "error" and "query" in bad["content"][0]["text"] and "Field required" in bad["content"][0]["text"]
    assert good["status"] == "success"
    assert [s.uri.rsplit("/", 1)[-1] for s in result.sources] == ["map-state.txt"]


def test_researcher_answer_without_citations_falls_back_to_the_best_retrieved_sources(folder_corpus):
    # Given an answer with no [n] and no sources list
    model = ScriptedModel([
        tool_call("search_documents", {"query": "task token heartbeat approval"}),
        "Task tokens pause the workflow until a worker answers.",
    ])  # fmt: skip
    result = research("How do task tokens work?", model=model, corpus=folder_corpus)
    # Then the finding cites the retrieved sources, best score first, and lists them
    assert result.sources and len(result.sources) <= 8
    assert [s.ref for s in result.sources] == sorted(s.ref for s in result.sources)
    assert "**Sources**" in result.answer_markdown
    for source in result.sources:
        assert f"- [{source.ref}] [{source.title}]({source.uri})" in result.answer_markdown


def test_researcher_searches_for_a_model_that_answers_from_memory_and_asks_it_again(folder_corpus):
    # Given a model that answers without calling search_documents, then answers from what it is given
    model = ScriptedModel([
        "Task tokens pause workflows; I know this well.",
        "The workflow pauses until a worker calls SendTaskSuccess with the task token [1].",
    ])
    # When it researches
    result = research("How do task tokens work?", model=model, corpus=folder_corpus)
    # Then the memory answer is set aside: the researcher searched the question for it and
    # the model's second turn read the passages as the result of that call
    second = model.calls[1]["messages"]
    assert second[1]["content"][0]["toolUse"]["input"] == {"query": "How do task tokens work?", "max_results": 5}
    assert "SendTaskSuccess" in json.dumps(second[2]["content"][0]["toolResult"])
    assert "I know this well" not in result.answer_markdown
    assert result.answer_markdown.startswith("The workflow pauses until a worker calls SendTaskSuccess")
    assert [s.title for s in result.sources][:1] == ["Callback task tokens"]


def test_researcher_whose_model_declines_after_the_search_made_for_it_fails(folder_corpus):
    model = ScriptedModel(["Task tokens pause workflows.", REFUSAL])
    with pytest.raises(AgentFailed, match=r"^researcher: the model declined to answer") as raised:
        research("How do task tokens work?", model=model, corpus=folder_corpus)
    assert not isinstance(raised.value, NoMatchingDocument)


def test_researcher_refusal_is_not_stored_as_a_finding(folder_corpus):
    model = ScriptedModel([tool_call("search_documents", {"query": "task token"}), REFUSAL])
    with pytest.raises(AgentFailed, match=r"^researcher: the model declined to answer"):
        research("How do task tokens work?", model=model, corpus=folder_corpus)


# ------------------------------------------------------------------------- analyst


def test_analyst_reads_the_research_document_and_carries_on_after_calling_a_tool_it_lacks(document):
    # Given a model that calls a tool the analyst does not have, then writes its analysis
    model = ScriptedModel([
        tool_call("search_documents", {"query": "task token"}),
        "## Key insights\n\n- A task token pauses the workflow until SendTaskSuccess [1].\n\n## Risks\n\n- Cost is unknown.\n\n"
        "## Open questions\n\n- q02: What does it cost?",
    ])  # fmt: skip
    result = analyze(TOPIC, document, model=model)
    # Then Strands answered the call with "Unknown tool" and the analysis is the second answer
    (error,) = model.tool_results
    assert error["status"] == "error" and error["content"][0]["text"] == "Unknown tool: search_documents"
    assert result.summary == "A task token pauses the workflow until SendTaskSuccess."
    assert "## Risks" in result.markdown
    # And the model was given the research document itself, as JSON
    sent = read_tag(last_user_text(model.calls[0]), "research")
    assert ResearchDocument.model_validate_json(sent or "") == document


def test_analyst_without_a_key_insights_section_summarises_the_whole_analysis(document):
    model = ScriptedModel(["Task tokens pause executions until a worker calls back. Heartbeats keep long waits alive."])
    result = analyze(TOPIC, document, model=model)
    assert result.summary == "Task tokens pause executions until a worker calls back. Heartbeats keep long waits alive."


def test_analyst_with_only_headings_fails(document):
    model = ScriptedModel(["## Key insights\n\n## Risks\n"])
    with pytest.raises(AgentFailed, match=r"^analyst: the analysis has no prose$"):
        analyze(TOPIC, document, model=model)


def test_analyst_refusal_fails(document):
    model = ScriptedModel(["Unfortunately, I am unable to analyse this."])
    with pytest.raises(AgentFailed, match=r"^analyst: the model declined to answer: 'Unfortunately, I am unable"):
        analyze(TOPIC, document, model=model)


# -------------------------------------------------------------------------- writer


def test_writer_carries_on_after_calling_a_tool_it_lacks(document):
    model = ScriptedModel([
        tool_call("fetch_url", {"url": "https://example.com"}),
        "# Task tokens\n\n## Executive summary\n\nThey pause workflows [1].\n\n## Sources\n\n1. [Callback task tokens](x)",
    ])  # fmt: skip
    report = write_report(TOPIC, document, "## Key insights\n\n- ok", model=model)
    (error,) = model.tool_results
    assert error["status"] == "error" and error["content"][0]["text"] == "Unknown tool: fetch_url"
    assert report.startswith("# Task tokens\n") and report.lower().count("## sources") == 1
    assert report.rstrip().endswith("_Provenance: written by ScriptedModel scripted for Relay._")


def test_writer_without_title_or_sources_gets_the_topic_and_the_documents_sources(document):
    # Given a report with no "# " title and no "## Sources" section
    model = ScriptedModel(["## Executive summary\n\nTask tokens pause workflows until approval [1][2]."])
    report = write_report(TOPIC, document, "## Key insights\n\n- ok", model=model)
    # Then the topic is the title and the sources come from the research document, by number
    assert report.startswith(f"# {TOPIC}\n\n## Executive summary")
    sources = report.split("## Sources\n\n", 1)[1].split("\n\n---", 1)[0]
    assert sources.splitlines() == [f"{s.number}. [{s.title}]({s.uri})" for s in document.sources]
    # And the writer was given the research document itself, as JSON
    sent = read_tag(last_user_text(model.calls[0]), "research")
    assert ResearchDocument.model_validate_json(sent or "") == document


def test_writer_refusal_fails(document):
    model = ScriptedModel(["I won't write this report."])
    with pytest.raises(AgentFailed, match=r"^writer: the model declined to answer: \"I won't write this report\.\"$"):
        write_report(TOPIC, document, "## Key insights\n\n- ok", model=model)


# ----------------------------------------------------------------- every agent


@pytest.mark.parametrize("stop_reason", ["guardrail_intervened", "content_filtered", "refusal"])
@pytest.mark.parametrize("agent", ["planner", "researcher", "analyst", "writer"])
def test_a_refusal_stop_reason_fails_every_agent_at_once(agent, stop_reason, folder_corpus, document):
    # Given a provider that ends the turn with a refusal stop reason
    model = ScriptedModel([refused_by(stop_reason)])
    run = {
        "planner": lambda: plan_questions(TOPIC, 2, model=model, corpus=folder_corpus),
        "researcher": lambda: research("How do task tokens work?", model=model, corpus=folder_corpus),
        "analyst": lambda: analyze(TOPIC, document, model=model),
        "writer": lambda: write_report(TOPIC, document, "## Key insights\n\n- ok", model=model),
    }[agent]
    # Then the agent fails naming the stop reason, after one model call (no follow-up)
    with pytest.raises(AgentFailed, match=rf"^{agent}: the model declined to answer \(stop reason {stop_reason}\)$"):
        run()
    assert len(model.calls) == 1


@pytest.mark.parametrize(
    ("text", "refusal"),
    [
        ("I'm sorry, but I can't help with that.", True),
        ("I’m afraid I cannot assist.", True),
        ("Sorry, I won't do that.", True),
        ("I am unable to answer from these passages.", True),
        ("I can help: 1. What is a task token?", False),
        ("Task tokens cannot be reused [1].", False),
        ("I can't cover cost here. " + "Task tokens pause executions until a worker calls back. " * 10, False),
    ],
)
def test_what_counts_as_a_bare_refusal(text, refusal):
    from relay_agents.runner import declined

    assert declined(text) is refusal
