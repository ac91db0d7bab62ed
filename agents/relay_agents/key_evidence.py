"""The research's key evidence: the strongest sentences of every passage the researchers
read, across all branches, ranked for the topic.

Each researcher answers its own question from its own searches, so a sentence that states
a limit or a rule of the topic can be read by one branch and quoted by none. The analyst
and the writer therefore get, beside the findings, the passages' best sentences for the
whole research (``<evidence>`` in their prompts, :func:`relay_agents.prompts.analyst_prompt`),
each citing the document's source number: an LLM reads them as the strongest quotes; the
offline model composes its analysis and report from them and the findings together
(:mod:`relay_agents.offline.reports`).

How a sentence is scored (:func:`key_evidence`), each part over the prose sentences of the
sources' passages (:func:`relay_agents.evidence.prose_sentences`, deduplicated):

* relevance: BM25 against the topic and against each answered question, the best of them,
  each scaled to 0..1 (a sentence answering one planned question counts as much as one
  answering the topic);
* source rank: minus :data:`SOURCE_RANK_WEIGHT` × the source's position in the document
  (sources are numbered in order of first citation, so the first-cited are those the
  branches' best answers came from);
* length: plus :data:`LENGTH_WEIGHT` × its words over the longest quoted
  (:data:`~relay_agents.evidence.MAX_WORDS`): BM25's length normalisation favours
  short sentences, and in documentation the shortest are labels ("Returns the tempdir as
  bytes.") while a rule with its condition takes words;
* details: plus :data:`DETAIL_WEIGHT` for a number and for a rule word (``must``, ``only``,
  ``up to``, ``default``…), the two kinds most of documentation's facts are.

The weights were chosen on the tuning evaluation sets (``bench/quality_eval/``) and checked
on the held-out sets, where ranking the pooled passages this way held more reference facts
than BM25 against the topic alone (see ``docs/quality.md``).
"""

from __future__ import annotations

import numpy as np
from relay_core.models import ResearchDocument
from relay_core.prose import strip_citations

from . import text as tx
from .evidence import MAX_WORDS, Candidate, dedupe, details, pick, prose_sentences, query_tokens, scaled

#: Sentences of key evidence a prompt carries (about 4 kB of text).
KEY_EVIDENCE = 24
#: Weights of the score's parts (see the module docstring).
SOURCE_RANK_WEIGHT = 1.0
LENGTH_WEIGHT = 0.5
DETAIL_WEIGHT = 0.3


def pooled_sentences(research: ResearchDocument) -> list[Candidate]:
    """Every prose sentence of the sources' passages once, citing its source's number
    (``group`` is that number); a sentence two sources hold cites both."""
    out = []
    for source in research.sources:
        for passage in source.passages:
            for _position, sentence in prose_sentences(passage):
                text = strip_citations(sentence).strip()
                if text:
                    out.append(Candidate(text, (source.number,), group=str(source.number)))
    return dedupe(out)


def scores(candidates: list[Candidate], research: ResearchDocument, topic: str) -> np.ndarray:
    """One score per candidate, higher is better (see the module docstring)."""
    if not candidates:
        return np.zeros(0)
    tokens = [tx.tokenize(c.text) for c in candidates]
    queries = [topic] + [f.question for f in research.findings if f.status != "failed"]
    relevance = np.max([scaled(tx.bm25_scores(tokens, query_tokens(q))) for q in queries], axis=0)
    count = max(1, len(research.sources))
    rank = np.array([(min(c.refs) - 1) / count for c in candidates])
    length = np.array([min(len(c.text.split()), MAX_WORDS) / MAX_WORDS for c in candidates])
    detail = np.array([len(details(c.text)) for c in candidates], dtype=float)
    return relevance - SOURCE_RANK_WEIGHT * rank + LENGTH_WEIGHT * length + DETAIL_WEIGHT * detail


def key_evidence(research: ResearchDocument, topic: str, k: int = KEY_EVIDENCE) -> list[str]:
    """Up to ``k`` sentences, best first, each ending with its citations (``… [3].``), none
    repeating another (:func:`relay_core.quality.repeats`); empty when the sources carry no
    passages (a researcher that reported none)."""
    candidates = pooled_sentences(research)
    if not candidates:
        return []
    chosen = pick(candidates, scores(candidates, research, topic), k, per_source=k)
    return [candidates[i].cited() for i in chosen]
