"""What the offline model reads from a Strands conversation: the current turn's prompt,
its tool calls and the passages the tools returned."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from strands.types.content import Messages


@dataclass
class Source:
    """A passage the model received from a tool."""

    ref: int
    title: str
    uri: str
    text: str
    score: float = 0.0


@dataclass
class Turn:
    """What the model sees in the current turn."""

    prompt: str
    tool_calls: int = 0
    sources: list[Source] = field(default_factory=list)
    tool_texts: list[str] = field(default_factory=list)


def system_text(system_prompt: str | None, system_prompt_content: list[Any] | None) -> str:
    """The system prompt as one string (Strands passes either a string or content blocks)."""
    if system_prompt:
        return system_prompt
    return "\n".join(b.get("text", "") for b in system_prompt_content or [] if isinstance(b, dict))


def current_turn(messages: Messages) -> Turn:
    """The last user text and every tool call/result after it."""
    start = 0
    for i in range(len(messages) - 1, -1, -1):
        msg = messages[i]
        if msg.get("role") == "user" and any("text" in b for b in msg.get("content", [])):
            start = i
            break
    prompt = (
        "\n".join(b["text"] for b in messages[start].get("content", []) if "text" in b) if messages else ""
    )
    turn = Turn(prompt=prompt)
    names: dict[str, str] = {}
    seen: dict[str, Source] = {}
    for msg in messages[start + 1 :]:
        for block in msg.get("content", []):
            if "toolUse" in block:
                turn.tool_calls += 1
                names[block["toolUse"].get("toolUseId", "")] = block["toolUse"].get("name", "tool")
            if "toolResult" in block:
                result = block["toolResult"]
                if result.get("status") == "error":
                    continue
                tool_name = names.get(result.get("toolUseId", ""), "tool")
                for item in result.get("content", []):
                    payload: Any = item.get("json")
                    if payload is None and "text" in item:
                        try:
                            payload = json.loads(item["text"])
                        except ValueError:
                            payload = None
                        if not isinstance(payload, dict):
                            turn.tool_texts.append(item["text"])
                            turn.sources.append(
                                Source(
                                    len(seen) + 1 + len(turn.tool_texts) * 1000,
                                    tool_name,
                                    f"tool://{tool_name}",
                                    item["text"],
                                )
                            )
                            continue
                    for hit in payload.get("results", []) if isinstance(payload, dict) else []:
                        uri = str(hit.get("uri", ""))
                        if not uri or not hit.get("text"):
                            continue
                        if uri in seen:
                            if hit["text"] not in seen[uri].text:
                                seen[uri].text += "\n\n" + hit["text"]  # passages are separate paragraphs
                            continue
                        ref = int(hit.get("ref") or len(seen) + 1)
                        seen[uri] = Source(
                            ref,
                            str(hit.get("title") or uri),
                            uri,
                            str(hit["text"]),
                            float(hit.get("score", 0)),
                        )
    turn.sources = [s for s in turn.sources if s.uri.startswith("tool://")] + list(seen.values())
    # Renumber free-text tool outputs after the numbered hits.
    taken = {s.ref for s in seen.values()}
    n = 1
    for s in turn.sources:
        if s.uri.startswith("tool://"):
            while n in taken:
                n += 1
            s.ref = n
            taken.add(n)
    turn.sources.sort(key=lambda s: s.ref)
    return turn
