"""The researcher agent: one question → a cited answer from the corpus."""

from __future__ import annotations

import re

from pydantic import BaseModel, Field
from relay_core.errors import AgentFailed, InvalidInput, NoMatchingDocument
from relay_core.models import Evidence, SourceRef, clip
from strands.models import Model

from .corpus import Corpus, corpus_from_settings
from .model_factory import build_model
from .prompts import RESEARCHER_SYSTEM, researcher_prompt
from .provenance import OFFLINE_NOTICE
from .runner import calls_tools, check_not_declined, make_agent, note_fallback, run_agent
from .text import markdown_to_text
from .tools import DEFAULT_RESULTS, SESSION_KEY, ResearchSession, search, search_documents

#: Most sources one finding cites (``relay_core.models.Finding.sources`` max_length).
MAX_SOURCES = 8


class ResearchResult(BaseModel):
    """A researched answer.

    Attributes:
        answer_markdown: the full answer with ``[n]`` citations and a sources list.
        summary: ≤ 280 characters (``SUMMARY_MAX_CHARS``), for state data.
        sources: the documents the answer cites (≤ 8), in citation order.
        evidence: the passages of those documents the searches returned (what the
            answer's sentences are grounded in), by citation number.
    """

    answer_markdown: str
    summary: str = Field(max_length=280)
    sources: list[SourceRef] = Field(default_factory=list, max_length=MAX_SOURCES)
    evidence: list[Evidence] = Field(default_factory=list)


def _cited(answer: str, session: ResearchSession) -> list[tuple[int, SourceRef]]:
    """Retrieved sources the answer cites by ``[n]`` or by URI; all retrieved ones if it cites none."""
    numbers = {int(n) for n in re.findall(r"\[(\d+)\]", answer)}
    retrieved = session.sources
    cited = [(n, ref) for n, ref in retrieved if n in numbers or ref.uri in answer]
    if not cited:
        cited = sorted(retrieved, key=lambda item: -item[1].score)[:MAX_SOURCES]
        cited.sort(key=lambda item: item[0])
    return cited[:MAX_SOURCES]


#: Longest piece of the question quoted in a no-match error, in characters.
QUESTION_QUOTE_CHARS = 200


def no_match_message(question: str, searches: int) -> str:
    """``no document in the corpus matches '<question>' (<n> searches)``, one line."""
    quoted = " ".join(question.split())
    if len(quoted) > QUESTION_QUOTE_CHARS:
        quoted = quoted[: QUESTION_QUOTE_CHARS - 1] + "…"
    return f"no document in the corpus matches {quoted!r} ({searches} searches)"


#: The tool call id of the search the researcher makes for a model (:func:`answer_from_search`).
SEARCH_FOR_MODEL_ID = "relay-search-for-model"


def answer_from_search(model: Model, question: str, session: ResearchSession) -> str:
    """The model's answer to ``question`` after the researcher searched for it: a new
    conversation in which the model asked ``search_documents`` for the question and got
    the passages back (recorded in ``session``), so the model's next turn reads them as any
    tool result.

    Raises:
        as :func:`relay_agents.runner.run_agent`.
    """
    arguments = {"query": question, "max_results": DEFAULT_RESULTS}
    result = search(session, question, DEFAULT_RESULTS)
    messages = [
        {"role": "user", "content": [{"text": researcher_prompt(question)}]},
        {"role": "assistant", "content": [{"toolUse": {"toolUseId": SEARCH_FOR_MODEL_ID, "name": search_documents.tool_name, "input": arguments}}]},
        {"role": "user", "content": [{"toolResult": {"toolUseId": SEARCH_FOR_MODEL_ID, "status": "success", "content": [{"json": result}]}}]},
    ]
    agent = make_agent(model, RESEARCHER_SYSTEM, [search_documents], name="relay-researcher", messages=messages)
    return run_agent(agent, None, "researcher", {SESSION_KEY: session})


def research(question: str, *, model: Model | None = None, corpus: Corpus | None = None) -> ResearchResult:
    """Answer ``question`` from the corpus with citations.

    Args:
        question: the research question (non-empty).
        model: defaults to :func:`~relay_agents.model_factory.build_model`.
        corpus: defaults to :func:`~relay_agents.corpus.corpus_from_settings`.

    Returns:
        The answer, its summary and the sources it cites, each with the number the answer
        cites it by (``SourceRef.ref``). The sources are the retrieved ones the answer cites
        by ``[n]`` or by URI; when it cites none, the best-scored retrieved ones (at most
        ``MAX_SOURCES``). If the answer has no "Sources" list, one is appended.

    A finding must be grounded in the corpus: when the model answers without calling
    ``search_documents`` (a small model does not call tools; one may write a tool call as
    text), its answer is set aside and the researcher makes the call for it, the search a
    model would make first (the question, :data:`~relay_agents.tools.DEFAULT_RESULTS`
    passages), hands the passages back as that call's result and asks the model once more
    (:func:`answer_from_search`). A model that cannot call tools at all
    (:func:`relay_agents.runner.calls_tools`: a llama.cpp server whose chat template has
    none) gets that search at once, without the answer from memory.

    Raises:
        InvalidInput: empty question.
        AgentFailed: the agent answered nothing or declined (a refusal stop reason or a bare
            refusal, :func:`relay_agents.runner.check_not_declined`).
        NoMatchingDocument: it searched and no search returned any document (a finding must
            be grounded in the corpus); the message is ``no document in the corpus matches '<question>'``.
        ModelThrottled, ModelUnavailable: provider faults.
    """
    if not question.strip():
        raise InvalidInput("question: must not be empty")
    model = model or build_model()
    session = ResearchSession(corpus or corpus_from_settings())
    agent = make_agent(model, RESEARCHER_SYSTEM, [search_documents], name="relay-researcher")
    if calls_tools(model):
        answer = run_agent(agent, researcher_prompt(question.strip()), "researcher", {SESSION_KEY: session})
        check_not_declined(answer, "researcher")
    if not session.queries:
        note_fallback("researcher", "search_for_model", "no tools" if not calls_tools(model) else "answered without searching")
        answer = answer_from_search(model, question.strip(), session)
        check_not_declined(answer, "researcher")
    if not session.queries:  # pragma: no cover - answer_from_search always searches
        raise AgentFailed("researcher: no search was made; a finding must be grounded in the corpus")
    if not session.sources:
        raise NoMatchingDocument(no_match_message(question, len(session.queries)))
    cited = _cited(answer, session)
    if "sources" not in answer.lower():
        answer += "\n\n**Sources**\n" + "\n".join(f"- [{n}] [{ref.title}]({ref.uri})" for n, ref in cited)
    prose = markdown_to_text(re.sub(r"\s*\[\d+\]", "", answer.replace(OFFLINE_NOTICE, "")))
    summary = clip(prose or answer)
    return ResearchResult(
        answer_markdown=answer.strip() + "\n",
        summary=summary,
        sources=[ref.model_copy(update={"ref": n}) for n, ref in cited],
        evidence=[e for e in session.evidence() if e.ref in {n for n, _ in cited}],
    )
