"""Corrections to moto's Step Functions interpreter and API where it differs from Step
Functions (measured on moto 5.2.5), one :class:`~relay.local.moto_patches.framework.Patch`
each in :data:`PATCHES`:

- ``aws-sdk-service-names``, ``aws-sdk-boto-casing``: ``aws-sdk:bedrockagentcore`` tasks
  reach ``bedrock-agentcore`` with boto's casing, string blobs sent as bytes and
  streaming answers read;
- ``send-task-failure-cause``: SendTaskFailure keeps its ``cause``;
- ``map-tolerated-failures``: a Distributed Map fails past its tolerated failures;
- ``stop-execution``: StopExecution ends an execution waiting for a task token and
  keeps its error and cause;
- ``retry-time-scale``: Retry waits can be scaled (:func:`set_retry_time_scale`);
- ``list-executions-by-map-run``, ``history-paging``: ListExecutions by ``mapRunArn``
  and GetExecutionHistory's paging.
"""

from __future__ import annotations

import threading
from typing import Any

from relay.local.moto_patches.events import _status_of
from relay.local.moto_patches.framework import (
    _ACTION_RESULT,
    _API,
    _ENVIRONMENT,
    _ERRORS,
    _EVENT_DETAIL,
    _EXECUTION,
    _FAILURE,
    _P,
    _RESPONSES,
    _SDK,
    _STS,
    Patch,
    Target,
)
from relay.local.moto_patches.redrive import _first_failure

_retry_scale = 1.0


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



# ----- the builders: moto's originals in, replacements out (one per Patch) -----------------------
def _build_service_names(overrides: dict[str, str], error_names: dict[str, str]) -> tuple[Any, ...]:
    """aws-sdk:bedrockagentcore: the boto service name and the error-name prefix."""
    return (
        {**overrides, "bedrockagentcore": "bedrock-agentcore"},
        {**error_names, "bedrockagentcore": "BedrockAgentCore"},
    )


def _build_boto_casing(_parameters: Any, _response: Any, original_value: Any) -> tuple[Any, ...]:
    """aws-sdk Parameters/results converted with moto's own ``_to_boto_request`` /
    ``_from_boto_response`` and the operation's botocore shapes."""
    from botocore.model import OperationModel
    from botocore.session import get_session

    session = get_session()
    # a botocore session is not thread-safe: Map iterations asking at once each made the
    # session's loader (and listed every service folder) before this lock
    session_lock = threading.Lock()

    def _operation(task: Any) -> OperationModel:
        with session_lock:
            service = session.get_service_model(task._get_boto_service_name())
        action = task.resource.api_action
        return service.operation_model(action[:1].upper() + action[1:])

    def _normalise_parameters(self: Any, parameters: dict, boto_service_name: Any = None, service_action_name: Any = None) -> None:
        self._to_boto_request(parameters, _operation(self).input_shape)

    def _normalise_response(self: Any, response: Any, boto_service_name: Any = None, service_action_name: Any = None) -> None:
        self._from_boto_response(response, _operation(self).output_shape)

    def _to_boto_request_value(self: Any, request_value: Any, value_shape: Any) -> Any:
        if value_shape.type_name == "blob" and isinstance(request_value, str):
            return request_value.encode("utf-8")  # a string blob is sent as its bytes, not re-quoted
        return original_value(self, request_value, value_shape)

    return _normalise_parameters, _normalise_response, _to_boto_request_value



def _build_send_task_failure(_original: Any) -> tuple[Any, ...]:
    from moto.core.responses import EmptyResult

    def send_task_failure(self: Any) -> Any:
        self.stepfunction_backend.send_task_failure(
            self._get_param("taskToken"), error=self._get_param("error"), cause=self._get_param("cause")
        )
        return EmptyResult()

    return (send_task_failure,)



def _build_tolerated_failures(original_map_run: Any) -> tuple[Any, ...]:
    from moto.stepfunctions.parser.api import HistoryEventType, MapRunFailedEventDetails
    from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import (
        FailureEvent,
        FailureEventException,
    )
    from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name import StatesErrorName
    from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name_type import (
        StatesErrorNameType,
    )
    from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails

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

    return (_map_run,)



def _build_stop(original_stop: Any, original_set_error: Any, _original_stop_execution: Any) -> tuple[Any, ...]:
    """StopExecution wakes the execution's callback endpoints (a task-token wait) and
    keeps its error and cause (in ``ExecutionAborted`` and DescribeExecution); the
    interrupted wait does not overwrite ABORTED (the history still gains a spurious
    ``TaskTimedOut`` before ``ExecutionAborted``)."""
    from datetime import UTC, datetime

    from moto.core.responses import ActionResult
    from moto.stepfunctions.parser.asl.eval.program_state import ProgramStopped

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

    def stop_execution(self: Any) -> Any:
        execution = self.stepfunction_backend.describe_execution(self._get_param("executionArn"))
        if _status_of(execution) == "RUNNING":  # StopExecution of a stopped execution changes nothing
            execution.stop(stop_date=datetime.now(UTC), error=self._get_param("error"), cause=self._get_param("cause"))
        return ActionResult({"stopDate": execution.stop_date or datetime.now(UTC)})

    return stop, set_error, stop_execution


def _build_retry_scale(_time: Any) -> tuple[Any, ...]:
    return (_ScaledTime(),)



def _build_list_by_map_run(original_list: Any) -> tuple[Any, ...]:
    """The local Map runs iterations in-process, not as child executions: ListExecutions
    by ``mapRunArn`` lists none (the MapRunFailed cause names the first failure)."""
    from moto.core.responses import ActionResult

    def list_executions(self: Any) -> Any:
        if self._get_param("mapRunArn") and not self._get_param("stateMachineArn"):
            return ActionResult({"executions": []})
        return original_list(self)

    return (list_executions,)


def _build_history_paging(_original: Any) -> tuple[Any, ...]:
    """GetExecutionHistory honours ``maxResults`` (default 100), ``reverseOrder`` and
    ``nextToken`` (an opaque offset)."""
    import base64

    from moto.core.responses import ActionResult
    from moto.stepfunctions.exceptions import InvalidToken

    def get_execution_history(self: Any) -> Any:
        history = self.stepfunction_backend.get_execution_history(self._get_param("executionArn"))
        events = list(history.get("events", []))
        if self._get_param("reverseOrder"):
            events.reverse()
        token = self._get_param("nextToken")
        try:
            start = int(base64.urlsafe_b64decode(token.encode()).decode()) if token else 0
        except ValueError:
            raise InvalidToken("nextToken: not a token this API issued") from None
        size = int(self._get_param("maxResults") or 100) or 100
        page = events[start : start + size]
        body: dict[str, Any] = {"events": page}
        if start + size < len(events):
            body["nextToken"] = base64.urlsafe_b64encode(str(start + size).encode()).decode()
        return ActionResult(body)

    return (get_execution_history,)



PATCHES: tuple[Patch, ...] = (
    Patch(
        name="aws-sdk-service-names",
        corrects=(
            "moto maps no Step Functions service name bedrockagentcore to the boto name bedrock-agentcore "
            "and has no BedrockAgentCore prefix for its errors, so aws-sdk:bedrockagentcore tasks fail."
        ),
        targets=(
            Target(_STS, "StateTaskService._SERVICE_NAME_SFN_TO_BOTO_OVERRIDES", origin=None),
            Target(_SDK, "_SERVICE_ERROR_NAMES", origin=None),
        ),
        build=_build_service_names,
    ),
    Patch(
        name="aws-sdk-boto-casing",
        corrects=(
            "moto's aws-sdk tasks pass PascalCase Parameters to boto unconverted and return boto's casing "
            "(_normalise_parameters/_normalise_response do nothing), JSON-quote string blobs again and "
            "leave streaming response blobs unread."
        ),
        moto_issue="https://github.com/getmoto/moto/issues/10076",
        targets=(
            Target(_SDK, "StateTaskServiceAwsSdk._normalise_parameters"),
            Target(_SDK, "StateTaskServiceAwsSdk._normalise_response"),
            Target(_SDK, "StateTaskServiceAwsSdk._to_boto_request_value"),
        ),
        uses=(
            Target(_STS, "StateTaskService._to_boto_request"),
            Target(_STS, "StateTaskService._from_boto_response"),
            Target(_SDK, "StateTaskServiceAwsSdk._get_boto_service_name"),
        ),
        build=_build_boto_casing,
    ),
    Patch(
        name="send-task-failure-cause",
        corrects="moto's SendTaskFailure drops the cause before it reaches the waiting task.",
        targets=(Target(_RESPONSES, "StepFunctionResponse.send_task_failure"),),
        uses=(Target("moto.core.responses", "EmptyResult"),),
        build=_build_send_task_failure,
    ),
    Patch(
        name="map-tolerated-failures",
        corrects=(
            "moto parses a Distributed Map's ToleratedFailurePercentage/Count but never fails the Map, "
            "where Step Functions fails it with States.ExceedToleratedFailureThreshold."
        ),
        targets=(
            Target(
                _P + "asl.component.state.exec.state_map.iteration.distributed_iteration_component",
                "DistributedIterationComponent._map_run",
            ),
        ),
        uses=(
            Target(_API, "HistoryEventType"),
            Target(_API, "MapRunFailedEventDetails"),
            Target(_FAILURE, "FailureEvent"),
            Target(_FAILURE, "FailureEventException"),
            Target(_ERRORS + "states_error_name", "StatesErrorName"),
            Target(_ERRORS + "states_error_name_type", "StatesErrorNameType.StatesExceedToleratedFailureThreshold"),
            Target(_EVENT_DETAIL, "EventDetails"),
        ),
        build=_build_tolerated_failures,
    ),
    Patch(
        name="stop-execution",
        corrects=(
            "moto's StopExecution never ends an execution waiting for a task token (it stays RUNNING) "
            "and drops the error and cause it was given."
        ),
        targets=(
            Target(_EXECUTION, "Execution.stop"),
            Target(_ENVIRONMENT, "Environment.set_error"),
            Target(_RESPONSES, "StepFunctionResponse.stop_execution"),
        ),
        uses=(
            _ACTION_RESULT,
            Target(_P + "asl.eval.callback.callback", "CallbackEndpoint.interrupt_all"),
            Target(_P + "asl.eval.program_state", "ProgramStopped"),
        ),
        build=_build_stop,
    ),
    Patch(
        name="retry-time-scale",
        corrects="Retry waits are real seconds (IntervalSeconds >= 1); set_retry_time_scale scales them (default 1).",
        targets=(Target(_P + "asl.component.common.retry.retrier_decl", "time", origin="time"),),
        build=_build_retry_scale,
    ),
    Patch(
        name="list-executions-by-map-run",
        corrects=(
            "moto's ListExecutions requires a stateMachineArn and fails for a mapRunArn, whose child "
            "executions the local Map does not create."
        ),
        targets=(Target(_RESPONSES, "StepFunctionResponse.list_executions"),),
        uses=(_ACTION_RESULT,),
        build=_build_list_by_map_run,
    ),
    Patch(
        name="history-paging",
        corrects="moto's GetExecutionHistory ignores maxResults, nextToken and reverseOrder.",
        targets=(Target(_RESPONSES, "StepFunctionResponse.get_execution_history"),),
        uses=(_ACTION_RESULT, Target("moto.stepfunctions.exceptions", "InvalidToken")),
        build=_build_history_paging,
    ),
)
