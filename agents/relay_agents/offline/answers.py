"""What the offline model composes from passages: the researcher's cited answer, the
planner's questions, and a generic extractive summary (no role marker)."""

from __future__ import annotations

import re

from .. import text as tx
from ..evidence import Candidate, dedupe, pick, prose_sentences, score
from ..prompts import read_tag
from ..provenance import OFFLINE_NOTICE
from .conversation import Source
from .tool_calls import query_from


def _candidates(sources: list[Source]) -> list[Candidate]:
    """Prose sentences of the passages, each citing its source, weighted by the passage's
    retrieval score relative to the best one."""
    top = max((s.score for s in sources), default=0.0) or 1.0
    out: list[Candidate] = []
    for src in sources:
        weight = max(0.0, min(1.0, src.score / top)) if src.score else 0.5
        for position, sentence in prose_sentences(src.text):
            out.append(Candidate(sentence, (src.ref,), weight, position == 0, str(src.ref)))
    return dedupe(out)


#: Most sentences a research answer quotes from one source; from a source that matched
#: (nearly) as well as the best one, :data:`PER_TOP_SOURCE`: the documents that are about
#: the question are read deeper than the ones that only mention it.
PER_SOURCE = 3
PER_TOP_SOURCE = 8
#: Share of the best retrieval score from which a source counts as a top source.
TOP_SOURCE_SHARE = 0.85


def source_caps(sources: list[Source]) -> dict[str, int]:
    """Most sentences to quote per source (keyed like :attr:`Candidate.group`)."""
    top = max((s.score for s in sources), default=0.0)
    return {
        str(s.ref): PER_TOP_SOURCE if top and s.score >= TOP_SOURCE_SHARE * top else PER_SOURCE for s in sources
    }


def compose_researcher(prompt: str, sources: list[Source], max_sentences: int = 14) -> str:
    """An answer: up to ``max_sentences`` prose sentences of the passages, best first
    (:func:`relay_agents.evidence.score` against the question, then
    :func:`~relay_agents.evidence.pick`: no repeats),
    at most :func:`source_caps` per source, each cited ``[n]``; then the cited sources (title + URI)."""
    question = read_tag(prompt, "question") or prompt
    if not sources:
        return f"No passage in the corpus matched the question: {question}\n\n{OFFLINE_NOTICE}"
    candidates = _candidates(sources)
    picked = pick(candidates, score(candidates, question), max_sentences, per_source=source_caps(sources))
    by_ref = {s.ref: s for s in sources}
    lines = [f"- {candidates[i].cited()}" for i in picked]
    cited = sorted({candidates[i].refs[0] for i in picked})
    if not lines:  # no prose at all: quote the best passage's start
        best = sources[0]
        lines.append(f"- {tx.clip_words(best.text, 60)} [{best.ref}]")
        cited = [best.ref]
    cited_lines = [f"- [{r}] [{by_ref[r].title}]({by_ref[r].uri})" for r in cited]
    return "\n".join(lines) + "\n\n**Sources**\n" + "\n".join(cited_lines) + f"\n\n{OFFLINE_NOTICE}"


#: Question frames for a subject the corpus surfaced, with the topic's key noun phrase as
#: context; none pastes the topic into the question, and each reads as English whether
#: the subject is singular or plural.
_FRAMES = (
    "What is the role of {s} in {main}?",
    "How do {s} and {main} work together?",
)
#: The frame for a subject that names an API (an operation, a function, a class): its
#: documentation says what it does, which is what the topic needs from it.
_API_FRAME = "What does {s} do?"
_API_NAME_RE = re.compile(r"^[A-Za-z_][\w]*(?:\.[A-Za-z_]\w*)+$|^[a-z]+_\w+$|^(?:[A-Z][a-z0-9]+){2,}$")
#: The frame used for the topic's own subject, when the topic is not itself a question.
_MAIN_FRAME = "What are the key facts about {s}?"
#: Angles on the topic's own subject, when the corpus surfaced too few other subjects.
_ANGLES = (
    "Which limits and failure modes apply to {s}?",
    "How are errors and retries handled for {s}?",
    "What security controls apply to {s}?",
    "How can {s} be monitored?",
)


_LEAD_RE = re.compile(
    r"^(?:how|what|why|when|which|where|who)(?:\s+(?:do|does|did|is|are|can|should|would|could|to))?"
    r"(?:\s+(?:i|you|we|one))?\s+",
    re.IGNORECASE,
)
_HEADING_RE = re.compile(r"^#{1,4}\s+(.+?)\s*#*$", re.MULTILINE)
_TRAIL_RE = re.compile(r"\s+(?:work|works|happen|happens|function|behave)\s*$", re.IGNORECASE)
#: Longest topic kept whole as the subject, in words.
SUBJECT_MAX_WORDS = 6


def main_subject(topic: str) -> str:
    """The topic's subject: the topic without its question frame (``How do … work?`` →
    ``…``) when that leaves at most :data:`SUBJECT_MAX_WORDS` words, else its best
    YAKE! keyphrase."""
    core = _TRAIL_RE.sub("", _LEAD_RE.sub("", topic.strip().rstrip("?.!").strip()))
    core = " ".join(core.split()).strip(" ,;:")
    if core and len(core.split()) <= SUBJECT_MAX_WORDS:
        return core
    return query_from(core or topic, limit=1) or tx.clip_words(core or topic, SUBJECT_MAX_WORDS)


def _subject(title: str) -> str:
    """A document title's subject: the part after the last `` — `` (an operation name)."""
    return " ".join(title.split(" — ")[-1].split()).strip(" .,:;?!")


def compose_planner(prompt: str, sources: list[Source]) -> str:
    """``count`` distinct, well-formed questions, numbered, one per line.

    The first is the topic itself when it is a question (else one about the topic's main
    keyphrase); the others ask about the subjects the corpus search surfaced for the topic
    (document titles such as an API operation's name, then the passages' Markdown
    headings, then their keyphrases), those sharing a word with the topic first, each
    group in the order the search ranked them, an API name in :data:`_API_FRAME`, any other
    subject in one of :data:`_FRAMES` with the topic's
    subject (:func:`main_subject`) as context; then :data:`_ANGLES` on
    that phrase. A subject is a short phrase (at most four words), never the topic's text."""
    topic = " ".join((read_tag(prompt, "topic") or prompt).split())
    try:
        count = max(1, int(read_tag(prompt, "count") or 3))
    except ValueError:
        count = 3
    main = main_subject(topic)
    questions: list[str] = []

    def push(question: str) -> None:
        if question.lower() not in {q.lower() for q in questions} and len(questions) < count:
            questions.append(question)

    push(topic if topic.endswith("?") else _MAIN_FRAME.format(s=main))
    subjects: list[str] = []

    def add(phrase: str) -> None:
        phrase = " ".join(phrase.split()).strip(" .,:;?!")
        words = phrase.split()
        if not words or len(words) > 4 or phrase.lower() == main.lower():
            return
        if phrase.lower() in topic.lower() or phrase.lower() in {s.lower() for s in subjects}:
            return
        subjects.append(phrase)

    for src in sources:
        if " — " in src.title:
            add(_subject(src.title))
    for src in sources:
        for heading in _HEADING_RE.findall(src.text):
            add(heading)
    for src in sources:
        for kp in tx.keyphrases(src.text, top=3):
            add(kp)
    # Subjects named like the topic first (``dataclasses.dataclass`` for a question about
    # ``@dataclass``), each group in the order the search found them.
    topic_words = set(tx.tokenize(topic))
    subjects.sort(key=lambda subject: not (set(tx.tokenize(subject)) & topic_words))
    for n, subject in enumerate(subjects):
        frame = _API_FRAME if _API_NAME_RE.match(subject) else _FRAMES[n % len(_FRAMES)]
        push(frame.format(s=subject, main=main))
    for angle in _ANGLES:  # few subjects: other angles on the main one
        push(angle.format(s=main))
    n = 1
    while len(questions) < count:  # still short (a tiny corpus): number further angles
        push(f"What else do the sources say about {main} (angle {n})?")
        n += 1
    return "\n".join(f"{i}. {q}" for i, q in enumerate(questions, 1)) + f"\n\n{OFFLINE_NOTICE}"


def compose_generic(prompt: str, sources: list[Source], max_sentences: int = 6) -> str:
    """No role marker: an extractive summary of the tool results (cited) or the prompt."""
    if sources:
        return compose_researcher(prompt, sources, max_sentences)
    summary = tx.summarize(prompt, k=max_sentences)
    return ("\n".join(f"- {s}" for s in summary) or prompt.strip()) + f"\n\n{OFFLINE_NOTICE}"
