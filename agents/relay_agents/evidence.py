"""Evidence sentences and how the offline model chooses among them.

A :class:`Candidate` is one prose sentence (:func:`relay_core.prose.fragment_kind` is
``None``) with the source numbers it can cite. Choosing is two steps:

1. :func:`score`: relevance to a query by BM25 (``bm25s``) over the candidates, plus the
   squared weight of the passage or answer it came from, plus LexRank centrality over
   TF-IDF (scikit-learn), each scaled to 0..1; a passage's lead sentence (where
   documentation states what a thing is) and a sentence stating a number or a rule get
   small bonuses (:data:`DETAIL_BONUS`). A sentence sharing no word
   with the query is only eligible when its passage weighs at least
   :data:`CONTEXT_WEIGHT` (the passage matched, the sentence explains it);
2. :func:`pick`: greedy Maximal Marginal Relevance (Carbonell & Goldstein, 1998) in which
   a candidate that :func:`relay_core.quality.repeats` an already chosen or excluded
   sentence is never taken, and no source gives more than ``per_source`` sentences.

The quality check uses the same :func:`~relay_core.quality.repeats` and
:func:`~relay_core.prose.fragment_kind`, so a sentence this module refuses is one the
check would count against the report.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from relay_core.prose import fragment_kind, split_sentences, strip_citations
from relay_core.quality import QUESTION_FRAME_WORDS, repeats

from . import text as tx

#: Longest sentence quoted, in words: longer ones are run-ons of glued blocks.
MAX_WORDS = 60
#: Weights of query relevance, source weight and centrality in :func:`score`.
WEIGHTS = (0.55, 0.3, 0.15)
#: The same when the answer must address the query itself (an executive summary).
ANSWER_WEIGHTS = (0.8, 0.1, 0.1)
#: Source weight from which a sentence that shares no word with the query is still
#: taken on its passage's relevance (the passage matched; the sentence explains it).
CONTEXT_WEIGHT = 0.8
#: Bonus for each kind of detail a sentence states (scaled by its source's weight): a
#: number (a limit, a default, a duration) and a rule (``must``, ``cannot``, ``only``,
#: ``up to``, ``default``): documentation's facts are mostly of these two kinds.
DETAIL_BONUS = 0.1
_NUMBER_RE = re.compile(r"\d")
_RULE_RE = re.compile(
    r"\b(?:must|cannot|can't|only|maximum|minimum|up to|at most|at least|default|limit|never|always)\b", re.IGNORECASE
)
_DETAIL_RES = frozenset({"number", "rule"})


def details(text: str) -> frozenset[str]:
    """The kinds of detail ``text`` states: ``number`` and ``rule`` (see :data:`DETAIL_BONUS`)."""
    found = set()
    if _NUMBER_RE.search(text):
        found.add("number")
    if _RULE_RE.search(text):
        found.add("rule")
    return frozenset(found)


#: Bonus for the first sentence of a passage (scaled by the passage's weight).
LEAD_BONUS = 0.1


@dataclass(frozen=True)
class Candidate:
    """A sentence the model may quote.

    Attributes:
        text: the sentence, without citation markers.
        refs: the source numbers it cites when quoted (first is its own source).
        weight: 0..1, how relevant the passage or answer it came from was.
        lead: it opens its passage.
        group: where it came from (a source number, or a question id), for ``per_source``.
        groups: every group it came from (:func:`dedupe` unites them).
    """

    text: str
    refs: tuple[int, ...]
    weight: float = 1.0
    lead: bool = False
    group: str = ""
    groups: frozenset[str] = frozenset()

    def of(self, group: str) -> bool:
        """Whether it came from ``group``."""
        return group == self.group or group in self.groups

    def cited(self) -> str:
        """The sentence with its citations: ``text [1] [2]`` before the final stop."""
        body = self.text.rstrip()
        stop = body[-1] if body and body[-1] in ".!?" else "."
        body = body[:-1].rstrip() if body and body[-1] in ".!?" else body
        marks = "".join(f" [{r}]" for r in self.refs)
        return f"{body}{marks}{stop}"


#: Sentences that only point elsewhere ("For more information, see …"): prose, but they
#: state no fact a reader can use without the other page.
_POINTER_RE = re.compile(
    r"^(?:see\b|welcome to\b|for (?:more )?(?:information|details|examples?)\b|to learn more\b|refer to\b|"
    r"for a list of\b|this (?:operation|action|api) is (?:documented|described)\b)|"
    r"\bsee (?:the )?\S.{0,80}\b(?:guide|documentation|reference)\b",
    re.IGNORECASE,
)


def prose_sentences(text: str) -> list[tuple[int, str]]:
    """``(position, sentence)`` of the prose sentences of plain text that state something
    (pointers to other pages and questions dropped), position counted over every sentence (so 0 is
    the passage's lead)."""
    out = []
    for position, sentence in enumerate(split_sentences(text)):
        sentence = sentence.strip()
        if len(sentence.split()) > MAX_WORDS or fragment_kind(sentence) is not None:
            continue
        bare = strip_citations(sentence)
        if _POINTER_RE.search(bare) or bare.endswith("?"):  # a pointer, or a question: no fact
            continue
        out.append((position, sentence))
    return out


def query_tokens(query: str) -> list[str]:
    """BM25 tokens of a query, less the words that only frame a question."""
    tokens = tx.tokenize(query)
    kept = [t for t in tokens if t not in QUESTION_FRAME_WORDS]
    return kept or tokens


def scaled(values: np.ndarray) -> np.ndarray:
    """``values`` over their maximum (0..1 for non-negative scores); all zeros when none is positive."""
    top = float(values.max()) if len(values) else 0.0
    return values / top if top > 0 else np.zeros(len(values))


def score(candidates: Sequence[Candidate], query: str, weights: tuple[float, float, float] = WEIGHTS) -> np.ndarray:
    """One score per candidate (higher is better; see the module docstring); ``weights``
    are those of query relevance, source weight and centrality."""
    if not candidates:
        return np.zeros(0)
    texts = [c.text for c in candidates]
    relevance = scaled(tx.bm25_scores([tx.tokenize(t) for t in texts], query_tokens(query)))
    weight = np.array([c.weight for c in candidates], dtype=float)
    centrality = scaled(tx.rank_sentences(texts))
    lead = np.array([LEAD_BONUS * c.weight if c.lead else 0.0 for c in candidates])
    specific = np.array([DETAIL_BONUS * c.weight * len(_DETAIL_RES & details(c.text)) for c in candidates])
    a, b, c = weights
    scores = a * relevance + b * weight**2 + c * centrality + lead + specific
    # A sentence that shares no word with the query must come from a passage that does.
    eligible = (relevance > 0) | (weight >= CONTEXT_WEIGHT)
    return np.where(eligible, scores, -np.inf)


def pick(
    candidates: Sequence[Candidate],
    scores: np.ndarray,
    k: int,
    *,
    exclude: Iterable[str] = (),
    per_source: int | Mapping[str, int] = 3,
    min_score: float = 0.0,
) -> list[int]:
    """Up to ``k`` candidate indices, best first (see the module docstring).

    Args:
        exclude: sentences already said elsewhere: nothing repeating them is picked.
        per_source: most candidates of one ``group`` (one number for all, or per group;
            a group the mapping lacks gets none).
        min_score: candidates scoring below it are not picked.
    """
    cap: Callable[[str], int] = (lambda _g: per_source) if isinstance(per_source, int) else (lambda g: per_source.get(g, 0))
    said = list(exclude)
    chosen: list[int] = []
    taken: dict[str, int] = {}
    order = sorted(range(len(candidates)), key=lambda i: (-scores[i], i))
    for i in order:
        if len(chosen) >= k:
            break
        cand = candidates[i]
        if not np.isfinite(scores[i]) or scores[i] < min_score or taken.get(cand.group, 0) >= cap(cand.group):
            continue
        if any(repeats(cand.text, s) for s in said):
            continue
        chosen.append(i)
        said.append(cand.text)
        taken[cand.group] = taken.get(cand.group, 0) + 1
    return chosen


def dedupe(candidates: Iterable[Candidate]) -> list[Candidate]:
    """Candidates with the same text merged (refs and groups united, the best weight kept)."""
    merged: dict[str, Candidate] = {}
    for cand in candidates:
        key = " ".join(cand.text.lower().split())
        if key in merged:
            old = merged[key]
            refs = tuple(dict.fromkeys(old.refs + cand.refs))
            groups = old.groups | cand.groups | {old.group, cand.group}
            merged[key] = Candidate(old.text, refs, max(old.weight, cand.weight), old.lead or cand.lead, old.group, groups)
        else:
            merged[key] = cand
    return list(merged.values())
