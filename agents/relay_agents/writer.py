"""The writer agent: research + analysis → the final Markdown report."""

from __future__ import annotations

from relay_core.errors import InvalidInput
from strands.models import Model

from ._run import make_agent, run_agent
from .model_factory import build_model, describe_model
from .offline import research_sources
from .prompts import WRITER_SYSTEM, writer_prompt


def write_report(
    topic: str,
    research_markdown: str,
    analysis_markdown: str,
    *,
    approval_feedback: str | None = None,
    model: Model | None = None,
) -> str:
    """Write the final report.

    Args:
        topic: the research topic (the report's title).
        research_markdown: the compiled research.
        analysis_markdown: the approved analysis.
        approval_feedback: the approver's notes, if any.
        model: defaults to :func:`~relay_agents.model_factory.build_model`.

    Returns:
        Markdown: title, executive summary, findings with citations, analysis, sources, and a
        final provenance line naming the model (:func:`describe_model`). A "## Sources"
        section is appended from the research when the model wrote none.

    Raises:
        InvalidInput: empty research.
        AgentFailed: the agent answered nothing.
        ModelThrottled, ModelUnavailable: provider faults.
    """
    if not research_markdown.strip():
        raise InvalidInput("research: must not be empty")
    model = model or build_model()
    agent = make_agent(model, WRITER_SYSTEM, name="relay-writer")
    feedback = approval_feedback.strip() if approval_feedback and approval_feedback.strip() else None
    report = run_agent(
        agent, writer_prompt(topic, research_markdown, analysis_markdown, feedback), "writer"
    ).strip()
    if not report.startswith("#"):
        report = f"# {topic}\n\n{report}"
    if "## sources" not in report.lower():
        sources = research_sources(research_markdown)
        report += "\n\n## Sources\n\n" + (
            "\n".join(f"{n}. [{t}]({u})" for n, t, u in sources) or "_No sources were cited._"
        )
    return f"{report}\n\n---\n\n_Provenance: written by {describe_model(model)} for Relay._\n"
