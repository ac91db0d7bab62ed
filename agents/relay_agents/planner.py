"""The planner agent: a topic → ``count`` research questions."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import BaseModel, Field, StringConstraints, create_model
from relay_core.errors import AgentFailed, InvalidInput
from relay_core.models import MAX_QUESTIONS
from strands.models import Model

from .corpus import Corpus, corpus_from_settings
from .model_factory import build_model
from .prompts import PLANNER_SYSTEM, planner_json_prompt, planner_prompt
from .runner import (
    StructuredOutputFailed,
    calls_tools,
    check_not_declined,
    make_agent,
    note_fallback,
    run_agent,
    run_structured,
    wants_structured_output,
)
from .tools import SESSION_KEY, ResearchSession, search_documents

_ITEM_RE = re.compile(r"^\s*(?:\d+[.)]|[-*•])\s+(.+?)\s*$")
#: Longest question kept, in characters: a question is one sentence, and 40 of them travel in
#: the state data (its 32 KiB budget, relay_core.models).
QUESTION_MAX_CHARS = 300


def parse_questions(text: str) -> list[str]:
    """Numbered or bulleted list items of ``text`` of at most :data:`QUESTION_MAX_CHARS`
    characters, de-duplicated case-insensitively, in order."""
    return distinct(match.group(1).strip().strip("*").strip() for line in text.splitlines() if (match := _ITEM_RE.match(line)))


def distinct(questions: object) -> list[str]:
    """Non-empty questions of at most :data:`QUESTION_MAX_CHARS` characters, each once
    (case-insensitively), in order."""
    seen: set[str] = set()
    out: list[str] = []
    for question in questions:  # type: ignore[attr-defined]
        question = " ".join(str(question).split())
        if question and len(question) <= QUESTION_MAX_CHARS and question.lower() not in seen:
            seen.add(question.lower())
            out.append(question)
    return out


#: Words a planned question opens with in the structured answer.
QUESTION_WORDS = (
    "What", "How", "Why", "When", "Where", "Which", "Who", "Whose", "Is", "Are", "Was", "Were",
    "Does", "Do", "Did", "Can", "Could", "Should", "Would", "Will", "Has", "Have", "In", "Under", "For",
)  # fmt: skip
#: What a planned question looks like in the structured answer: one line that opens with a
#: question word and ends with its only question mark, at most 200 characters, without
#: quotes or backslashes (a grammar built from the pattern can let a raw ``"`` through,
#: which ends the JSON string early).
QUESTION_PATTERN = rf"^(?:{'|'.join(QUESTION_WORDS)}) [^?\n\"\\]{{6,190}}\?$"


def question_list(count: int) -> type[BaseModel]:
    """The structured answer: ``{"questions": [exactly count questions]}``, each matching
    :data:`QUESTION_PATTERN` (the schema a llama.cpp server decodes under, so even a small
    model writes questions)."""
    question = Annotated[str, StringConstraints(pattern=QUESTION_PATTERN)]
    return create_model("PlannedQuestions", questions=(list[question], Field(min_length=count, max_length=count)))  # type: ignore[valid-type]


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

    A model that :func:`~relay_agents.runner.wants_structured_output` (a real one) is then
    asked, in the same conversation, for ``{"questions": [...]}`` with exactly ``count``
    questions under that JSON schema (:func:`question_list`), so a small model's list has
    the right length and shape; only when that answer is not usable (cut, repeated items)
    does the numbered list of its first answer count, as for any model. A model that cannot
    call tools (:func:`~relay_agents.runner.calls_tools`) is asked for the JSON at once.
    """
    if not topic.strip():
        raise InvalidInput("topic: must not be empty")
    if not 1 <= count <= MAX_QUESTIONS:
        raise InvalidInput(f"count: must be between 1 and {MAX_QUESTIONS}")
    model = model or build_model()
    session = ResearchSession(corpus or corpus_from_settings())
    agent = make_agent(model, PLANNER_SYSTEM, [search_documents], name="relay-planner")
    state = {SESSION_KEY: session}
    structured_only = wants_structured_output(model) and not calls_tools(model)  # no search to offer first
    answer = "" if structured_only else run_agent(agent, planner_prompt(topic.strip(), count), "planner", state)
    questions = parse_questions(answer)
    if wants_structured_output(model):  # the list itself comes as JSON of the schema
        check_not_declined(answer, "planner")
        try:
            reply = run_structured(agent, planner_json_prompt(topic.strip(), count), question_list(count), "planner")
            structured = distinct(getattr(reply, "questions", []))
        except StructuredOutputFailed as exc:
            note_fallback("planner", "structured_to_text", str(exc))
            structured = []
        if len(structured) >= count:
            return structured[:count]
    if len(questions) < count:  # one follow-up in the same conversation, unless it declined
        check_not_declined(answer, "planner")
        note_fallback("planner", "list_follow_up", f"{len(questions)} of {count} questions")
        follow_up = f"You gave {len(questions)} questions; give exactly {count} distinct questions as a numbered list."
        if structured_only:
            follow_up = planner_prompt(topic.strip(), count) + "\n" + follow_up
        answer = run_agent(agent, follow_up, "planner", state)
        questions = parse_questions(answer)
    if len(questions) < count:
        check_not_declined(answer, "planner")
        raise AgentFailed(f"planner: asked for {count} questions, got {len(questions)}")
    return questions[:count]
