from __future__ import annotations

import pytest
from relay_agents.prompts import RESEARCHER_SYSTEM
from relay_agents.researcher import research
from relay_agents.tools import SESSION_KEY, ResearchSession, search_documents
from relay_core.errors import AgentFailed, ModelThrottled, ModelUnavailable
from strands import Agent
from strands.types.exceptions import ModelThrottledException

from tests.support.scripted_model import ScriptedModel, tool_call

pytestmark = pytest.mark.unit


def test_scripted_model_drives_an_agent_through_a_tool_call(folder_corpus):
    # Given a script: call search_documents, then answer
    model = ScriptedModel(
        [
            tool_call("search_documents", {"query": "heartbeat timeout", "max_results": 2}),
            "Heartbeats keep a callback task alive [1].",
        ]
    )
    session = ResearchSession(folder_corpus)
    agent = Agent(
        model=model, system_prompt=RESEARCHER_SYSTEM, tools=[search_documents], callback_handler=None
    )
    # When the agent runs
    result = agent("Why use heartbeats?", invocation_state={SESSION_KEY: session})
    # Then the tool ran against the corpus and its result reached the model
    assert str(result).strip() == "Heartbeats keep a callback task alive [1]."
    assert session.queries == ["heartbeat timeout"]
    (tool_result,) = model.tool_results
    hits = tool_result["content"][0]["json"]["results"]
    assert tool_result["status"] == "success" and 1 <= len(hits) <= 2
    assert hits[0]["uri"].endswith("task-tokens.md") and hits[0]["ref"] == 1
    assert model.calls[0]["tool_specs"][0]["name"] == "search_documents"


def test_research_with_a_scripted_llm_cites_only_what_it_used(folder_corpus):
    model = ScriptedModel(
        [
            tool_call("search_documents", {"query": "task token approval"}),
            "The page's handler calls SendTaskSuccess [2].",
        ]
    )
    result = research("How is an approval sent back?", model=model, corpus=folder_corpus)
    # The answer had no sources list: research appended one from the recorded hits it cites
    assert len(result.sources) == 1
    assert "**Sources**" in result.answer_markdown and result.sources[0].uri in result.answer_markdown


def test_throttling_maps_to_model_throttled(folder_corpus):
    model = ScriptedModel([ModelThrottledException("ThrottlingException: slow down")])
    with pytest.raises(ModelThrottled, match="throttled"):
        research("anything", model=model, corpus=folder_corpus)
    assert len(model.calls) == 1  # no in-agent retry: the state machine owns retries


def test_other_provider_faults_map_to_model_unavailable(folder_corpus):
    with pytest.raises(ModelUnavailable, match="ConnectionError"):
        research("anything", model=ScriptedModel([ConnectionError("reset by peer")]), corpus=folder_corpus)


def test_empty_answer_is_agent_failed(folder_corpus):
    model = ScriptedModel(
        [tool_call("search_documents", {"query": "task"}), {"role": "assistant", "content": []}]
    )
    with pytest.raises(AgentFailed):
        research("anything", model=model, corpus=folder_corpus)
