"""The analyst agent: compiled research → insights, risks, open questions."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, Field, StringConstraints
from relay_core.errors import AgentFailed, InvalidInput
from relay_core.models import SUMMARY_MAX_CHARS, ResearchDocument, clip
from relay_core.safe_text import markdown_safe, plain_text
from strands.models import Model

from .model_factory import build_model
from .prompts import ANALYST_JSON_INSTRUCTIONS, ANALYST_SYSTEM, analyst_prompt
from .runner import (
    StructuredOutputFailed,
    check_not_declined,
    make_agent,
    note_fallback,
    overflowed,
    run_agent,
    run_structured,
    wants_structured_output,
)
from .text import markdown_to_text, split_sentences

#: The analysis summary carried in state data: three summaries' worth (``Analysis.summary``).
ANALYSIS_SUMMARY_MAX_CHARS = SUMMARY_MAX_CHARS * 3
#: Longest sentence of a structured analysis, in characters.
SENTENCE_MAX_CHARS = 300

Sentence = Annotated[str, StringConstraints(strip_whitespace=True, min_length=8, max_length=SENTENCE_MAX_CHARS)]
R = TypeVar("R")


class AnalysisSections(BaseModel):
    """An analysis of the research: each field a list of sentences, each citing its source as [n]."""

    # The analyst's structured answer (a model that wants_structured_output). The docstring
    # above is the schema's description, which the model reads. Bounded so that the whole
    # object fits a small model's token cap (17 sentences of at most 300 characters) and a
    # JSON-schema grammar keeps the answer to this shape.

    executive_summary: list[Sentence] = Field(min_length=1, max_length=3)
    key_insights: list[Sentence] = Field(min_length=1, max_length=4)
    risks: list[Sentence] = Field(default_factory=list, max_length=3)
    open_questions: list[Sentence] = Field(default_factory=list, max_length=4)
    feedback_addressed: list[Sentence] = Field(default_factory=list, max_length=3)


def render_sections(topic: str, sections: AnalysisSections, feedback: str | None, revision: int) -> str:
    """The analysis Markdown of a structured answer: the sections :class:`AnalysisResult`
    names, each sentence once (a small model repeats itself), the feedback quoted."""
    said: set[str] = set()

    def once(sentences: list[str]) -> list[str]:
        kept = [s for s in dict.fromkeys(sentences) if " ".join(s.lower().split()) not in said]
        said.update(" ".join(s.lower().split()) for s in kept)
        return kept

    out = [f"# Analysis: {topic}", "", "## Executive summary", "", " ".join(once(sections.executive_summary))]
    out += ["", "## Key insights", ""] + [f"- {s}" for s in once(sections.key_insights) or ["None beyond the summary."]]
    out += ["", "## Risks", ""] + [f"- {s}" for s in once(sections.risks) or ["None stated in the research."]]
    out += ["", "## Open questions", ""] + [f"- {s}" for s in once(sections.open_questions) or ["None named."]]
    if feedback:
        out += ["", f"## Reviewer feedback addressed (revision {revision})", ""]
        out += ["> " + line for line in feedback.splitlines()] + [""]
        out += [f"- {s}" for s in once(sections.feedback_addressed) or ["The model said nothing about it."]]
    return "\n".join(out)


def shortened_on_overflow(call: Callable[[bool], R], role: str = "analyst") -> R:
    """``call(False)`` (the whole research in the prompt), and when the model's context
    window overflows, once more as ``call(True)`` (each finding's answer replaced by its
    summary, :func:`relay_agents.prompts.research_json`)."""
    try:
        return call(False)
    except AgentFailed as exc:
        if not overflowed(exc):
            raise
        note_fallback(role, "shortened_research", str(exc))
    return call(True)


class AnalysisResult(BaseModel):
    """An analysis.

    Attributes:
        markdown: sections "Executive summary", "Key insights", "Risks", "Open questions" (and "Reviewer
            feedback addressed" when feedback was given).
        summary: ≤ 840 characters, for the approval email and state data.
    """

    markdown: str
    summary: str = Field(max_length=ANALYSIS_SUMMARY_MAX_CHARS)


def _section(markdown: str, name: str) -> str:
    match = re.search(
        rf"^##\s*{name}\s*$(.*?)(?=^##\s|\Z)", markdown, flags=re.MULTILINE | re.DOTALL | re.IGNORECASE
    )
    return match.group(1) if match else ""


def analyze(
    topic: str,
    research: ResearchDocument,
    *,
    feedback: str | None = None,
    revision: int = 0,
    model: Model | None = None,
) -> AnalysisResult:
    """Analyse the compiled research.

    Args:
        topic: the research topic.
        research: the research document (``research.json``); the model reads it as JSON
            (:func:`relay_agents.prompts.analyst_prompt`).
        feedback: the reviewer's feedback on the previous revision, if any.
        revision: 0 for the first analysis, +1 per rejection.
        model: defaults to :func:`~relay_agents.model_factory.build_model`.

    Returns:
        The analysis Markdown, made inert by :func:`relay_core.safe_text.markdown_safe`
        (no raw HTML, no script links), and a plain-text summary: its "Executive
        summary" section, else its "Key insights" section, else the whole analysis when the model wrote no such section, clipped to
        840 characters.

    A model that :func:`~relay_agents.runner.wants_structured_output` (a real one) answers
    with :class:`AnalysisSections` under their JSON schema, rendered by
    :func:`render_sections`; when that answer is not usable (not JSON, cut at the token cap)
    the analysis is asked for as Markdown, as from any model. A prompt that overflows the
    model's context is sent once more with the research shortened (:func:`shortened_on_overflow`).

    Raises:
        InvalidInput: the research has no answered question.
        AgentFailed: the agent answered nothing, declined (a refusal stop reason or a bare
            refusal, :func:`relay_agents.runner.check_not_declined`), wrote no prose, or the
            shortened research still overflows its context.
        ModelThrottled, ModelUnavailable: provider faults.
    """
    if not research.answered:
        raise InvalidInput("research: has no answered question")
    chosen = model or build_model()
    feedback = feedback.strip() if feedback and feedback.strip() else None

    def agent() -> Any:  # a new conversation for each prompt (an overflowed one stays too long)
        return make_agent(chosen, ANALYST_SYSTEM, name="relay-analyst")

    markdown = ""
    if wants_structured_output(chosen):
        try:
            sections = shortened_on_overflow(
                lambda compact: run_structured(
                    agent(),
                    analyst_prompt(topic, research, feedback, revision, compact) + "\n" + ANALYST_JSON_INSTRUCTIONS,
                    AnalysisSections,
                    "analyst",
                )
            )
            check_not_declined(" ".join(sections.executive_summary), "analyst")
            markdown = render_sections(topic, sections, feedback, revision)
        except StructuredOutputFailed as exc:
            note_fallback("analyst", "structured_to_text", str(exc))
            markdown = ""
    if not markdown:
        markdown = shortened_on_overflow(
            lambda compact: run_agent(agent(), analyst_prompt(topic, research, feedback, revision, compact), "analyst")
        )
    check_not_declined(markdown, "analyst")
    insights = (
        markdown_to_text(_section(markdown, "Executive summary"))
        or markdown_to_text(_section(markdown, "Key insights"))
        or markdown_to_text(markdown)
    )
    if not insights.strip():
        raise AgentFailed("analyst: the analysis has no prose")
    summary = clip(plain_text(" ".join(split_sentences(re.sub(r"\s*\[\d+\]", "", insights)))), ANALYSIS_SUMMARY_MAX_CHARS)
    # analysis-r{n}.md quotes the topic, the feedback and research passages: no raw HTML in it.
    return AnalysisResult(markdown=markdown_safe(markdown.strip() + "\n"), summary=summary)
