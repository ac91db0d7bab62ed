"""The Step Functions Local MockConfigFile, wired into moto's engine.

moto ships the Step Functions Local mocking engine (``moto.stepfunctions.parser.mocking``)
but never loads a file, and StartExecution ignores the ``arn#TestCase`` suffix. Here:

- :class:`MockConfigFile` / :func:`load_mock_config`: the file format (AWS Step Functions
  Developer Guide, "Using mocked service integrations for testing in Step Functions Local");
- ``mock-config-test-cases``: ``StartExecution`` of ``arn#TestCase`` reads the test case
  from the file named by ``SFN_MOCK_CONFIG`` and hands it to the execution's worker;
- ``mocked-response-numbering``: responses are numbered by invocation of the state, as
  Step Functions Local numbers them (moto uses the state's RetryCount);
- ``mocked-states-error-throw``: a mocked ``Throw`` of a ``States.*`` error works.
"""

from __future__ import annotations

import inspect
import json
import os
import threading
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, RootModel

from relay.local.moto_patches.framework import (
    _API,
    _ENVIRONMENT,
    _ERRORS,
    _EXECUTION,
    _P,
    _WORKER,
    MotoPatchError,
    Patch,
    Target,
)

_lock = threading.Lock()
_pending_test_case = threading.local()


class _Throw(BaseModel):
    model_config = ConfigDict(extra="forbid")
    Error: str
    Cause: str = ""


class _MockedResponse(BaseModel):
    """One entry of a mocked response: ``{"Return": …}`` or ``{"Throw": {Error, Cause}}``."""

    model_config = ConfigDict(extra="forbid")
    Return: RootModel[Any] | None = None
    Throw: _Throw | None = None

    def model_post_init(self, _context: Any) -> None:
        if (self.Return is None) == (self.Throw is None):
            raise ValueError("a mocked response needs exactly one of Return or Throw")


class _TestCase(RootModel[dict[str, str]]):
    """``{StateName: MockedResponseName}``."""


class _StateMachineCases(BaseModel):
    model_config = ConfigDict(extra="forbid")
    TestCases: dict[str, _TestCase]


class MockConfigFile(BaseModel):
    """The Step Functions Local MockConfigFile: ``StateMachines`` → ``TestCases`` →
    ``{state: mocked response name}``, and ``MockedResponses`` → ``{"0" | "1-2": response}``.

    Source: AWS Step Functions Developer Guide, "Using mocked service integrations
    for testing in Step Functions Local".
    """

    model_config = ConfigDict(extra="forbid")
    StateMachines: dict[str, _StateMachineCases]
    MockedResponses: dict[str, dict[str, _MockedResponse]] = Field(default_factory=dict)


def load_mock_config(path: str | os.PathLike[str]) -> MockConfigFile:
    """Parse a MockConfigFile. Raises ``pydantic.ValidationError`` naming the bad field."""
    return MockConfigFile.model_validate(json.loads(Path(path).read_text()))


def _load_test_case(state_machine_name: str, test_case_name: str) -> Any:
    from moto.stepfunctions.parser.mocking import mock_config

    path = os.environ.get("SFN_MOCK_CONFIG")
    if not path:
        raise MotoPatchError(f"test case {test_case_name!r} requested but SFN_MOCK_CONFIG is not set")
    raw = load_mock_config(path)
    return mock_config._mock_test_case_from_raw(  # noqa: SLF001 - the engine moto ships
        state_machine_name=state_machine_name, test_case_name=test_case_name, raw_mock_config=raw
    )


_case_locks: dict[int, threading.Lock] = {}


def _lock_for(case: Any) -> threading.Lock:
    with _lock:
        return _case_locks.setdefault(id(case), threading.Lock())



# ----- the builders: moto's originals in, replacements out (one per Patch) -----------------------
def _worker_takes_mock_test_case() -> str | None:
    from moto.stepfunctions.parser.backend.execution_worker import ExecutionWorker

    if "mock_test_case" not in inspect.signature(ExecutionWorker.__init__).parameters:
        return "ExecutionWorker.__init__ no longer takes mock_test_case"
    return None


def _build_mock_test_cases(original_start: Any, original_worker: Any) -> tuple[Any, ...]:
    """``arn#TestCase``: the test case is read from ``SFN_MOCK_CONFIG`` and handed to the worker."""

    def start_execution(self: Any, state_machine_arn: str, name: Any = None, execution_input: Any = None, trace_header: Any = None) -> Any:
        base_arn, _, test_case_name = state_machine_arn.partition("#")
        if not test_case_name:
            return original_start(self, state_machine_arn, name, execution_input, trace_header)
        machine = self.describe_state_machine(base_arn)
        _pending_test_case.value = _load_test_case(machine.name, test_case_name)
        try:
            return original_start(self, base_arn, name, execution_input, trace_header)
        finally:
            _pending_test_case.value = None

    def _get_start_execution_worker(self: Any) -> Any:
        test_case = getattr(_pending_test_case, "value", None)
        if test_case is None:
            return original_worker(self)
        worker = original_worker(self)
        worker._mock_test_case = test_case
        return worker

    return start_execution, _get_start_execution_worker



def _build_mocked_response_numbering(_original: Any) -> tuple[Any, ...]:
    def get_current_mocked_response(self: Any) -> Any:
        if not self.is_mocked_mode():
            raise RuntimeError("Cannot retrieve mocked response: execution is not operating in mocked mode")
        state_name = self.next_state_name
        case = self.mock_test_case
        responses = case.state_mocked_responses[state_name].mocked_responses
        with _lock_for(case):
            counters = case.__dict__.setdefault("_relay_invocations", {})
            index = counters.get(state_name, 0)
            counters[state_name] = index + 1
        if index >= len(responses):
            raise RuntimeError(f"No mocked response for state {state_name!r} invocation {index}")
        return responses[index]

    return (get_current_mocked_response,)


def _build_mocked_states_throw(original_throw: Any) -> tuple[Any, ...]:
    from moto.stepfunctions.parser.api import HistoryEventType, TaskFailedEventDetails
    from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import (
        FailureEvent,
        FailureEventException,
    )
    from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name import StatesErrorName
    from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails

    def _eval_mocked_response_throw(env: Any, mocked_response: Any) -> None:
        if not mocked_response.error.startswith("States."):
            return original_throw(env, mocked_response)
        raise FailureEventException(
            failure_event=FailureEvent(
                env=env,
                error_name=StatesErrorName.from_name(mocked_response.error),
                event_type=HistoryEventType.TaskFailed,
                event_details=EventDetails(  # type: ignore[typeddict-item]
                    taskFailedEventDetails=TaskFailedEventDetails(error=mocked_response.error, cause=mocked_response.cause)
                ),
            )
        )

    return (_eval_mocked_response_throw,)



PATCHES: tuple[Patch, ...] = (
    Patch(
        name="mock-config-test-cases",
        corrects=(
            "moto ships the Step Functions Local MockConfigFile engine but never loads a file, and "
            "StartExecution ignores the arn#TestCase suffix."
        ),
        targets=(
            Target(_P + "models", "StepFunctionsParserBackend.start_execution"),
            Target(_EXECUTION, "Execution._get_start_execution_worker"),
        ),
        uses=(Target(_P + "mocking.mock_config", "_mock_test_case_from_raw"), Target(_WORKER, "ExecutionWorker.__init__")),
        check=_worker_takes_mock_test_case,
        build=_build_mock_test_cases,
    ),
    Patch(
        name="mocked-response-numbering",
        corrects=(
            "moto picks a mocked response by the state's RetryCount, so a state entered again replays "
            "response 0, where Step Functions Local numbers responses by invocation of the state."
        ),
        targets=(Target(_ENVIRONMENT, "Environment.get_current_mocked_response"),),
        uses=(Target(_ENVIRONMENT, "Environment.is_mocked_mode"),),
        build=_build_mocked_response_numbering,
    ),
    Patch(
        name="mocked-states-error-throw",
        corrects=(
            "a mocked Throw of a States.* error (such as States.Timeout) crashes with States.Runtime, "
            "because moto builds every thrown name as a custom error and custom names may not start with States."
        ),
        targets=(Target(_P + "asl.component.state.exec.state_task.mock_eval_utils", "_eval_mocked_response_throw"),),
        uses=(
            Target(_API, "TaskFailedEventDetails"),
            Target(_ERRORS + "states_error_name", "StatesErrorName.from_name"),
        ),
        build=_build_mocked_states_throw,
    ),
)
