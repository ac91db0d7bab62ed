"""Task tokens of ``.waitForTaskToken`` tasks as Step Functions treats them (measured on
moto 5.2.6), one :class:`~relay.local.moto_patches.framework.Patch` each in :data:`PATCHES`.

moto already runs ``arn:aws:states:::aws-sdk:<service>:<action>.waitForTaskToken``
tasks (``StateTaskServiceAwsSdk`` lists ``WaitForTaskToken`` as its one integration
pattern; ``tests/statemachine/test_task_tokens.py`` runs one), but:

- ``heartbeat-timeout-name``: a task whose worker stops heartbeating fails with
  ``States.Timeout``; Step Functions names it ``States.HeartbeatTimeout`` (developer
  guide, "Error names": "A Task state failed to send a heartbeat for a period longer
  than the HeartbeatSeconds value"), which is what ``AskResearcher``'s Retry matches.
  The ``TaskTimedOut`` history event now carries that error too.
- ``closed-task-tokens``: moto accepts SendTaskSuccess/Failure/Heartbeat for a token
  whose task already ended while its execution runs (a duplicate or late callback) and
  silently does nothing.
  Step Functions answers ``TaskTimedOut`` ("the task associated with the token has
  already been closed" / timed out; API reference, SendTaskSuccess). Here a token is
  closed when its attempt ends, so a later callback gets ``TaskTimedOut``; and because
  moto keeps one token for every Retry attempt of a state, an attempt that finds its
  token closed takes a new one (the new attempt's Payload carries it).
- ``closed-token-answers``: such a callback is answered ``TaskTimedOut``, also once the
  execution has ended (moto answers ``InvalidToken`` then, and ``TaskDoesNotExist`` for a
  closed token: its check of the consumer error tests the wrong object); an unknown
  token is ``InvalidToken``.
- ``early-heartbeats``: a SendTaskHeartbeat that arrives before moto has started the
  task's heartbeat clock (the worker answered and beat before the engine began waiting)
  is refused with ``InvalidToken``; Step Functions accepts a heartbeat for any open
  token. It is accepted, and each accepted heartbeat is noted (:func:`open_tasks`) for
  the console: real Step Functions records no history event for a heartbeat, so the
  console shows them as the local engine's own knowledge, labelled so.
- ``early-results``: a SendTaskSuccess/Failure that arrives before the engine started the
  heartbeat clock (the researcher answered, finished and called back before the
  InvokeAgentRuntime call returned to the engine) is kept, but moto then waits a whole
  ``HeartbeatSeconds`` and fails the task with a heartbeat timeout; here the wait sees
  the result at once.
- ``heartbeat-time-scale``: ``HeartbeatSeconds`` are real seconds; tests scale them
  (:func:`set_heartbeat_time_scale`, default 1), as ``retry-time-scale`` does Retry waits.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from relay.local.moto_patches.framework import _API, _ERRORS, _EVENT_DETAIL, _FAILURE, _P, _STS, Patch, Target

_CALLBACK = _STS + "_callback"
_CALLBACK_EVAL = _P + "asl.eval.callback.callback"

_heartbeat_scale = 1.0
_lock = threading.Lock()


def set_heartbeat_time_scale(scale: float) -> None:
    """Multiply every ``HeartbeatSeconds`` the local engine waits by ``scale`` (1.0 = real
    seconds; tests use e.g. 0.01 so that 300 s become 3 s)."""
    global _heartbeat_scale
    if scale <= 0:
        raise ValueError("scale: must be > 0")
    _heartbeat_scale = float(scale)


@dataclass
class OpenTask:
    """A ``.waitForTaskToken`` attempt the local engine is waiting on.

    Attributes:
        execution_arn: its execution.
        state: the Task state's name.
        item: the Map item's ``question.id`` when its input has one (Relay's research
            question), else ``None``.
        started: when the attempt began (epoch seconds).
        heartbeats: SendTaskHeartbeat calls accepted for it.
        last_heartbeat: when the last one was accepted (epoch seconds), or ``None``.
    """

    execution_arn: str
    state: str
    item: str | None
    started: float = field(default_factory=time.time)
    heartbeats: int = 0
    last_heartbeat: float | None = None


#: task token → the attempt waiting on it (removed when the attempt ends).
_open: dict[str, OpenTask] = {}
#: Called with the execution ARN after each accepted heartbeat (the console's change feed).
_heartbeat_listeners: list[Callable[[str], None]] = []


def add_heartbeat_listener(listener: Callable[[str], None]) -> None:
    """Call ``listener(execution_arn)`` after every heartbeat the engine accepts (on the
    caller's thread: it must not block)."""
    with _lock:
        _heartbeat_listeners.append(listener)


def remove_heartbeat_listener(listener: Callable[[str], None]) -> None:
    with _lock:
        if listener in _heartbeat_listeners:
            _heartbeat_listeners.remove(listener)


def open_tasks(execution_arn: str) -> list[OpenTask]:
    """The callback attempts of ``execution_arn`` the engine waits on now (copies), oldest first."""
    with _lock:
        return sorted(
            (OpenTask(**vars(t)) for t in _open.values() if t.execution_arn == execution_arn), key=lambda t: t.started
        )


def _item_of(state_input: Any) -> str | None:
    question = state_input.get("question") if isinstance(state_input, dict) else None
    item = question.get("id") if isinstance(question, dict) else None
    return str(item) if item is not None else None


# ----- the builders -----------------------------------------------------------------------------
def _build_heartbeat_timeout_name(original_from_error: Any) -> tuple[Any, ...]:
    from moto.stepfunctions.parser.api import HistoryEventType, TaskTimedOutEventDetails
    from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import FailureEvent
    from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name import StatesErrorName
    from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name_type import (
        StatesErrorNameType,
    )
    from moto.stepfunctions.parser.asl.eval.callback.callback import HeartbeatTimeoutError
    from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails

    def _from_error(self: Any, env: Any, ex: Exception) -> Any:
        if not isinstance(ex, HeartbeatTimeoutError):
            return original_from_error(self, env, ex)
        name = StatesErrorNameType.StatesHeartbeatTimeout
        return FailureEvent(
            env=env,
            error_name=StatesErrorName(typ=name),
            event_type=HistoryEventType.TaskTimedOut,
            event_details=EventDetails(  # type: ignore[typeddict-item]  # one detail per event, as moto builds them
                taskTimedOutEventDetails=TaskTimedOutEventDetails(
                    resourceType=self._get_sfn_resource_type(),
                    resource=self._get_sfn_resource(),
                    error=name.to_name(),
                    cause="no SendTaskHeartbeat within HeartbeatSeconds",
                )
            ),
        )

    return (_from_error,)


def _build_closed_tokens(original_eval_execution: Any) -> tuple[Any, ...]:
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.resource import (
        ResourceCondition,
    )
    from moto.stepfunctions.parser.asl.eval.callback.callback import CallbackConsumerTimeout

    def _eval_execution(self: Any, env: Any) -> None:
        if self.resource.condition != ResourceCondition.WaitForTaskToken:
            return original_eval_execution(self, env)
        context = env.states.context_object.context_object_data
        pool = env.callback_pool_manager
        token = str((context.get("Task") or {}).get("Token") or "")
        endpoint = pool.get(token) if token else None
        if endpoint is None or endpoint.consumer_error is not None:  # a Retry attempt: a new token
            token = env.states.context_object.update_task_token()
            pool.add(token)
        with _lock:
            _open[token] = OpenTask(
                execution_arn=str(context["Execution"]["Id"]),
                state=str((context.get("State") or {}).get("Name", "")),
                item=_item_of(env.states.get_input()),
            )
        try:
            return original_eval_execution(self, env)
        finally:
            with _lock:
                _open.pop(token, None)
            closed = pool.get(token)
            if closed is not None:
                closed.report(CallbackConsumerTimeout())  # later callbacks: TaskTimedOut

    return (_eval_execution,)


def _build_callback_answers(*_originals: Any) -> tuple[Any, ...]:
    """SendTaskHeartbeat/Success/Failure: an open token takes the call; a token whose task
    ended (closed by ``_eval_execution`` above, or of an execution no longer running)
    answers ``TaskTimedOut``; an unknown token ``InvalidToken``."""
    from moto.stepfunctions.exceptions import InvalidToken
    from moto.stepfunctions.parser.api import ExecutionStatus, TaskTimedOut
    from moto.stepfunctions.parser.asl.eval.callback.callback import (
        CallbackNotifyConsumerError,
        CallbackOutcomeFailure,
        CallbackOutcomeSuccess,
    )

    def deliver(backend: Any, task_token: str, call: Any) -> None:
        for execution in backend._get_executions():
            pool = getattr(getattr(getattr(execution, "exec_worker", None), "env", None), "callback_pool_manager", None)
            if pool is None or pool.get(task_token) is None:
                continue
            if execution.status != ExecutionStatus.RUNNING:
                break
            try:
                if call(pool):
                    return
            except CallbackNotifyConsumerError:
                break
            raise InvalidToken()
        else:
            raise InvalidToken()
        raise TaskTimedOut("Task Timed Out: the task associated with the token has already been closed or timed out")

    def send_task_heartbeat(self: Any, task_token: str) -> None:
        deliver(self, task_token, lambda pool: pool.heartbeat(callback_id=task_token))

    def send_task_success(self: Any, task_token: str, outcome: str) -> None:
        result = CallbackOutcomeSuccess(callback_id=task_token, output=outcome)
        deliver(self, task_token, lambda pool: pool.notify(callback_id=task_token, outcome=result))

    def send_task_failure(self: Any, task_token: str, error: Any = None, cause: Any = None) -> None:
        result = CallbackOutcomeFailure(callback_id=task_token, error=error, cause=cause)
        deliver(self, task_token, lambda pool: pool.notify(callback_id=task_token, outcome=result))

    return send_task_heartbeat, send_task_success, send_task_failure


def _build_early_heartbeats(_original_notify_heartbeat: Any) -> tuple[Any, ...]:
    def notify_heartbeat(self: Any) -> bool:
        if self._heartbeat_endpoint is not None:
            self._heartbeat_endpoint.notify()
        with _lock:
            task = _open.get(self.callback_id)
            if task is not None:
                task.heartbeats += 1
                task.last_heartbeat = time.time()
            listeners = list(_heartbeat_listeners) if task is not None else []
        for listener in listeners:
            listener(task.execution_arn)  # type: ignore[union-attr]  # listeners only when task is set
        return True  # an open token: Step Functions accepts its heartbeat

    return (notify_heartbeat,)


def _build_early_results(original_setup: Any) -> tuple[Any, ...]:
    def setup_heartbeat_endpoint(self: Any, heartbeat_seconds: int) -> Any:
        endpoint = original_setup(self, heartbeat_seconds=heartbeat_seconds)
        if self.get_outcome() is not None:  # the result came first: the wait must see it at once
            endpoint.notify()
        return endpoint

    return (setup_heartbeat_endpoint,)


def _build_heartbeat_scale(_original_clear_and_wait: Any) -> tuple[Any, ...]:
    def clear_and_wait(self: Any) -> bool:
        with self._mutex:
            if self._next_heartbeat_event.is_set():
                self._next_heartbeat_event.clear()
                return True
        return bool(self._next_heartbeat_event.wait(timeout=self._heartbeat_seconds * _heartbeat_scale))

    return (clear_and_wait,)


PATCHES: tuple[Patch, ...] = (
    Patch(
        name="heartbeat-timeout-name",
        corrects=(
            "moto fails a task whose worker stops heartbeating with States.Timeout; Step Functions names it "
            "States.HeartbeatTimeout, which a Retry or Catch can match on its own."
        ),
        targets=(Target(_CALLBACK, "StateTaskServiceCallback._from_error"),),
        uses=(
            Target(_API, "HistoryEventType"),
            Target(_API, "TaskTimedOutEventDetails"),
            Target(_FAILURE, "FailureEvent"),
            Target(_ERRORS + "states_error_name", "StatesErrorName"),
            Target(_ERRORS + "states_error_name_type", "StatesErrorNameType.StatesHeartbeatTimeout"),
            Target(_CALLBACK_EVAL, "HeartbeatTimeoutError"),
            Target(_EVENT_DETAIL, "EventDetails"),
        ),
        build=_build_heartbeat_timeout_name,
    ),
    Patch(
        name="closed-task-tokens",
        corrects=(
            "moto accepts and ignores SendTaskSuccess/Failure/Heartbeat for a token whose task already ended "
            "(Step Functions answers TaskTimedOut), and reuses one task token for every Retry attempt of a state."
        ),
        targets=(Target(_CALLBACK, "StateTaskServiceCallback._eval_execution"),),
        uses=(
            Target(_STS.rsplit(".", 1)[0] + ".resource", "ResourceCondition.WaitForTaskToken"),
            Target(_CALLBACK_EVAL, "CallbackConsumerTimeout"),
            Target(_CALLBACK_EVAL, "CallbackEndpoint.report"),
            Target(_CALLBACK_EVAL, "CallbackPoolManager.add"),
            Target(_P + "asl.eval.states", "ContextObject.update_task_token"),
        ),
        build=_build_closed_tokens,
    ),
    Patch(
        name="closed-token-answers",
        corrects=(
            "moto answers a callback for a closed task token with TaskDoesNotExist (it tests the wrong object for "
            "a timeout) and one for a token of an execution that has ended with InvalidToken; Step Functions "
            "answers TaskTimedOut."
        ),
        targets=(
            Target(_P + "models", "StepFunctionsParserBackend.send_task_heartbeat"),
            Target(_P + "models", "StepFunctionsParserBackend.send_task_success"),
            Target(_P + "models", "StepFunctionsParserBackend.send_task_failure"),
        ),
        uses=(
            Target("moto.stepfunctions.exceptions", "InvalidToken"),
            Target(_API, "TaskTimedOut"),
            Target(_API, "ExecutionStatus.RUNNING"),
            Target(_CALLBACK_EVAL, "CallbackNotifyConsumerError"),
            Target(_CALLBACK_EVAL, "CallbackPoolManager.heartbeat"),
            Target(_CALLBACK_EVAL, "CallbackPoolManager.notify"),
            Target(_P + "models", "StepFunctionsParserBackend._get_executions"),
        ),
        build=_build_callback_answers,
    ),
    Patch(
        name="early-heartbeats",
        corrects=(
            "moto refuses (InvalidToken) a SendTaskHeartbeat for an open token whose heartbeat clock has not "
            "started yet; Step Functions accepts it."
        ),
        targets=(Target(_CALLBACK_EVAL, "CallbackEndpoint.notify_heartbeat"),),
        uses=(Target(_CALLBACK_EVAL, "HeartbeatEndpoint.notify"),),
        build=_build_early_heartbeats,
    ),
    Patch(
        name="early-results",
        corrects=(
            "moto loses a SendTaskSuccess/Failure that arrives before it starts the task's heartbeat clock "
            "(the worker answered the call and finished before the call returned): it waits HeartbeatSeconds "
            "and fails the task with a heartbeat timeout although the result is there."
        ),
        targets=(Target(_CALLBACK_EVAL, "CallbackEndpoint.setup_heartbeat_endpoint"),),
        uses=(Target(_CALLBACK_EVAL, "CallbackEndpoint.get_outcome"), Target(_CALLBACK_EVAL, "HeartbeatEndpoint.notify")),
        build=_build_early_results,
    ),
    Patch(
        name="heartbeat-time-scale",
        corrects="HeartbeatSeconds are real seconds; set_heartbeat_time_scale scales them (default 1).",
        targets=(Target(_CALLBACK_EVAL, "HeartbeatEndpoint.clear_and_wait"),),
        build=_build_heartbeat_scale,
    ),
)
