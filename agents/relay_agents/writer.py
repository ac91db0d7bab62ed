"""The writer agent: the research document + the approved analysis → the final Markdown report."""

from __future__ import annotations

from relay_core.errors import AgentFailed, InvalidInput
from relay_core.models import ResearchDocument
from strands.models import Model

from .model_factory import build_model, describe_model
from .prompts import WRITER_SYSTEM, writer_prompt
from .runner import check_not_declined, make_agent, note_fallback, overflowed, run_agent


def sources_section(research: ResearchDocument) -> str:
    """``## Sources`` from the research document: ``n. [title](uri)`` per source, in the
    document's numbering, or "_No sources were cited._"."""
    lines = [f"{s.number}. [{s.title}]({s.uri})" for s in research.sources]
    return "## Sources\n\n" + ("\n".join(lines) or "_No sources were cited._")


def write_report(
    topic: str,
    research: ResearchDocument,
    analysis_markdown: str,
    *,
    approval_feedback: str | None = None,
    model: Model | None = None,
) -> str:
    """Write the final report.

    Args:
        topic: the research topic (the report's title).
        research: the research document (``research.json``); the model reads it as JSON
            (:func:`relay_agents.prompts.writer_prompt`).
        analysis_markdown: the approved analysis.
        approval_feedback: the approver's notes, if any.
        model: defaults to :func:`~relay_agents.model_factory.build_model`.

    Returns:
        Markdown: title, executive summary, findings with citations, analysis, sources, and a
        final provenance line naming the model (:func:`describe_model`). When the model
        wrote no ``# `` title the topic becomes the title; when it wrote no "## Sources"
        section, :func:`sources_section` of the research document is appended.

    Raises:
        InvalidInput: the research has no answered question.
        AgentFailed: the agent answered nothing or declined (a refusal stop reason or a
            bare refusal, :func:`relay_agents.runner.check_not_declined`), or its context
            window overflows even with the research shortened (each finding's answer
            replaced by its summary, which is tried once after an overflow).
        ModelThrottled, ModelUnavailable: provider faults.
    """
    if not research.answered:
        raise InvalidInput("research: has no answered question")
    model = model or build_model()
    agent = make_agent(model, WRITER_SYSTEM, name="relay-writer")
    feedback = approval_feedback.strip() if approval_feedback and approval_feedback.strip() else None
    try:
        report = run_agent(agent, writer_prompt(topic, research, analysis_markdown, feedback), "writer").strip()
    except AgentFailed as exc:  # a context window too small for the whole research: once more, shortened
        if not overflowed(exc):
            raise
        note_fallback("writer", "shortened_research", str(exc))
        agent = make_agent(model, WRITER_SYSTEM, name="relay-writer")  # a new conversation: the old one overflowed
        report = run_agent(agent, writer_prompt(topic, research, analysis_markdown, feedback, compact=True), "writer").strip()
    check_not_declined(report, "writer")
    if not report.startswith("# "):  # a level-1 title, not just any heading
        report = f"# {topic}\n\n{report}"
    if "## sources" not in report.lower():
        report += "\n\n" + sources_section(research)
    return f"{report}\n\n---\n\n_Provenance: written by {describe_model(model)} for Relay._\n"
