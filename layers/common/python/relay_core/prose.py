"""Prose: sentences, content words, and what is not prose.

One definition, used by the agents to choose what they quote and by
:mod:`relay_core.quality` to score what they wrote:

* :func:`split_sentences` segments text with syntok (Leitner's segtok v2, rule-based,
  needs no data download), after joining the hard-wrapped lines of a paragraph and
  keeping a trailing ``[n]`` citation with the sentence it follows;
* :func:`fragment_kind` names what a "sentence" is when it is not prose: a grammar
  production, a code line, a table row, a list-marker remnant, a heading glued to the
  next sentence, an unfinished lead-in (ending in ``:``) or a scrap of fewer than four
  words;
* :func:`content_tokens` are the words that carry meaning (lower-cased, camelCase split,
  stopwords removed, plural ``s`` dropped): what grounding and coverage compare.

Everything is deterministic and pure.
"""

from __future__ import annotations

import re
from functools import lru_cache

#: Fewest words a prose sentence has.
MIN_WORDS = 4
#: Share of a sentence's visible characters that may be code punctuation before it is
#: called code: English prose stays well under it; a line like
#: ``manager = (EXPRESSION) enter = type(manager).__enter__`` is far above it.
CODE_PUNCTUATION_SHARE = 0.08

#: English function words (articles, pronouns, auxiliaries, prepositions, conjunctions):
#: they carry no content, so grounding and coverage ignore them.
STOPWORDS = frozenset(
    """a about above after again against all also am an and any are as at be because been before being
    below between both but by can could did do does doing done down during each either else etc few for
    from further had has have having he her here hers herself him himself his how however i if in into is
    it its itself just may me might more most must my myself no nor not now of off on once one only or
    other ought our ours ourselves out over own per same shall she should so some such than that the their
    theirs them themselves then there these they this those through thus to too under until up upon us very
    via was we were what when where whether which while who whom whose why will with within without would
    you your yours yourself yourselves""".split()  # noqa: SIM905 (one word list, read as prose)
)

_CAMEL_RE = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_WORD_RE = re.compile(r"[a-z0-9]+")
_CITE_RE = re.compile(r"\s*\[(\d+(?:\s*,\s*\d+)*)\]")
#: ``end. [1] Next`` → the citation belongs to the sentence before it.
_TRAILING_CITE_RE = re.compile(r"([.!?])((?:\s*\[\d+(?:\s*,\s*\d+)*\])+)")
#: A citation marker, and the word that stands for the n-th one while syntok segments.
_CITE_MARK_RE = re.compile(r"\[\d+(?:\s*,\s*\d+)*\]")
_CITE_MASK = "zqcite{}zq"
_CITE_MASK_RE = re.compile(r"zqcite(\d+)zq")
_LIST_LINE_RE = re.compile(r"^\s*(?:[-*+•]|\d+[.)])\s+")
_TERMINAL_RE = re.compile(r"[.!?:;][\"”')\]]*$")
#: Lines that stand alone: a Markdown heading, a code prompt, a table row, a fence.
_BLOCK_START_RE = re.compile(r"^(?:#{1,6}\s|>>>|\.\.\.\s|\||```)")
#: A line this long that ends without punctuation is a wrapped line of a paragraph.
_WRAPPED_LINE_CHARS = 50
_CITED_END_RE = re.compile(r"(?<=\d\][.!?])\s+")
_OPENING_BRACKETS = frozenset("([{")
_CLOSING_BRACKETS = frozenset(")]}")
#: How a sentence ends: a terminal, then any closing quotes or brackets.
_SENTENCE_END_RE = re.compile(r"[.!?…][\"'”’)\]]*\s*$")


def citations(text: str) -> list[int]:
    """The ``[n]`` / ``[n, m]`` citation numbers in ``text``, in order, each once."""
    out: list[int] = []
    for group in _CITE_RE.findall(text):
        for n in group.split(","):
            if int(n) not in out:
                out.append(int(n))
    return out


def strip_citations(text: str) -> str:
    """``text`` without ``[n]`` citation markers (whitespace before them removed)."""
    return _CITE_RE.sub("", text).strip()


def _paragraphs(text: str) -> list[str]:
    """Blocks of ``text``: blank lines and list items start a block; a line joins the one
    before it only when that one looks hard-wrapped (long, no closing punctuation), so a
    short heading line is never glued to the sentence under it."""
    blocks: list[str] = []
    current: list[str] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            if current:
                blocks.append(" ".join(current))
                current = []
            continue
        wrapped = (
            current
            and not _LIST_LINE_RE.match(line)
            and not _BLOCK_START_RE.match(line)
            and not _BLOCK_START_RE.match(current[0])
            and len(current[-1]) >= _WRAPPED_LINE_CHARS
            and not _TERMINAL_RE.search(current[-1])
        )
        if wrapped:
            current.append(line)
            continue
        if current:
            blocks.append(" ".join(current))
        current = [line]
    if current:
        blocks.append(" ".join(current))
    return blocks


@lru_cache(maxsize=1)
def _segmenter():  # type: ignore[no-untyped-def]
    from syntok import segmenter

    return segmenter


def _masked_citations(text: str) -> tuple[str, list[str]]:
    """``text`` with its n-th citation marker replaced by :data:`_CITE_MASK` ``n``, and the markers."""
    marks: list[str] = []

    def hide(match: re.Match[str]) -> str:
        marks.append(match.group(0))
        return _CITE_MASK.format(len(marks) - 1)

    return _CITE_MARK_RE.sub(hide, text), marks


def _unmasked(text: str, marks: list[str]) -> str:
    return _CITE_MASK_RE.sub(lambda m: marks[int(m.group(1))], text)


def split_sentences(text: str) -> list[str]:
    """The sentences of plain text (or Markdown prose), in order.

    Paragraphs come from :func:`_paragraphs`; each is segmented by syntok, and a sentence
    is the text as written from its first token to the next sentence's (contractions
    kept: syntok's own token values spell ``didn't`` as ``did`` + ``not``). A citation after the full stop
    (``… done. [2]``) is moved before it (``… done [2].``) so it stays with its sentence.
    Citations are hidden from syntok behind a word while it segments: after a bracket
    (``… close() [1]. Then …``) it would not end the sentence at the full stop. syntok
    also splits at a bracket where no sentence ends: before one it cannot close
    (``… a value (or None.``) or after a closed one (``… (256 KB) KMS …``); such pieces
    are joined back unless the first ends with a terminal. A citation followed by a full
    stop always ends a sentence, even before a lower-case word.

    Returns:
        Non-empty, whitespace-normalised sentences.
    """
    segmenter = _segmenter()
    out: list[str] = []
    for paragraph in _paragraphs(text):
        paragraph = _TRAILING_CITE_RE.sub(r"\2\1", " ".join(paragraph.split()))
        if not paragraph:
            continue
        masked, marks = _masked_citations(paragraph)
        pieces: list[str] = []
        # Each sentence is the masked text from its first token to the next sentence's:
        # syntok's token values are normalised ("didn't" → "did", "not"), its offsets
        # point into the text as written.
        starts = [sentence[0].offset for block in segmenter.process(masked) for sentence in block if sentence]
        for start, end in zip(starts, [*starts[1:], len(masked)], strict=True):
            raw = _unmasked(masked[start:end], marks)
            previous = pieces[-1].rstrip() if pieces else ""
            at_bracket = raw.lstrip()[:1] in _OPENING_BRACKETS or previous[-1:] in _CLOSING_BRACKETS
            if previous and at_bracket and not _SENTENCE_END_RE.search(previous):
                pieces[-1] += raw
            else:
                pieces.append(raw)
        for piece in pieces:
            # A citation then a full stop ends a sentence whatever follows (syntok does not
            # end one before a lower-case word: ``… hashable [1]. assigned is …``).
            out.extend(part for part in (" ".join(p.split()) for p in _CITED_END_RE.split(piece)) if part)
    return out


def words(text: str) -> list[str]:
    """Every lower-cased word of ``text`` (camelCase split), stopwords included."""
    return _WORD_RE.findall(_CAMEL_RE.sub(" ", text).lower())


def _normalise(word: str) -> str:
    """Plural ``s`` dropped from words of five letters or more (``tokens``→``token``,
    ``policies``→``policy``); ``-ss``/``-us``/``-is`` endings kept. A past ``-ied`` ends
    like the plural (``retried``→``retry``, as ``retries``→``retry``): without it the two
    are too far apart for :data:`relay_core.quality.WORD_MATCH_SCORE`."""
    if len(word) < 5 or word.isdigit() or word.endswith(("ss", "us", "is")):
        return word
    if word.endswith(("ies", "ied")):
        return word[:-3] + "y"
    return word[:-1] if word.endswith("s") else word


def content_tokens(text: str) -> list[str]:
    """The content words of ``text``, in order: lower-cased, camelCase split
    (``SendTaskSuccess`` → ``send task success``), citation markers, stopwords and
    one-letter words dropped, plural ``s`` normalised."""
    return [_normalise(w) for w in words(strip_citations(text)) if w not in STOPWORDS and len(w) > 1]


_GRAMMAR_RE = re.compile(r"::=|:=\s*\(|\|\s*\"|^\s*\w+\s*:\s*\w+\s*\|")
_CODE_START_RE = re.compile(
    r"^(?:>>>|\.\.\.|\$ |\\?#|def |class |import |from \S+ import |return |raise |@\w|[A-Za-z_][\w.]*\s*=\s*\S)"
)
_ASSIGNMENT_RE = re.compile(r"\b[A-Za-z_][\w.]*\s*=\s*[\w(\[{\"'.]")
_CODE_CHARS_RE = re.compile(r"[(){}\[\]=<>;|\\$#@^~]")
#: Brackets prose uses, not counted as code punctuation: the empty parentheses of a
#: method or function named in a sentence (``calls __exit__()``), and those of a
#: parenthetical remark (opened after a space, words inside: ``retries (up to 3 times)``).
_EMPTY_CALL_RE = re.compile(r"(?<=\w)\(\)")
_PARENTHETICAL_RE = re.compile(r"(?:^|(?<=\s))\(([^()]*\s[^()]*)\)")
_LIST_REMNANT_RE = re.compile(r"(?:^|\s)[*•+](?:\s|$)|^\s*[-–]\s|^\d{1,2}[.)]\s")
#: A run of capitalised words, then a word that opens a sentence: a heading glued to
#: the sentence under it (``Overview The with statement …``).
_GLUED_HEADING_RE = re.compile(
    r"^(?:[A-Z][\w/&-]*\s+){1,5}(?P<opener>The|A|An|This|These|That|It|You|Your|Use|If|When|For|To|In|Returns?|"
    r"Each|All|Specifies|Indicates|Creates|Deletes|Gets|Lists|Updates)\s+(?P<next>[a-z]\w*)"
)
#: Two ``label:`` pairs at the start: a heading and a field name glued together
#: (``Request parameters: taskToken: The token …``).
_LABELS_RE = re.compile(r"^[A-Z][\w ]{0,40}:\s+\S+:\s")


def _glued_heading(text: str) -> bool:
    """Whether ``text`` starts with a heading glued to the sentence under it. ``A`` after a
    capitalised word followed by a verb (a stopword such as ``is``, or a word ending in a
    single ``s``) is a label, not an article: ``Option A is cheaper …``, ``Appendix A lists …``."""
    match = _GLUED_HEADING_RE.match(text)
    if not match:
        return False
    following = match.group("next")
    label_verb = following in STOPWORDS or (following.endswith("s") and not following.endswith(("ss", "us", "is")))
    return not (match.group("opener") == "A" and label_verb)


def fragment_kind(sentence: str) -> str | None:
    """What ``sentence`` is when it is not prose, or ``None`` when it is.

    Kinds, checked in this order: ``grammar`` (a production: ``::=``), ``code`` (a
    prompt, a ``#`` comment or heading, a statement or assignment at its start, an assignment, or more than :data:`CODE_PUNCTUATION_SHARE` of
    its visible characters code punctuation), ``table`` (cells between ``|``),
    ``list-marker`` (a stray ``*``/``•``/``-`` bullet or a ``1.`` list number), ``heading`` (a heading glued to
    the sentence under it, or two ``label:`` pairs: ``Request parameters: taskToken: The
    token …``; one ``name: description`` pair is a definition and counts as prose), ``lead-in`` (ends with ``:``, the
    list it introduced is missing), ``too-short`` (fewer than :data:`MIN_WORDS` words, or
    no lower-case word at all).
    """
    text = strip_citations(sentence).strip()
    if not text:
        return "too-short"
    if _GRAMMAR_RE.search(text):
        return "grammar"
    if _CODE_START_RE.match(text) or "`" in text and text.count("`") >= 4:
        return "code"
    visible = [c for c in text if not c.isspace()]
    code_chars = len(_CODE_CHARS_RE.findall(_PARENTHETICAL_RE.sub(r"\1", _EMPTY_CALL_RE.sub("", text))))
    if visible and code_chars / len(visible) > CODE_PUNCTUATION_SHARE:
        return "code"
    if _ASSIGNMENT_RE.search(text) and ("(" in text or text.count("=") > 1):
        return "code"
    if text.count("|") >= 2:
        return "table"
    if _LIST_REMNANT_RE.search(text):
        return "list-marker"
    if _glued_heading(text) or _LABELS_RE.match(text):
        return "heading"
    if text.rstrip().endswith(":"):
        return "lead-in"
    lowered = [w for w in re.findall(r"[A-Za-z]+", text) if w.islower()]
    if len(text.split()) < MIN_WORDS or not lowered:
        return "too-short"
    return None


def is_prose(sentence: str) -> bool:
    """``fragment_kind(sentence) is None``."""
    return fragment_kind(sentence) is None
