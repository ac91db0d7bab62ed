"""What each agent does when a real model misbehaves, with a scripted model that misbehaves
the way a small one does (relay_agents.runner's module docstring lists the cases; the same
cases against the embedded llama.cpp server are in tests/e2e/test_local_model.py).

| fault | what happens |
|---|---|
| runaway answer, cut at the token cap | its complete sentences, each once; none → ``AgentFailed`` |
| tool loop | ``AgentFailed`` after ``MAX_TURNS`` turns |
| malformed tool call (unknown tool) | an error result, and the agent carries on |
| empty answer | ``AgentFailed`` |
| context overflow | the analyst and writer try once more with each finding's summary; twice → ``AgentFailed`` |
| structured answer not of the schema | the planner's and analyst's text fallback |
| a call's tokens | counted, also when the call failed |
"""

from __future__ import annotations

import json

import pytest
from relay_agents.analyst import AnalysisSections, analyze
from relay_agents.planner import plan_questions, question_list
from relay_agents.researcher import research
from relay_agents.runner import (
    MAX_TURNS,
    StructuredOutputFailed,
    make_agent,
    metered,
    run_agent,
    run_structured,
    salvage_cut_answer,
)
from relay_agents.writer import write_report
from relay_core.errors import AgentFailed
from relay_core.models import CitedSource, ResearchDocument, ResearchFinding, ResearchSource
from strands.types.exceptions import ContextWindowOverflowException

from tests.support.scripted_model import ScriptedModel, tool_call

pytestmark = pytest.mark.unit

TOPIC = "How do Step Functions task tokens pause a workflow?"
LONG_ANSWER = "A task token pauses the workflow until a worker calls SendTaskSuccess [1]. " * 40


def cut(text: str, usage: dict | None = None) -> dict:
    """An assistant turn the token cap cut off."""
    return {"role": "assistant", "content": [{"text": text}], "stopReason": "max_tokens", "usage": usage or {"inputTokens": 0, "outputTokens": 0}}


@pytest.fixture
def document(docs_folder) -> ResearchDocument:
    tokens = (docs_folder / "task-tokens.md").as_uri()
    return ResearchDocument(
        workflow_id="wf-1",
        topic=TOPIC,
        findings=[
            ResearchFinding(
                question_id="q01",
                question="How do task tokens pause a workflow?",
                status="answered",
                summary="The workflow waits for SendTaskSuccess.",
                answer_markdown=LONG_ANSWER + f"\n\n**Sources**\n- [1] [Callback task tokens]({tokens})\n",
                sources=[CitedSource(number=1, ref=1)],
            )
        ],
        sources=[ResearchSource(number=1, title="Callback task tokens", uri=tokens)],
    )


# ----------------------------------------------------------------- a model without tools


def test_a_model_that_cannot_call_tools_gets_the_search_at_once(folder_corpus):
    # Given a model that says it cannot call tools (a llama.cpp template without tools)
    model = ScriptedModel(["The workflow waits until a worker calls SendTaskSuccess [1]."])
    model.relay_calls_tools = False  # type: ignore[attr-defined]
    # When it researches, its one call already holds the passages of the search made for it
    result = research("How do task tokens work?", model=model, corpus=folder_corpus)
    assert len(model.calls) == 1 and "toolResult" in json.dumps(model.calls[0]["messages"])
    assert result.answer_markdown.startswith("The workflow waits until a worker calls SendTaskSuccess [1].")


def test_a_structured_planner_without_tools_asks_for_the_json_at_once(folder_corpus):
    questions = ["How does a task token pause a workflow?", "What ends the wait?"]
    model = ScriptedModel([{"questions": questions}], structured=True)
    model.relay_calls_tools = False  # type: ignore[attr-defined]
    assert plan_questions(TOPIC, 2, model=model, corpus=folder_corpus) == questions
    assert len(model.calls) == 1


# ----------------------------------------------------------------- runaway, loops, empty


def test_a_runaway_answer_keeps_its_complete_sentences_once(folder_corpus):
    # Given a model that searches, then repeats itself until the token cap cuts it off
    runaway = "Task tokens pause a workflow [1]. Task tokens pause a workflow [1]. A worker calls SendTaskSuccess [1]. And then it"
    model = ScriptedModel([tool_call("search_documents", {"query": "task token"}), cut(runaway)])
    # When it researches
    result = research("How do task tokens work?", model=model, corpus=folder_corpus)
    # Then the answer is each complete sentence once, and the unfinished one is dropped
    assert result.answer_markdown.startswith("Task tokens pause a workflow [1]. A worker calls SendTaskSuccess [1].\n")
    assert "And then it" not in result.answer_markdown


@pytest.mark.parametrize(
    ("text", "kept"),
    [
        ("One. Two. One. Thr", "One. Two."),
        ("- A line [1].\n- A line [1].\n- Another line [2].\n- cut", "- A line [1].\n- Another line [2]."),
        ('He said "yes." Then', 'He said "yes."'),
        ("no sentence ends here", ""),
    ],
)
def test_what_is_kept_of_a_cut_answer(text, kept):
    assert salvage_cut_answer(text) == kept


def test_a_cut_answer_without_a_complete_sentence_is_agent_failed(document):
    model = ScriptedModel([cut("The report begins and never")])
    with pytest.raises(AgentFailed, match=r"^writer: the model reached its token cap without finishing a sentence$"):
        write_report(TOPIC, document, "## Executive summary\n\nA summary [1].", model=model)


def test_a_model_that_keeps_calling_tools_stops_after_max_turns(folder_corpus):
    calls = [tool_call("search_documents", {"query": f"task token {i}"}, tool_use_id=f"t{i}") for i in range(MAX_TURNS + 2)]
    model = ScriptedModel(calls)
    with pytest.raises(AgentFailed, match=rf"^researcher: the model was still calling tools after {MAX_TURNS} turns$"):
        research("How do task tokens work?", model=model, corpus=folder_corpus)
    assert len(model.calls) == MAX_TURNS


def test_a_call_to_a_tool_the_agent_lacks_gets_an_error_result_and_the_agent_carries_on(document):
    model = ScriptedModel([tool_call("delete_everything", {"path": "/"}), "# Report\n\nA task token pauses the workflow [1]."])
    report = write_report(TOPIC, document, "## Executive summary\n\nA summary [1].", model=model)
    assert report.startswith("# Report\n\nA task token pauses the workflow [1].")
    (result,) = model.tool_results
    assert result["status"] == "error"


def test_an_empty_answer_is_agent_failed(document):
    model = ScriptedModel([{"role": "assistant", "content": [{"text": "   "}]}])
    with pytest.raises(AgentFailed, match=r"^writer: the agent returned no text \(stop reason end_turn\)$"):
        write_report(TOPIC, document, "## Executive summary\n\nA summary [1].", model=model)


# ----------------------------------------------------------------- context overflow


def test_the_writer_tries_once_more_with_the_findings_summaries_when_the_context_overflows(document):
    # Given a model whose context the whole research overflows
    overflow = ContextWindowOverflowException("request (9031 tokens) exceeds the available context size (8192 tokens)")
    model = ScriptedModel([overflow, "# Report\n\nThe workflow waits for SendTaskSuccess [1]."])
    # When the writer writes
    report = write_report(TOPIC, document, "## Executive summary\n\nA summary [1].", model=model)
    # Then the second prompt carries each finding's summary instead of its answer
    first, second = (json.dumps(call["messages"]) for call in model.calls)
    assert LONG_ANSWER.strip()[:80] in first and LONG_ANSWER.strip()[:80] not in second
    assert "The workflow waits for SendTaskSuccess." in second
    assert report.startswith("# Report\n\nThe workflow waits for SendTaskSuccess [1].")


def test_the_analyst_fails_when_even_the_shortened_research_overflows(document):
    overflow = ContextWindowOverflowException("request exceeds the available context size")
    model = ScriptedModel([overflow, ContextWindowOverflowException("still too long")])
    # (Strands first tries to trim the conversation; a one-prompt conversation cannot be)
    with pytest.raises(AgentFailed, match=r"^analyst: ContextWindowOverflowException: "):
        analyze(TOPIC, document, model=model)


# ----------------------------------------------------------------- structured output


def test_a_structured_planner_takes_its_questions_from_the_json_answer(folder_corpus):
    # Given a real-like model: a prose answer first, then the JSON it is asked for
    questions = ["How does a task token pause a workflow?", "What ends the wait?", "Which call sends the result?"]
    model = ScriptedModel(["Task tokens are interesting; here are some thoughts.", {"questions": questions}], structured=True)
    # When it plans
    planned = plan_questions(TOPIC, 3, model=model, corpus=folder_corpus)
    # Then the questions are the JSON's, asked for under the schema of exactly three questions
    assert planned == questions
    assert model.calls[1]["output_model"].model_json_schema()["properties"]["questions"]["minItems"] == 3


def test_a_structured_planner_whose_json_is_not_of_the_schema_uses_its_numbered_list(folder_corpus):
    model = ScriptedModel(["1. How do task tokens work?\n2. What ends the wait?", "{\"questions\": [\"cut"], structured=True)
    assert plan_questions(TOPIC, 2, model=model, corpus=folder_corpus) == ["How do task tokens work?", "What ends the wait?"]


def test_the_planners_schema_admits_only_questions():
    schema = question_list(2)
    assert schema(questions=["How do task tokens work?", "What ends the wait?"])
    for bad in (["1", "2"], ["Task tokens are strings.", "What ends the wait?"], ['What is "this"?', "What ends the wait?"]):
        with pytest.raises(ValueError):
            schema(questions=bad)


def test_a_structured_analyst_renders_its_sections(document):
    sections = {
        "executive_summary": ["A task token pauses the workflow until SendTaskSuccess [1]."],
        "key_insights": ["The worker holds the token [1].", "The worker holds the token [1]."],
        "risks": [],
        "open_questions": ["What does it cost?"],
    }
    model = ScriptedModel([sections], structured=True)
    result = analyze(TOPIC, document, model=model)
    assert "## Executive summary\n\nA task token pauses the workflow until SendTaskSuccess [1]." in result.markdown
    assert result.markdown.count("The worker holds the token [1].") == 1  # each sentence once
    assert "## Risks\n\n- None stated in the research." in result.markdown
    assert "## Open questions\n\n- What does it cost?" in result.markdown
    assert result.summary == "A task token pauses the workflow until SendTaskSuccess."


def test_a_structured_analyst_whose_json_is_cut_writes_markdown_instead(document):
    model = ScriptedModel(['{"executive_summary": ["A task', "## Executive summary\n\nThe worker calls SendTaskSuccess [1]."], structured=True)
    result = analyze(TOPIC, document, model=model)
    assert result.summary == "The worker calls SendTaskSuccess."


def test_run_structured_names_an_answer_not_of_the_schema():
    agent = make_agent(ScriptedModel([{"executive_summary": []}], structured=True), "system")
    with pytest.raises(StructuredOutputFailed, match=r"^analyst: the structured answer is not of the schema: "):
        run_structured(agent, "Analyse.", AnalysisSections, "analyst")


# ----------------------------------------------------------------- token usage


def test_tokens_are_counted_for_failed_and_cut_calls_too(document):
    model = ScriptedModel([cut("Cut short [1]. And", {"inputTokens": 100, "outputTokens": 50})], model_id="small")
    with metered() as tokens:
        write_report(TOPIC, document, "## Executive summary\n\nA summary [1].", model=model)
    assert tokens.payload() == {"usage": {"model": "small", "inputTokens": 100, "outputTokens": 50}}
    model = ScriptedModel([cut("never finished", {"inputTokens": 7, "outputTokens": 3})], model_id="small")
    agent = make_agent(model, "system")
    with metered() as tokens, pytest.raises(AgentFailed):
        run_agent(agent, "Write.", "writer")
    assert tokens.payload() == {"usage": {"model": "small", "inputTokens": 7, "outputTokens": 3}}


# ----------------------------------------------------------------- what is logged


def test_each_fallback_taken_is_logged_as_a_model_fallback(folder_corpus, document, caplog):
    caplog.set_level("INFO", logger="relay")
    research("How do task tokens work?", model=ScriptedModel(["From memory.", "Grounded [1]."]), corpus=folder_corpus)
    write_report(TOPIC, document, "## Executive summary\n\nA summary [1].", model=ScriptedModel([cut("Kept [1]. Cut")]))
    fallbacks = [(r.role, r.fallback) for r in caplog.records if r.getMessage() == "model fallback"]  # type: ignore[attr-defined]
    assert fallbacks == [("researcher", "search_for_model"), ("writer", "cut_answer_kept")]
