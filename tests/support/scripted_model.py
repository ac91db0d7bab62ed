"""A scripted Strands model for tests: it plays back a fixed list of assistant turns.

Each script step is one of:

* a ``str`` — an assistant text message (``stopReason: "end_turn"``);
* a ``dict`` message ``{"role": "assistant", "content": [...]}`` whose content blocks are
  ``{"text": …}`` and/or ``{"toolUse": {"toolUseId", "name", "input"}}`` (``stopReason``
  ``"tool_use"`` when it has a tool use); an optional ``"stopReason"`` key overrides it
  (e.g. ``"guardrail_intervened"``, as Bedrock ends a turn its guardrail blocked);
* an ``Exception`` instance — raised from ``stream`` (e.g. ``ModelThrottledException``).

A message may also carry ``"usage"`` (``{"inputTokens", "outputTokens"}``), reported in its
``metadata`` event (default zeros). ``structured_output`` plays back the next step too: a
``dict`` or JSON text validated against the output model, or an ``Exception`` raised. With
``structured=True`` the agents ask the model for JSON where they would a real one
(:func:`relay_agents.runner.wants_structured_output`).

The model records what it received in :attr:`ScriptedModel.calls` so tests can assert
on the messages and tool results Strands passed back. Modelled on strands-agents'
``tests/fixtures/mocked_model_provider.py``.
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator, AsyncIterable
from typing import Any

from pydantic import BaseModel
from strands.models import Model
from strands.types.content import Messages
from strands.types.streaming import StreamEvent


class ScriptExhausted(AssertionError):
    """The agent asked the model for more turns than the script has."""


class ScriptedModel(Model):
    """Plays back ``script`` one step per ``stream`` call.

    Attributes:
        calls: per call, ``{"messages", "tool_specs", "system_prompt", "tool_choice"}``.
    """

    def __init__(self, script: list[Any], model_id: str = "scripted", structured: bool = False):
        self.script = list(script)
        self.calls: list[dict[str, Any]] = []
        self.config: dict[str, Any] = {"model_id": model_id}
        self.relay_structured_output = structured

    def update_config(self, **model_config: Any) -> None:
        self.config.update(model_config)

    def get_config(self) -> dict[str, Any]:
        return dict(self.config)

    @property
    def tool_results(self) -> list[dict[str, Any]]:
        """Every toolResult block the model was sent, in order (deduplicated by toolUseId)."""
        seen: dict[str, dict[str, Any]] = {}
        for call in self.calls:
            for message in call["messages"]:
                for block in message.get("content", []):
                    if "toolResult" in block:
                        seen.setdefault(block["toolResult"]["toolUseId"], block["toolResult"])
        return list(seen.values())

    async def stream(
        self,
        messages: Messages,
        tool_specs: list[Any] | None = None,
        system_prompt: str | None = None,
        *,
        tool_choice: Any | None = None,
        **kwargs: Any,
    ) -> AsyncIterable[StreamEvent]:
        self.calls.append(
            {
                "messages": json.loads(json.dumps(messages, default=str)),
                "tool_specs": tool_specs,
                "system_prompt": system_prompt,
                "tool_choice": tool_choice,
            }
        )
        if not self.script:
            raise ScriptExhausted(f"script exhausted after {len(self.calls) - 1} turns")
        step = self.script.pop(0)
        if isinstance(step, BaseException):
            raise step
        message = {"role": "assistant", "content": [{"text": step}]} if isinstance(step, str) else step
        yield {"messageStart": {"role": "assistant"}}
        has_tool = False
        for index, block in enumerate(message["content"]):
            if "toolUse" in block:
                has_tool = True
                use = block["toolUse"]
                yield {
                    "contentBlockStart": {
                        "contentBlockIndex": index,
                        "start": {"toolUse": {"toolUseId": use["toolUseId"], "name": use["name"]}},
                    }
                }
                yield {
                    "contentBlockDelta": {
                        "contentBlockIndex": index,
                        "delta": {"toolUse": {"input": json.dumps(use.get("input", {}))}},
                    }
                }
            else:
                yield {"contentBlockStart": {"contentBlockIndex": index, "start": {}}}
                yield {"contentBlockDelta": {"contentBlockIndex": index, "delta": {"text": block["text"]}}}
            yield {"contentBlockStop": {"contentBlockIndex": index}}
        yield {"messageStop": {"stopReason": message.get("stopReason", "tool_use" if has_tool else "end_turn")}}
        usage = message.get("usage") or {"inputTokens": 0, "outputTokens": 0}
        yield {
            "metadata": {
                "usage": {**usage, "totalTokens": usage["inputTokens"] + usage["outputTokens"]},
                "metrics": {"latencyMs": 0},
            }
        }

    async def structured_output(
        self, output_model: type[BaseModel], prompt: Messages, system_prompt: str | None = None, **kwargs: Any
    ) -> AsyncGenerator[dict[str, Any], None]:
        self.calls.append(
            {"messages": json.loads(json.dumps(prompt, default=str)), "tool_specs": None, "system_prompt": system_prompt,
             "tool_choice": None, "output_model": output_model}
        )
        if not self.script:
            raise ScriptExhausted("script exhausted")
        step = self.script.pop(0)
        if isinstance(step, BaseException):
            raise step
        yield {"output": output_model.model_validate(step if isinstance(step, dict) else json.loads(step))}


def tool_call(
    name: str, tool_input: dict[str, Any], tool_use_id: str = "tooluse_1", text: str | None = None
) -> dict[str, Any]:
    """An assistant message that calls ``name`` with ``tool_input`` (optionally with text first)."""
    content: list[dict[str, Any]] = [{"text": text}] if text else []
    content.append({"toolUse": {"toolUseId": tool_use_id, "name": name, "input": tool_input}})
    return {"role": "assistant", "content": content}
