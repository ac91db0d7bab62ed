from __future__ import annotations

import asyncio

import pytest
from pydantic import BaseModel
from relay_agents.offline import OfflineModel
from relay_agents.offline.tool_calls import search_queries
from relay_agents.prompts import RESEARCHER_SYSTEM, researcher_prompt
from relay_agents.provenance import OFFLINE_NOTICE
from relay_agents.tools import SESSION_KEY, ResearchSession, search_documents
from strands import Agent, tool

pytestmark = pytest.mark.unit


def _collect(model, messages, tool_specs=None, system_prompt=None, **kwargs):
    async def run():
        return [event async for event in model.stream(messages, tool_specs, system_prompt, **kwargs)]

    return asyncio.run(run())


def test_first_turn_with_tools_streams_a_real_tool_use_event():
    # Given a researcher prompt and the search tool's spec
    model = OfflineModel()
    messages = [
        {"role": "user", "content": [{"text": researcher_prompt("How do Step Functions task tokens work?")}]}
    ]
    events = _collect(model, messages, [search_documents.tool_spec], RESEARCHER_SYSTEM)
    # Then the events have Bedrock's shapes and stop for tool use
    assert events[0] == {"messageStart": {"role": "assistant"}}
    start = events[1]["contentBlockStart"]["start"]["toolUse"]
    assert start["name"] == "search_documents" and start["toolUseId"].startswith("tooluse_")
    assert "task tokens" in events[2]["contentBlockDelta"]["delta"]["toolUse"]["input"].lower()
    assert events[3] == {"contentBlockStop": {"contentBlockIndex": 0}}
    assert events[4] == {"messageStop": {"stopReason": "tool_use"}}
    assert set(events[5]["metadata"]) == {"usage", "metrics"}


def test_agent_tool_loop_really_runs_the_tool_and_cites_its_results(folder_corpus):
    # Given an agent with the offline model and the search tool over a folder corpus
    session = ResearchSession(folder_corpus)
    agent = Agent(
        model=OfflineModel(), system_prompt=RESEARCHER_SYSTEM, tools=[search_documents], callback_handler=None
    )
    # When asked a question
    result = agent(
        researcher_prompt("How do task tokens and heartbeat timeouts work?"),
        invocation_state={SESSION_KEY: session},
    )
    text = str(result)
    # Then Strands executed the tool once per planned query and the session recorded them
    planned = search_queries("researcher", "How do task tokens and heartbeat timeouts work?")
    assert session.queries == planned and session.sources
    assert [m["role"] for m in agent.messages] == ["user"] + ["assistant", "user"] * len(planned) + ["assistant"]
    assert all("toolResult" in agent.messages[2 * n]["content"][0] for n in range(1, len(planned) + 1))
    # And the answer cites the corpus document by title and URI, and says it is offline
    number, ref = session.sources[0]
    assert f"[{ref.title}]({ref.uri})" in text and f"[{number}]" in text
    assert "task-tokens.md" in text
    assert OFFLINE_NOTICE in text


def test_a_researcher_searches_again_with_the_words_its_keyphrases_dropped():
    # Given a question whose keyphrases leave out a word (the service's short name)
    question = "How does S3 versioning protect objects?"
    # When the researcher's searches are planned
    first, *rest = search_queries("researcher", question)
    # Then the first is the keyphrases and the second adds every content word back
    assert "S3" not in first.split()
    assert rest == ["S3 versioning protect objects"]
    # And other roles search once; a second query that adds nothing is not made
    assert search_queries("planner", question) == [first]
    assert len(search_queries("researcher", "task tokens")) == 1


def test_any_search_like_tool_is_called_and_its_output_used():
    calls = []

    @tool
    def lookup(term: str) -> str:
        """Look up a term.

        Args:
            term: The term.
        """
        calls.append(term)
        return "Relay stores findings in S3. The state machine only carries references to them."

    agent = Agent(model=OfflineModel(), tools=[lookup], callback_handler=None)
    text = str(agent("Where does Relay store findings and what does the state machine carry?"))
    assert len(calls) == 1 and calls[0]
    assert "Relay stores findings in S3 [1]." in text


def test_same_input_gives_the_same_output(folder_corpus):
    def answer():
        agent = Agent(
            model=OfflineModel(),
            system_prompt=RESEARCHER_SYSTEM,
            tools=[search_documents],
            callback_handler=None,
        )
        result = agent(
            researcher_prompt("What does MaxConcurrency limit?"),
            invocation_state={SESSION_KEY: ResearchSession(folder_corpus)},
        )
        return str(result), [m["content"] for m in agent.messages]

    first, second = answer(), answer()
    assert first == second


def test_no_substance_is_invented_every_bullet_is_from_the_corpus(folder_corpus, docs_folder):
    session = ResearchSession(folder_corpus)
    agent = Agent(
        model=OfflineModel(), system_prompt=RESEARCHER_SYSTEM, tools=[search_documents], callback_handler=None
    )
    text = str(
        agent(researcher_prompt("How does the approval email work?"), invocation_state={SESSION_KEY: session})
    )
    corpus_text = " ".join(h.text for h in folder_corpus.search("approval email task token Map state", k=10))
    bullets = [
        line[2:].rsplit(" [", 1)[0]
        for line in text.splitlines()
        if line.startswith("- ") and not line.startswith("- [")
    ]
    assert bullets
    assert all(b in " ".join(corpus_text.split()) for b in bullets)


def test_structured_output_fills_the_schema():
    class Questions(BaseModel):
        questions: list[str]

    async def run():
        model = OfflineModel()
        prompt = [
            {
                "role": "user",
                "content": [
                    {"text": "<topic>\nAWS Step Functions callbacks\n</topic>\n<count>\n3\n</count>"}
                ],
            }
        ]
        return [e async for e in model.structured_output(Questions, prompt, "[relay-role: planner]")]

    events = asyncio.run(run())
    result = events[-1]["output"]
    assert isinstance(result, Questions) and len(result.questions) == 3
    assert all(q.endswith("?") for q in result.questions)


def test_agent_structured_output_through_forced_tool():
    class Summary(BaseModel):
        summary: str

    agent = Agent(model=OfflineModel(), callback_handler=None)
    result = agent(
        "Step Functions pauses a callback task until SendTaskSuccess arrives. Heartbeats keep it alive.",
        structured_output_model=Summary,
    )
    assert "SendTaskSuccess" in result.structured_output.summary


def test_config_round_trip_and_unknown_keys_rejected():
    model = OfflineModel(max_sentences=3)
    model.update_config(search_results=2)
    assert model.get_config()["max_sentences"] == 3 and model.get_config()["search_results"] == 2
    with pytest.raises(ValueError, match="temperature"):
        model.update_config(temperature=0.2)
