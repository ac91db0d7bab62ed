"""What the offline model composes from passages: the researcher's cited answer, the
planner's questions, and a generic extractive summary (no role marker)."""

from __future__ import annotations

import re

from .. import text as tx
from ..prompts import read_tag
from ..provenance import OFFLINE_NOTICE
from .conversation import Source


def _sentences_with_sources(sources: list[Source]) -> tuple[list[str], list[int]]:
    sentences: list[str] = []
    owners: list[int] = []
    for src in sources:
        for s in tx.split_sentences(src.text):
            if len(s) > 400:
                s = s[:400].rsplit(" ", 1)[0] + "…"
            sentences.append(s)
            owners.append(src.ref)
    return sentences, owners


def compose_researcher(prompt: str, sources: list[Source], max_sentences: int = 6) -> str:
    """An answer: the most relevant, central sentences of the passages, each cited ``[n]``,
    then the cited sources (title + URI)."""
    question = read_tag(prompt, "question") or prompt
    if not sources:
        return f"No passage in the corpus matched the question: {question}\n\n{OFFLINE_NOTICE}"
    sentences, owners = _sentences_with_sources(sources)
    scores = tx.rank_sentences(sentences, query=question)
    picked = tx.select(sentences, scores, max_sentences)
    by_ref = {s.ref: s for s in sources}
    cited: list[int] = []
    lines: list[str] = []
    for i in picked:
        ref = owners[i]
        if ref not in cited:
            cited.append(ref)
        lines.append(f"- {sentences[i]} [{ref}]")
    if not lines:  # only fragments: quote the best passage's start
        best = sources[0]
        lines.append(f"- {tx.clip_words(best.text, 60)} [{best.ref}]")
        cited.append(best.ref)
    cited_lines = [f"- [{r}] [{by_ref[r].title}]({by_ref[r].uri})" for r in sorted(cited)]
    return "\n".join(lines) + "\n\n**Sources**\n" + "\n".join(cited_lines) + f"\n\n{OFFLINE_NOTICE}"


_QUESTION_TEMPLATES = (
    "What is {s}, and how does it work?",
    "How does {s} relate to {topic}?",
    "What limits and quotas apply to {s}?",
    "How are errors and retries handled in {s}?",
    "How is {s} secured?",
    "How is {s} monitored?",
    "What drives the cost of {s}?",
    "What are the common usage patterns for {s}?",
    "What alternatives to {s} exist?",
    "How is {s} tested?",
    "How is {s} configured?",
    "What changed recently in {s}?",
)


def compose_planner(prompt: str, sources: list[Source]) -> str:
    """``count`` distinct questions from the topic's keyphrases and the corpus hits'
    keyphrases/titles, one per line, numbered. The topic itself comes first when it is a
    question. Question frames are :data:`_QUESTION_TEMPLATES` filled with those phrases."""
    topic = " ".join((read_tag(prompt, "topic") or prompt).split())
    try:
        count = max(1, int(read_tag(prompt, "count") or 3))
    except ValueError:
        count = 3
    subjects: list[str] = []

    def add(phrase: str) -> None:
        phrase = " ".join(phrase.split()).strip(" .,:;?!")
        if phrase and phrase.lower() not in {s.lower() for s in subjects}:
            subjects.append(phrase)

    for kp in tx.keyphrases(topic, top=6) or [topic]:
        add(kp)
    for src in sources:
        add(src.title.split(" — ")[-1])
    if sources:
        passages = re.sub(
            r"^Request parameters:$", "", "\n".join(s.text for s in sources), flags=re.MULTILINE
        )
        for kp in tx.keyphrases(passages, top=8):
            add(kp)
    if not subjects:
        add(topic)
    questions: list[str] = []
    seen: set[str] = set()

    def push(q: str) -> None:
        key = q.lower()
        if key not in seen and len(questions) < count:
            seen.add(key)
            questions.append(q)

    if topic.endswith("?"):
        push(topic)
    short_topic = tx.clip_words(topic.rstrip("?"), 12)
    # Diagonal walk: subject i gets template (i + round) so neighbours differ in both.
    for round_ in range(len(_QUESTION_TEMPLATES)):
        for i, subject in enumerate(subjects):
            template = _QUESTION_TEMPLATES[(i + round_) % len(_QUESTION_TEMPLATES)]
            if "{topic}" in template and subject.lower() in short_topic.lower():
                continue
            # Later subjects carry the main subject as context, for the researcher's search.
            shown = (
                subject if i == 0 or subjects[0].lower() in subject.lower() else f"{subject} ({subjects[0]})"
            )
            push(template.format(s=shown, topic=short_topic))
        if len(questions) >= count:
            break
    n = 1
    while len(questions) < count:  # very short inputs: number the remaining angles
        push(f"What else should be known about {subjects[(n - 1) % len(subjects)]} (angle {n})?")
        n += 1
    return "\n".join(f"{i}. {q}" for i, q in enumerate(questions, 1)) + f"\n\n{OFFLINE_NOTICE}"



def compose_generic(prompt: str, sources: list[Source], max_sentences: int = 6) -> str:
    """No role marker: an extractive summary of the tool results (cited) or the prompt."""
    if sources:
        return compose_researcher(prompt, sources, max_sentences)
    summary = tx.summarize(prompt, k=max_sentences)
    return ("\n".join(f"- {s}" for s in summary) or prompt.strip()) + f"\n\n{OFFLINE_NOTICE}"
