"""The quality check of a report or an analysis: is each sentence supported by the source it
cites, does it say anything twice, is it prose, and does it answer the planned questions.

Pure and deterministic; :func:`assess` returns a :class:`~relay_core.models.QualityAssessment`.
The figures are lexical: they check that the words of a sentence are in the passages it
cites and that the questions' key words are answered by grounded sentences. They cannot
tell whether a sentence is true, or whether a paraphrase keeps the source's meaning.

Definitions (the thresholds are module constants):

* **body sentences**: :func:`body_sentences`: the prose of the text, without its title,
  headings, italic notices, block quotes, horizontal rules, and the *Sources* and *Open
  questions* sections (those list sources and questions; they state no facts);
* **cited**: the sentence carries at least one ``[n]`` citation (one naming a number the
  research lacks counts as cited, and grounds nothing);
* **grounded**: cited, and at least :data:`GROUNDED_THRESHOLD` of its content words
  (:func:`relay_core.prose.content_tokens`) occur in the passages of the sources it cites,
  a word counting as found when rapidfuzz's ``fuzz.ratio`` against a word of the passages
  reaches :data:`WORD_MATCH_SCORE` (so ``retried`` finds ``retries``); a word with a digit
  in it (``100``, ``ec2``) is found only as itself (``100`` does not find ``1000``);
* **repeated**: :func:`repeats` an earlier body sentence: token Jaccard of their content
  words ≥ :data:`REPEAT_JACCARD`, or rapidfuzz's ``token_set_ratio`` ≥
  :data:`REPEAT_TOKEN_SET` when the shorter has at least :data:`REPEAT_MIN_TOKENS` content
  words (one sentence holding all of another's words);
* **fragment**: :func:`relay_core.prose.fragment_kind` names it (grammar, code, table,
  list-marker remnant, glued heading, lead-in, scrap);
* **question answered**: some grounded body sentence holds at least
  :data:`RELEVANCE_THRESHOLD` of the question's key words (its content words less the
  words that only frame a question, :data:`QUESTION_FRAME_WORDS`).
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from functools import lru_cache

from rapidfuzz import fuzz, process

from .models import (
    QUALITY_EXAMPLE_MAX_CHARS,
    QualityAssessment,
    QuestionCoverage,
    ResearchDocument,
    clip,
)
from .prose import citations, content_tokens, fragment_kind, split_sentences, strip_citations

#: Share of a sentence's content words that must be found in a cited source.
GROUNDED_THRESHOLD = 0.8
#: rapidfuzz ``fuzz.ratio`` (0–100) at which two words count as the same word.
WORD_MATCH_SCORE = 85
#: Content-word Jaccard at which a sentence repeats another (the issue's measure).
REPEAT_JACCARD = 0.7
#: rapidfuzz ``token_set_ratio`` at which a sentence repeats another.
REPEAT_TOKEN_SET = 95
#: Fewest content words the shorter sentence needs for the token-set rule.
REPEAT_MIN_TOKENS = 5
#: Share of a question's key words a grounded sentence must hold to answer it.
RELEVANCE_THRESHOLD = 0.5
#: Words that frame a question without naming its subject.
QUESTION_FRAME_WORDS = frozenset(
    """work works working happen happens use used using usage handle handled handling mean means way ways
    kind kinds type types role need needs apply applies relate relates related differ difference common
    pattern patterns aws amazon""".split()  # noqa: SIM905 (one word list, read as prose)
)
#: Sections (level-2 or level-3 headings, case-insensitive) whose lines are not body.
NON_BODY_SECTIONS = frozenset({"sources", "open questions", "references"})

_HEADING_RE = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_LIST_RE = re.compile(r"^(?:[-*+•]|\d+[.)])\s+")
_LINK_RE = re.compile(r"\[([^\]]+)\]\(([^)\s]+)\)")
_CODE_SPAN_RE = re.compile(r"(`+)(.+?)\1")


@dataclass(frozen=True)
class BodySentence:
    """One body sentence.

    Attributes:
        text: the sentence without its ``[n]`` markers and Markdown emphasis.
        citations: the source numbers it cites, in order.
        section: the heading it stands under (``""`` before the first).
    """

    text: str
    citations: tuple[int, ...]
    section: str


def _emphasis_dropped(text: str) -> str:
    return text.replace("**", "").replace("__", "").replace("`", "")


def _inline(line: str) -> str:
    """A Markdown line as text: character references decoded (``&lt;`` is ``<``, as the
    rendered page shows it; artifacts are stored escaped by ``markdown_safe``), links to
    their text, ``**``/``__``/backticks dropped; a code span's content kept as written
    (`` `__exit__()` `` stays ``__exit__()``)."""
    line = _LINK_RE.sub(r"\1", html.unescape(line))
    out: list[str] = []
    end = 0
    for span in _CODE_SPAN_RE.finditer(line):
        out.append(_emphasis_dropped(line[end : span.start()]))
        out.append(span.group(2))
        end = span.end()
    out.append(_emphasis_dropped(line[end:]))
    return "".join(out)


def body_sentences(markdown: str) -> list[BodySentence]:
    """The body sentences of a Markdown report or analysis (see the module docstring).

    A paragraph is a run of non-blank lines; a list item is a paragraph of its own.
    """
    out: list[BodySentence] = []
    section = ""
    skip = parent_skip = False
    paragraph: list[str] = []

    def flush() -> None:
        if paragraph and not skip:
            for sentence in split_sentences(" ".join(paragraph)):
                text = strip_citations(sentence)
                if text:
                    out.append(BodySentence(text=text, citations=tuple(citations(sentence)), section=section))
        paragraph.clear()

    in_fence = False
    for raw in markdown.splitlines():
        line = raw.strip()
        if line.startswith("```"):
            flush()
            in_fence = not in_fence
            continue
        if in_fence:
            continue
        heading = _HEADING_RE.match(line)
        if heading:
            flush()
            level, name = len(heading.group(1)), heading.group(2).strip()
            if level <= 2:
                parent_skip = name.lower() in NON_BODY_SECTIONS
            section = name
            skip = parent_skip or name.lower() in NON_BODY_SECTIONS
            continue
        if not line or line.startswith(">") or re.fullmatch(r"[-*_]{3,}", line):
            flush()
            continue
        if re.fullmatch(r"_[^_].*_", line) or re.fullmatch(r"\*[^*].*\*", line):  # an italic notice
            flush()
            continue
        if _LIST_RE.match(line):
            flush()
            line = _LIST_RE.sub("", line)
        paragraph.append(_inline(line))
    flush()
    return out


@lru_cache(maxsize=4096)
def _tokens(text: str) -> tuple[str, ...]:
    return tuple(content_tokens(text))


def repeats(a: str, b: str) -> bool:
    """Whether sentences ``a`` and ``b`` say the same thing (see the module docstring)."""
    ta, tb = set(_tokens(a)), set(_tokens(b))
    if not ta or not tb:
        return False
    if len(ta & tb) / len(ta | tb) >= REPEAT_JACCARD:
        return True
    if min(len(ta), len(tb)) < REPEAT_MIN_TOKENS:
        return False
    return fuzz.token_set_ratio(" ".join(sorted(ta)), " ".join(sorted(tb))) >= REPEAT_TOKEN_SET


def _found(word: str, vocabulary: frozenset[str], choices: list[str]) -> bool:
    if word in vocabulary:
        return True
    if any(c.isdigit() for c in word):  # a number has no inflections: 100 is not 1000
        return False
    return process.extractOne(word, choices, scorer=fuzz.ratio, score_cutoff=WORD_MATCH_SCORE) is not None


def support(sentence: str, passages: list[str]) -> float:
    """Share (0..1) of ``sentence``'s content words found in ``passages``; 0 for a
    sentence without content words or no passages."""
    words = _tokens(sentence)
    if not words or not passages:
        return 0.0
    vocabulary = frozenset(t for p in passages for t in _tokens(p))
    choices = sorted(vocabulary)
    return sum(1 for w in words if _found(w, vocabulary, choices)) / len(words)


def question_keywords(question: str) -> list[str]:
    """The words of ``question`` that name its subject (content words less
    :data:`QUESTION_FRAME_WORDS`), each once; all content words if none is left."""
    words = list(dict.fromkeys(_tokens(question)))
    keys = [w for w in words if w not in QUESTION_FRAME_WORDS]
    return keys or words


def relevance(sentence: str, question: str) -> float:
    """Share (0..1) of the question's key words (:func:`question_keywords`) that
    ``sentence`` holds (a word found as in grounding)."""
    keys = question_keywords(question)
    if not keys:
        return 0.0
    vocabulary = frozenset(_tokens(sentence))
    choices = sorted(vocabulary)
    return sum(1 for k in keys if choices and _found(k, vocabulary, choices)) / len(keys)


def assess(markdown: str, research: ResearchDocument, *, artifact: str = "report.md") -> QualityAssessment:
    """Assess a report or analysis against the research it was written from.

    Args:
        markdown: the report or analysis Markdown, citing sources by their number in
            ``research.sources``.
        research: the research document: its planned questions, and its sources with the
            passages the researchers read (:attr:`ResearchSource.passages`).
        artifact: the assessed artifact's name, recorded in the result.

    Returns:
        The figures and up to three examples of each defect (see the module docstring).
        A sentence citing a source the document lacks, or a source with no passages,
        is cited but not grounded.
    """
    sentences = body_sentences(markdown)
    passages = {s.number: s.passages for s in research.sources}
    cited = grounded = repeated = fragments = 0
    grounded_texts: list[str] = []
    ungrounded: list[str] = []
    repeated_texts: list[str] = []
    fragment_texts: list[str] = []
    for i, sentence in enumerate(sentences):
        if sentence.citations:
            cited += 1
            evidence = [p for n in sentence.citations for p in passages.get(n, [])]
            if support(sentence.text, evidence) >= GROUNDED_THRESHOLD:
                grounded += 1
                grounded_texts.append(sentence.text)
            else:
                ungrounded.append(sentence.text)
        if any(repeats(sentence.text, earlier.text) for earlier in sentences[:i]):
            repeated += 1
            repeated_texts.append(sentence.text)
        if fragment_kind(sentence.text) is not None:
            fragments += 1
            fragment_texts.append(sentence.text)
    coverage = []
    for finding in research.findings:
        best = max((relevance(text, finding.question) for text in grounded_texts), default=0.0)
        coverage.append(
            QuestionCoverage(
                question_id=finding.question_id,
                question=finding.question,
                answered=best >= RELEVANCE_THRESHOLD,
                relevance=round(best, 3),
            )
        )

    def examples(texts: list[str]) -> list[str]:
        return [clip(t, QUALITY_EXAMPLE_MAX_CHARS) for t in texts[:3]]

    return QualityAssessment(
        artifact=artifact,
        sentences=len(sentences),
        cited=cited,
        grounded=grounded,
        repeated=repeated,
        fragments=fragments,
        questions=coverage,
        ungrounded_examples=examples(ungrounded),
        repeated_examples=examples(repeated_texts),
        fragment_examples=examples(fragment_texts),
    )
