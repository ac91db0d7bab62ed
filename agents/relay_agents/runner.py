"""Building and running a Strands agent, and the one place that maps model errors.

Retries: the agent's own model retry is turned off (``ModelRetryStrategy(max_attempts=1)``)
because the state machine owns retry policy (``ModelThrottled`` and ``ModelUnavailable``
are retried there with backoff, see relay_core.errors); retrying in both places would multiply
waits past the task timeout.

What a model can do wrong, and what each agent call then does (a small model does all of
it; the scripted-model tests in ``tests/unit/agents/test_model_faults.py`` and the real
server's in ``tests/e2e/test_local_model.py`` hold each case):

* **runaway answer** (cut at the token cap): the answer's complete sentences are kept, each
  once (:func:`salvage_cut_answer`); nothing complete → ``AgentFailed``;
* **tool loop** (still calling tools after :data:`MAX_TURNS` turns) → ``AgentFailed``;
* **malformed tool call** (bad arguments, unknown tool): Strands answers it with an error
  tool result and the model tries again, within :data:`MAX_TURNS`; a call cut at the token
  cap is dropped by Strands and handled as a runaway answer;
* **empty answer** → ``AgentFailed``; **refusal** (a refusal stop reason or a bare refusal,
  :func:`check_not_declined`) → ``AgentFailed``, never retried;
* **context overflow** → ``AgentFailed`` (:func:`overflowed` tells; the analyst and the
  writer first try once more with the research shortened);
* **slow call** (past ``RELAY_MODEL_TIMEOUT``) and server faults → ``ModelUnavailable``,
  throttling → ``ModelThrottled`` (both retried by the state machine); a server that
  refuses the key or does not know the model → ``ConfigurationError`` naming the variable;
* **malformed structured output** (:func:`run_structured`: not JSON, cut, or not of the
  schema) → :class:`StructuredOutputFailed`, which each caller answers with its text
  fallback.

Each fallback taken is logged at INFO as ``model fallback`` with its ``role`` and
``fallback`` name (:data:`FALLBACKS`, :func:`note_fallback`): what ``relay run --verbose``
shows and ``bench/bench_run.py`` counts.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from relay_core.errors import AgentFailed, ConfigurationError, ModelThrottled, ModelUnavailable, RelayError
from relay_core.models import ModelUsage
from strands import Agent
from strands._async import run_async
from strands.agent import AgentResult
from strands.event_loop._retry import ModelRetryStrategy
from strands.models import Model
from strands.types.exceptions import (
    ContextWindowOverflowException,
    MaxTokensReachedException,
    ModelThrottledException,
)

T = TypeVar("T", bound=BaseModel)

#: The fallbacks :func:`note_fallback` names: a cut answer's sentences kept; the search made
#: for a model that did not search; a structured answer not of its schema, answered with the
#: text path; a prompt sent again with the research shortened after a context overflow; the
#: planner's follow-up for a numbered list.
FALLBACKS = ("cut_answer_kept", "search_for_model", "structured_to_text", "shortened_research", "list_follow_up")

#: Most turns (model call + the tools it asked for) one agent call takes: the offline
#: researcher searches up to 3 times, a real model a few; more is a model calling tools in a loop.
MAX_TURNS = 8

_THROTTLE_CODES = {"ThrottlingException", "TooManyRequestsException", "ServiceQuotaExceededException"}

#: Stop reasons with which a provider says the model declined or a content policy stopped
#: it: Bedrock Converse's ``guardrail_intervened`` and ``content_filtered`` (bedrock-runtime
#: service model, ``StopReason``) and the Anthropic Messages API's ``refusal`` (Strands
#: passes Anthropic's stop reason through). Retrying gives the same answer.
REFUSAL_STOP_REASONS = frozenset({"guardrail_intervened", "content_filtered", "refusal"})
#: Longest answer taken as a bare refusal, in characters: refusals are short, and a longer
#: answer that opens with "I can't …" usually goes on to answer.
DECLINE_MAX_CHARS = 400
_DECLINE_RE = re.compile(
    r"^\W*(?:(?:i['’]?m|i am)\s+(?:sorry|afraid)|sorry|i apologi[sz]e|unfortunately)?[\s,.!:;—-]*(?:but\s+)?"
    r"i\s*(?:can['’]?t|cannot|can not|won['’]?t|will not|am unable to|['’]?m unable to|am not able to|"
    r"must decline|have to decline)\b",
    re.IGNORECASE,
)
#: Characters of a declining answer quoted in the error.
DECLINE_QUOTE_CHARS = 160


class TokenMeter:
    """Model tokens used by the agents run inside one :func:`metered` block: the usage
    Strands records for each :func:`run_agent` call (``AgentResult.metrics.latest_agent_invocation``),
    per model id."""

    def __init__(self) -> None:
        self.by_model: dict[str, list[int]] = {}

    def add(self, model: str, usage: Any) -> None:
        counts = self.by_model.setdefault(model, [0, 0])
        counts[0] += int(usage.get("inputTokens") or 0)
        counts[1] += int(usage.get("outputTokens") or 0)

    def usage(self) -> ModelUsage | None:
        """The tokens as one :class:`~relay_core.models.ModelUsage` (``None``: no agent ran or
        no model reported usage). Several models are summed under their joined ids."""
        if not self.by_model:
            return None
        return ModelUsage(
            model="+".join(sorted(self.by_model)),
            inputTokens=sum(c[0] for c in self.by_model.values()),
            outputTokens=sum(c[1] for c in self.by_model.values()),
        )

    def payload(self) -> dict[str, Any]:
        """``{"usage": {"model", "inputTokens", "outputTokens"}}`` for a handler's result, or ``{}``."""
        usage = self.usage()
        return {} if usage is None else {"usage": usage.model_dump(mode="json")}


_METER: ContextVar[TokenMeter | None] = ContextVar("relay_token_meter", default=None)


@contextmanager
def metered() -> Iterator[TokenMeter]:
    """Count the model tokens of every agent run in this block (this thread or task only:
    a context variable, so concurrent invocations never see each other's counts)."""
    meter = TokenMeter()
    token = _METER.set(meter)
    try:
        yield meter
    finally:
        _METER.reset(token)


def note_fallback(role: str, fallback: str, reason: str = "") -> None:
    """Log that ``role`` took ``fallback`` (one of :data:`FALLBACKS`) at INFO: ``model fallback``."""
    from relay_core.observability import logger

    logger.info("model fallback", extra={"role": role, "fallback": fallback, "reason": reason[:200]})


def _model_id(model: Model) -> str:
    try:
        config = model.get_config()
    except Exception:  # noqa: BLE001 - a provider without a readable config is still counted
        return "unknown"
    return str(config.get("model_id") or "unknown") if isinstance(config, dict) else "unknown"


def _meter(model: Model, usage: Any) -> None:
    meter = _METER.get()
    if meter is not None and usage:
        meter.add(_model_id(model), usage)


def calls_tools(model: Model) -> bool:
    """Whether ``model`` can call tools: ``False`` only when it says so (a
    ``relay_calls_tools`` attribute: a llama.cpp server whose chat template has no tools,
    :class:`relay_agents.providers.LlamaCppServerModel`). The researcher then searches for
    it at once instead of after an answer from memory, and the planner asks for its JSON
    list without a first prose turn."""
    return bool(getattr(model, "relay_calls_tools", True))


def wants_structured_output(model: Model) -> bool:
    """Whether the planner and the analyst ask ``model`` for JSON (:func:`run_structured`).

    A model says so with a ``relay_structured_output`` attribute (Relay's llama.cpp and
    OpenAI-compatible models: ``True``); otherwise every Strands provider (``strands.models.*``:
    Bedrock, Anthropic, Ollama, LiteLLM, OpenAI) does, and the offline model and test
    doubles do not (they write text).
    """
    flag = getattr(model, "relay_structured_output", None)
    if flag is not None:
        return bool(flag)
    return type(model).__module__.startswith("strands.models.")


def make_agent(
    model: Model,
    system_prompt: str,
    tools: list[Any] | None = None,
    name: str = "relay",
    messages: list[Any] | None = None,
) -> Agent:
    """A quiet agent (no console callback) without in-agent model retries, optionally
    starting from a conversation (``messages``, Strands' Bedrock-shaped messages)."""
    return Agent(
        model=model,
        system_prompt=system_prompt,
        tools=tools or [],
        callback_handler=None,
        retry_strategy=ModelRetryStrategy(max_attempts=1),
        name=name,
        messages=messages,
    )


def _chain(error: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = error
    while current is not None and current not in seen:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


def map_model_error(error: BaseException, role: str) -> RelayError:
    """The Relay error for an exception raised while an agent ran.

    * ``ModelThrottledException`` (or a botocore throttling ``ClientError``) → ``ModelThrottled``;
    * a :class:`RelayError` raised inside (e.g. by a tool) → itself;
    * context window overflow / max tokens → ``AgentFailed`` (retrying gives the same result);
    * the server refuses the key (401, 403) or does not know the model (404) →
      ``ConfigurationError`` naming ``RELAY_MODEL_API_KEY`` or ``RELAY_MODEL_ID``;
    * the server refuses the request as malformed (400, 422) → ``AgentFailed``;
    * anything else (provider 5xx, timeouts, connection errors) → ``ModelUnavailable``.
    """
    chain = _chain(error)
    for exc in chain:
        status = _http_status(exc)
        if status in (401, 403):
            return ConfigurationError(f"RELAY_MODEL_API_KEY: the model server refused the key (HTTP {status})")
        if status == 404:
            return ConfigurationError(f"RELAY_MODEL_ID: the model server does not serve it (HTTP 404: {_server_message(exc)})")
    for exc in chain:
        if isinstance(exc, ModelThrottledException):
            return ModelThrottled(f"{role}: model throttled: {exc}")
        response = getattr(exc, "response", None)  # a botocore ClientError's is a dict; httpx's is a Response
        code = response.get("Error", {}).get("Code") if isinstance(response, dict) else None
        if isinstance(code, str) and code in _THROTTLE_CODES:
            return ModelThrottled(f"{role}: model throttled: {code}")
    for exc in chain:
        if isinstance(exc, RelayError):
            return exc
        if isinstance(exc, ContextWindowOverflowException | MaxTokensReachedException):
            return AgentFailed(f"{role}: {type(exc).__name__}: {exc}")
    for exc in chain:
        if _http_status(exc) in (400, 422):  # the same request is refused again: not retried
            return AgentFailed(f"{role}: the model server refused the request (HTTP {_http_status(exc)}: {_server_message(exc)})")
    root = chain[-1]
    return ModelUnavailable(f"{role}: model call failed: {type(root).__name__}: {root}")


def _http_status(error: BaseException) -> int | None:
    """The HTTP status of an ``openai`` ``APIStatusError`` or an ``httpx.HTTPStatusError``."""
    status = getattr(error, "status_code", None)
    if status is None:
        response = getattr(error, "response", None)
        status = getattr(response, "status_code", None)
    return status if isinstance(status, int) else None


def _server_message(error: BaseException) -> str:
    """What the server said: the ``error.message`` of its JSON body when there is one (an
    OpenAI-compatible server's), else the exception's text; one line."""
    response = getattr(error, "response", None)
    try:
        body = response.json() if response is not None and hasattr(response, "json") else None
        message = body.get("error", {}).get("message") if isinstance(body, dict) else None
    except Exception:  # noqa: BLE001 - no readable body: the exception's own text
        message = None
    return _one_line(Exception(message) if message else error)


def _one_line(error: BaseException, limit: int = 200) -> str:
    text = " ".join(str(error).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def overflowed(error: BaseException) -> bool:
    """Whether ``error`` (as :func:`run_agent` raised it) is a context window overflow."""
    return any(isinstance(exc, ContextWindowOverflowException) for exc in _chain(error))


_LINE_SENTENCE_RE = re.compile(r"(?<=[.!?])\s+")
_SENTENCE_END_RE = re.compile(r"[.!?](?:\s*\[\d+\])*[)\]\"'*_]*(?=\s|$)")


def salvage_cut_answer(text: str) -> str:
    """What is kept of an answer the token cap cut off: each line and each sentence once
    (a model that runs away repeats itself), up to the end of the last complete sentence;
    ``""`` when no sentence was finished."""
    seen: set[str] = set()
    lines = []
    for line in text.splitlines():
        kept = []
        for sentence in _LINE_SENTENCE_RE.split(line):
            key = " ".join(sentence.split()).lower()
            if key and key in seen:
                continue
            seen.add(key)
            kept.append(sentence)
        if line.strip() and not kept:
            continue
        lines.append(" ".join(kept))
    joined = "\n".join(lines)
    ends = list(_SENTENCE_END_RE.finditer(joined))
    return joined[: ends[-1].end()].strip() if ends else ""


def declined(text: str) -> bool:
    """Whether ``text`` is a bare refusal: at most :data:`DECLINE_MAX_CHARS` characters
    that open by declining ("I'm sorry, but I can't …", "I cannot help with …",
    "Unfortunately, I am unable to …")."""
    text = text.strip()
    return len(text) <= DECLINE_MAX_CHARS and _DECLINE_RE.match(text) is not None


def check_not_declined(text: str, role: str) -> None:
    """Raise when ``text`` is a bare refusal (:func:`declined`).

    Raises:
        AgentFailed: ``<role>: the model declined to answer: '<its words>'``. Not retried
            by the state machine: the same input gets the same refusal.
    """
    if declined(text):
        words = " ".join(text.split())
        if len(words) > DECLINE_QUOTE_CHARS:
            words = words[: DECLINE_QUOTE_CHARS - 1] + "…"
        raise AgentFailed(f"{role}: the model declined to answer: {words!r}")


def _text(message: Any) -> str:
    return "".join(block.get("text", "") for block in (message or {}).get("content", []) if isinstance(block, dict)).strip()


def run_agent(
    agent: Agent, prompt: str | None, role: str, invocation_state: dict[str, Any] | None = None
) -> str:
    """Run ``agent`` on ``prompt`` (``None``: go on from its conversation as it stands) and
    return its final text; an answer the token cap cut keeps its complete sentences
    (:func:`salvage_cut_answer`). The call's tokens are counted in the :func:`metered`
    block, whether it succeeded or not.

    Raises:
        ModelThrottled, ModelUnavailable, AgentFailed, ConfigurationError: see
            :func:`map_model_error`; ``AgentFailed`` also when the model stopped with a refusal
            stop reason (:data:`REFUSAL_STOP_REASONS`), kept calling tools for
            :data:`MAX_TURNS` turns, or its final message has no text (or, cut at the token
            cap, no complete sentence).
    """
    before = agent.event_loop_metrics.latest_agent_invocation
    try:
        result: AgentResult = agent(prompt, invocation_state=invocation_state or {}, limits={"turns": MAX_TURNS})
    except MaxTokensReachedException as exc:
        _meter_invocation(agent, before)
        last = agent.messages[-1] if agent.messages else None
        kept = salvage_cut_answer(_text(last)) if last and last.get("role") == "assistant" else ""
        if not kept:
            raise AgentFailed(f"{role}: the model reached its token cap without finishing a sentence") from exc
        note_fallback(role, "cut_answer_kept", f"{len(kept)} of {len(_text(last))} characters")
        return kept
    except Exception as exc:  # noqa: BLE001 - mapped in one place
        _meter_invocation(agent, before)
        raise map_model_error(exc, role) from exc
    _meter_invocation(agent, before)
    if result.stop_reason == "limit_turns":
        raise AgentFailed(f"{role}: the model was still calling tools after {MAX_TURNS} turns")
    if result.stop_reason in REFUSAL_STOP_REASONS:
        raise AgentFailed(f"{role}: the model declined to answer (stop reason {result.stop_reason})")
    text = _text(result.message)
    if not text:
        raise AgentFailed(f"{role}: the agent returned no text (stop reason {result.stop_reason})")
    return text


def _meter_invocation(agent: Agent, before: Any) -> None:
    """Count the tokens of the agent's newest invocation, if this call made one (an agent's
    accumulated usage also holds its earlier calls)."""
    invocation = agent.event_loop_metrics.latest_agent_invocation
    if invocation is not None and invocation is not before:
        _meter(agent.model, invocation.usage)


class StructuredOutputFailed(AgentFailed):
    """:func:`run_structured` got no object of the schema (not JSON, cut at the token cap,
    or not of its shape). Callers fall back to text; it is an ``AgentFailed`` only if one
    escapes."""


def run_structured(agent: Agent, prompt: str, output: type[T], role: str) -> T:
    """Ask the agent's model for one ``output`` object, going on from the agent's
    conversation (its searches included) with ``prompt``: Strands' ``Model.structured_output``,
    which Relay's llama.cpp and OpenAI-compatible models send as a JSON schema the server
    decodes under (:mod:`relay_agents.providers`). The call's tokens are counted; on success
    the prompt and the JSON answer join the agent's conversation.

    Raises:
        StructuredOutputFailed: the answer is not JSON of ``output``'s schema.
        ModelThrottled, ModelUnavailable, AgentFailed, ConfigurationError: as :func:`map_model_error`.
    """
    asked: Any = {"role": "user", "content": [{"text": prompt}]}
    messages: Any = [*agent.messages, asked]
    usage: dict[str, Any] = {}

    async def ask() -> T | None:
        result: T | None = None
        events = agent.model.structured_output(output, messages, system_prompt=agent.system_prompt)
        async for event in events:
            if "output" in event:
                result = event["output"]
            elif "metadata" in event:
                metadata: Any = event["metadata"]
                usage.update(metadata.get("usage") or {})
        return result

    try:
        answer = run_async(ask)
    except (ValidationError, ValueError) as exc:  # json.JSONDecodeError is a ValueError
        raise StructuredOutputFailed(f"{role}: the structured answer is not of the schema: {_one_line(exc)}") from exc
    except Exception as exc:  # noqa: BLE001 - mapped in one place
        raise map_model_error(exc, role) from exc
    finally:
        _meter(agent.model, usage)
    if answer is None:
        raise StructuredOutputFailed(f"{role}: the model gave no structured answer")
    reply = {"role": "assistant", "content": [{"text": json.dumps(answer.model_dump(mode="json"))}]}
    agent.messages.extend([asked, reply])  # type: ignore[list-item]
    return answer
