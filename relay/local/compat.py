"""Close the gaps in moto's Step Functions interpreter that Relay's ASL file hits.

moto 5.2.x ships a port of LocalStack's ASL interpreter. Run under
``mock_aws(config={"stepfunctions": {"execute_state_machine": True}})`` it executes a
definition for real, but (measured on moto 5.2.5, ARCHITECTURE §4):

1. ``aws-sdk:bedrockagentcore:*`` tasks fail: the SFN service name is not mapped to
   the boto name ``bedrock-agentcore``, PascalCase ``Parameters`` are not converted
   to boto member names, blob strings are JSON-quoted again, and the streaming
   ``response`` blob is not read. Fixed by mapping the name and implementing
   ``_normalise_parameters``/``_normalise_response`` with moto's own
   ``_to_boto_request``/``_from_boto_response`` helpers; aws-sdk errors are named
   ``BedrockAgentCore.<Exception>`` as Step Functions names them.
2. The Step Functions Local MockConfigFile engine is shipped but not wired: the
   loader returns None and ``start_execution`` ignores ``arn#TestCase``. Wired here:
   the file named by ``SFN_MOCK_CONFIG`` (the variable Step Functions Local reads)
   is parsed and the test case is handed to the execution worker.
3. ``SendTaskFailure`` drops ``cause`` in the response layer. Passed through.
4. A Distributed Map never fails on item failures: ``ToleratedFailurePercentage`` /
   ``ToleratedFailureCount`` are parsed but not enforced. Enforced here with the
   error Step Functions raises, ``States.ExceedToleratedFailureThreshold``.
5. Mocked responses are picked by the state's ``RetryCount``, so a state entered
   again (the revision loop, Map iterations) replays response 0. Step Functions
   Local numbers responses by invocation of the state within the execution
   (retries included); :func:`install` counts invocations the same way.
6. A mocked ``Throw`` of a ``States.*`` error (``States.Timeout`` for an approval that
   times out) crashes with ``States.Runtime``: the mock engine builds every thrown
   name as a custom error, and custom names may not start with ``States.``. Thrown
   ``States.*`` names are built as the predefined errors they are.
7. ``StopExecution`` on an execution waiting for a task token never ends it: the
   waiting callback is not woken, so the execution stays RUNNING. The stop now
   interrupts the execution's callback endpoints, and the interrupted wait does not
   overwrite the stopped state with an error (the history still gains a spurious
   ``TaskTimedOut`` before ``ExecutionAborted``).
8. Retry waits are real seconds (``IntervalSeconds`` ≥ 1). :func:`set_retry_time_scale`
   scales them for tests; the default scale is 1 (faithful).

Known and not patched: heartbeat timeouts surface as ``States.Timeout``; history
ignores paging (``GetExecutionHistory`` returns every event at once); JSONata is
stubbed (Relay's ASL uses JSONPath).

Every patched attribute is checked by :func:`install` before anything is changed;
if moto moves one, :class:`MotoCompatError` names it (``tests/unit/test_compat.py``
fails loudly on an upgrade). The supported range is :data:`SUPPORTED_MOTO`.
"""

from __future__ import annotations

import inspect
import json
import os
import threading
from pathlib import Path
from typing import Any

from packaging.specifiers import SpecifierSet
from packaging.version import Version
from pydantic import BaseModel, ConfigDict, Field, RootModel

#: The moto versions whose internals this module was written against.
SUPPORTED_MOTO = SpecifierSet(">=5.2.5,<5.3")

_installed = False
_lock = threading.Lock()
_retry_scale = 1.0
_pending_test_case = threading.local()


class MotoCompatError(RuntimeError):
    """moto's internals are not what this module patches (an unsupported moto version)."""


# ----- MockConfigFile (Step Functions Local format) ------------------------------------
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
        raise MotoCompatError(f"test case {test_case_name!r} requested but SFN_MOCK_CONFIG is not set")
    raw = load_mock_config(path)
    return mock_config._mock_test_case_from_raw(  # noqa: SLF001 - the engine moto ships
        state_machine_name=state_machine_name, test_case_name=test_case_name, raw_mock_config=raw
    )


_case_locks: dict[int, threading.Lock] = {}


def _lock_for(case: Any) -> threading.Lock:
    with _lock:
        return _case_locks.setdefault(id(case), threading.Lock())


# ----- retry time scale ---------------------------------------------------------------------
class _ScaledTime:
    """Stands in for the ``time`` module inside moto's retrier: ``sleep`` is scaled."""

    def __getattr__(self, name: str) -> Any:
        import time

        return getattr(time, name)

    @staticmethod
    def sleep(seconds: float) -> None:
        import time

        time.sleep(max(0.0, seconds) * _retry_scale)


def set_retry_time_scale(scale: float) -> None:
    """Multiply every Retry wait by ``scale`` (1.0 = real seconds; tests use e.g. 0.01)."""
    global _retry_scale
    if scale < 0:
        raise ValueError("scale: must be >= 0")
    _retry_scale = float(scale)


# ----- install --------------------------------------------------------------------------------
def _require(obj: Any, *names: str) -> None:
    for name in names:
        if not hasattr(obj, name):
            raise MotoCompatError(f"moto internals moved: {getattr(obj, '__name__', obj)}.{name} is gone")


def check_moto_version(version: str | None = None) -> str:
    """Return moto's version, or raise :class:`MotoCompatError` outside :data:`SUPPORTED_MOTO`."""
    import moto

    found = version or moto.__version__
    if Version(found) not in SUPPORTED_MOTO:
        raise MotoCompatError(f"moto {found} is outside the supported range {SUPPORTED_MOTO}; re-check relay/local/compat.py")
    return found


def install() -> None:
    """Apply every patch once (idempotent, thread-safe).

    Raises:
        MotoCompatError: unsupported moto version, or a patched attribute has moved.
    """
    global _installed
    with _lock:
        if _installed:
            return
        check_moto_version()

        from botocore.model import OperationModel
        from botocore.session import get_session
        from moto.stepfunctions import responses as sfn_responses
        from moto.stepfunctions.parser import models as parser_models
        from moto.stepfunctions.parser.api import HistoryEventType, MapRunFailedEventDetails
        from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import (
            FailureEvent,
            FailureEventException,
        )
        from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name import (
            StatesErrorName,
        )
        from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name_type import (
            StatesErrorNameType,
        )
        from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl
        from moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration import (
            distributed_iteration_component as dist,
        )
        from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
            state_task_service as sts,
        )
        from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
            state_task_service_aws_sdk as sdk,
        )
        from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails
        from moto.stepfunctions.parser.backend import execution as execution_mod
        from moto.stepfunctions.parser.mocking import mock_config

        _require(sts.StateTaskService, "_SERVICE_NAME_SFN_TO_BOTO_OVERRIDES", "_to_boto_request", "_from_boto_response")
        _require(sdk, "_SERVICE_ERROR_NAMES")
        _require(sdk.StateTaskServiceAwsSdk, "_normalise_parameters", "_normalise_response", "_get_boto_service_name")
        _require(mock_config, "_mock_test_case_from_raw")
        _require(parser_models.StepFunctionsParserBackend, "start_execution")
        _require(execution_mod.Execution, "_get_start_execution_worker", "_get_start_aws_execution_details")
        _require(sfn_responses.StepFunctionResponse, "send_task_failure")
        _require(dist.DistributedIterationComponent, "_map_run")
        _require(retrier_decl, "time")

        # 1. aws-sdk: bedrockagentcore.
        sts.StateTaskService._SERVICE_NAME_SFN_TO_BOTO_OVERRIDES["bedrockagentcore"] = "bedrock-agentcore"  # type: ignore[index]
        sdk._SERVICE_ERROR_NAMES["bedrockagentcore"] = "BedrockAgentCore"
        session = get_session()

        def _operation(task: Any) -> OperationModel:
            service = session.get_service_model(task._get_boto_service_name())
            action = task.resource.api_action
            return service.operation_model(action[:1].upper() + action[1:])

        def _normalise_parameters(self: Any, parameters: dict, boto_service_name: Any = None, service_action_name: Any = None) -> None:
            self._to_boto_request(parameters, _operation(self).input_shape)

        def _normalise_response(self: Any, response: Any, boto_service_name: Any = None, service_action_name: Any = None) -> None:
            self._from_boto_response(response, _operation(self).output_shape)

        original_value = sts.StateTaskService._to_boto_request_value

        def _to_boto_request_value(self: Any, request_value: Any, value_shape: Any) -> Any:
            if value_shape.type_name == "blob" and isinstance(request_value, str):
                return request_value.encode("utf-8")  # a string blob is sent as its bytes, not re-quoted
            return original_value(self, request_value, value_shape)

        sdk.StateTaskServiceAwsSdk._normalise_parameters = _normalise_parameters  # type: ignore[method-assign]
        sdk.StateTaskServiceAwsSdk._normalise_response = _normalise_response  # type: ignore[method-assign]
        sdk.StateTaskServiceAwsSdk._to_boto_request_value = _to_boto_request_value  # type: ignore[method-assign]

        # 2. MockConfigFile test cases: arn#TestCase.
        original_start = parser_models.StepFunctionsParserBackend.start_execution

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

        original_worker = execution_mod.Execution._get_start_execution_worker

        def _get_start_execution_worker(self: Any) -> Any:
            test_case = getattr(_pending_test_case, "value", None)
            if test_case is None:
                return original_worker(self)
            worker = original_worker(self)
            worker._mock_test_case = test_case  # type: ignore[misc]
            return worker

        parser_models.StepFunctionsParserBackend.start_execution = start_execution  # type: ignore[method-assign]
        execution_mod.Execution._get_start_execution_worker = _get_start_execution_worker  # type: ignore[method-assign]
        from moto.stepfunctions.parser.backend import execution_worker

        if "mock_test_case" not in inspect.signature(execution_worker.ExecutionWorker.__init__).parameters:
            raise MotoCompatError("moto internals moved: ExecutionWorker.__init__ no longer takes mock_test_case")

        # 3. SendTaskFailure keeps its cause.
        def send_task_failure(self: Any) -> Any:
            from moto.core.responses import EmptyResult

            self.stepfunction_backend.send_task_failure(
                self._get_param("taskToken"), error=self._get_param("error"), cause=self._get_param("cause")
            )
            return EmptyResult()

        sfn_responses.StepFunctionResponse.send_task_failure = send_task_failure  # type: ignore[method-assign]

        # 4. Distributed Map tolerated failure threshold.
        original_map_run = dist.DistributedIterationComponent._map_run

        def _map_run(self: Any, env: Any, eval_input: Any) -> None:
            original_map_run(self, env, eval_input)
            record = eval_input.map_run_record
            total = record.item_counter.total.get()
            failed = record.item_counter.failed.get() + record.item_counter.timed_out.get()
            if not total or not failed:
                return
            percentage = record.tolerated_failure_percentage or 0
            count = record.tolerated_failure_count or 0
            if failed > count and failed * 100.0 / total > percentage:
                raise FailureEventException(
                    failure_event=FailureEvent(
                        env=env,
                        error_name=StatesErrorName(typ=StatesErrorNameType.StatesExceedToleratedFailureThreshold),
                        event_type=HistoryEventType.MapRunFailed,
                        event_details=EventDetails(  # type: ignore[typeddict-item]
                            mapRunFailedEventDetails=MapRunFailedEventDetails(
                                error=StatesErrorNameType.StatesExceedToleratedFailureThreshold.to_name(),
                                cause=(
                                    f"{failed} of {total} Map iterations failed, over the tolerated "
                                    f"{percentage}% / {count} items."
                                ),
                            )
                        ),
                    )
                )

        dist.DistributedIterationComponent._map_run = _map_run  # type: ignore[method-assign]

        # 5. Mocked responses numbered by invocation of the state, as Step Functions Local does.
        from moto.stepfunctions.parser.asl.eval import environment as environment_mod

        _require(environment_mod.Environment, "get_current_mocked_response", "is_mocked_mode")

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

        environment_mod.Environment.get_current_mocked_response = get_current_mocked_response  # type: ignore[method-assign]

        # 6. Mocked Throw of a predefined States.* error.
        from moto.stepfunctions.parser.api import TaskFailedEventDetails
        from moto.stepfunctions.parser.asl.component.state.exec.state_task import mock_eval_utils

        _require(mock_eval_utils, "_eval_mocked_response_throw")
        original_throw = mock_eval_utils._eval_mocked_response_throw

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

        mock_eval_utils._eval_mocked_response_throw = _eval_mocked_response_throw

        # 7. StopExecution wakes a task-token wait and ends as ABORTED.
        from moto.stepfunctions.parser.asl.eval.callback import callback as callback_mod
        from moto.stepfunctions.parser.asl.eval.program_state import ProgramStopped

        _require(execution_mod.Execution, "stop")
        _require(environment_mod.Environment, "set_error")
        _require(callback_mod.CallbackEndpoint, "interrupt_all")
        original_stop = execution_mod.Execution.stop
        original_set_error = environment_mod.Environment.set_error

        def stop(self: Any, stop_date: Any, error: Any, cause: Any) -> None:
            original_stop(self, stop_date=stop_date, error=error, cause=cause)
            env = getattr(self.exec_worker, "env", None)
            if env is not None:
                for endpoint in list(env.callback_pool_manager._pool.values()):
                    endpoint.interrupt_all()

        def set_error(self: Any, error: Any) -> None:
            if isinstance(self._program_state, ProgramStopped):
                return
            original_set_error(self, error)

        execution_mod.Execution.stop = stop  # type: ignore[method-assign]
        environment_mod.Environment.set_error = set_error  # type: ignore[method-assign]

        # 8. Retry waits, scaled.
        retrier_decl.time = _ScaledTime()  # type: ignore[assignment]
        _installed = True
