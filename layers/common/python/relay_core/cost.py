"""What one execution cost, priced from its own history.

:func:`execution_cost` reads a GetExecutionHistory (oldest first, before and after every
redrive of the execution) and counts:

- **state transitions**: every ``…StateEntered`` event, plus every Task retry (each
  ``TaskScheduled`` after the first in one state entry): Step Functions bills Standard
  workflows per state transition, and retries count (AWS Step Functions pricing page).
  A Distributed Map's iterations run as child executions whose events are not in this
  history: each iteration is counted as the states on its item processor's path
  (``AskResearcher``: one), once per Map Run started. A redriven Map Run is counted in
  full, an upper bound (Step Functions re-runs, and bills, only the iterations that
  did not succeed); retries inside child executions are not seen.
- **Lambda GB-seconds**: for each Lambda Task attempt, the function's configured memory
  (:data:`LAMBDA_MEMORY_MB`, the stack's sizes) times its duration measured in the
  history — ``TaskStarted`` to ``TaskSucceeded``/``TaskFailed``/``TaskTimedOut``, or to
  ``TaskSubmitted`` for ``.waitForTaskToken`` (the function returned; the wait for a
  person is not Lambda time) — rounded up to the millisecond as Lambda bills it. A local
  run measures the local handlers on this machine.
- **model tokens**: the ``usage`` a Task result reports, in Strands' ``Usage`` shape
  (``{"inputTokens", "outputTokens"}`` plus ``"model"``, :class:`relay_core.models.ModelUsage`),
  at the top level or in the Lambda ``Payload``: PlanResearch, AnalyzeResearch and
  WriteReport report their agent's, CompileResearch the sum of the findings' (the
  researchers run in the Map's child executions, whose events are not in this history;
  tokens of research that failed are not reported). Tasks that report none add nothing; when no Task reports usage
  the answer says so (``model_tokens`` is ``None``) rather than claiming zero.

Prices are list prices for US East (N. Virginia) in :data:`PRICES`, with their source
and the date they were read; the free tiers are not deducted. Only what is counted
above is priced: S3, DynamoDB, SNS, API Gateway and AgentCore Runtime are not.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from .contracts import TASK_FUNCTIONS
from .history import event_details


@dataclass(frozen=True)
class PriceTable:
    """Unit prices in USD, with where and when they were read.

    Attributes:
        state_transition: per Standard workflow state transition.
        lambda_gb_second: per GB-second of Lambda duration (Arm, the stack's architecture).
        lambda_request: per Lambda invocation.
        model_tokens: model id → (USD per input token, USD per output token).
    """

    as_of: str
    region: str
    source: str
    state_transition: float
    lambda_gb_second: float
    lambda_request: float
    model_tokens: Mapping[str, tuple[float, float]] = field(default_factory=dict)


#: The prices used unless a caller passes others. Sources: "AWS Step Functions pricing"
#: (Standard workflows: $0.025 per 1,000 state transitions, retries included), "AWS
#: Lambda pricing" (Arm: $0.0000133334 per GB-second for the first 7.5 billion GB-seconds
#: a month, $0.20 per 1 million requests), "Amazon Bedrock pricing" (on-demand; Amazon
#: Nova Pro $0.0008 / $0.0032 per 1,000 input / output tokens) and Anthropic's
#: published rate for Claude Sonnet 4.6, on Bedrock and on the Anthropic API alike ($3 /
#: $15 per million tokens); read on 2026-11-22 for US East (N. Virginia). OpenAI's API
#: pricing page for GPT-4o ($2.50 / $10 per million tokens). The offline model, a
#: model Ollama serves on this machine and the embedded model (``relay run --model local``,
#: relay.local.llm) cost nothing per token. Every provider's default
#: model id (relay_agents.model_factory.DEFAULT_MODEL_IDS, the stack's ``modelId``) has a
#: price here (tests/unit/test_console_cost.py).
PRICES = PriceTable(
    as_of="2026-11-22",
    region="us-east-1",
    source="AWS Step Functions, AWS Lambda, Amazon Bedrock (US East, N. Virginia), Anthropic and OpenAI API pricing pages; free tiers not deducted",
    state_transition=0.025 / 1000,
    lambda_gb_second=0.0000133334,
    lambda_request=0.20 / 1_000_000,
    model_tokens={
        "offline": (0.0, 0.0),
        # the offline model's id (relay_agents.provenance.OFFLINE_MODEL_ID): it estimates its usage
        "relay-offline-extractive": (0.0, 0.0),
        "us.amazon.nova-pro-v1:0": (0.0008 / 1000, 0.0032 / 1000),
        "amazon.nova-pro-v1:0": (0.0008 / 1000, 0.0032 / 1000),
        "global.anthropic.claude-sonnet-4-6": (3.0 / 1_000_000, 15.0 / 1_000_000),
        "claude-sonnet-4-6": (3.0 / 1_000_000, 15.0 / 1_000_000),
        "gpt-4o": (2.50 / 1_000_000, 10.0 / 1_000_000),
        "llama3.1": (0.0, 0.0),
        # the embedded model's id (relay.local.llm.EMBEDDED_MODEL_ID), served on this machine
        "SmolLM2-135M-Instruct-Q4_1": (0.0, 0.0),
    },
)

#: Memory of the Lambda function behind each Task state, MB: :data:`relay_core.contracts.TASK_FUNCTIONS`
#: sizes (``tests/unit/test_console_cost.py`` checks the two agree, through the ASL file's
#: ``${…FunctionArn}`` substitutions).
LAMBDA_MEMORY_MB: dict[str, int] = {state: spec.memory_mb for spec in TASK_FUNCTIONS for state in spec.states}
#: Memory assumed for a Lambda Task state not in :data:`LAMBDA_MEMORY_MB`, MB (the stack's default).
DEFAULT_LAMBDA_MEMORY_MB = 512
#: States on one Distributed Map iteration's path when the definition is not given.
DEFAULT_ITEM_PROCESSOR_STATES = 1
_LAMBDA_END_EVENTS = {"TaskSucceeded", "TaskFailed", "TaskTimedOut", "TaskSubmitted"}


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TokenUsage(_Model):
    """Tokens one model used in the execution, and their price (``None``: no price for that model)."""

    model: str
    input_tokens: int = Field(ge=0)
    output_tokens: int = Field(ge=0)
    usd: float | None = None


class CostInUsd(_Model):
    """The priced parts, USD. ``model_tokens`` is ``None`` when tokens were not reported or a model has no price."""

    state_transitions: float
    lambda_duration: float
    lambda_requests: float
    model_tokens: float | None
    total: float


class ExecutionCost(_Model):
    """What an execution cost (see the module docstring for what is counted and how)."""

    state_transitions: int = Field(ge=0, description="StateEntered events + Task retries + Distributed Map iterations' states")
    retries: int = Field(ge=0, description="Task retries (included in state_transitions)")
    map_iterations: int = Field(ge=0, description="Distributed Map iterations counted")
    lambda_invocations: int = Field(ge=0)
    lambda_gb_seconds: float = Field(ge=0, description="memory (GB) x measured duration (s), per attempt, ms rounded up")
    model_tokens: list[TokenUsage] | None = Field(default=None, description="None: no Task reported token usage")
    usd: CostInUsd
    prices_as_of: str
    price_source: str


def _ms(value: Any) -> float:
    if isinstance(value, datetime):
        return value.timestamp() * 1000
    return datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp() * 1000


def _usage(output: Any) -> dict[str, Any] | None:
    """The ``usage`` object of a Task result (JSON text), at the top level or in ``Payload``."""
    if not isinstance(output, str) or "usage" not in output:
        return None
    try:
        result = json.loads(output)
    except ValueError:
        return None
    for holder in (result, result.get("Payload") if isinstance(result, dict) else None):
        usage = holder.get("usage") if isinstance(holder, dict) else None
        if isinstance(usage, dict) and isinstance(usage.get("inputTokens"), int) and isinstance(usage.get("outputTokens"), int):
            return usage
    return None


def item_processor_path_length(definition: Mapping[str, Any], map_state: str) -> int:
    """How many states one iteration of ``map_state`` enters: its item processor's path
    from ``StartAt`` along ``Next`` to the first state that ends it (a Choice ends the count).

    Raises:
        KeyError: ``map_state`` is not a Map state with an ItemProcessor in ``definition``.
    """
    state = definition["States"][map_state]
    processor = state.get("ItemProcessor") or state.get("Iterator")
    if not isinstance(processor, dict):
        raise KeyError(f"{map_state} has no ItemProcessor")
    states, name, count, seen = processor["States"], processor["StartAt"], 0, set()
    while name in states and name not in seen:
        seen.add(name)
        count += 1
        step = states[name]
        if step.get("Type") == "Choice" or step.get("End") or "Next" not in step:
            break
        name = step["Next"]
    return count


def execution_cost(
    events: list[dict[str, Any]],
    definition: Mapping[str, Any] | None = None,
    prices: PriceTable = PRICES,
    memory_mb: Mapping[str, int] | None = None,
) -> ExecutionCost:
    """Count and price one execution from its history (oldest first).

    Args:
        events: GetExecutionHistory events (``timestamp`` a ``datetime`` or ISO-8601 text).
        definition: the state machine definition, to count each Distributed Map
            iteration's states; without it each iteration counts one state.
        prices: the unit prices (default :data:`PRICES`).
        memory_mb: Task state → Lambda memory in MB (default :data:`LAMBDA_MEMORY_MB`).

    Raises:
        ValueError: a timestamp that is not ISO-8601 text or a ``datetime``.
    """
    memory = memory_mb or LAMBDA_MEMORY_MB
    transitions = retries = iterations = invocations = 0
    gb_seconds = 0.0
    tokens: dict[str, list[int]] = {}
    open_states: list[str] = []
    scheduled_in_entry: dict[int, int] = {}
    lambda_started: float | None = None
    lambda_state: str | None = None
    map_length = 0
    for event in events:
        kind = str(event.get("type", ""))
        details = event_details(event)
        if kind.endswith("StateEntered"):
            transitions += 1
            open_states.append(str(details.get("name")))
            scheduled_in_entry[len(open_states)] = 0
        elif kind.endswith("StateExited") and open_states:
            open_states.pop()
        elif kind == "TaskScheduled":
            depth = len(open_states)
            scheduled_in_entry[depth] = scheduled_in_entry.get(depth, 0) + 1
            if scheduled_in_entry[depth] > 1:
                retries += 1
                transitions += 1
            if details.get("resourceType") == "lambda":
                invocations += 1
        elif kind == "TaskStarted" and details.get("resourceType") == "lambda":
            lambda_started = _ms(event["timestamp"])
            lambda_state = open_states[-1] if open_states else None
        elif kind in _LAMBDA_END_EVENTS and lambda_started is not None:
            billed_ms = math.ceil(max(0.0, _ms(event["timestamp"]) - lambda_started))
            gb_seconds += memory.get(lambda_state or "", DEFAULT_LAMBDA_MEMORY_MB) / 1024 * billed_ms / 1000
            lambda_started = None
        elif kind == "MapStateStarted":
            map_length = int(details.get("length") or 0)
        elif kind == "MapRunStarted":
            per_item = DEFAULT_ITEM_PROCESSOR_STATES
            if definition is not None and open_states:
                per_item = item_processor_path_length(definition, open_states[-1])
            iterations += map_length
            transitions += map_length * per_item
        if kind in {"TaskSucceeded", "TaskSubmitted"}:
            usage = _usage(details.get("output"))
            if usage is not None:
                counts = tokens.setdefault(str(usage.get("model") or "unknown"), [0, 0])
                counts[0] += int(usage["inputTokens"])
                counts[1] += int(usage["outputTokens"])
    token_rows: list[TokenUsage] | None = None
    model_usd: float | None = None
    if tokens:
        token_rows = []
        model_usd = 0.0
        for model, (inp, out) in sorted(tokens.items()):
            price = prices.model_tokens.get(model)
            usd = None if price is None else inp * price[0] + out * price[1]
            token_rows.append(TokenUsage(model=model, input_tokens=inp, output_tokens=out, usd=usd))
            model_usd = None if usd is None or model_usd is None else model_usd + usd
    usd_transitions = transitions * prices.state_transition
    usd_duration = gb_seconds * prices.lambda_gb_second
    usd_requests = invocations * prices.lambda_request
    return ExecutionCost(
        state_transitions=transitions,
        retries=retries,
        map_iterations=iterations,
        lambda_invocations=invocations,
        lambda_gb_seconds=round(gb_seconds, 6),
        model_tokens=token_rows,
        usd=CostInUsd(
            state_transitions=usd_transitions,
            lambda_duration=usd_duration,
            lambda_requests=usd_requests,
            model_tokens=model_usd,
            total=usd_transitions + usd_duration + usd_requests + (model_usd or 0.0),
        ),
        prices_as_of=prices.as_of,
        price_source=prices.source,
    )


def cost_line(cost: ExecutionCost) -> str:
    """One line for a terminal: transitions, GB-seconds, tokens and the total, with the price date."""
    if cost.model_tokens is None:
        tokens = "model tokens not reported"
    else:
        used = sum(t.input_tokens + t.output_tokens for t in cost.model_tokens)
        tokens = f"{used:,} model tokens" + ("" if cost.usd.model_tokens is not None else " (unpriced model)")
    return (
        f"{cost.state_transitions} state transitions ({cost.retries} retries), "
        f"{cost.lambda_gb_seconds:.3f} Lambda GB-s in {cost.lambda_invocations} invocations, {tokens}: "
        f"${cost.usd.total:.6f} at list prices of {cost.prices_as_of}"
    )
