"""Every path through the ASL file with Step Functions Local MockConfigFile test cases.

Each test starts ``stateMachineArn#TestCase`` on the local engine: Task results come
from ``statemachines/test/MockConfigFile.json``, so these tests pin the definition's
routing, Retry and redrive behaviour independently of the handlers. Mocked responses
are numbered by invocation of the state within the execution, redrives included, so
a test case can fail a state once and succeed on the redrive.
"""

from __future__ import annotations

import json

import pytest

from .conftest import entered_states, state_input, unique_name

HAPPY = ["PlanResearch", "ResearchQuestions", "CompileResearch", "AnalyzeResearch", "RequestApproval",
         "ApprovalDecision", "WriteReport", "FinalizeWorkflow"]


def run_case(relay, case: str) -> tuple[dict, list[dict]]:
    arn = relay.start_execution({"topic": "Mocked topic"}, unique_name(case), test_case=case)
    description = relay.wait(arn, timeout=60)
    return description, relay.history(arn)


def test_mock_config_names_every_task_state_of_the_definition():
    # Given the ASL file and the MockConfigFile
    from relay.local.moto_patches import load_mock_config
    from relay.local.runtime import ASL_PATH

    from .conftest import MOCK_CONFIG

    definition = json.loads(ASL_PATH.read_text())
    tasks = {n for n, s in definition["States"].items() if s["Type"] == "Task"}
    tasks |= {n for s in definition["States"].values() if s["Type"] == "Map" for n in s["ItemProcessor"]["States"]}
    config = load_mock_config(MOCK_CONFIG)
    # Then every test case mocks exactly the definition's Task states
    for case, mapping in config.StateMachines["relay-research-report"].TestCases.items():
        assert set(mapping.root) == tasks, case


def test_happy_path_runs_every_state_once_and_outputs_the_report(relay):
    description, history = run_case(relay, "HappyPath")
    assert description["status"] == "SUCCEEDED"
    assert entered_states(history) == HAPPY
    output = json.loads(description["output"])
    assert output["status"] == "COMPLETED" and output["report"]["key"].endswith("report.md")
    # the report's quality check (WriteReport's mocked result) is in the output, through FinalizeWorkflow
    assert output["quality"]["assessment"]["key"].endswith("report.quality.json") and output["quality"]["answered"] == 1
    # and the analysis's check reached RequestApproval with the research document it was made from
    approval = state_input(history, "RequestApproval")  # what the Payload is built from
    assert approval["analysis"]["quality"] is not None and approval["research"]["document"]["key"].endswith("research.json")
    entered = next(i for i, e in enumerate(history) if e.get("stateEnteredEventDetails", {}).get("name") == "RequestApproval")
    scheduled = next(e for e in history[entered:] if e["type"] == "TaskScheduled")
    approval = json.loads(scheduled["taskScheduledEventDetails"]["parameters"])["Payload"]
    assert approval["analysis"]["quality"]["assessment"]["key"].endswith("analysis.quality.json")
    assert approval["research"]["key"].endswith("research.json")


def test_rejection_with_feedback_loops_back_to_analysis_then_approves(relay):
    description, history = run_case(relay, "RevisionThenApproved")
    assert description["status"] == "SUCCEEDED"
    states = entered_states(history)
    assert states == HAPPY[:6] + ["PrepareRevision", "AnalyzeResearch", "RequestApproval", "ApprovalDecision", "WriteReport", "FinalizeWorkflow"]
    revision_input = state_input(history, "PrepareRevision")
    assert revision_input["approval"]["feedback"] == "Cover the failure modes."
    # the second analysis is asked for revision 1 with the reviewer's feedback
    second_analysis = [e for e in history if e["type"] == "TaskStateEntered" and e["stateEnteredEventDetails"]["name"] == "AnalyzeResearch"][1]
    review = json.loads(second_analysis["stateEnteredEventDetails"]["input"])["review"]
    assert review == {"revision": 1, "feedback": "Cover the failure modes."}


def test_rejection_with_no_revisions_left_ends_rejected_as_a_business_outcome(relay):
    description, history = run_case(relay, "RejectedNoRevisionsLeft")
    # a rejection is not a failed execution: the failed-executions alarm stays quiet
    assert description["status"] == "SUCCEEDED"
    assert json.loads(description["output"])["status"] == "REJECTED"
    assert entered_states(history)[-3:] == ["ApprovalDecision", "RecordRejection", "ReportRejected"]
    assert "PrepareRevision" not in entered_states(history)


def test_one_research_branch_failing_is_tolerated(relay):
    description, history = run_case(relay, "BranchFailsWithinTolerance")
    assert description["status"] == "SUCCEEDED"
    compile_input = state_input(history, "CompileResearch")
    # one of three iterations failed: its slot in the Map output is empty
    assert sum(1 for f in compile_input["findings"] if f is None) == 1
    assert len(compile_input["findings"]) == 3


def test_research_branches_failing_beyond_tolerance_fail_the_execution_at_the_map(relay):
    description, history = run_case(relay, "BranchesFailBeyondTolerance")
    assert description["status"] == "FAILED"
    assert description["error"] == "States.ExceedToleratedFailureThreshold"
    assert entered_states(history)[-1] == "ResearchQuestions"
    assert not any(e["type"] == "MapStateExited" for e in history)


def test_throttled_agent_is_retried_then_succeeds(relay):
    description, history = run_case(relay, "AgentThrottledThenSucceeds")
    assert description["status"] == "SUCCEEDED"
    assert entered_states(history) == HAPPY


@pytest.mark.parametrize(
    ("case", "state", "error"),
    [
        ("WriterFails", "WriteReport", "AgentFailed"),
        ("ApprovalTimesOut", "RequestApproval", "States.Timeout"),
        ("InvalidInput", "PlanResearch", "InvalidInput"),
    ],
)
def test_a_failing_task_fails_the_execution_at_that_state(relay, case, state, error):
    description, history = run_case(relay, case)
    assert description["status"] == "FAILED"
    assert description["error"] == error
    # the execution stopped in the failed state: it entered and never exited
    assert entered_states(history)[-1] == state
    assert not any(e["type"].endswith("StateExited") and e["stateExitedEventDetails"]["name"] == state for e in history)
    assert description["redriveStatus"] == "REDRIVABLE"
    # validation errors are never retried: the failing Task was attempted once
    failed_attempts = [e for e in history if e["type"] == "TaskFailed"]
    assert len(failed_attempts) == 1


@pytest.mark.parametrize(
    ("case", "state"),
    [("WriterFailsThenRedriven", "WriteReport"), ("ApprovalTimesOutThenRedriven", "RequestApproval")],
)
def test_mocked_test_cases_keep_counting_across_a_redrive(relay, case, state):
    # Given a test case whose state fails on invocation 0 and succeeds on invocation 1
    arn = relay.start_execution({"topic": "Mocked topic"}, unique_name(case), test_case=case)
    assert relay.wait(arn, timeout=60)["status"] == "FAILED"
    # When the execution is redriven
    relay.redrive(arn)
    description = relay.wait(arn, timeout=60)
    # Then it resumes at the failed state, succeeds, and ran every earlier state once
    assert description["status"] == "SUCCEEDED" and description["redriveCount"] == 1
    history = relay.history(arn)
    redriven = next(i for i, e in enumerate(history) if e["type"] == "ExecutionRedriven")
    after = entered_states(history[redriven:])
    assert after[0] == state
    states = entered_states(history)
    assert states.count(state) == 2
    assert all(states.count(s) == 1 for s in HAPPY if s != state)


@pytest.mark.parametrize("case", ["ResearcherHeartbeatTimesOutThenAsked", "ResearcherModelThrottledThenSucceeds"])
def test_a_researcher_callback_error_the_retry_names_is_asked_again_then_succeeds(relay, case):
    # Given AskResearcher's first attempt fails by callback (a heartbeat timeout, or the
    # researcher's SendTaskFailure Relay.ModelThrottled) and its second returns a Finding
    description, history = run_case(relay, case)
    # Then its Retry matched the name exactly and the workflow went on as on the happy path
    assert description["status"] == "SUCCEEDED", description
    assert entered_states(history) == HAPPY
    assert state_input(history, "CompileResearch")["findings"][0]["summary"] == "Mocked finding."


def test_a_researcher_that_finds_no_document_is_not_asked_again_and_fails_at_the_map(relay):
    description, history = run_case(relay, "ResearcherFindsNoDocument")
    assert description["status"] == "FAILED"
    assert description["error"] == "States.ExceedToleratedFailureThreshold"
    # the researcher's own error name reaches the Map's cause (what the CLI and the record show)
    assert "Relay.NoMatchingDocument" in description["cause"]
