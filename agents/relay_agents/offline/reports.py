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

import numpy as np
from pydantic import ValidationError
from relay_core.models import ResearchDocument, ResearchSource
from relay_core.prose import citations, fragment_kind, strip_citations
from relay_core.quality import RELEVANCE_THRESHOLD, body_sentences, relevance, support

from .. import text as tx
from ..evidence import ANSWER_WEIGHTS, Candidate, dedupe, pick, prose_sentences, score
from ..prompts import read_tag
from ..provenance import OFFLINE_NOTICE

_RISK_RE = re.compile(
    r"\b(limit|quota|maximum|minimum|fail|failure|error|throttl|timeout|timed out|expire|cost|charge|billing|"
    r"must|cannot|can't|not supported|unsupported|deprecat|risk|secur|permission|denied|restrict|only)\w*",
    re.IGNORECASE,
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


#: Sentences of the executive summary: the direct answer to the topic.
SUMMARY_SENTENCES = 3
#: Share of the topic's key words a sentence must hold to be in the executive summary.
SUMMARY_RELEVANCE = 0.3
#: Key insights: at most one per answered question, up to this many.
INSIGHTS = 3
#: Risks quoted.
RISKS = 1
#: Most sentences per question under Findings.
FINDING_SENTENCES = 6
#: A report's body-sentence budget (:func:`report_budget`): a reader takes in about 20
#: sentences for three questions.
REPORT_BASE_SENTENCES = 5
REPORT_SENTENCES_PER_QUESTION = 5
#: Share of a sentence's content words another source must hold to corroborate it.
CORROBORATION = 0.6


def _candidates(answers: list[Answer]) -> list[Candidate]:
    """The answers' prose sentences, citing the document's source numbers, weighted by
    their rank in their answer (researchers list their best sentence first)."""
    out: list[Candidate] = []
    for answer in answers:
        if answer.failed:
            continue
        for rank, (_pos, sentence) in enumerate(prose_sentences(tx.markdown_to_text(answer.text))):
            refs = tuple(dict.fromkeys(answer.citations.get(n, n) if answer.citations else n for n in citations(sentence)))
            text = strip_citations(sentence)
            if refs and fragment_kind(text) is None:
                out.append(Candidate(text, refs, max(0.2, 1.0 - 0.08 * rank), False, answer.question_id))
    return dedupe(out)


#: Weight of the first key-evidence sentence, and what each later one loses (floor 0.2).
EVIDENCE_WEIGHT_STEP = 0.03


def _evidence(prompt: str, answers: list[Answer]) -> list[Candidate]:
    """The prompt's key evidence (``<evidence>``, :mod:`relay_agents.key_evidence`) as
    candidates citing the document's source numbers, weighted by rank, each grouped under
    the answered question it is most relevant to (:func:`relay_core.quality.relevance`;
    the first question on a tie)."""
    answered = [a for a in answers if not a.failed and a.question_id]
    lines = [ln[2:].strip() for ln in (read_tag(prompt, "evidence") or "").splitlines() if ln.startswith("- ")]
    out: list[Candidate] = []
    for rank, sentence in enumerate(lines):
        refs = tuple(dict.fromkeys(citations(sentence)))
        text = strip_citations(sentence).strip()
        if not refs or not text or fragment_kind(text) is not None:
            continue
        group = max(answered, key=lambda a: relevance(text, a.question)).question_id if answered else ""
        out.append(Candidate(text, refs, max(0.2, 1.0 - EVIDENCE_WEIGHT_STEP * rank), False, group))
    return out


def _pool(prompt: str, answers: list[Answer]) -> list[Candidate]:
    """Everything the analysis and the report may quote: the answers' sentences and the key
    evidence, each text once (:func:`~relay_agents.evidence.dedupe`)."""
    return dedupe(_candidates(answers) + _evidence(prompt, answers))


def _bullets(chosen: list[Candidate]) -> list[str]:
    return [f"- {c.cited()}" for c in chosen]


def _corroborated(cand: Candidate, pool: list[Candidate]) -> Candidate:
    """``cand`` also citing another source whose sentence holds most of its content words
    (what two sources say together), when one does."""
    for other in pool:
        extra = [r for r in other.refs if r not in cand.refs]
        if extra and support(cand.text, [other.text]) >= CORROBORATION:
            return Candidate(cand.text, cand.refs + (extra[0],), cand.weight, cand.lead, cand.group, cand.groups)
    return cand


def _unanswered(answers: list[Answer], pool: list[Candidate]) -> list[str]:
    """Open-question lines for planned questions the research did not answer: the failed
    ones, and the answered ones none of whose sentences holds half of the question's key
    words (:func:`relay_core.quality.relevance`)."""
    lines = []
    for a in answers:
        if a.failed:
            lines.append(f"- Unanswered: {a.question_id}: {a.question} (its research branch failed)")
            continue
        own = [c.text for c in pool if c.of(a.question_id)]
        if not own or max(relevance(t, a.question) for t in own) < RELEVANCE_THRESHOLD:
            lines.append(f"- Not answered by the sources found: {a.question_id}: {a.question}")
    return lines


#: A parameter's definition (``taskToken: The token that represents this task.``): prose,
#: and a finding may quote it, but it does not answer a topic, so the summary never opens with one.
_DEFINITION_RE = re.compile(r"^[A-Za-z_][\w.]*:\s")


def _plan(topic: str, answers: list[Answer], feedback: str | None, pool: list[Candidate]) -> dict[str, list[Candidate]]:
    """Which sentence goes where, so that each is said once: the executive summary (the
    best for the topic, and the feedback when given), then one key insight per answered
    question (the best it has left that answers it, preferring one a second source
    corroborates), then
    the risks, all from ``pool`` (:func:`_pool`). The writer's findings then take what is
    left (:func:`_findings`)."""
    said: list[str] = []
    query = f"{topic} {feedback}" if feedback else topic
    on_topic = [c for c in pool if relevance(c.text, query) >= SUMMARY_RELEVANCE and not _DEFINITION_RE.match(c.text)] or pool
    summary_idx = pick(on_topic, score(on_topic, query, ANSWER_WEIGHTS), SUMMARY_SENTENCES, per_source=2)
    summary = [on_topic[i] for i in summary_idx]
    said += [c.text for c in summary]
    insights: list[Candidate] = []
    for a in answers:
        own = [c for c in pool if c.of(a.question_id)]
        if a.failed or not own or len(insights) >= INSIGHTS:
            continue
        scores = score(own, f"{a.question} {feedback or ''}")
        corroborated = [_corroborated(c, [o for o in pool if not o.of(a.question_id)]) for c in own]
        bonus = np.array([0.2 if len(c.refs) > len(o.refs) else 0.0 for c, o in zip(corroborated, own, strict=True)])
        # An insight answers its question when a sentence can: one holding half its key words.
        answering = np.array([0.0 if relevance(c.text, a.question) >= RELEVANCE_THRESHOLD else -1.0 for c in own])
        best = pick(corroborated, scores + bonus + answering, 1, exclude=said, per_source=1)
        insights += [corroborated[i] for i in best]
        said += [corroborated[i].text for i in best]
    risky = [c for c in pool if _RISK_RE.search(c.text)]
    risk_idx = pick(risky, score(risky, f"{topic} limit failure error timeout cost"), RISKS, exclude=said, per_source=1)
    risks = [risky[i] for i in risk_idx]
    said += [c.text for c in risks]
    return {"summary": summary, "insights": insights, "risks": risks}


def compose_analyst(prompt: str) -> str:
    """The analysis: an executive summary (the research's sentences that best answer the
    topic), key insights (one per question, each a sentence the findings will not repeat,
    citing a second source that says the same where one does), risks (sentences with
    limit, failure or cost cues), open questions (planned questions the research did not
    answer, never a missing key phrase) and, with feedback, where each of its key phrases
    is addressed (the summary and insights are re-ranked towards it). Every sentence is quoted from the research with its
    citations, and none twice (:func:`_plan`)."""
    topic = read_tag(prompt, "topic") or ""
    feedback = read_tag(prompt, "feedback")
    revision = read_tag(prompt, "revision") or "0"
    answers, _sources = research_from(prompt)
    pool = _pool(prompt, answers)
    plan = _plan(topic, answers, feedback, pool)
    out = [f"# Analysis: {topic}", "", OFFLINE_NOTICE, "", f"_Revision {revision}._", ""]
    out += ["## Executive summary", ""]
    out += [" ".join(c.cited() for c in plan["summary"]) or "The research holds no complete sentences."]
    out += ["", "## Key insights", ""]
    out += _bullets(plan["insights"]) or ["_No sentence is left that the executive summary does not already say._"]
    out += ["", "## Risks", ""]
    out += _bullets(plan["risks"]) or ["_No sentence in the research states a limit, failure mode or cost._"]
    out += ["", "## Open questions", ""]
    out += _unanswered(answers, pool) or ["- None: every planned question has a cited answer."]
    if feedback:
        out += ["", f"## Reviewer feedback addressed (revision {revision})", ""]
        out += ["> " + line for line in feedback.splitlines()] + [""]
        sections = (("executive summary", plan["summary"]), ("key insights", plan["insights"]), ("risks", plan["risks"]))
        for kp in tx.keyphrases(feedback, top=3) or [feedback]:
            wanted = set(tx.tokenize(kp))
            where = [
                f"{name} (sentence {n})"
                for name, chosen in sections
                for n, c in enumerate(chosen, 1)
                if wanted & set(tx.tokenize(c.text))
            ]
            if where:
                out.append(f"_{kp}: addressed in the {', '.join(where[:3])}._")
            else:
                out.append(f"_{kp}: no sentence in the research mentions it; it is not addressed._")
            out.append("")
        out.append("_The executive summary and key insights were re-ranked towards the feedback's terms._")
    return "\n".join(out).rstrip() + "\n"


def _analysis_sections(analysis: str) -> tuple[str, list[str]]:
    """The analysis's executive summary paragraph and its other lines (headings demoted
    one level, title, notice and revision line dropped)."""
    summary = re.search(r"^## Executive summary\s*$(.*?)(?=^## |\Z)", analysis, flags=re.MULTILINE | re.DOTALL)
    rest = analysis[: summary.start()] + analysis[summary.end() :] if summary else analysis
    lines = []
    for line in rest.splitlines():
        if line.startswith("# ") or line.strip() == OFFLINE_NOTICE or line.strip().startswith("_Revision"):
            continue
        lines.append("#" + line if line.startswith("## ") else line)
    return (summary.group(1).strip() if summary else ""), lines


def report_budget(questions: int) -> int:
    """Most body sentences a report has: :data:`REPORT_BASE_SENTENCES` plus
    :data:`REPORT_SENTENCES_PER_QUESTION` per planned question (20 for 3 questions)."""
    return REPORT_BASE_SENTENCES + REPORT_SENTENCES_PER_QUESTION * questions


def _findings(answers: list[Answer], pool: list[Candidate], stated: list[str], budget: int) -> dict[str, list[Candidate]]:
    """Each answered question's findings: its best sentences not stated yet, taken one
    question at a time in turn (so each gets its share) until ``budget`` sentences are
    taken or none is left; at most :data:`FINDING_SENTENCES` per question. (A floor on
    a finding's score relative to its question's best made reports shorter but lost
    reference facts on both evaluation corpora, so there is none.)"""
    said = list(stated)
    own = {a.question_id: [c for c in pool if c.of(a.question_id)] for a in answers if not a.failed}
    scores = {qid: score(cands, next(a.question for a in answers if a.question_id == qid)) for qid, cands in own.items()}
    chosen: dict[str, list[Candidate]] = {qid: [] for qid in own}
    progress = True
    while budget > 0 and progress:
        progress = False
        for qid, cands in own.items():
            if budget <= 0 or len(chosen[qid]) >= FINDING_SENTENCES:
                continue
            best = pick(cands, scores[qid], 1, exclude=said, per_source=1)
            if best:
                chosen[qid].append(cands[best[0]])
                said.append(cands[best[0]].text)
                budget -= 1
                progress = True
    return chosen


def compose_writer(prompt: str) -> str:
    """The report: title, the approved analysis's executive summary, findings per question
    (each question's best sentences that the analysis does not already state, citations in
    the document's numbering), the rest of the analysis (headings demoted), approval notes,
    and the document's numbered sources. No sentence appears twice (:func:`_plan`)."""
    topic = read_tag(prompt, "topic") or "Research report"
    analysis = read_tag(prompt, "analysis") or ""
    approval = read_tag(prompt, "approval_feedback")
    answers, sources = research_from(prompt)
    summary, rest = _analysis_sections(analysis)
    stated = [b.text for b in body_sentences(analysis)]  # the summary's sentences included
    pool = _pool(prompt, answers)
    if not summary:  # an analysis written by another model: choose the summary here
        idx = pick(pool, score(pool, topic), SUMMARY_SENTENCES, exclude=stated, per_source=1)
        summary = " ".join(pool[i].cited() for i in idx)
        stated += [pool[i].text for i in idx]
    out = [f"# {topic}", "", OFFLINE_NOTICE, "", "## Executive summary", "", summary or "The research holds no complete sentences."]
    out += ["", "## Findings", ""]
    findings = _findings(answers, pool, stated, report_budget(len(answers)) - len(stated))
    for answer in answers:
        out += [f"### {answer.question}", ""]
        if answer.failed:
            out += ["_No answer: this research branch failed._", ""]
            continue
        chosen = findings.get(answer.question_id, [])
        out += (_bullets(chosen) or ["_What the research found for this question is stated above._"]) + [""]
    out += ["## Analysis", ""] + rest
    if approval:
        out += ["", "## Approval notes", ""] + ["> " + line for line in approval.splitlines()]
    out += ["", "## Sources", ""]
    out += [f"{s.number}. [{s.title}]({s.uri})" for s in sources] or ["_No sources were cited._"]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(out)).rstrip() + "\n"
