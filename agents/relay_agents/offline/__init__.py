"""The offline model: a deterministic Strands ``Model`` that needs no network and no LLM.

It does real, extractive work with well-kept libraries (see :mod:`relay_agents.text` and
:mod:`.evidence`): syntok sentences and the prose rules of :mod:`relay_core.prose`, BM25
(``bm25s``, Snowball stems) over the sentences of tool results, LexRank-style TF-IDF
centrality (scikit-learn), and YAKE! keyphrases (``yake``) for search queries and plan
subjects; no sentence that repeats one already written (:func:`relay_core.quality.repeats`)
is written again. Every sentence of substance it writes is copied from its inputs (the prompt or
tool results); only short connective headings and labels are its own. Every report-like
text it writes carries :data:`relay_agents.provenance.OFFLINE_NOTICE`.

How it knows its role: the agent's system prompt carries ``[relay-role: <role>]``
(:mod:`relay_agents.prompts`), and its inputs arrive in XML-style tags. Without a marker it
acts as a generic extractive summariser of the prompt and tool results.

Tool loop (the real Strands one): while the current turn (the messages since the last
user text) has made fewer tool calls than it plans searches
(:func:`.tool_calls.search_queries`: the keyphrases; for the researcher also every content
word of its question, when that adds a word), :meth:`OfflineModel.stream` emits one
``toolUse`` for a search-like tool (``search_documents`` preferred) with the next query and
stops with ``stopReason: "tool_use"``. Strands runs the tool and calls the model again with
the ``toolResult``; after the last search the model composes the answer from all results, cites them by title and URI and stops with ``"end_turn"``.
When ``tool_choice`` forces a tool (Strands' structured output), it emits a ``toolUse`` for
that tool whose input is filled from the composed answer according to the tool's schema.

Output is a pure function of (system prompt, messages, tool specs, config): the same input
always streams the same events, apart from the measured ``latencyMs`` in ``metadata``.

Modules: :mod:`.conversation` (what it reads from the messages), :mod:`.tool_calls` (which
tool it calls, with what arguments; structured output), :mod:`.evidence` (candidate
sentences, their scores and the choice among them), :mod:`.answers` (the planner's,
the researcher's and the generic compositions, from passages), :mod:`.reports` (the
analyst's and the writer's, from the research document) and :mod:`.model` (the
``Model``). Production agents never import this package: the model factory imports it
only when the offline provider is selected (``RELAY_MODEL_PROVIDER`` unset or
``offline``), and its notice lives in :mod:`relay_agents.provenance`.
"""

from __future__ import annotations

from .model import OfflineConfig, OfflineModel

__all__ = ["OfflineConfig", "OfflineModel"]
