"""Text utilities shared by the corpus and the offline model: tokens, sentences,
keyphrases and extractive ranking.

Everything here is deterministic and local (no model downloads):

* tokens: lower-cased words and numbers, camelCase split (``SendTaskSuccess`` →
  ``send task success``), English stopwords from ``bm25s.stopwords`` removed, and stemmed
  with the Snowball English stemmer (PyStemmer; Porter, 2001, "Snowball: A language for
  stemming algorithms");
* sentences: :func:`relay_core.prose.split_sentences` (syntok, rule-based, no data
  download);
* keyphrases: YAKE! (Campos et al., 2020, *Information Sciences* 509) via ``yake``;
* ranking: LexRank (Erkan & Radev, 2004, *JAIR* 22) on TF-IDF cosine similarities from
  scikit-learn, biased towards a query with BM25 (``bm25s``) as in biased LexRank
  (Otterbacher et al., 2005), then Maximal Marginal Relevance (Carbonell & Goldstein,
  1998) to avoid picking near-duplicate sentences.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from functools import lru_cache
from html.parser import HTMLParser
from typing import Any

import numpy as np
from relay_core import prose

_CAMEL_RE = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_WORD_RE = re.compile(r"[a-z0-9]+")
_MD_LINK_RE = re.compile(r"\[([^\]]+)\]\(([^)\s]+)\)")

_stopwords: frozenset[str] | None = None


def stopwords() -> frozenset[str]:
    """English stopwords (the list bm25s ships)."""
    global _stopwords
    if _stopwords is None:
        from bm25s.stopwords import STOPWORDS_EN

        _stopwords = frozenset(STOPWORDS_EN)
    return _stopwords


@lru_cache(maxsize=1)
def _stemmer() -> Any:
    import Stemmer

    return Stemmer.Stemmer("english")


@lru_cache(maxsize=200_000)
def stem(word: str) -> str:
    """The Snowball English stem of a lower-case word (PyStemmer): ``transactions`` and
    ``TransactWriteItems``' ``transact`` both give ``transact``; digits unchanged."""
    return word if word.isdigit() else str(_stemmer().stemWord(word))


def tokenize(text: str) -> list[str]:
    """Search tokens of ``text`` (see the module docstring)."""
    text = _CAMEL_RE.sub(" ", text).lower()
    stop = stopwords()
    return [stem(w) for w in _WORD_RE.findall(text) if w not in stop and len(w) > 1]


class _TextExtractor(HTMLParser):
    _BLOCK = {
        "p",
        "div",
        "li",
        "br",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "tr",
        "section",
        "article",
        "pre",
        "ul",
        "ol",
        "dd",
        "dt",
    }
    _SKIP = {"script", "style", "noscript", "head"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.title = ""
        self._skip = 0
        self._in_title = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._SKIP:
            self._skip += 1
        if tag == "title":
            self._in_title = True
        if tag in self._BLOCK:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self._SKIP and self._skip:
            self._skip -= 1
        if tag == "title":
            self._in_title = False
        if tag in self._BLOCK:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title += data
        elif not self._skip:
            self.parts.append(data)


def html_to_text(markup: str) -> tuple[str, str]:
    """Plain text of an HTML fragment or page, with the standard library's ``html.parser``.

    Returns:
        ``(title, text)``: the ``<title>`` (or ``""``) and the text, one paragraph per line.
    """
    parser = _TextExtractor()
    parser.feed(markup)
    parser.close()
    text = html.unescape("".join(parser.parts))
    lines = [" ".join(line.split()) for line in text.split("\n")]
    return " ".join(parser.title.split()), "\n".join(line for line in lines if line)


def split_sentences(text: str) -> list[str]:
    """Split plain text into sentences: :func:`relay_core.prose.split_sentences` (syntok)."""
    return prose.split_sentences(text)


def markdown_to_text(markdown: str) -> str:
    """Prose of a Markdown document: headings, source lists, provenance lines, code fences
    and link targets dropped; list bullets and emphasis markers removed. One paragraph per
    block."""
    blocks: list[str] = []
    in_fence = False
    for raw in markdown.splitlines():
        line = raw.strip()
        if line.startswith("```"):
            in_fence = not in_fence
            continue
        if in_fence or not line:
            blocks.append("")
            continue
        if line.startswith("#") or line.startswith(">") or line.startswith("---"):
            blocks.append("")
            continue
        if line.startswith("_") and line.endswith("_"):  # italic provenance/notes
            blocks.append("")
            continue
        if line.lower().startswith("sources:"):
            blocks.append("")
            continue
        stripped = re.sub(r"^(?:[-*•]|\d+[.)])\s+", "", line)
        if re.fullmatch(r"(?:\[\d+\]\s*)?(?:\[[^\]]+\]\([^)]+\)|.*<[a-z]+://[^>]+>)\s*", stripped):
            blocks.append("")  # a source-list entry
            continue
        stripped = _MD_LINK_RE.sub(r"\1", stripped)
        stripped = stripped.replace("**", "").replace("`", "")
        ends = re.search(r"[.!?:](?:\s*\[\d+\])*$", stripped)
        blocks.append(stripped + ("" if ends else "."))
        blocks.append("")
    text = "\n".join(blocks)
    return re.sub(r"\n{3,}", "\n\n", text).strip()


def keyphrases(text: str, top: int = 5, max_words: int = 3) -> list[str]:
    """The ``top`` keyphrases of ``text`` by YAKE! (lower score = more relevant), deduplicated
    case-insensitively, in rank order."""
    import yake

    text = " ".join(text.split())
    if not text:
        return []
    extractor = yake.KeywordExtractor(lan="en", n=max_words, dedupLim=0.7, top=top * 2, features=None)
    chosen_words: set[str] = set()
    out: list[str] = []
    for phrase, _score in extractor.extract_keywords(text):
        words = phrase.split()
        # Trim words already covered by a better phrase from either edge
        # ("AWS Step Functions", "Functions task tokens" → "task tokens").
        trimmed = False
        while words and words[0].lower() in chosen_words:
            words, trimmed = words[1:], True
        while words and words[-1].lower() in chosen_words:
            words, trimmed = words[:-1], True
        if not words or (trimmed and len(words) < 2) or any(w.lower() in chosen_words for w in words):
            continue
        if all(w.lower() in stopwords() for w in words):
            continue
        chosen_words.update(w.lower() for w in words)
        out.append(" ".join(words))
        if len(out) == top:
            break
    return out


def _lexrank(
    similarity: np.ndarray, bias: np.ndarray | None = None, damping: float = 0.85, iterations: int = 100
) -> np.ndarray:
    """Continuous LexRank scores (power iteration on the row-normalised similarity graph)."""
    n = similarity.shape[0]
    matrix = similarity.copy()
    np.fill_diagonal(matrix, 0.0)
    rows = matrix.sum(axis=1, keepdims=True)
    rows[rows == 0] = 1.0
    matrix = matrix / rows
    teleport = np.full(n, 1.0 / n) if bias is None or bias.sum() <= 0 else bias / bias.sum()
    scores = np.full(n, 1.0 / n)
    for _ in range(iterations):
        updated = (1 - damping) * teleport + damping * matrix.T @ scores
        if np.abs(updated - scores).sum() < 1e-9:
            scores = updated
            break
        scores = updated
    return scores


def rank_sentences(sentences: Sequence[str], query: str | None = None) -> np.ndarray:
    """Score each sentence: LexRank centrality, biased towards ``query`` by BM25 when given.

    Returns:
        One float per sentence (higher is better); an empty array for no sentences.
    """
    n = len(sentences)
    if n == 0:
        return np.zeros(0)
    if n == 1:
        return np.ones(1)
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.metrics.pairwise import cosine_similarity

    vectorizer = TfidfVectorizer(tokenizer=tokenize, lowercase=False, token_pattern=None)
    try:
        matrix = vectorizer.fit_transform(sentences)
    except ValueError:  # no tokens at all
        return np.ones(n) / n
    similarity = cosine_similarity(matrix)
    bias = None
    if query:
        bias = bm25_scores([tokenize(s) for s in sentences], tokenize(query))
        # Teleport mass: a small floor for every sentence plus normalised BM25 relevance.
        bias = None if bias.max() <= 0 else 0.1 / n + bias / bias.max()
    return _lexrank(similarity, bias)


def bm25_scores(documents: Sequence[list[str]], query_tokens: list[str]) -> np.ndarray:
    """BM25 scores (Robertson & Zaragoza, 2009; ``bm25s`` Lucene variant) of each tokenised
    document for the query tokens. Documents without tokens score 0."""
    import bm25s

    if not documents or not query_tokens:
        return np.zeros(len(documents))
    retriever = bm25s.BM25()
    retriever.index([d or [""] for d in documents], show_progress=False)
    vocab = retriever.vocab_dict
    known = [t for t in query_tokens if t in vocab]
    if not known:
        return np.zeros(len(documents))
    return np.asarray(retriever.get_scores(known), dtype=float)


def select(
    sentences: Sequence[str], scores: np.ndarray, k: int, *, diversity: float = 0.3, min_words: int = 5
) -> list[int]:
    """Pick up to ``k`` sentence indices by Maximal Marginal Relevance, in score order.

    Sentences shorter than ``min_words`` words are skipped; ``diversity`` (0..1) weighs
    redundancy (TF-IDF cosine to sentences already picked) against score.
    """
    candidates = [i for i, s in enumerate(sentences) if len(s.split()) >= min_words]
    if not candidates or k <= 0:
        return []
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.metrics.pairwise import cosine_similarity

    try:
        matrix = TfidfVectorizer(tokenizer=tokenize, lowercase=False, token_pattern=None).fit_transform(
            [sentences[i] for i in candidates]
        )
        similarity = cosine_similarity(matrix)
    except ValueError:
        similarity = np.eye(len(candidates))
    top = float(max(scores[i] for i in candidates)) or 1.0
    chosen: list[int] = []
    remaining = list(range(len(candidates)))
    while remaining and len(chosen) < k:
        best, best_value = None, -np.inf
        for j in remaining:
            redundancy = max((similarity[j, c] for c in chosen), default=0.0)
            if redundancy > 0.8:
                continue
            value = (1 - diversity) * scores[candidates[j]] / top - diversity * redundancy
            if value > best_value + 1e-12:
                best, best_value = j, value
        if best is None:
            break
        chosen.append(best)
        remaining.remove(best)
    return [candidates[j] for j in chosen]


def summarize(text: str, k: int = 3, query: str | None = None) -> list[str]:
    """The ``k`` most central sentences of ``text`` (biased to ``query``), in document order."""
    sentences = split_sentences(text)
    picked = select(sentences, rank_sentences(sentences, query), k)
    return [sentences[i] for i in sorted(picked)]


def clip_words(text: str, words: int) -> str:
    """The first ``words`` words of ``text`` (whitespace normalised), with ``…`` if cut."""
    parts = text.split()
    return " ".join(parts[:words]) + ("…" if len(parts) > words else "")
