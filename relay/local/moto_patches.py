"""Close the gaps in moto's Step Functions interpreter that Relay's ASL file hits.

moto 5.2.x ships a port of LocalStack's ASL interpreter. Run under
``mock_aws(config={"stepfunctions": {"execute_state_machine": True}})`` it executes a
definition for real, but (measured on moto 5.2.5):

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
   ``TaskTimedOut`` before ``ExecutionAborted``). StopExecution also drops its
   ``error`` and ``cause``: passed through to ``ExecutionAborted`` and DescribeExecution.
8. Retry waits are real seconds (``IntervalSeconds`` ≥ 1). :func:`set_retry_time_scale`
   scales them for tests; the default scale is 1 (faithful).

9. ``RedriveExecution`` is not implemented (the action is missing from the response
   layer). Implemented here, following the Step Functions developer guide,
   "Restarting state machine executions with redrive": only FAILED, TIMED_OUT or
   ABORTED Standard executions that stopped less than 14 days ago and were redriven
   fewer than 1,000 times (else ``ExecutionNotRedrivable``); the same execution ARN
   and history, with an ``ExecutionRedriven`` event; the execution resumes at the
   last state entered with no matching exit (a Task or Map re-runs, a Fail state
   fails again) with the input that state was given; ``redriveCount``/``redriveDate``
   in DescribeExecution and ``$$.Execution.RedriveCount``/``RedriveTime`` in the
   context object (0 before any redrive). A redrive evaluates in a fresh environment
   that carries the history over, so a thread of the stopped attempt that is still
   returning from a call can never advance the redriven one.
10. A redriven Distributed Map re-runs only the iterations that did not succeed: each
   succeeded iteration's output is kept per execution, Map state and item index, and
   replayed on the redrive. A failed iteration's error and cause are kept too, and the
   tolerated-failure check (5) names the first one in the ``MapRunFailed`` cause.
11. ``GetExecutionHistory`` ignores ``maxResults``, ``nextToken`` and ``reverseOrder``.
   Paged here (the token is an opaque offset).
12. Execution status changes are not published (EventBridge's "Step Functions
   Execution Status Change"). :func:`add_status_listener` receives the same event
   shape when an execution starts, is redriven, or stops.

13. Everything lives in memory. :func:`add_persistence` receives every change as it
   happens — S3 objects put or deleted, DynamoDB items written, history events added
   to an execution, execution status changes, kept Map iterations — so the local
   runtime can write its data folder through (``relay.local.durable``), and
   :func:`restore_execution` puts an execution read back from disk into the engine,
   redrivable like any other.

14. Speed: a boto3 client per Task, a parse of the whole definition per execution and
   a jsonpath-ng parser per path evaluated. Cached (:func:`_install_speedups`); no
   behaviour changes.

Known and not patched: heartbeat timeouts surface as ``States.Timeout``; JSONata is
stubbed (Relay's ASL uses JSONPath); list_executions has no ``redriveFilter``.

Every patched attribute is checked by :func:`install` before anything is changed;
if moto moves one, :class:`MotoCompatError` names it (``tests/unit/test_compat.py``
fails loudly on an upgrade). The supported range is :data:`SUPPORTED_MOTO`.
"""

from __future__ import annotations

import inspect
import json
import os
import sys
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
        _require(sfn_responses.StepFunctionResponse, "send_task_failure", "stop_execution")
        _require(dist.DistributedIterationComponent, "_map_run")
        _require(retrier_decl, "time")
        from moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration.itemprocessor import (
            distributed_item_processor_worker as item_worker,
        )
        from moto.stepfunctions.parser.asl.eval.event import event_manager as event_manager_mod
        from moto.stepfunctions.parser.backend import execution_worker as execution_worker_mod

        _require(item_worker.DistributedItemProcessorWorker, "_eval_job")
        _require(execution_worker_mod.ExecutionWorker, "_get_evaluation_environment", "_get_evaluation_entrypoint")
        _require(execution_mod.BaseExecutionWorkerCommunication, "terminated")
        _require(execution_mod.Execution, "start")
        _require(sfn_responses.StepFunctionResponse, "describe_execution", "get_execution_history", "list_executions")
        _require(event_manager_mod.EventIdGenerator, "get")
        from moto.dynamodb import models as dynamodb_models
        from moto.s3 import models as s3_models

        _require(s3_models.S3Backend, "put_object", "delete_object")
        _require(dynamodb_models.DynamoDBBackend, "put_item", "update_item", "delete_item", "get_item", "get_table")
        _require(event_manager_mod.EventManager, "add_event", "get_event_history")
        from moto.stepfunctions.parser.asl.utils import boto_client as boto_client_mod
        from moto.stepfunctions.parser.asl.utils import json_path as json_path_mod

        _require(boto_client_mod, "boto_client_for", "botocore_stubber")
        _require(json_path_mod, "parse")
        if hasattr(sfn_responses.StepFunctionResponse, "redrive_execution"):
            raise MotoCompatError("moto now implements RedriveExecution: drop patch 9 of relay/local/compat.py")

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
                                    f"{percentage}% / {count} items." + _first_failure(record)
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
            self.error, self.cause = error or None, cause or None
            env = getattr(self.exec_worker, "env", None)
            if env is not None:
                for endpoint in list(env.callback_pool_manager._pool.values()):
                    endpoint.interrupt_all()

        def set_error(self: Any, error: Any) -> None:
            if isinstance(self._program_state, ProgramStopped):
                return
            original_set_error(self, error)

        execution_mod.Execution.stop = stop  # type: ignore[method-assign]

        def stop_execution(self: Any) -> Any:
            from datetime import UTC, datetime

            from moto.core.responses import ActionResult

            execution = self.stepfunction_backend.describe_execution(self._get_param("executionArn"))
            if _status_of(execution) == "RUNNING":  # StopExecution of a stopped execution changes nothing
                execution.stop(stop_date=datetime.now(UTC), error=self._get_param("error"), cause=self._get_param("cause"))
            return ActionResult({"stopDate": execution.stop_date or datetime.now(UTC)})

        sfn_responses.StepFunctionResponse.stop_execution = stop_execution  # type: ignore[method-assign]
        environment_mod.Environment.set_error = set_error  # type: ignore[method-assign]

        # 8. Retry waits, scaled.
        retrier_decl.time = _ScaledTime()  # type: ignore[assignment]

        # 9-12. Redrive, Map memo, history paging, status-change events.
        _install_redrive(execution_mod, parser_models, sfn_responses, execution_worker, item_worker)
        # 13. Write-through hooks.
        _install_persistence(s3_models, dynamodb_models, event_manager_mod)
        # 14. Speed-ups that change no behaviour.
        _install_speedups()
        _installed = True


# ----- 9-12: redrive, Map memo, history paging, status-change events ---------------------------
#: Redrive limits (Step Functions developer guide, "Restarting state machine executions with
#: redrive"): executions that stopped less than 14 days ago, at most 1,000 redrives, and a
#: history below the 25,000-event quota (one event is needed for ``ExecutionRedriven``).
REDRIVE_WINDOW_SECONDS = 14 * 24 * 3600
MAX_REDRIVES = 1000
MAX_HISTORY_EVENTS = 25_000
REDRIVABLE_STATUSES = frozenset({"FAILED", "TIMED_OUT", "ABORTED"})
#: The EventBridge ``detail-type`` of execution status changes (Step Functions developer
#: guide, "Automating Step Functions event delivery with EventBridge").
STATUS_CHANGE_DETAIL_TYPE = "Step Functions Execution Status Change"

_redrive_lock = threading.Lock()
#: Succeeded Distributed Map iterations: (execution ARN, Map state, item index) → (input, output).
_map_memo: dict[tuple[str, str, int], tuple[str, Any]] = {}
_memo_lock = threading.Lock()
_status_listeners: list[Any] = []
_persistence: list[Any] = []


def add_persistence(hook: Any) -> None:
    """Receive every change of the in-memory AWS state (patch 13). ``hook`` has the
    methods ``object_put(bucket, key, data)``, ``object_deleted(bucket, key)``,
    ``item_changed(table, key, item_or_None)`` (DynamoDB JSON), ``history_changed(arn,
    events)``, ``execution_changed(execution, status_or_None)`` and
    ``memo_changed(arn, entries)``. Calls are made on the engine's threads while the
    change's lock is held, so one object's writes arrive in order."""
    with _lock:
        _persistence.append(hook)


def remove_persistence(hook: Any) -> None:
    with _lock:
        if hook in _persistence:
            _persistence.remove(hook)


def _persistence_hooks() -> list[Any]:
    with _lock:
        return list(_persistence)


def add_status_listener(listener: Any) -> None:
    """Call ``listener(event)`` for every execution status change, with the event
    EventBridge delivers: ``{"detail-type": "Step Functions Execution Status Change",
    "source": "aws.states", "detail": {executionArn, stateMachineArn, name, status,
    startDate, stopDate (epoch ms), input, output, error, cause, redriveCount, …}}``.
    Listeners run on the engine's threads: they must return at once (queue the work)."""
    with _lock:
        _status_listeners.append(listener)


def remove_status_listener(listener: Any) -> None:
    with _lock:
        if listener in _status_listeners:
            _status_listeners.remove(listener)


def _status_of(execution: Any) -> str:
    status = getattr(execution, "exec_status", None) or execution.status
    return str(getattr(status, "value", status))


def _epoch_ms(value: Any) -> int | None:
    return int(value.timestamp() * 1000) if value is not None else None


def status_change_event(execution: Any) -> dict[str, Any]:
    """The EventBridge event for ``execution``'s current status (see :func:`add_status_listener`)."""
    import uuid
    from datetime import UTC, datetime

    status = _status_of(execution) if execution.exec_status is not None else "RUNNING"
    count = int(getattr(execution, "redrive_count", 0))
    detail: dict[str, Any] = {
        "executionArn": execution.exec_arn,
        "stateMachineArn": execution.state_machine_arn,
        "name": execution.name,
        "status": status,
        "startDate": _epoch_ms(execution.start_date),
        "stopDate": _epoch_ms(execution.stop_date) if status != "RUNNING" else None,
        "input": execution.execution_input,
        "inputDetails": {"included": True},
        "output": json.dumps(execution.output) if status == "SUCCEEDED" and execution.output is not None else None,
        "outputDetails": {"included": True} if status == "SUCCEEDED" else None,
        "error": execution.error,
        "cause": execution.cause,
        "redriveCount": count,
        "redriveDate": _epoch_ms(getattr(execution, "redrive_date", None)),
        "redriveStatus": "REDRIVABLE" if status in REDRIVABLE_STATUSES else "NOT_REDRIVABLE",
        "redriveStatusReason": None if status in REDRIVABLE_STATUSES else f"Execution is {status}",
    }
    arn = execution.exec_arn.split(":")
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": STATUS_CHANGE_DETAIL_TYPE,
        "source": "aws.states",
        "account": arn[4],
        "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": arn[3],
        "resources": [execution.exec_arn],
        "detail": detail,
    }


def _publish(execution: Any, status: str | None = None) -> None:
    for hook in _persistence_hooks():
        hook.execution_changed(execution, status)
    with _lock:
        listeners = list(_status_listeners)
    if not listeners:
        return
    event = status_change_event(execution)
    if status is not None:
        event["detail"]["status"] = status
    for listener in listeners:
        listener(event)


def resume_point(events: list[dict[str, Any]], definition: dict[str, Any]) -> tuple[str, Any] | None:
    """Where a redrive resumes: ``(state name, state input)``.

    The last top-level state with a ``…StateEntered`` event and no matching
    ``…StateExited`` (events inside inline Map or Parallel iterations are skipped), with
    the input its ``…StateEntered`` event recorded. If every entered state exited (the
    execution stopped between two states), the ``Next`` of the last exited state with
    its output; a Choice is re-entered with its input. ``None``: nothing to resume (the
    last state ended the execution).
    """
    from relay_core.history import open_state

    state = open_state(events)
    if state is not None:
        return state.name, state.input
    last_exit: tuple[str, Any, Any] | None = None
    entered_input: dict[str, Any] = {}
    for event in events:
        kind = str(event.get("type", ""))
        if kind.endswith("StateEntered"):
            details = event["stateEnteredEventDetails"]
            entered_input[details["name"]] = json.loads(details.get("input") or "null")
        elif kind.endswith("StateExited"):
            details = event["stateExitedEventDetails"]
            last_exit = (details["name"], json.loads(details.get("output") or "null"), entered_input.get(details["name"]))
    if last_exit is None:
        return None
    name, output, state_input = last_exit
    spec = definition["States"].get(name, {})
    if spec.get("Type") == "Choice":
        return name, state_input
    if spec.get("Next"):
        return str(spec["Next"]), output
    return None


def _not_redrivable(message: str) -> Exception:
    from moto.core.exceptions import AWSError

    class ExecutionNotRedrivable(AWSError):
        TYPE = "ExecutionNotRedrivable"
        STATUS = 400

    return ExecutionNotRedrivable(message)


def redrive(execution: Any, now: Any = None) -> Any:
    """RedriveExecution of a moto parser ``Execution``; returns the redrive date.

    Raises:
        ExecutionNotRedrivable: the execution breaks one of the redrive rules (the
            message names the rule).
    """
    from datetime import UTC, datetime, timedelta

    from moto.stepfunctions.parser.api import ExecutionStatus, HistoryEventType, StateMachineType
    from moto.stepfunctions.parser.asl.component.eval_component import EvalComponent
    from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails
    from moto.stepfunctions.parser.asl.eval.event.event_manager import EventHistoryContext, EventManager

    now = now or datetime.now(UTC)
    with _redrive_lock:
        status = _status_of(execution)
        if status not in REDRIVABLE_STATUSES:
            raise _not_redrivable(
                f"Execution {execution.exec_arn} is {status}: only FAILED, TIMED_OUT or ABORTED executions can be redriven"
            )
        if execution.sm_type != StateMachineType.STANDARD:
            raise _not_redrivable("Express workflow executions cannot be redriven")
        if execution.stop_date is not None and now - execution.stop_date > timedelta(seconds=REDRIVE_WINDOW_SECONDS):
            raise _not_redrivable("the execution stopped more than 14 days ago")
        count = int(getattr(execution, "redrive_count", 0))
        if count >= MAX_REDRIVES:
            raise _not_redrivable(f"the execution was already redriven {MAX_REDRIVES} times")
        worker = execution.exec_worker
        old_env = worker.env
        events = list(old_env.event_manager.get_event_history())
        if len(events) >= MAX_HISTORY_EVENTS - 1:
            raise _not_redrivable("the execution history has reached 25,000 events")
        definition = json.loads(execution.state_machine.definition)
        point = resume_point(events, definition)
        if point is None and not any(str(e.get("type", "")).endswith("StateEntered") for e in events):
            point = (str(definition["StartAt"]), execution.input_data)  # failed before its first state
        if point is None:
            raise _not_redrivable("the execution has no state left to run")
        state_name, state_input = point

        env = worker._get_evaluation_environment()
        manager = EventManager(cloud_watch_logging_session=worker._cloud_watch_logging_session)
        manager._history_event_list.extend(events)
        last_id = max((int(e.get("id", 0)) for e in events), default=0)
        manager._event_id_gen._next_id = last_id + 1
        manager._relay_execution = execution.exec_arn  # type: ignore[attr-defined]
        env.event_manager = manager
        env.event_history_context = EventHistoryContext(previous_event_id=last_id)
        execution_data = env.states.context_object.context_object_data["Execution"]
        execution_data["RedriveCount"] = count + 1
        execution_data["RedriveTime"] = now.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
        env.next_state_name = state_name
        env.states.reset(state_input)

        execution.redrive_count = count + 1
        execution.redrive_date = now
        execution.exec_status = ExecutionStatus.RUNNING
        execution.stop_date = None
        execution.error = None
        execution.cause = None
        execution.output = None
        worker.env = env
        env.event_manager.add_event(
            context=env.event_history_context,
            event_type=HistoryEventType.ExecutionRedriven,
            event_details=EventDetails(executionRedrivenEventDetails={"redriveCount": count + 1}),  # type: ignore[typeddict-item]
        )

        def evaluate() -> None:
            program = worker._get_evaluation_entrypoint()
            timeout = program.timeout_seconds.timeout_seconds if program.timeout_seconds else None
            inner = threading.Thread(target=EvalComponent.eval, args=(program, env), daemon=True)
            inner.start()
            inner.join(timeout=timeout)
            if inner.is_alive():
                env.set_timed_out()
            worker._execution_communication.terminated()

        _publish(execution)
        threading.Thread(target=evaluate, name=f"redrive-{execution.name}", daemon=True).start()
    return now


def _first_failure(record: Any) -> str:
    """`` First failed iteration (item N): <error>: <cause>`` from patch 10's notes, or ``""``."""
    from relay_core.history import short_cause

    with _lock:
        failures = sorted(record.__dict__.get("_relay_failures", []))
    if not failures:
        return ""
    index, error, cause = failures[0]
    return f" First failed iteration (item {index}): {error}: {short_cause(cause)}"[:2000]


def _memo_key(env: Any, job: Any) -> tuple[str, str, int]:
    context = env.states.context_object.context_object_data
    return (str(context["Execution"]["Id"]), str((context.get("State") or {}).get("Name", "")), int(job.job_index))


def memo_entries(execution_arn: str) -> list[list[Any]]:
    """The kept Map iterations of an execution: ``[[state, index, input fingerprint, output], …]``."""
    with _memo_lock:
        return [[k[1], k[2], v[0], v[1]] for k, v in _map_memo.items() if k[0] == execution_arn]


def forget_executions(prefix: str) -> None:
    """Drop the kept Map iterations of every execution whose ARN starts with ``prefix``
    (a runtime that stops; its durable store keeps them on disk)."""
    with _memo_lock:
        for key in [k for k in _map_memo if k[0].startswith(prefix)]:
            del _map_memo[key]


def _install_redrive(execution_mod: Any, parser_models: Any, sfn_responses: Any, worker_mod: Any, item_worker: Any) -> None:
    """Patches 9-12 (targets already checked by :func:`install`)."""
    from moto.stepfunctions.parser.asl.eval.program_state import ProgramEnded, ProgramError

    # 9. RedriveExecution; RedriveCount in the context object and DescribeExecution.
    def redrive_execution(self: Any, execution_arn: str, client_token: Any = None) -> Any:
        return redrive(self.describe_execution(execution_arn))

    parser_models.StepFunctionsParserBackend.redrive_execution = redrive_execution  # type: ignore[attr-defined]

    def redrive_execution_response(self: Any) -> Any:
        from moto.core.responses import ActionResult

        date = self.stepfunction_backend.redrive_execution(self._get_param("executionArn"), self._get_param("clientToken"))
        return ActionResult({"redriveDate": date})

    sfn_responses.StepFunctionResponse.redrive_execution = redrive_execution_response  # type: ignore[attr-defined]

    original_describe = sfn_responses.StepFunctionResponse.describe_execution

    def describe_execution(self: Any) -> Any:
        result = original_describe(self)
        execution = self.stepfunction_backend.describe_execution(self._get_param("executionArn"))
        body = result.result if hasattr(result, "result") else None
        if isinstance(body, dict) and hasattr(execution, "exec_worker"):  # the interpreter's executions only
            status = _status_of(execution)
            body["redriveCount"] = int(getattr(execution, "redrive_count", 0))
            if getattr(execution, "redrive_date", None) is not None:
                body["redriveDate"] = execution.redrive_date
            body["redriveStatus"] = "REDRIVABLE" if status in REDRIVABLE_STATUSES else "NOT_REDRIVABLE"
            if status not in REDRIVABLE_STATUSES:
                body["redriveStatusReason"] = f"Execution is {status}"
            if status == "TIMED_OUT" and execution.stop_date is not None:
                body["stopDate"] = execution.stop_date
        return result

    sfn_responses.StepFunctionResponse.describe_execution = describe_execution  # type: ignore[method-assign]

    original_environment = worker_mod.ExecutionWorker._get_evaluation_environment

    def _get_evaluation_environment(self: Any) -> Any:
        env = original_environment(self)
        execution_data = env.states.context_object.context_object_data["Execution"]
        execution_data.setdefault("RedriveCount", 0)
        env.event_manager._relay_execution = execution_data["Id"]  # the top-level history (patch 13)
        return env

    worker_mod.ExecutionWorker._get_evaluation_environment = _get_evaluation_environment  # type: ignore[method-assign]

    # 10. Distributed Map: replay succeeded iterations on a redrive, keep failures' causes.
    original_eval_job = item_worker.DistributedItemProcessorWorker._eval_job

    def _eval_job(self: Any, env: Any, job: Any) -> None:
        key = _memo_key(env, job)
        fingerprint = json.dumps(job.job_input, sort_keys=True, default=str)
        with _memo_lock:
            kept = _map_memo.get(key)
        record = self._map_run_record
        if kept is not None and kept[0] == fingerprint:
            for counter in (record.item_counter, record.execution_counter):
                counter.total.count()
                counter.succeeded.count()
                counter.results_written.count()
            job.job_output = json.loads(json.dumps(kept[1]))
            return
        original_eval_job(self, env, job)
        state = env.program_state()
        if isinstance(state, ProgramEnded):
            with _memo_lock:
                _map_memo[key] = (fingerprint, job.job_output)
            hooks = _persistence_hooks()
            if hooks:
                with _persist_lock:  # one writer at a time, each with every entry kept so far
                    entries = memo_entries(key[0])
                    for hook in hooks:
                        hook.memo_changed(key[0], entries)
        elif isinstance(state, ProgramError):
            error = state.error or {}
            with _lock:
                record.__dict__.setdefault("_relay_failures", []).append(
                    (int(job.job_index), str(error.get("error", "")), str(error.get("cause", "")))
                )

    item_worker.DistributedItemProcessorWorker._eval_job = _eval_job  # type: ignore[method-assign]

    # ListExecutions by mapRunArn: the local Map runs iterations in-process, not as child
    # executions, so there are none to list (the MapRunFailed cause names the first failure).
    original_list = sfn_responses.StepFunctionResponse.list_executions

    def list_executions(self: Any) -> Any:
        from moto.core.responses import ActionResult

        if self._get_param("mapRunArn") and not self._get_param("stateMachineArn"):
            return ActionResult({"executions": []})
        return original_list(self)

    sfn_responses.StepFunctionResponse.list_executions = list_executions  # type: ignore[method-assign]

    # 11. GetExecutionHistory paging.
    def get_execution_history(self: Any) -> Any:
        import base64

        from moto.core.responses import ActionResult

        history = self.stepfunction_backend.get_execution_history(self._get_param("executionArn"))
        events = list(history.get("events", []))
        if self._get_param("reverseOrder"):
            events.reverse()
        token = self._get_param("nextToken")
        try:
            start = int(base64.urlsafe_b64decode(token.encode()).decode()) if token else 0
        except ValueError:
            from moto.stepfunctions.exceptions import AWSError

            raise AWSError("nextToken: not a token this API issued", "InvalidToken") from None
        size = int(self._get_param("maxResults") or 100) or 100
        page = events[start : start + size]
        body: dict[str, Any] = {"events": page}
        if start + size < len(events):
            body["nextToken"] = base64.urlsafe_b64encode(str(start + size).encode()).decode()
        return ActionResult(body)

    sfn_responses.StepFunctionResponse.get_execution_history = get_execution_history  # type: ignore[method-assign]

    # 12. Status-change events.
    original_terminated = execution_mod.BaseExecutionWorkerCommunication.terminated

    def terminated(self: Any) -> None:
        original_terminated(self)
        _publish(self.execution)

    execution_mod.BaseExecutionWorkerCommunication.terminated = terminated  # type: ignore[method-assign]

    original_exec_start = execution_mod.Execution.start

    def start(self: Any) -> None:
        from moto.stepfunctions.parser.api import ExecutionStatus

        # RUNNING before anything can see it (other threads list executions by status),
        # and published before the worker runs, so RUNNING is never the last event.
        self.exec_status = ExecutionStatus.RUNNING
        _publish(self, status="RUNNING")
        original_exec_start(self)

    execution_mod.Execution.start = start  # type: ignore[method-assign]


# ----- 13: write-through and restore --------------------------------------------------------------
_persist_lock = threading.RLock()


def _install_persistence(s3_models: Any, dynamodb_models: Any, event_manager_mod: Any) -> None:
    """Patch 13 (targets already checked by :func:`install`)."""
    backend_cls = s3_models.S3Backend
    original_put_object = backend_cls.put_object
    original_delete_object = backend_cls.delete_object

    def put_object(self: Any, bucket_name: str, key_name: str, value: bytes, *args: Any, **kwargs: Any) -> Any:
        hooks = _persistence_hooks()
        if not hooks:
            return original_put_object(self, bucket_name, key_name, value, *args, **kwargs)
        with _persist_lock:
            result = original_put_object(self, bucket_name, key_name, value, *args, **kwargs)
            for hook in hooks:
                hook.object_put(bucket_name, key_name, bytes(value))
        return result

    def delete_object(self: Any, bucket_name: str, key_name: str, *args: Any, **kwargs: Any) -> Any:
        hooks = _persistence_hooks()
        with _persist_lock:
            result = original_delete_object(self, bucket_name, key_name, *args, **kwargs)
            for hook in hooks:
                hook.object_deleted(bucket_name, key_name)
        return result

    backend_cls.put_object = put_object
    backend_cls.delete_object = delete_object

    ddb_cls = dynamodb_models.DynamoDBBackend

    def _persisted(original: Any, key_of: Any) -> Any:
        def wrapper(self: Any, table_name: str, *args: Any, **kwargs: Any) -> Any:
            hooks = _persistence_hooks()
            if not hooks:
                return original(self, table_name, *args, **kwargs)
            with _persist_lock:
                result = original(self, table_name, *args, **kwargs)
                table = self.get_table(table_name)
                key = key_of(table, *args, **kwargs)
                item = self.get_item(table_name, key)
                document = json.loads(json.dumps(item.to_json()["Attributes"], default=str)) if item is not None else None
                for hook in hooks:
                    hook.item_changed(table_name, key, document)
            return result

        return wrapper

    def _put_key(table: Any, item_attrs: dict[str, Any], *args: Any, **kwargs: Any) -> dict[str, Any]:
        names = [n for n in (table.hash_key_attr, table.range_key_attr) if n]
        return {n: item_attrs[n] for n in names}

    def _key_arg(table: Any, key: dict[str, Any], *args: Any, **kwargs: Any) -> dict[str, Any]:
        return key

    ddb_cls.put_item = _persisted(ddb_cls.put_item, _put_key)
    ddb_cls.update_item = _persisted(ddb_cls.update_item, _key_arg)
    ddb_cls.delete_item = _persisted(ddb_cls.delete_item, _key_arg)

    manager_cls = event_manager_mod.EventManager
    original_add_event = manager_cls.add_event

    def add_event(self: Any, *args: Any, **kwargs: Any) -> Any:
        result = original_add_event(self, *args, **kwargs)
        arn = getattr(self, "_relay_execution", None)
        if arn is not None:
            hooks = _persistence_hooks()
            if hooks:
                with _persist_lock:
                    with self._mutex:
                        events = list(self._history_event_list)
                    for hook in hooks:
                        hook.history_changed(arn, events)
        return result

    manager_cls.add_event = add_event


def restore_execution(state_machine_arn: str, meta: dict[str, Any], events: list[dict[str, Any]], memo: list[list[Any]]) -> Any:
    """Put an execution read back from disk into the engine (patch 13).

    Args:
        state_machine_arn: the (already created) state machine it belongs to.
        meta: ``{name, status, start_date, stop_date, input, output, error, cause,
            redrive_count, redrive_date}`` (dates ISO-8601), as the durable store wrote it.
        events: its history, oldest first (timestamps ISO-8601).
        memo: its kept Map iterations (:func:`memo_entries`).

    Returns:
        The engine's ``Execution``; DescribeExecution, GetExecutionHistory and
        RedriveExecution work on it as on any other.
    """
    import copy
    from datetime import datetime

    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.stepfunctions.parser.api import ExecutionStatus
    from moto.stepfunctions.parser.asl.eval.event.event_manager import EventHistoryContext, EventManager
    from moto.stepfunctions.parser.backend.execution import Execution
    from moto.stepfunctions.parser.models import stepfunctions_parser_backends

    parts = state_machine_arn.split(":")
    backend = stepfunctions_parser_backends[parts[4] or DEFAULT_ACCOUNT_ID][parts[3]]
    machine: Any = backend.describe_state_machine(state_machine_arn)
    clone: Any = copy.deepcopy(machine, {id(machine.executions): [], id(machine.backend): machine.backend})

    def when(value: Any) -> Any:
        return datetime.fromisoformat(value) if isinstance(value, str) else value

    arn = f"{state_machine_arn.replace(':stateMachine:', ':execution:')}:{meta['name']}"
    execution = Execution(
        name=meta["name"],
        sm_type=clone.sm_type,
        role_arn=clone.roleArn,
        exec_arn=arn,
        account_id=parts[4],
        region_name=parts[3],
        state_machine=clone,
        start_date=when(meta["start_date"]),
        cloud_watch_logging_session=None,
        activity_store={},
        input_data=meta["input"],
    )
    execution.exec_status = ExecutionStatus(meta["status"])
    execution.stop_date = when(meta.get("stop_date"))
    execution.output = json.loads(meta["output"]) if meta.get("output") else None
    execution.error = meta.get("error")
    execution.cause = meta.get("cause")
    execution.redrive_count = int(meta.get("redrive_count") or 0)  # type: ignore[attr-defined]
    execution.redrive_date = when(meta.get("redrive_date"))  # type: ignore[attr-defined]
    worker = execution._get_start_execution_worker()
    env: Any = worker._get_evaluation_environment()
    manager: Any = EventManager()
    restored = []
    for event in events:
        event = dict(event)
        event["timestamp"] = when(event.get("timestamp"))
        restored.append(event)
    manager._history_event_list.extend(restored)
    last_id = max((int(e.get("id", 0)) for e in restored), default=0)
    manager._event_id_gen._next_id = last_id + 1
    manager._relay_execution = arn  # type: ignore[attr-defined]
    env.event_manager = manager
    env.event_history_context = EventHistoryContext(previous_event_id=last_id)
    worker.env = env
    execution.exec_worker = worker
    with _memo_lock:
        for state, index, fingerprint, output in memo:
            _map_memo[(arn, str(state), int(index))] = (str(fingerprint), output)
    machine.executions.append(execution)
    return execution


def abort_restored(execution: Any, error: str, cause: str, stop_date: Any) -> None:
    """End a restored execution that was RUNNING when its process died: ABORTED with an
    ``ExecutionAborted`` event (``error``, ``cause``), as StopExecution would leave it."""
    from moto.stepfunctions.parser.api import ExecutionStatus, HistoryEventType
    from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails

    env = execution.exec_worker.env
    env.event_manager.add_event(
        context=env.event_history_context,
        event_type=HistoryEventType.ExecutionAborted,
        event_details=EventDetails(executionAbortedEventDetails={"error": error, "cause": cause}),  # type: ignore[typeddict-item]
    )
    execution.exec_status = ExecutionStatus.ABORTED
    execution.stop_date = stop_date
    execution.error = error
    execution.cause = cause
    _publish(execution)


# ----- 14: the engine's waste --------------------------------------------------------------
_client_cache: dict[tuple[Any, ...], Any] = {}
_client_lock = threading.Lock()
_parse_cache: dict[str, Any] = {}
_parse_lock = threading.Lock()


def _install_speedups() -> None:
    """Patch 14, behaviour unchanged:

    - ``boto_client_for`` makes a new boto3 client for every Task (a quarter of a no-op
      workflow's time, measured with ``bench/bench_engine.py``). Clients are cached per
      service, Region and that service's endpoint variable (``AWS_ENDPOINT_URL_<SERVICE>``,
      read when the client is made), and made under a lock (boto3 sessions are not
      thread-safe; its clients are).
    - ``ExecutionWorker`` parses the whole definition for every execution. The parsed
      program is cached per definition text: evaluation state lives in the execution's
      environment, not in the parsed components (the Map's iteration program is built
      per Map Run from them).
    - jsonpath-ng rebuilds its parser for every path it evaluates: parsed paths are cached.
    """
    import functools
    import os

    from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser
    from moto.stepfunctions.parser.asl.utils import boto_client as boto_client_mod
    from moto.stepfunctions.parser.asl.utils import json_path as json_path_mod
    from moto.stepfunctions.parser.backend import execution_worker as worker_mod

    original_client = boto_client_mod.boto_client_for

    def boto_client_for(region: str, service: str, state_credentials: Any = None) -> Any:
        # moto's own function ignores state_credentials (every client uses fixed fake keys)
        endpoint = os.environ.get("AWS_ENDPOINT_URL_" + service.upper().replace("-", "_"))
        key = (region, service, endpoint, boto_client_mod.botocore_stubber.enabled)
        with _client_lock:
            client = _client_cache.get(key)
            if client is None:
                client = _client_cache[key] = original_client(region, service)
        return client

    for name, module in list(sys.modules.items()):
        if name.startswith("moto.stepfunctions.parser") and getattr(module, "boto_client_for", None) is original_client:
            module.boto_client_for = boto_client_for  # type: ignore[attr-defined]

    def _get_evaluation_entrypoint(self: Any) -> Any:
        definition = self._evaluation_details.state_machine_details.definition
        with _parse_lock:
            program = _parse_cache.get(definition)
        if program is None:
            program = AmazonStateLanguageParser.parse(definition)[0]
            with _parse_lock:
                _parse_cache[definition] = program
        return program

    worker_mod.ExecutionWorker._get_evaluation_entrypoint = _get_evaluation_entrypoint  # type: ignore[method-assign]

    cached_parse = functools.lru_cache(maxsize=4096)(json_path_mod.parse)
    json_path_mod.parse = cached_parse  # type: ignore[assignment]
