"""How Relay's texts say which model wrote them.

Shared by the production agents and the offline model, so the agents never import
:mod:`relay_agents.offline` to recognise its output.
"""

from __future__ import annotations

#: The offline model's model id, shown in provenance lines.
OFFLINE_MODEL_ID = "relay-offline-extractive"
#: The line every report-like text from the offline model carries (Markdown emphasis).
OFFLINE_NOTICE = "_Written by Relay's offline extractive model: no LLM provider is configured._"
