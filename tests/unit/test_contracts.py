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


def _reachable_fail_states(states: dict, start: str) -> set[str]:
    """Fail states reachable from ``start`` by Next/Default/Choices (Catch excluded)."""
    seen, todo, fails = set(), [start], set()
    while todo:
        name = todo.pop()
        if name in seen or name not in states:
            continue
        seen.add(name)
        state = states[name]
        if state["Type"] == "Fail":
            fails.add(name)
        todo += [state[k] for k in ("Next", "Default") if k in state]
        todo += [c["Next"] for c in state.get("Choices", [])]
    return fails


def test_no_catch_routes_errors_to_a_fail_state_so_redrive_resumes_at_the_failed_state():
    # A caught error has left its state: RedriveExecution would re-run only the Fail
    # state, which fails again (developer guide, "Redrive behavior of individual states").
    for name, state in all_states(DEFINITION["States"]).items():
        for catcher in state.get("Catch", []):
            broad = {"States.ALL", "States.TaskFailed", "States.Timeout"} & set(catcher["ErrorEquals"])
            fails = _reachable_fail_states(DEFINITION["States"], catcher["Next"])
            assert not (broad and fails), f"{name}: Catch {catcher['ErrorEquals']} leads to Fail state(s) {fails}"


def test_the_contract_check_fails_on_the_old_catch_to_fail_pattern():
    # Given the pattern the check exists to refuse
    states = {
        "Work": {"Type": "Task", "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Record"}], "End": True},
        "Record": {"Type": "Task", "Next": "Failed"},
        "Failed": {"Type": "Fail"},
    }
    assert _reachable_fail_states(states, "Record") == {"Failed"}


def test_a_rejection_ends_in_a_succeed_state_not_a_failure():
    rejected = DEFINITION["States"]["ReportRejected"]
    assert rejected["Type"] == "Succeed"
    assert not any(s["Type"] == "Fail" for s in all_states(DEFINITION["States"]).values())


def test_writing_tasks_pass_the_redrive_count_so_records_never_move_backwards():
    for name in ("PlanResearch", "AnalyzeResearch", "RequestApproval", "FinalizeWorkflow", "RecordRejection"):
        payload = DEFINITION["States"][name]["Parameters"]["Payload"]
        assert payload["redrive_count.$"] == "$$.Execution.RedriveCount", name


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


#: InvokeAgentRuntime errors that are transient (botocore service model descriptions:
#: throttling, a retryable conflict, an internal error, a runtime client/network error).
TRANSIENT_AGENTCORE_ERRORS = {"ThrottlingException", "RetryableConflictException", "InternalServerException", "RuntimeClientError"}


def test_agent_runtime_retries_exactly_the_transient_errors_the_service_model_names():
    import botocore.session

    model = botocore.session.get_session().get_service_model("bedrock-agentcore").operation_model("InvokeAgentRuntime")
    declared = {shape.name for shape in model.error_shapes}
    ask = all_states(DEFINITION["States"])["AskResearcher"]
    retried = {e for r in ask["Retry"] for e in r["ErrorEquals"]}
    assert {e.removeprefix("BedrockAgentCore.") for e in retried} == TRANSIENT_AGENTCORE_ERRORS
    assert declared >= TRANSIENT_AGENTCORE_ERRORS  # every name is one the service can return
    # and the synchronous call is bounded below AgentCore's 15-minute limit
    assert 0 < ask["TimeoutSeconds"] < 15 * 60


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
