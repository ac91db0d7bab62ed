"""Building and running a Strands agent, and the one place that maps model errors.

Retries: the agent's own model retry is turned off (``ModelRetryStrategy(max_attempts=1)``)
because the state machine owns retry policy (``ModelThrottled`` and ``ModelUnavailable``
are retried there with backoff, see relay_core.errors); retrying in both places would multiply
waits past the task timeout.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from relay_core.errors import AgentFailed, ModelThrottled, ModelUnavailable, RelayError
from relay_core.models import ModelUsage
from strands import Agent
from strands.agent import AgentResult
from strands.event_loop._retry import ModelRetryStrategy
from strands.models import Model
from strands.types.exceptions import (
    ContextWindowOverflowException,
    MaxTokensReachedException,
    ModelThrottledException,
)

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


def _model_id(agent: Agent) -> str:
    try:
        config = agent.model.get_config()
    except Exception:  # noqa: BLE001 - a provider without a readable config is still counted
        return "unknown"
    return str(config.get("model_id") or "unknown") if isinstance(config, dict) else "unknown"


def make_agent(
    model: Model, system_prompt: str, tools: list[Any] | None = None, name: str = "relay"
) -> Agent:
    """A quiet agent (no console callback) without in-agent model retries."""
    return Agent(
        model=model,
        system_prompt=system_prompt,
        tools=tools or [],
        callback_handler=None,
        retry_strategy=ModelRetryStrategy(max_attempts=1),
        name=name,
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
    * anything else (provider 5xx, timeouts, connection errors) → ``ModelUnavailable``.
    """
    chain = _chain(error)
    for exc in chain:
        if isinstance(exc, ModelThrottledException):
            return ModelThrottled(f"{role}: model throttled: {exc}")
        code = getattr(exc, "response", {}).get("Error", {}).get("Code") if hasattr(exc, "response") else None
        if isinstance(code, str) and code in _THROTTLE_CODES:
            return ModelThrottled(f"{role}: model throttled: {code}")
    for exc in chain:
        if isinstance(exc, RelayError):
            return exc
        if isinstance(exc, ContextWindowOverflowException | MaxTokensReachedException):
            return AgentFailed(f"{role}: {type(exc).__name__}: {exc}")
    root = chain[-1]
    return ModelUnavailable(f"{role}: model call failed: {type(root).__name__}: {root}")


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


def run_agent(agent: Agent, prompt: str, role: str, invocation_state: dict[str, Any] | None = None) -> str:
    """Run ``agent`` on ``prompt`` and return its final text.

    Raises:
        ModelThrottled, ModelUnavailable, AgentFailed: see :func:`map_model_error`;
            ``AgentFailed`` also when the model stopped with a refusal stop reason
            (:data:`REFUSAL_STOP_REASONS`) or the final message has no text.
    """
    try:
        result: AgentResult = agent(prompt, invocation_state=invocation_state or {})
    except Exception as exc:  # noqa: BLE001 - mapped in one place
        raise map_model_error(exc, role) from exc
    meter = _METER.get()
    invocation = result.metrics.latest_agent_invocation
    if meter is not None and invocation is not None:
        # This invocation's usage: an agent's accumulated_usage also holds its earlier calls.
        meter.add(_model_id(agent), invocation.usage)
    if result.stop_reason in REFUSAL_STOP_REASONS:
        raise AgentFailed(f"{role}: the model declined to answer (stop reason {result.stop_reason})")
    text = "".join(block.get("text", "") for block in result.message.get("content", [])).strip()
    if not text:
        raise AgentFailed(f"{role}: the agent returned no text (stop reason {result.stop_reason})")
    return text
