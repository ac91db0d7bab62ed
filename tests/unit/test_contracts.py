"""Contracts between the ASL file, the layer's error names and the local runtime."""

from __future__ import annotations

import json
import re

from relay_core.errors import RETRYABLE_ERRORS, InvalidInput

from relay.local.runtime import ASL_PATH, FUNCTION_SUBSTITUTIONS, ROOT, RUNTIME_SUBSTITUTION, substitute

DEFINITION = json.loads(ASL_PATH.read_text())


def all_states(states: dict) -> dict:
    found = dict(states)
    for state in states.values():
        if state["Type"] == "Map":
            found |= all_states(state["ItemProcessor"]["States"])
    return found


def test_every_substitution_key_is_filled_by_the_local_runtime_and_names_a_function_folder():
    keys = set(re.findall(r"\$\{(\w+)\}", ASL_PATH.read_text()))
    assert keys == set(FUNCTION_SUBSTITUTIONS) | {RUNTIME_SUBSTITUTION}
    for folder in FUNCTION_SUBSTITUTIONS.values():
        assert (ROOT / "functions" / folder / "app.py").is_file(), folder


def test_substitute_names_a_key_left_unfilled():
    import pytest

    with pytest.raises(KeyError, match=r"\$\{Missing\}"):
        substitute('{"a": "${Missing}"}', {})


def test_every_task_has_a_catch_to_record_failure_except_record_failure():
    for name, state in DEFINITION["States"].items():
        if state["Type"] in {"Task", "Map"} and name != "RecordFailure":
            (catch,) = state["Catch"]
            assert catch["ErrorEquals"] == ["States.ALL"]
            assert catch["Next"] == "RecordFailure"
            assert catch["ResultPath"] == f"$.failure.{name}"


def test_lambda_retries_cover_the_layers_transient_errors_and_never_validation_errors():
    for name, state in all_states(DEFINITION["States"]).items():
        for retrier in state.get("Retry", []):
            assert InvalidInput.__name__ not in retrier["ErrorEquals"], name
            assert "States.ALL" not in retrier["ErrorEquals"], name
            assert retrier.get("JitterStrategy") == "FULL" and retrier["BackoffRate"] > 1, name
        if state.get("Resource", "").startswith("arn:aws:states:::lambda:invoke"):
            errors = {e for r in state["Retry"] for e in r["ErrorEquals"]}
            assert set(RETRYABLE_ERRORS) <= errors, name


def test_agent_runtime_call_parses_json_and_uses_a_long_session_id():
    ask = all_states(DEFINITION["States"])["AskResearcher"]
    assert ask["Resource"] == "arn:aws:states:::aws-sdk:bedrockagentcore:invokeAgentRuntime"
    assert ask["Parameters"]["Accept"] == "application/json"
    assert ask["ResultSelector"] == {"finding.$": "States.StringToJson($.Response)"}
    assert {e for r in ask["Retry"] for e in r["ErrorEquals"]} >= {"BedrockAgentCore.ThrottlingException"}


def test_map_fans_out_with_concurrency_and_tolerated_failures_from_the_input():
    research = DEFINITION["States"]["ResearchQuestions"]
    assert research["ItemProcessor"]["ProcessorConfig"]["Mode"] == "DISTRIBUTED"
    assert research["MaxConcurrencyPath"] == "$.request.max_concurrency"
    assert research["ToleratedFailurePercentagePath"] == "$.request.tolerated_failure_percentage"


def test_request_approval_waits_for_a_task_token_with_a_timeout():
    approval = DEFINITION["States"]["RequestApproval"]
    assert approval["Resource"] == "arn:aws:states:::lambda:invoke.waitForTaskToken"
    assert approval["Parameters"]["Payload"]["task_token.$"] == "$$.Task.Token"
    assert approval["TimeoutSecondsPath"] == "$.request.approval_timeout_seconds"
