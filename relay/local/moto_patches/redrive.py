"""RedriveExecution, which moto does not implement, and what it needs: the Distributed
Map's kept iterations and executions put back from the data folder.

- :func:`resume_point` / :func:`redrive` and the ``redrive-execution`` patch:
  RedriveExecution as the Step Functions developer guide describes it ("Restarting
  state machine executions with redrive"), ``redriveCount``/``redriveStatus`` in
  DescribeExecution, and ``RedriveCount`` in the context object;
- the ``map-redrive-memo`` patch: a succeeded Distributed Map iteration is kept (and
  replayed on a redrive, so only the failed iterations run again), a failed one's
  error noted (:func:`memo_entries`, :func:`forget_executions`);
- :func:`restore_execution` / :func:`abort_restored`: an execution read back from the
  durable store, redrivable as any other.

Which statuses are redrivable comes from :data:`relay_core.contracts.REDRIVABLE_STATUSES`.
"""

from __future__ import annotations

import json
import threading
from typing import Any

from relay_core.contracts import REDRIVABLE_STATUSES

from relay.local.moto_patches.events import _persist_lock, _persistence_hooks, _publish, _status_of
from relay.local.moto_patches.framework import (
    _ACTION_RESULT,
    _EVENT_MANAGER,
    _P,
    _RESPONSES,
    _WORKER,
    Patch,
    Target,
)

#: Redrive limits (Step Functions developer guide, "Restarting state machine executions with
#: redrive"): executions that stopped less than 14 days ago, at most 1,000 redrives, and a
#: history below the 25,000-event quota (one event is needed for ``ExecutionRedriven``).
REDRIVE_WINDOW_SECONDS = 14 * 24 * 3600
MAX_REDRIVES = 1000
MAX_HISTORY_EVENTS = 25_000

_lock = threading.Lock()
_redrive_lock = threading.Lock()
#: Succeeded Distributed Map iterations: (execution ARN, Map state, item index) → (input, output).
_map_memo: dict[tuple[str, str, int], tuple[str, Any]] = {}
_memo_lock = threading.Lock()


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
    from moto.stepfunctions.exceptions import StepFunctionsException

    class ExecutionNotRedrivable(StepFunctionsException):
        code = "ExecutionNotRedrivable"

    return ExecutionNotRedrivable(message)


def redrive(execution: Any, now: Any = None) -> Any:
    """RedriveExecution of a moto parser ``Execution``; returns the redrive date.

    Follows the Step Functions developer guide, "Restarting state machine executions
    with redrive": only FAILED, TIMED_OUT or ABORTED Standard executions that stopped
    less than 14 days ago and were redriven fewer than 1,000 times; the same execution
    ARN and history, with an ``ExecutionRedriven`` event; the execution resumes at the
    last state entered with no matching exit (:func:`resume_point`: a Task or Map runs
    again, a Fail state fails again) with the input that state was given;
    ``$$.Execution.RedriveCount``/``RedriveTime`` in the context object. The redrive
    evaluates in a fresh environment that carries the history over, so a thread of the
    stopped attempt still returning from a call can never advance the redriven one.

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
    """`` First failed iteration (item N): <error>: <cause>`` from the map-redrive-memo patch, or ``""``."""
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



def restore_execution(state_machine_arn: str, meta: dict[str, Any], events: list[dict[str, Any]], memo: list[list[Any]]) -> Any:
    """Put an execution read back from disk into the engine (see :func:`add_persistence`).

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



# ----- the builders: moto's originals in, replacements out (one per Patch) -----------------------
def _build_redrive(_backend: Any, _response: Any, original_describe: Any, original_environment: Any) -> tuple[Any, ...]:
    """RedriveExecution (:func:`redrive`), redrive fields in DescribeExecution, and
    ``RedriveCount`` (0) in every execution's context object."""
    from moto.core.responses import ActionResult

    def redrive_execution(self: Any, execution_arn: str, client_token: Any = None) -> Any:
        return redrive(self.describe_execution(execution_arn))

    def redrive_execution_response(self: Any) -> Any:
        date = self.stepfunction_backend.redrive_execution(self._get_param("executionArn"), self._get_param("clientToken"))
        return ActionResult({"redriveDate": date})

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

    def _get_evaluation_environment(self: Any) -> Any:
        env = original_environment(self)
        execution_data = env.states.context_object.context_object_data["Execution"]
        execution_data.setdefault("RedriveCount", 0)
        env.event_manager._relay_execution = execution_data["Id"]  # the top-level history (write-through)
        return env

    return redrive_execution, redrive_execution_response, describe_execution, _get_evaluation_environment


def _build_map_memo(original_eval_job: Any) -> tuple[Any, ...]:
    """A succeeded Distributed Map iteration is kept (and replayed on a redrive); a
    failed one's error and cause are noted for the tolerated-failure cause."""
    from moto.stepfunctions.parser.asl.eval.program_state import ProgramEnded, ProgramError

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

    return (_eval_job,)



PATCHES: tuple[Patch, ...] = (
    Patch(
        name="redrive-execution",
        corrects=(
            "moto does not implement RedriveExecution, nor redriveCount/redriveStatus in DescribeExecution "
            "or RedriveCount in the context object."
        ),
        targets=(
            Target(_P + "models", "StepFunctionsParserBackend.redrive_execution", new=True),
            Target(_RESPONSES, "StepFunctionResponse.redrive_execution", new=True),
            Target(_RESPONSES, "StepFunctionResponse.describe_execution"),
            Target(_WORKER, "ExecutionWorker._get_evaluation_environment"),
        ),
        uses=(
            _ACTION_RESULT,
            Target(_WORKER, "ExecutionWorker._get_evaluation_entrypoint"),
            Target(_EVENT_MANAGER, "EventManager"),
            Target(_EVENT_MANAGER, "EventHistoryContext"),
            Target(_P + "asl.component.eval_component", "EvalComponent.eval"),
            Target("moto.stepfunctions.exceptions", "StepFunctionsException"),
        ),
        build=_build_redrive,
    ),
    Patch(
        name="map-redrive-memo",
        corrects=(
            "moto keeps no Distributed Map iteration results, so a redriven Map could not skip the "
            "iterations that succeeded, nor name the first failed iteration's error."
        ),
        targets=(
            Target(
                _P + "asl.component.state.exec.state_map.iteration.itemprocessor.distributed_item_processor_worker",
                "DistributedItemProcessorWorker._eval_job",
            ),
        ),
        uses=(Target(_P + "asl.eval.program_state", "ProgramEnded"), Target(_P + "asl.eval.program_state", "ProgramError")),
        build=_build_map_memo,
    ),
)
