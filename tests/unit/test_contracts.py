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


def test_agent_runtime_call_waits_for_a_callback_with_the_task_token_in_its_payload():
    from relay_agents.callbacks import parse_envelope
    from relay_core.models import ResearcherRequest

    research = DEFINITION["States"]["ResearchQuestions"]
    ask = all_states(DEFINITION["States"])["AskResearcher"]
    # Given the callback pattern of the AWS SDK integration
    assert ask["Resource"] == "arn:aws:states:::aws-sdk:bedrockagentcore:invokeAgentRuntime.waitForTaskToken"
    assert ask["Parameters"]["Accept"] == "application/json"
    # the payload is [ResearcherRequest, task token] ...
    assert ask["Parameters"]["Payload.$"] == "States.JsonToString(States.Array($.payload, $$.Task.Token))"
    sent = {key.removesuffix(".$") for key in research["ItemSelector"]["payload"]}
    assert sent == set(ResearcherRequest.model_fields)
    # ... which the runtime reads back as the request and the token
    request = {"workflow_id": "wf-1", "question_id": "q01", "question": "How?"}
    token = "AQB8AAAAKgAAAAMAAAAA+/=" * 10
    assert parse_envelope(json.loads(json.dumps([request, token]))) == (request, token)
    # Then the state's output is the SendTaskSuccess output as it is (the Finding):
    # nothing selects or moves it, so the Map's result is CompileResearch's findings
    assert not {"ResultSelector", "ResultPath", "OutputPath"} & set(ask)
    assert research["ResultPath"] == "$.findings"
    assert DEFINITION["States"]["CompileResearch"]["Parameters"]["Payload"]["findings.$"] == "$.findings"


def test_agent_runtime_heartbeat_and_timeout_fit_agentcore_s_session_limit():
    from relay_agents.callbacks import CallbackSettings

    ask = all_states(DEFINITION["States"])["AskResearcher"]
    # Both are set: a researcher that stops heartbeating fails after HeartbeatSeconds,
    # one that heartbeats for ever fails after TimeoutSeconds
    assert 0 < ask["HeartbeatSeconds"] < ask["TimeoutSeconds"]
    # A session (HealthyBusy while it researches) lives at most maxLifetime: 28,800 s by
    # default and at most (AgentCore developer guide, "Configure Amazon Bedrock
    # AgentCore lifecycle settings"); the task must give up before its session is gone
    assert ask["TimeoutSeconds"] <= 28_800
    # The researcher heartbeats at least three times per HeartbeatSeconds by default
    assert 3 * CallbackSettings().heartbeat_seconds <= ask["HeartbeatSeconds"]


#: InvokeAgentRuntime errors that are transient (botocore service model descriptions:
#: throttling, a retryable conflict, an internal error, a runtime client/network error).
TRANSIENT_AGENTCORE_ERRORS = {"ThrottlingException", "RetryableConflictException", "InternalServerException", "RuntimeClientError"}

SDK_RESOURCE = re.compile(r"^arn:aws:states:::aws-sdk:(?P<service>[a-z0-9]+):(?P<action>\w+)(?:\.\w+)?$")


def sdk_error_name(prefix: str, shape: str) -> str:
    """The error name Step Functions gives a service error in an AWS SDK integration: the
    service prefix, and the shape name with ``Exception`` appended unless it already ends
    so (developer guide, "AWS SDK service integrations": "even when the API reference
    omits it")."""
    return f"{prefix}.{shape if shape.endswith('Exception') else shape + 'Exception'}"


def sdk_task_errors(resource: str) -> tuple[str, set[str]]:
    """For an ``aws-sdk`` Task resource: its error-name prefix and every error name its
    operation can raise, from botocore's service model."""
    import botocore.session

    session = botocore.session.get_session()
    found = SDK_RESOURCE.match(resource)
    assert found, resource
    boto_name = next(n for n in session.get_available_services() if n.replace("-", "") == found["service"])
    model = session.get_service_model(boto_name)
    operation = model.operation_model(found["action"][0].upper() + found["action"][1:])
    prefix = model.metadata["serviceId"].replace(" ", "")
    return prefix, {sdk_error_name(prefix, shape.name) for shape in operation.error_shapes}


def invalid_sdk_error_names(states: dict) -> dict[str, set[str]]:
    """Per ``aws-sdk`` Task, the names in its Retry and Catch that carry the service's
    prefix but are no error its operation can raise under the ``Exception`` rule."""
    invalid: dict[str, set[str]] = {}
    for name, state in all_states(states).items():
        if state["Type"] != "Task" or ":aws-sdk:" not in state["Resource"]:
            continue
        prefix, valid = sdk_task_errors(state["Resource"])
        named = {e for rule in state.get("Retry", []) + state.get("Catch", []) for e in rule["ErrorEquals"]}
        bad = {e for e in named if e.startswith(prefix + ".") and e not in valid}
        if bad:
            invalid[name] = bad
    return invalid


def test_every_sdk_error_name_in_the_definition_is_one_the_service_model_gives():
    assert any(":aws-sdk:" in s.get("Resource", "") for s in all_states(DEFINITION["States"]).values())
    assert invalid_sdk_error_names(DEFINITION["States"]) == {}


def test_an_sdk_error_name_without_its_exception_suffix_is_found():
    # Control: the name as the API reference spells it never matches in Step Functions.
    states = json.loads(json.dumps(DEFINITION["States"]))
    ask = all_states(states)["AskResearcher"]
    ask["Retry"][0]["ErrorEquals"] += ["BedrockAgentCore.RuntimeClientError", "BedrockAgentCore.NoSuchShapeException"]
    assert invalid_sdk_error_names({"ResearchQuestions": states["ResearchQuestions"]}) == {
        "AskResearcher": {"BedrockAgentCore.RuntimeClientError", "BedrockAgentCore.NoSuchShapeException"}
    }


def unknown_callback_error_names(state: dict) -> set[str]:
    """Names in ``state``'s Retry and Catch that look like the researcher's own
    (``Relay.``) but are none it sends with SendTaskFailure (:data:`relay_agents.callbacks.FAILURE_NAMES`)."""
    from relay_agents.callbacks import ERROR_PREFIX, FAILURE_NAMES, UNKNOWN_FAILURE

    sent = {name for _, name in FAILURE_NAMES} | {UNKNOWN_FAILURE}
    named = {e for rule in state.get("Retry", []) + state.get("Catch", []) for e in rule["ErrorEquals"]}
    return {e for e in named if e.startswith(ERROR_PREFIX) and e not in sent}


def test_agent_runtime_retries_exactly_the_transient_errors_of_the_call_and_of_the_callback():
    from relay_agents.callbacks import RETRIED_FAILURES, failure_name
    from relay_core.errors import NoMatchingDocument

    ask = all_states(DEFINITION["States"])["AskResearcher"]
    retried = {e for r in ask["Retry"] for e in r["ErrorEquals"]}
    # the synchronous call: the service model's transient errors, by their SDK names
    sdk = {e for e in retried if e.startswith("BedrockAgentCore.")}
    assert sdk == {sdk_error_name("BedrockAgentCore", e) for e in TRANSIENT_AGENTCORE_ERRORS}
    assert "BedrockAgentCore.RuntimeClientErrorException" in retried
    # the callback: exactly the researcher's transient SendTaskFailure names, and a
    # researcher that stopped heartbeating (its session died)
    assert retried - sdk == RETRIED_FAILURES | {"States.HeartbeatTimeout"}
    assert unknown_callback_error_names(ask) == set()
    # every transient error of the layer that the researcher can raise is among them ...
    assert {f"Relay.{name}" for name in RETRYABLE_ERRORS} <= retried
    # ... and none the same request would meet again
    for error in (InvalidInput("x"), NoMatchingDocument("no document matches")):
        assert failure_name(error) not in retried


def test_a_callback_error_name_the_researcher_never_sends_is_found():
    # Control: a misspelt name in the Retry would never match
    ask = json.loads(json.dumps(all_states(DEFINITION["States"])["AskResearcher"]))
    ask["Retry"][1]["ErrorEquals"].append("Relay.ModelThrottle")
    assert unknown_callback_error_names(ask) == {"Relay.ModelThrottle"}


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


# ----- Lambda events and results: the ASL's Parameters and ResultSelectors name model fields -----
def _task_models() -> dict[str, tuple[type, type | None]]:
    from relay_core import models

    return {
        "PlanResearch": (models.PlanResearchEvent, models.PlanResult),
        "CompileResearch": (models.CompileResearchEvent, models.CompiledResearch),
        "AnalyzeResearch": (models.AnalyzeEvent, models.Analysis),
        "RequestApproval": (models.RequestApprovalEvent, None),  # resumed by SendTaskSuccess, not its result
        "WriteReport": (models.WriteReportEvent, models.Report),
        "FinalizeWorkflow": (models.FinalizeEvent, models.FinalizeResult),
        "RecordRejection": (models.FinalizeEvent, models.FinalizeResult),
    }


#: Result fields a ResultSelector leaves out on purpose: model tokens stay in the history
#: (README, "The local console": cost).
DROPPED_RESULT_FIELDS = {"usage"}
#: States whose ResultSelector keeps only what the next states need.
PARTIAL_RESULT_SELECTORS = {"RecordRejection": {"report", "report_url", "quality"}}


def test_every_lambda_task_s_payload_and_result_selector_name_fields_of_its_models():
    lambda_tasks = {n for n, s in DEFINITION["States"].items() if s.get("Resource", "").startswith("arn:aws:states:::lambda:invoke")}
    models = _task_models()
    assert lambda_tasks == set(models)
    for name, (event_model, result_model) in models.items():
        state = DEFINITION["States"][name]
        sent = {key.removesuffix(".$") for key in state["Parameters"]["Payload"]}
        assert sent <= set(event_model.model_fields), f"{name}: Payload fields {sent - set(event_model.model_fields)} are not in {event_model.__name__}"
        if result_model is None:
            assert "ResultSelector" not in state, name
            continue
        selector = state["ResultSelector"]
        # each selected field is the result's field of the same name ...
        assert all(path == f"$.Payload.{key.removesuffix('.$')}" for key, path in selector.items()), name
        # ... and every field of the result is selected, but those dropped on purpose: a new
        # result field (the quality check) cannot be lost in state data unnoticed
        expected = set(result_model.model_fields) - DROPPED_RESULT_FIELDS - PARTIAL_RESULT_SELECTORS.get(name, set())
        assert {key.removesuffix(".$") for key in selector} == expected, name


def test_the_quality_checks_travel_to_the_approval_and_the_workflow_record():
    states = DEFINITION["States"]
    # Given AnalyzeResearch's and WriteReport's results keep their quality check in state data
    assert states["AnalyzeResearch"]["ResultPath"] == "$.analysis"
    assert states["AnalyzeResearch"]["ResultSelector"]["quality.$"] == "$.Payload.quality"
    assert states["WriteReport"]["ResultPath"] == "$.report"
    assert states["WriteReport"]["ResultSelector"]["quality.$"] == "$.Payload.quality"
    # Then RequestApproval gets the analysis (with its check) and the research it was made from
    approval = states["RequestApproval"]["Parameters"]["Payload"]
    assert approval["analysis.$"] == "$.analysis" and approval["research.$"] == "$.research.document"
    # And FinalizeWorkflow records the report's check and puts it in the execution output
    assert states["FinalizeWorkflow"]["Parameters"]["Payload"]["quality.$"] == "$.report.quality"
    assert states["FinalizeWorkflow"]["ResultSelector"]["quality.$"] == "$.Payload.quality"


def test_every_mocked_lambda_result_is_a_valid_result_of_its_state():
    # Given the MockConfigFile's test cases
    mock = json.loads((ROOT / "statemachines" / "test" / "MockConfigFile.json").read_text())
    responses = mock["MockedResponses"]
    checked = 0
    for mapping in mock["StateMachines"]["relay-research-report"]["TestCases"].values():
        for state, response in mapping.items():
            result_model = _task_models().get(state, (None, None))[1]
            if result_model is None:
                continue
            for answer in responses[response].values():
                if "Return" in answer:
                    # Then each mocked Return's Payload is what the real handler returns
                    result_model.model_validate(answer["Return"]["Payload"])
                    checked += 1
    assert checked > 0
