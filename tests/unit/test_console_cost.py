"""What an execution cost, priced from its history (relay_core.cost)."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from relay_core.cost import (
    LAMBDA_MEMORY_MB,
    PRICES,
    PriceTable,
    cost_line,
    execution_cost,
    item_processor_path_length,
)

ROOT = Path(__file__).resolve().parents[2]
ASL = json.loads((ROOT / "statemachines" / "research_report.asl.json").read_text())
T0 = datetime(2026, 11, 22, tzinfo=UTC)


def event(n: int, kind: str, at_ms: float, **details: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"id": n, "type": kind, "timestamp": T0 + timedelta(milliseconds=at_ms)}
    if details:
        key = "stateEnteredEventDetails" if kind.endswith("StateEntered") else kind[0].lower() + kind[1:] + "EventDetails"
        out[key] = details
    return out


def lambda_task(events: list, state: str, start_ms: float, run_ms: float, outcome: str = "TaskSucceeded", output: Any = None) -> float:
    """Append a Lambda Task attempt of ``run_ms`` (TaskStarted → outcome); returns the time after it."""
    events.append(event(len(events) + 1, "TaskScheduled", start_ms, resourceType="lambda", resource="invoke", parameters="{}"))
    events.append(event(len(events) + 1, "TaskStarted", start_ms, resourceType="lambda", resource="invoke"))
    details: dict[str, Any] = {"resourceType": "lambda", "resource": "invoke"}
    if output is not None:
        details["output"] = json.dumps(output)
    events.append(event(len(events) + 1, outcome, start_ms + run_ms, **details))
    return start_ms + run_ms


def entered(events: list, state: str, at_ms: float, kind: str = "TaskStateEntered") -> None:
    events.append(event(len(events) + 1, kind, at_ms, name=state, input="{}"))


def test_transitions_count_every_state_entered_every_retry_and_every_map_iteration():
    events: list[dict[str, Any]] = [event(1, "ExecutionStarted", 0)]
    entered(events, "PlanResearch", 1)
    lambda_task(events, "PlanResearch", 2, 10, "TaskFailed")  # then retried twice
    lambda_task(events, "PlanResearch", 20, 10, "TaskFailed")
    lambda_task(events, "PlanResearch", 40, 10)
    events.append(event(len(events) + 1, "TaskStateExited", 60))
    entered(events, "ResearchQuestions", 61, "MapStateEntered")
    events.append(event(len(events) + 1, "MapStateStarted", 62, length=3))
    events.append(event(len(events) + 1, "MapRunStarted", 63, mapRunArn="arn"))
    cost = execution_cost(events, ASL)
    # 2 states entered + 2 retries + 3 iterations x 1 state (AskResearcher)
    assert (cost.state_transitions, cost.retries, cost.map_iterations, cost.lambda_invocations) == (7, 2, 3, 3)
    assert cost.usd.state_transitions == pytest.approx(7 * 0.025 / 1000)


def test_lambda_gb_seconds_are_memory_times_measured_duration_rounded_up_to_the_ms_and_exclude_the_approval_wait():
    events: list[dict[str, Any]] = [event(1, "ExecutionStarted", 0)]
    entered(events, "PlanResearch", 0)
    lambda_task(events, "PlanResearch", 0, 1000)  # 1,024 MB for 1 s = 1 GB-s
    entered(events, "WriteReport", 2000)
    lambda_task(events, "WriteReport", 2000, 0.4)  # billed 1 ms at 1,024 MB
    entered(events, "RequestApproval", 3000)
    events.append(event(len(events) + 1, "TaskScheduled", 3000, resourceType="lambda", resource="invoke.waitForTaskToken"))
    events.append(event(len(events) + 1, "TaskStarted", 3000, resourceType="lambda", resource="invoke.waitForTaskToken"))
    events.append(event(len(events) + 1, "TaskSubmitted", 3500, resourceType="lambda", resource="invoke.waitForTaskToken"))
    events.append(event(len(events) + 1, "TaskSucceeded", 3_603_000, resourceType="lambda", resource="invoke.waitForTaskToken"))
    cost = execution_cost(events)
    assert cost.lambda_gb_seconds == pytest.approx(1.0 + 0.001 + 0.5 * 0.5)  # RequestApproval: 512 MB for 0.5 s
    assert cost.lambda_invocations == 3
    assert cost.usd.lambda_duration == pytest.approx(cost.lambda_gb_seconds * 0.0000133334)
    assert cost.usd.lambda_requests == pytest.approx(3 * 0.20 / 1_000_000)
    assert cost.usd.total == pytest.approx(cost.usd.state_transitions + cost.usd.lambda_duration + cost.usd.lambda_requests)


def test_model_tokens_are_counted_from_reported_usage_and_priced_per_model_or_said_to_be_unreported():
    events: list[dict[str, Any]] = [event(1, "ExecutionStarted", 0)]
    entered(events, "PlanResearch", 0)
    usage = {"model": "us.amazon.nova-pro-v1:0", "inputTokens": 1000, "outputTokens": 500, "totalTokens": 1500}
    lambda_task(events, "PlanResearch", 0, 10, output={"Payload": {"plan": {}, "usage": usage}})
    entered(events, "AnalyzeResearch", 20)
    lambda_task(events, "AnalyzeResearch", 20, 10, output={"usage": {**usage, "inputTokens": 1000}})
    cost = execution_cost(events)
    assert cost.model_tokens is not None and [(t.model, t.input_tokens, t.output_tokens) for t in cost.model_tokens] == [
        ("us.amazon.nova-pro-v1:0", 2000, 1000)
    ]
    assert cost.usd.model_tokens == pytest.approx(2000 * 0.0008 / 1000 + 1000 * 0.0032 / 1000)
    assert "3,000 model tokens" in cost_line(cost)

    unknown = json.loads(json.dumps(events, default=str).replace("us.amazon.nova-pro-v1:0", "some-other-model"))
    cost = execution_cost(unknown)
    assert cost.model_tokens is not None and cost.model_tokens[0].usd is None and cost.usd.model_tokens is None
    assert cost.usd.total == pytest.approx(cost.usd.state_transitions + cost.usd.lambda_duration + cost.usd.lambda_requests)
    assert "(unpriced model)" in cost_line(cost)

    silent = [e for e in events if "output" not in e.get("taskSucceededEventDetails", {})]
    assert execution_cost(silent).model_tokens is None and "model tokens not reported" in cost_line(execution_cost(silent))


def test_a_real_shaped_history_from_the_durable_store_reads_the_same(tmp_path: Path):
    events: list[dict[str, Any]] = [event(1, "ExecutionStarted", 0)]
    entered(events, "PlanResearch", 0)
    lambda_task(events, "PlanResearch", 0, 123)
    as_text = json.loads(json.dumps(events, default=lambda v: v.isoformat()))
    assert execution_cost(as_text) == execution_cost(events)
    with pytest.raises(ValueError):
        execution_cost([{**as_text[3], "timestamp": "yesterday"}, as_text[4]])


def test_prices_carry_their_source_and_date_and_can_be_replaced():
    assert PRICES.state_transition == pytest.approx(0.000025)  # $0.025 per 1,000 state transitions
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", PRICES.as_of) and "Step Functions" in PRICES.source
    free = PriceTable(as_of="2026-01-01", region="us-east-1", source="test", state_transition=0, lambda_gb_second=0, lambda_request=0)
    events = [event(1, "ExecutionStarted", 0)]
    entered(events, "PlanResearch", 0)
    cost = execution_cost(events, prices=free)
    assert cost.usd.total == 0 and cost.prices_as_of == "2026-01-01" and cost.state_transitions == 1


def test_the_default_models_prices_are_pinned():
    # the agents' default (Bedrock, Claude Sonnet 4.6 cross-region profile) and the stack's (Nova Pro), USD per token
    assert PRICES.model_tokens["global.anthropic.claude-sonnet-4-6"] == (pytest.approx(3.0e-6), pytest.approx(15.0e-6))
    assert PRICES.model_tokens["us.amazon.nova-pro-v1:0"] == (pytest.approx(0.8e-6), pytest.approx(3.2e-6))


def test_every_default_model_id_is_priced():
    # Given every model id Relay uses when none is configured: each provider's default and the
    # stack's modelId in cdk.json (the stack settings' default equals it: tests/infra/test_infra_build.py)
    from relay_agents.model_factory import DEFAULT_MODEL_IDS

    defaults = {model for model in DEFAULT_MODEL_IDS.values() if model} | {json.loads((ROOT / "cdk.json").read_text())["context"]["modelId"]}
    assert "global.anthropic.claude-sonnet-4-6" in defaults and len(defaults) >= 6, defaults
    # Then each has a price, so no default run reports "(unpriced model)"
    assert sorted(defaults - set(PRICES.model_tokens)) == []


def test_the_map_iteration_path_length_follows_the_item_processor():
    assert item_processor_path_length(ASL, "ResearchQuestions") == 1
    definition = {"States": {"M": {"Type": "Map", "ItemProcessor": {"StartAt": "A", "States": {
        "A": {"Type": "Pass", "Next": "B"}, "B": {"Type": "Choice", "Choices": [], "Default": "A"}}}}}}
    assert item_processor_path_length(definition, "M") == 2
    with pytest.raises(KeyError):
        item_processor_path_length(ASL, "PlanResearch")


def test_lambda_memory_is_the_stack_s_for_every_lambda_task_state():
    """Each Lambda Task's ``${…FunctionArn}`` names a function of ``relay_core.contracts.TASK_FUNCTIONS``
    (the table the stack deploys from) that lists the state; its memory there is the one priced here."""
    from relay_core.contracts import TASK_FUNCTIONS

    specs = {spec.substitution_key: spec for spec in TASK_FUNCTIONS}
    lambda_states = {
        name: re.fullmatch(r"\$\{(\w+)\}", state["Parameters"]["FunctionName"]).group(1)  # type: ignore[union-attr]
        for name, state in ASL["States"].items()
        if state["Type"] == "Task" and "lambda:invoke" in state["Resource"]
    }
    # every Lambda Task state is listed under the function its ARN substitution names
    assert all(state in specs[key].states for state, key in lambda_states.items())
    assert {state: specs[key].memory_mb for state, key in lambda_states.items()} == LAMBDA_MEMORY_MB
