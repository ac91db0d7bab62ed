"""Strands tools. Their Google-style docstrings are the descriptions the model sees.

Per-invocation state: a tool reads its :class:`ResearchSession` from the agent call's
``invocation_state`` (``agent(prompt, invocation_state={SESSION_KEY: session})``), so
concurrent research calls in threads never share state. Without a session the tool
searches the configured corpus and records nothing.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from relay_core.models import Evidence, SourceRef
from relay_core.observability import logger
from strands import tool
from strands.types.tools import ToolContext

from .corpus import Corpus, Hit, corpus_from_settings

#: The ``invocation_state`` key holding the :class:`ResearchSession`.
SESSION_KEY = "relay_research_session"
#: Most passages one search returns (bounds the tool result: ≤ 10 × 1,500 characters).
MAX_RESULTS = 10


@dataclass
class ResearchSession:
    """One agent invocation's corpus and the sources its searches returned.

    Sources are numbered in order of first retrieval (``[1]``, ``[2]``, …); the number is
    what the model cites. Thread-safe.

    Attributes:
        corpus: what ``search_documents`` searches.
        queries: every query searched, in order.
    """

    corpus: Corpus
    queries: list[str] = field(default_factory=list)
    _sources: dict[str, tuple[int, SourceRef]] = field(default_factory=dict)
    _passages: dict[str, list[str]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, query: str, hits: list[Hit]) -> list[int]:
        """Remember a search and its hits; returns each hit's citation number."""
        with self._lock:
            self.queries.append(query)
            numbers = []
            for hit in hits:
                if hit.uri not in self._sources:
                    self._sources[hit.uri] = (
                        len(self._sources) + 1,
                        SourceRef(title=hit.title, uri=hit.uri, score=hit.score),
                    )
                else:
                    number, ref = self._sources[hit.uri]
                    if hit.score > ref.score:
                        self._sources[hit.uri] = (
                            number,
                            SourceRef(title=ref.title, uri=ref.uri, score=hit.score),
                        )
                numbers.append(self._sources[hit.uri][0])
                texts = self._passages.setdefault(hit.uri, [])
                if hit.text and hit.text not in texts:
                    texts.append(hit.text)
            return numbers

    def evidence(self) -> list[Evidence]:
        """Every passage the searches returned, by citation number then retrieval order:
        what the answer's sentences can be grounded in."""
        with self._lock:
            return [
                Evidence(ref=number, title=ref.title, uri=ref.uri, text=text)
                for number, ref in sorted(self._sources.values(), key=lambda item: item[0])
                for text in self._passages.get(ref.uri, [])
            ]

    @property
    def sources(self) -> list[tuple[int, SourceRef]]:
        """``(citation number, source)`` of every retrieved document, by number."""
        with self._lock:
            return sorted(self._sources.values(), key=lambda item: item[0])


@tool(context=True)
def search_documents(
    query: str, max_results: int = 5, tool_context: ToolContext | None = None
) -> dict[str, Any]:
    """Search the research corpus for passages relevant to a query.

    Use this before answering: answer only from the passages it returns, and cite each
    passage by its "ref" number in square brackets, e.g. [1].

    Args:
        query: Keywords or a natural-language question, e.g. "Step Functions task token callback".
        max_results: How many passages to return, from 1 to 10. Defaults to 5.

    Returns:
        A JSON object {"query": str, "results": [{"ref": int, "title": str, "uri": str,
        "score": float, "text": str}]}, best match first; "results" is empty when nothing matched.
    """
    session: ResearchSession | None = None
    if tool_context is not None:
        session = tool_context.invocation_state.get(SESSION_KEY)
    return {"status": "success", "content": [{"json": search(session, query, max_results)}]}


#: ``max_results`` when the model does not say (``search_documents``' default).
DEFAULT_RESULTS = 5


def search(session: ResearchSession | None, query: str, max_results: int = DEFAULT_RESULTS) -> dict[str, Any]:
    """What ``search_documents`` answers: ``{"query", "results": [{"ref", "title", "uri",
    "score", "text"}]}``, best first; the search is recorded in ``session`` (without one the
    configured corpus is searched and nothing is recorded). Also run by the researcher for a
    model that answers without searching (:func:`relay_agents.researcher.research`)."""
    corpus = session.corpus if session else corpus_from_settings()
    k = max(1, min(MAX_RESULTS, int(max_results)))
    hits = corpus.search(query, k)
    numbers = session.record(query, hits) if session else list(range(1, len(hits) + 1))
    logger.debug(
        "search_documents", extra={"query_chars": len(query), "hits": len(hits), "corpus": corpus.description}
    )
    results = [
        {"ref": n, "title": h.title, "uri": h.uri, "score": h.score, "text": h.text}
        for n, h in zip(numbers, hits, strict=True)
    ]
    return {"query": query, "results": results}
