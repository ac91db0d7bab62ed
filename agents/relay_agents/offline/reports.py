"""What the offline model composes from compiled research: the analyst's analysis and the
writer's report.

Both read the research from the prompt's ``<research>`` tag, which carries the research
document as JSON (:class:`relay_core.models.ResearchDocument`, written there by
:func:`relay_agents.prompts.analyst_prompt` and :func:`~relay_agents.prompts.writer_prompt`):
questions, failed branches, answers and sources come from its fields, never from parsing
Markdown. A ``<research>`` tag holding anything else is read as one block of plain text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from pydantic import ValidationError
from relay_core.models import ResearchDocument, ResearchSource

from .. import text as tx
from ..prompts import read_tag
from ..provenance import OFFLINE_NOTICE

_CITE_RE = re.compile(r"\s*\[(\d+)\]")
_RISK_RE = re.compile(
    r"\b(limit|quota|maximum|minimum|fail|failure|error|throttl|timeout|timed out|expire|cost|charge|billing|"
    r"must|cannot|can't|not supported|unsupported|deprecat|risk|secur|permission|denied|restrict|only)\w*",
    re.IGNORECASE,
)
_UNCERTAIN_RE = re.compile(
    r"\b(may|might|optional|optionally|depends|unless|if you|can be|could)\b", re.IGNORECASE
)


@dataclass
class Answer:
    """One question's research as the offline model uses it.

    Attributes:
        question_id: ``q01``…, or ``""`` for plain-text research.
        question: the question (``"Research"`` for plain-text research).
        text: the answer's Markdown (empty when the branch failed).
        failed: the question's research branch failed.
        citations: the answer's own citation numbers (``[ref]``) → the document's source numbers.
    """

    question_id: str
    question: str
    text: str
    failed: bool = False
    citations: dict[int, int] = field(default_factory=dict)


def research_from(prompt: str) -> tuple[list[Answer], list[ResearchSource]]:
    """The answers and deduplicated sources of the prompt's ``<research>`` document; plain
    text (or no tag) gives one answer holding that text and no sources."""
    raw = read_tag(prompt, "research") or ""
    try:
        document = ResearchDocument.model_validate_json(raw)
    except ValidationError:
        return [Answer("", "Research", raw)], []
    answers = [
        Answer(
            question_id=f.question_id,
            question=f.question,
            text=f.answer_markdown,
            failed=f.status == "failed",
            citations={c.ref: c.number for c in f.sources if c.ref is not None},
        )
        for f in document.findings
    ]
    return answers, document.sources


def _sentences(markdown: str) -> list[str]:
    """Sentences of at least five words, from the Markdown's text."""
    return [s for s in tx.split_sentences(tx.markdown_to_text(markdown)) if len(s.split()) >= 5]


def _strip_cites(sentence: str) -> str:
    return _CITE_RE.sub("", sentence).strip()


def _renumber(sentence: str, citations: dict[int, int]) -> str:
    """``sentence`` citing the document's source numbers instead of its answer's own
    ``[ref]`` numbers (a ref with no mapping is dropped); unchanged when the answer has
    no mapping at all (plain-text research)."""
    if not citations:
        return sentence

    def number(match: re.Match[str]) -> str:
        mapped = citations.get(int(match.group(1)))
        return f" [{mapped}]" if mapped else ""

    return _CITE_RE.sub(number, sentence)


def compose_analyst(prompt: str) -> str:
    """Key insights (central sentences of the answers, citing the document's source
    numbers), risks (sentences with limit/failure/cost cues),
    open questions (failed questions, topic keyphrases no answer covers, hedged sentences)
    and, with feedback, a section quoting it and the research sentences that answer its
    keyphrases; the feedback also biases which insights are picked."""
    topic = read_tag(prompt, "topic") or ""
    feedback = read_tag(prompt, "feedback")
    revision = read_tag(prompt, "revision") or "0"
    answers, _sources = research_from(prompt)
    answered_text = "\n\n".join(a.text for a in answers if not a.failed)
    # Citations in the document's numbering, so the analysis cites what the report lists.
    sentences = list(dict.fromkeys(_renumber(s, a.citations) for a in answers if not a.failed for s in _sentences(a.text)))
    bias = f"{topic} {feedback}" if feedback else topic
    scores = tx.rank_sentences(sentences, query=bias)
    out = [f"# Analysis: {topic}", "", OFFLINE_NOTICE, "", f"_Revision {revision}._", ""]

    out += ["## Key insights", ""]
    insights = tx.select(sentences, scores, 5)
    out += [f"- {sentences[i]}" for i in insights] or [
        "- The research holds no complete sentences to analyse."
    ]

    out += ["", "## Risks", ""]
    risky = [i for i, s in enumerate(sentences) if _RISK_RE.search(s) and i not in insights]
    risk_texts = [sentences[i] for i in risky]
    risk_scores = tx.rank_sentences(risk_texts, query=f"{bias} limit failure error cost")
    picked = tx.select(risk_texts, risk_scores, 4)
    out += [f"- {sentences[risky[j]]}" for j in picked] or [
        "- No sentence in the research states a limit, failure mode or cost."
    ]

    out += ["", "## Open questions", ""]
    opens = [f"- Unanswered: {a.question_id}: {a.question}" for a in answers if a.failed]
    research_tokens = set(tx.tokenize(answered_text))
    wanted = tx.keyphrases(topic, top=5) + (tx.keyphrases(feedback, top=3) if feedback else [])
    for kp in wanted:
        if not set(tx.tokenize(kp)) <= research_tokens:
            opens.append(f"- Not covered by any source: “{kp}”.")
    hedged = [i for i, s in enumerate(sentences) if _UNCERTAIN_RE.search(s) and i not in insights]
    for i in sorted(hedged, key=lambda i: -scores[i])[:2]:
        opens.append(f"- Conditional in the sources: {sentences[i]}")
    out += opens or ["- None found: every topic keyphrase is covered by the research."]

    if feedback:
        out += ["", f"## Reviewer feedback addressed (revision {revision})", ""]
        out += ["> " + line for line in feedback.splitlines()] + [""]
        for kp in tx.keyphrases(feedback, top=3) or [feedback]:
            relevance = tx.bm25_scores([tx.tokenize(s) for s in sentences], tx.tokenize(kp))
            if len(relevance) and relevance.max() > 0:
                best = int(relevance.argmax())
                out.append(f"- **{kp}**: {sentences[best]}")
            else:
                out.append(
                    f"- **{kp}**: no sentence in the research mentions it, so it is listed under Open questions."
                )
        out.append("- Key insights above were re-ranked towards the feedback's terms.")
    return "\n".join(out).rstrip() + "\n"


def compose_writer(prompt: str) -> str:
    """The report: title, executive summary (central sentences of the answers and the
    analysis's key insights), findings per question (its best sentences, citations
    renumbered to the document's source numbers), the analysis (headings demoted),
    approval notes, and the document's numbered sources."""
    topic = read_tag(prompt, "topic") or "Research report"
    analysis = read_tag(prompt, "analysis") or ""
    approval = read_tag(prompt, "approval_feedback")
    answers, sources = research_from(prompt)

    out = [f"# {topic}", "", OFFLINE_NOTICE, "", "## Executive summary", ""]
    insights = re.search(r"^## Key insights\s*$(.*?)(?=^## |\Z)", analysis, flags=re.MULTILINE | re.DOTALL)
    pool = [s for a in answers if not a.failed for s in _sentences(a.text)]
    pool += _sentences(insights.group(1) if insights else "")
    pool = list(dict.fromkeys(_strip_cites(s) for s in pool))
    summary_idx = tx.select(pool, tx.rank_sentences(pool, query=topic), 4)
    out += [" ".join(pool[i] for i in sorted(summary_idx)) or "The research holds no complete sentences."]

    out += ["", "## Findings", ""]
    for answer in answers:
        out += [f"### {answer.question}", ""]
        if answer.failed:
            out += ["_No answer: this research branch failed._", ""]
            continue
        sents = _sentences(answer.text)
        picked = tx.select(sents, tx.rank_sentences(sents, query=answer.question), 3)

        lines = [f"- {_renumber(sents[i], answer.citations)}" for i in sorted(picked)]
        out += (lines or ["- The research for this question holds no complete sentences."]) + [""]

    out += ["## Analysis", ""]
    for line in analysis.splitlines():
        if line.startswith("# ") or line.strip() == OFFLINE_NOTICE or line.strip().startswith("_Revision"):
            continue
        out.append("#" + line if line.startswith("## ") else line)
    if approval:
        out += ["", "## Approval notes", ""] + ["> " + line for line in approval.splitlines()]
    out += ["", "## Sources", ""]
    out += [f"{s.number}. [{s.title}]({s.uri})" for s in sources] or ["_No sources were cited._"]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(out)).rstrip() + "\n"
