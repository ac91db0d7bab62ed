"""The offline model: a deterministic Strands ``Model`` that needs no network and no LLM.

It does real, extractive work with well-kept libraries (see :mod:`relay_agents.text`):
BM25 retrieval (``bm25s``) over tool results, LexRank-style TF-IDF sentence centrality
(scikit-learn) for summaries, and YAKE! keyphrases (``yake``) for search queries and plan
questions. Every sentence of substance it writes is copied from its inputs (the prompt or
tool results); only short connective headings and labels are its own. Every report-like
text it writes carries :data:`relay_agents.provenance.OFFLINE_NOTICE`.

How it knows its role: the agent's system prompt carries ``[relay-role: <role>]``
(:mod:`relay_agents.prompts`), and its inputs arrive in XML-style tags. Without a marker it
acts as a generic extractive summariser of the prompt and tool results.

Tool loop (the real Strands one): when the agent has tools and the current turn (the
messages since the last user text) has no tool calls yet, :meth:`OfflineModel.stream`
emits one ``toolUse`` for a search-like tool (``search_documents`` preferred) with a query
built from the prompt's keyphrases and stops with ``stopReason: "tool_use"``. Strands runs
the tool and calls the model again with the ``toolResult``; the model then composes the
answer from those results, cites them by title and URI and stops with ``"end_turn"``.
When ``tool_choice`` forces a tool (Strands' structured output), it emits a ``toolUse`` for
that tool whose input is filled from the composed answer according to the tool's schema.

Output is a pure function of (system prompt, messages, tool specs, config): the same input
always streams the same events, apart from the measured ``latencyMs`` in ``metadata``.

Modules: :mod:`.conversation` (what it reads from the messages), :mod:`.tool_calls` (which
tool it calls, with what arguments; structured output), :mod:`.answers` (the planner's,
the researcher's and the generic compositions, from passages), :mod:`.reports` (the
analyst's and the writer's, from the research document) and :mod:`.model` (the
``Model``). Production agents never import this package: the model factory imports it
only when the offline provider is selected (``RELAY_MODEL_PROVIDER`` unset or
``offline``), and its notice lives in :mod:`relay_agents.provenance`.
"""

from __future__ import annotations

from .model import OfflineConfig, OfflineModel

__all__ = ["OfflineConfig", "OfflineModel"]
