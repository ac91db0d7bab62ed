"""System prompts and tagged user prompts for Relay's four agents.

Role marker: every system prompt starts with ``[relay-role: <role>]`` where ``<role>`` is
``planner``, ``researcher``, ``analyst`` or ``writer``. An LLM reads it as a label; the
offline model (:mod:`relay_agents.offline`) reads it to decide what to compose. A system
prompt without the marker makes the offline model answer as a generic extractive
summariser.

The compiled research reaches the analyst and the writer as the research document's JSON
(:class:`relay_core.models.ResearchDocument`: findings with their answers, which cite
``[ref]``, each ref mapped to a ``number`` in the deduplicated ``sources``), so no agent and
no model parses Markdown to find questions or sources.

User prompts carry their inputs in XML-style tags (``<topic>…</topic>``, ``<count>…</count>``,
``<question>…</question>``, ``<research>…</research>``, ``<evidence>…</evidence>``, ``<analysis>…</analysis>``,
``<feedback>…</feedback>``, ``<revision>…</revision>``, ``<approval_feedback>…</approval_feedback>``):
Anthropic's prompting guidance recommends tags for long inputs, and the offline model
parses the same tags with :func:`read_tag`.
"""

from __future__ import annotations

import re

from relay_core.models import ResearchDocument

from .key_evidence import key_evidence

ROLES = ("planner", "researcher", "analyst", "writer")
ROLE_MARKER_RE = re.compile(r"\[relay-role:\s*([a-z]+)\]")


def role_marker(role: str) -> str:
    """``[relay-role: <role>]`` for one of :data:`ROLES`."""
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}")
    return f"[relay-role: {role}]"


def detect_role(system_prompt: str | None) -> str | None:
    """The role named by the marker in ``system_prompt``, or ``None``."""
    match = ROLE_MARKER_RE.search(system_prompt or "")
    return match.group(1) if match and match.group(1) in ROLES else None


def tag(name: str, value: object) -> str:
    """``<name>value</name>``; a closing tag inside ``value`` is defused."""
    text = str(value).replace(f"</{name}>", f"</ {name}>")
    return f"<{name}>\n{text}\n</{name}>"


def read_tag(text: str, name: str) -> str | None:
    """The stripped content of the first ``<name>…</name>`` in ``text``, or ``None``."""
    match = re.search(rf"<{name}>\n?(.*?)\n?</{name}>", text, flags=re.DOTALL)
    return match.group(1).strip() if match else None


PLANNER_SYSTEM = f"""{role_marker("planner")}
You plan research. Given a topic and a number N, write exactly N distinct research
questions that together cover the topic. You may call search_documents first to see what
the corpus holds. Each question is one well-formed English question about one aspect of
the topic (a mechanism, a limit, an API the corpus documents); never paste the topic's
text into a question. Answer with a numbered list, one question per line, and nothing else."""

#: Writing rules every agent that writes prose for people follows: what the quality check
#: (relay_core.quality) measures, said to the model.
WRITING_RULES = """Rules for every sentence you write:
- State each fact once: never repeat a sentence or restate a fact in other words.
- Cite every sentence with the number of the source it comes from, in square brackets
  before the full stop, e.g. "… is 30 seconds [2]." A sentence with no source is not written.
- Write prose sentences only: no code, no grammar productions, no tables, no headings
  glued to a sentence; name an API or a parameter in backticks inside a sentence instead
  of quoting code.
- Use only words the cited source supports; do not add facts of your own."""

RESEARCHER_SYSTEM = f"""{role_marker("researcher")}
You answer one research question from the corpus. Always call search_documents first (you
may call it again with a refined query). Answer only from the passages it returns: a list
of the sentences that answer the question, best first, each citing its passage's number in
square brackets, e.g. [1]. End with a line "**Sources**" followed by one line per cited
source: "- [n] [title](uri)".
{WRITING_RULES}"""

#: How the research document is laid out, for the analyst's and the writer's system prompts.
RESEARCH_LAYOUT = """The research is a JSON document: "findings" holds one entry per research
question ("status" is "answered" or "failed"); an answer ("answer_markdown") cites its
passages as [ref], and the finding's "sources" map each ref to a "number" in the document's
deduplicated "sources" list (number, title, uri). Cite sources by those numbers. The
evidence lists the strongest sentences of the passages the researchers read, across all
questions, best first, each citing its source's number: quote from it what the findings miss."""

ANALYST_SYSTEM = f"""{role_marker("analyst")}
You analyse compiled research. {RESEARCH_LAYOUT}
Write Markdown with the sections "## Executive summary" (the direct answer to the topic in
two to four cited sentences), "## Key insights" (what two or more sources say together,
citing each; never a copy of a finding's sentence), "## Risks" and "## Open questions"
(only planned questions the research did not answer, including the failed ones; never a
phrase you merely did not find). When reviewer feedback is given, add a section
"## Reviewer feedback addressed" that quotes the feedback and says where the analysis
addresses it.
{WRITING_RULES}"""

WRITER_SYSTEM = f"""{role_marker("writer")}
You write the final report from compiled research and its approved analysis.
{RESEARCH_LAYOUT}
Write Markdown: a "# " title, "## Executive summary" (the approved analysis's), "## Findings"
(per question, what the research found that the analysis does not already say, citing the
source numbers), "## Analysis" (the approved analysis's other sections) and "## Sources"
(one numbered line per source with its title and URI). Use only the research and analysis
given. If approval notes are given, honour them.
{WRITING_RULES}"""


def planner_prompt(topic: str, count: int) -> str:
    return f"Plan the research.\n{tag('topic', topic)}\n{tag('count', count)}"


def planner_json_prompt(topic: str, count: int) -> str:
    """The planner's structured follow-up (:func:`relay_agents.planner.question_list`)."""
    return (
        f"Give exactly {count} distinct research questions about the topic as JSON: "
        f'{{"questions": ["…?", …]}}. Each is one well-formed English question.\n{tag("topic", topic)}'
    )


def researcher_prompt(question: str) -> str:
    return f"Research this question.\n{tag('question', question)}"


def research_json(research: ResearchDocument, compact: bool = False) -> str:
    """The research document as the prompts carry it: indented JSON, without the sources'
    passages (the findings already quote what matters; the passages would multiply the
    prompt's size and are kept for the quality check). ``compact``: each finding's answer
    replaced by its summary (at most 280 characters), for a model whose context the whole
    document overflows."""
    if compact:
        findings = [f.model_copy(update={"answer_markdown": f.summary}) for f in research.findings]
        research = research.model_copy(update={"findings": findings})
    return research.model_dump_json(indent=1, exclude={"sources": {"__all__": {"passages"}}})


def analyst_prompt(
    topic: str, research: ResearchDocument, feedback: str | None, revision: int, compact: bool = False
) -> str:
    parts = [f"Analyse the research.\n{tag('topic', topic)}", tag("revision", revision)]
    if feedback:
        parts.append(tag("feedback", feedback))
    parts.append(tag("research", research_json(research, compact)))
    parts.append(evidence_tag(research, topic))
    return "\n".join(parts)


def evidence_tag(research: ResearchDocument, topic: str) -> str:
    """``<evidence>``: the research's key evidence (:func:`relay_agents.key_evidence.key_evidence`),
    one ``- sentence [n].`` per line, best first (empty when the sources carry no passages)."""
    return tag("evidence", "\n".join(f"- {s}" for s in key_evidence(research, topic)))


#: What the analyst's structured answer is asked to hold (relay_agents.analyst.AnalysisSections).
ANALYST_JSON_INSTRUCTIONS = """Answer with JSON: "executive_summary" (two to four cited sentences
that answer the topic), "key_insights", "risks" and "open_questions" (lists of cited
sentences; open questions are planned questions the research did not answer), and, when
feedback is given, "feedback_addressed" (sentences saying where the analysis addresses it)."""


def writer_prompt(
    topic: str, research: ResearchDocument, analysis: str, approval_feedback: str | None, compact: bool = False
) -> str:
    parts = [f"Write the final report.\n{tag('topic', topic)}"]
    if approval_feedback:
        parts.append(tag("approval_feedback", approval_feedback))
    parts.append(tag("research", research_json(research, compact)))
    parts.append(evidence_tag(research, topic))
    parts.append(tag("analysis", analysis))
    return "\n".join(parts)
