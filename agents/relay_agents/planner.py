"""The planner agent: a topic → ``count`` research questions."""

from __future__ import annotations

import re

from relay_core.errors import AgentFailed, InvalidInput
from relay_core.models import MAX_QUESTIONS
from strands.models import Model

from .corpus import Corpus, corpus_from_settings
from .model_factory import build_model
from .prompts import PLANNER_SYSTEM, planner_prompt
from .runner import check_not_declined, make_agent, run_agent
from .tools import SESSION_KEY, ResearchSession, search_documents

_ITEM_RE = re.compile(r"^\s*(?:\d+[.)]|[-*•])\s+(.+?)\s*$")


def parse_questions(text: str) -> list[str]:
    """Numbered or bulleted list items of ``text``, de-duplicated case-insensitively, in order."""
    seen: set[str] = set()
    out: list[str] = []
    for line in text.splitlines():
        match = _ITEM_RE.match(line)
        if not match:
            continue
        question = match.group(1).strip().strip("*").strip()
        if question and question.lower() not in seen:
            seen.add(question.lower())
            out.append(question)
    return out


def plan_questions(
    topic: str, count: int, *, model: Model | None = None, corpus: Corpus | None = None
) -> list[str]:
    """Plan ``count`` research questions about ``topic``.

    Args:
        topic: the research topic (non-empty).
        count: how many questions, 1..``MAX_QUESTIONS`` (40, the Map fan-out bound).
        model: defaults to :func:`~relay_agents.model_factory.build_model`.
        corpus: what the planner's ``search_documents`` searches (default: the configured corpus).

    Returns:
        Exactly ``count`` distinct, non-empty questions (the first ``count`` when the model
        gave more).

    Raises:
        InvalidInput: empty topic or ``count`` out of range.
        AgentFailed: the model gave fewer than ``count`` questions (as numbered or bulleted
            list items), twice: once, then again after one follow-up in the same
            conversation; or it declined (a refusal is not followed up, see
            :func:`relay_agents.runner.check_not_declined`).
        ModelThrottled, ModelUnavailable: provider faults.
    """
    if not topic.strip():
        raise InvalidInput("topic: must not be empty")
    if not 1 <= count <= MAX_QUESTIONS:
        raise InvalidInput(f"count: must be between 1 and {MAX_QUESTIONS}")
    model = model or build_model()
    session = ResearchSession(corpus or corpus_from_settings())
    agent = make_agent(model, PLANNER_SYSTEM, [search_documents], name="relay-planner")
    state = {SESSION_KEY: session}
    answer = run_agent(agent, planner_prompt(topic.strip(), count), "planner", state)
    questions = parse_questions(answer)
    if len(questions) < count:  # one follow-up in the same conversation, unless it declined
        check_not_declined(answer, "planner")
        follow_up = f"You gave {len(questions)} questions; give exactly {count} distinct questions as a numbered list."
        answer = run_agent(agent, follow_up, "planner", state)
        questions = parse_questions(answer)
    if len(questions) < count:
        check_not_declined(answer, "planner")
        raise AgentFailed(f"planner: asked for {count} questions, got {len(questions)}")
    return questions[:count]
