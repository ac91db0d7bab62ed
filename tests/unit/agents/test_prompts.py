"""The LLM providers get the same writing rules the quality check measures."""

from __future__ import annotations

import pytest
from relay_agents.prompts import (
    ANALYST_SYSTEM,
    PLANNER_SYSTEM,
    RESEARCHER_SYSTEM,
    WRITER_SYSTEM,
    WRITING_RULES,
)

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("system", [RESEARCHER_SYSTEM, ANALYST_SYSTEM, WRITER_SYSTEM], ids=["researcher", "analyst", "writer"])
def test_every_agent_that_writes_prose_is_told_the_rules_the_quality_check_measures(system):
    # Given a system prompt of an agent whose text reaches a report
    # Then it carries the writing rules: one mention per fact, a citation per sentence, no code
    assert WRITING_RULES in system
    assert "State each fact once" in WRITING_RULES
    assert "Cite every sentence" in WRITING_RULES
    assert "no code" in WRITING_RULES


def test_the_planner_is_told_never_to_paste_the_topic_into_a_question():
    assert "never paste the topic" in PLANNER_SYSTEM


def test_the_analyst_opens_with_an_executive_summary_and_takes_open_questions_from_the_plan():
    assert '"## Executive summary"' in ANALYST_SYSTEM
    assert "only planned questions the research did not answer" in ANALYST_SYSTEM
