"""The offline model itself: a deterministic Strands ``Model`` (see :mod:`relay_agents.offline`)."""

from __future__ import annotations

import hashlib
import json
import math
import re
import time
from collections.abc import AsyncGenerator, AsyncIterable
from typing import Any, TypedDict, TypeVar

from pydantic import BaseModel
from strands.models import Model
from strands.types.content import Messages
from strands.types.streaming import StreamEvent
from strands.types.tools import ToolSpec

from ..prompts import detect_role, read_tag
from ..provenance import OFFLINE_MODEL_ID
from .answers import compose_generic, compose_planner, compose_researcher
from .conversation import Turn, current_turn, system_text
from .reports import compose_analyst, compose_writer
from .tool_calls import fill_schema, pick_tool, search_queries, tool_input, tool_schema

T = TypeVar("T", bound=BaseModel)


class OfflineConfig(TypedDict, total=False):
    """Offline model configuration.

    Attributes:
        model_id: shown in provenance (default ``relay-offline-extractive``).
        max_sentences: sentences in a research answer (default 14).
        search_results: ``max_results`` it asks ``search_documents`` for (default 6).
    """

    model_id: str
    max_sentences: int
    search_results: int


def compose(role: str | None, turn: Turn, max_sentences: int = 14) -> str:
    """What the offline model answers as ``role`` for this turn."""
    if role == "planner":
        return compose_planner(turn.prompt, turn.sources)
    if role == "researcher":
        return compose_researcher(turn.prompt, turn.sources, max_sentences)
    if role == "analyst":
        return compose_analyst(turn.prompt)
    if role == "writer":
        return compose_writer(turn.prompt)
    return compose_generic(turn.prompt, turn.sources, max_sentences)



class OfflineModel(Model):
    """Deterministic, extractive, offline Strands model (see :mod:`relay_agents.offline`).

    Args:
        **config: :class:`OfflineConfig` fields.
    """

    def __init__(self, **config: Any):
        self.config: dict[str, Any] = {"model_id": OFFLINE_MODEL_ID, "max_sentences": 14, "search_results": 6}
        self.update_config(**config)

    def update_config(self, **model_config: Any) -> None:
        """Update the configuration (``model_id``, ``max_sentences``, ``search_results``)."""
        unknown = set(model_config) - set(OfflineConfig.__annotations__) - {"context_window_limit"}
        if unknown:
            raise ValueError(f"unknown offline model settings: {sorted(unknown)}")
        self.config.update(model_config)

    def get_config(self) -> dict[str, Any]:
        """The configuration (a copy)."""
        return dict(self.config)

    def provenance(self) -> str:
        """How provenance lines name it (:func:`relay_agents.model_factory.describe_model`)."""
        return f"Relay's offline extractive model ({self.config.get('model_id')}; no LLM)"

    def _answer(self, system: str, messages: Messages) -> tuple[str | None, Turn, str]:
        role = detect_role(system)
        turn = current_turn(messages)
        return role, turn, compose(role, turn, int(self.config["max_sentences"]))

    async def stream(
        self,
        messages: Messages,
        tool_specs: list[ToolSpec] | None = None,
        system_prompt: str | None = None,
        *,
        tool_choice: Any | None = None,
        system_prompt_content: list[Any] | None = None,
        **kwargs: Any,
    ) -> AsyncIterable[StreamEvent]:
        """Stream one assistant message as Bedrock-shaped events (see :mod:`relay_agents.offline`).

        Yields:
            ``messageStart``, ``contentBlockStart``/``contentBlockDelta``/``contentBlockStop``
            (text, or a ``toolUse`` with JSON input), ``messageStop`` with ``stopReason``
            ``"tool_use"`` or ``"end_turn"``, and ``metadata`` (token usage estimated at four
            characters per token; measured latency).
        """
        started = time.perf_counter()
        system = system_text(system_prompt, system_prompt_content)
        role = detect_role(system)
        turn = current_turn(messages)
        specs = list(tool_specs or [])
        forced = tool_choice.get("tool", {}).get("name") if isinstance(tool_choice, dict) else None
        forced_spec = next((t for t in specs if t["name"] == forced), None) if forced else None

        tool_call: tuple[str, dict[str, Any]] | None = None
        answer = ""
        if forced_spec is not None:
            answer = compose(role, turn, int(self.config["max_sentences"]))
            tool_call = (forced_spec["name"], fill_schema(tool_schema(forced_spec), answer))
        elif specs and role in (None, "planner", "researcher"):
            spec = pick_tool(specs)
            subject = read_tag(turn.prompt, "question") or read_tag(turn.prompt, "topic") or turn.prompt
            queries = search_queries(role, subject)
            if spec is not None and turn.tool_calls < len(queries):
                tool_call = (
                    spec["name"],
                    tool_input(spec, queries[turn.tool_calls], int(self.config["search_results"])),
                )
        if tool_call is None:
            answer = compose(role, turn, int(self.config["max_sentences"]))

        yield {"messageStart": {"role": "assistant"}}
        if tool_call is not None:
            name, arguments = tool_call
            payload = json.dumps(arguments, ensure_ascii=False, sort_keys=True)
            digest = hashlib.sha256(f"{len(messages)}\n{name}\n{payload}".encode()).hexdigest()[:24]
            yield {
                "contentBlockStart": {
                    "contentBlockIndex": 0,
                    "start": {"toolUse": {"toolUseId": f"tooluse_{digest}", "name": name}},
                }
            }
            yield {"contentBlockDelta": {"contentBlockIndex": 0, "delta": {"toolUse": {"input": payload}}}}
            yield {"contentBlockStop": {"contentBlockIndex": 0}}
            yield {"messageStop": {"stopReason": "tool_use"}}
            output_chars = len(payload)
        else:
            yield {"contentBlockStart": {"contentBlockIndex": 0, "start": {}}}
            for chunk in re.split(r"(?<=\n\n)", answer):
                if chunk:
                    yield {"contentBlockDelta": {"contentBlockIndex": 0, "delta": {"text": chunk}}}
            yield {"contentBlockStop": {"contentBlockIndex": 0}}
            yield {"messageStop": {"stopReason": "end_turn"}}
            output_chars = len(answer)
        input_chars = len(system) + sum(len(json.dumps(m.get("content", []), default=str)) for m in messages)
        input_tokens, output_tokens = math.ceil(input_chars / 4), math.ceil(output_chars / 4)
        yield {
            "metadata": {
                "usage": {
                    "inputTokens": input_tokens,
                    "outputTokens": output_tokens,
                    "totalTokens": input_tokens + output_tokens,
                },
                "metrics": {"latencyMs": int((time.perf_counter() - started) * 1000)},
            }
        }

    async def structured_output(
        self, output_model: type[T], prompt: Messages, system_prompt: str | None = None, **kwargs: Any
    ) -> AsyncGenerator[dict[str, T | Any], None]:
        """Compose the answer for ``prompt`` and fill ``output_model``'s schema from it.

        Yields:
            ``{"output": instance}``.

        Raises:
            pydantic.ValidationError: the composed answer cannot fill the model.
        """
        _role, _turn, answer = self._answer(system_prompt or "", prompt)
        data = fill_schema(output_model.model_json_schema(), answer)
        yield {"output": output_model.model_validate(data)}
