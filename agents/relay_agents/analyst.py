"""The analyst agent: compiled research → insights, risks, open questions."""

from __future__ import annotations

import re

from pydantic import BaseModel, Field
from relay_core.errors import AgentFailed, InvalidInput
from relay_core.models import SUMMARY_MAX_CHARS, ResearchDocument, clip
from relay_core.safe_text import markdown_safe, plain_text
from strands.models import Model

from .model_factory import build_model
from .prompts import ANALYST_SYSTEM, analyst_prompt
from .runner import check_not_declined, make_agent, run_agent
from .text import markdown_to_text, split_sentences

#: The analysis summary carried in state data: three summaries' worth (``Analysis.summary``).
ANALYSIS_SUMMARY_MAX_CHARS = SUMMARY_MAX_CHARS * 3


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

    Raises:
        InvalidInput: the research has no answered question.
        AgentFailed: the agent answered nothing, declined (a refusal stop reason or a bare
            refusal, :func:`relay_agents.runner.check_not_declined`), or wrote no prose.
        ModelThrottled, ModelUnavailable: provider faults.
    """
    if not research.answered:
        raise InvalidInput("research: has no answered question")
    model = model or build_model()
    agent = make_agent(model, ANALYST_SYSTEM, name="relay-analyst")
    feedback = feedback.strip() if feedback and feedback.strip() else None
    markdown = run_agent(agent, analyst_prompt(topic, research, feedback, revision), "analyst")
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
