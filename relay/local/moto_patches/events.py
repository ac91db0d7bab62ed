"""Status-change events and persistence hooks: what the engine tells the rest of the
local runtime.

- :func:`add_status_listener`: every execution status change, as the *Step Functions
  Execution Status Change* event EventBridge delivers (the ``status-change-events``
  patch: moto publishes none);
- :func:`add_persistence`: every S3 object, DynamoDB item, history event and execution
  change as it happens (the ``write-through`` patch: moto keeps everything in memory),
  so the durable store (:mod:`relay.local.durable`) can write the data folder through.

The event's ``detail-type`` and source, and which statuses are redrivable, come from
:mod:`relay_core.contracts` (the stack's EventBridge rules use the same constants).
"""

from __future__ import annotations

import json
import threading
from typing import Any

from relay_core.contracts import REDRIVABLE_STATUSES, STATUS_CHANGE_DETAIL_TYPE, STATUS_CHANGE_SOURCE

from relay.local.moto_patches.framework import _API, _EVENT_MANAGER, _EXECUTION, Patch, Target

_lock = threading.Lock()
_status_listeners: list[Any] = []
_persistence: list[Any] = []
#: Held while a change and its hook calls are made, so each hook sees one object's changes in order.
_persist_lock = threading.RLock()



def add_persistence(hook: Any) -> None:
    """Receive every change of the in-memory AWS state (the write-through patch). ``hook`` has the
    methods ``object_put(bucket, key, data)``, ``object_deleted(bucket, key)``,
    ``item_changed(table, key, item_or_None)`` (DynamoDB JSON), ``history_changed(arn,
    events)``, ``execution_changed(execution, status_or_None)`` and
    ``memo_changed(arn, entries)``. Calls are made on the engine's threads while the
    change's lock is held, so one object's writes arrive in order.

    ``history_changed`` receives the events added to the execution's history since its
    previous call for that history, oldest first (the engine's event dicts: ``id``,
    ``previousEventId``, ``type``, ``timestamp`` as ISO 8601 text, details). Event ids
    run 1, 2, … in order, and a history the hooks have not seen yet (a new execution,
    a redrive, a restored execution, or any history while no hook was added) is passed
    from its first event, so ``events[0]["id"] == 1`` means "this is the whole history
    so far"."""
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
    "source": STATUS_CHANGE_SOURCE, "detail": {executionArn, stateMachineArn, name, status,
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
        "source": STATUS_CHANGE_SOURCE,
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



# ----- the builders: moto's originals in, replacements out (one per Patch) -----------------------
def _build_status_events(original_terminated: Any, original_exec_start: Any) -> tuple[Any, ...]:
    from moto.stepfunctions.parser.api import ExecutionStatus

    def terminated(self: Any) -> None:
        original_terminated(self)
        _publish(self.execution)

    def start(self: Any) -> None:
        # RUNNING before anything can see it (other threads list executions by status),
        # and published before the worker runs, so RUNNING is never the last event.
        self.exec_status = ExecutionStatus.RUNNING
        _publish(self, status="RUNNING")
        original_exec_start(self)

    return terminated, start


def _build_write_through(
    original_put_object: Any,
    original_delete_object: Any,
    put_item: Any,
    update_item: Any,
    delete_item: Any,
    original_add_event: Any,
) -> tuple[Any, ...]:
    """Every S3 object put or deleted, DynamoDB item written and history event added
    is passed to the hooks of :func:`add_persistence`."""

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

    def add_event(self: Any, *args: Any, **kwargs: Any) -> Any:
        # Only the events not yet passed on (O(1) per event, not a copy of the history):
        # ``_relay_reported`` counts them per history; a history new to the hooks (a fresh
        # event manager: a start, a redrive, a restore) is passed from its first event.
        result = original_add_event(self, *args, **kwargs)
        arn = getattr(self, "_relay_execution", None)
        if arn is not None:
            hooks = _persistence_hooks()
            if hooks:
                with _persist_lock:
                    with self._mutex:
                        start = getattr(self, "_relay_reported", 0)
                        events = self._history_event_list[start:]
                        self._relay_reported = start + len(events)
                    if events:
                        for hook in hooks:
                            hook.history_changed(arn, events)
        return result

    return (
        put_object,
        delete_object,
        _persisted(put_item, _put_key),
        _persisted(update_item, _key_arg),
        _persisted(delete_item, _key_arg),
        add_event,
    )



PATCHES: tuple[Patch, ...] = (
    Patch(
        name="status-change-events",
        corrects=(
            "moto publishes no Step Functions Execution Status Change events; add_status_listener "
            "receives them when an execution starts, is redriven or stops."
        ),
        targets=(
            Target(_EXECUTION, "BaseExecutionWorkerCommunication.terminated"),
            Target(_EXECUTION, "Execution.start"),
        ),
        uses=(Target(_API, "ExecutionStatus.RUNNING"),),
        build=_build_status_events,
    ),
    Patch(
        name="write-through",
        corrects=(
            "moto keeps all state in memory only; add_persistence receives every S3 object, DynamoDB "
            "item and history event as it changes, so the data folder can be written through."
        ),
        moto_issue="https://github.com/getmoto/moto/issues/9755",
        targets=(
            Target("moto.s3.models", "S3Backend.put_object"),
            Target("moto.s3.models", "S3Backend.delete_object"),
            Target("moto.dynamodb.models", "DynamoDBBackend.put_item"),
            Target("moto.dynamodb.models", "DynamoDBBackend.update_item"),
            Target("moto.dynamodb.models", "DynamoDBBackend.delete_item"),
            Target(_EVENT_MANAGER, "EventManager.add_event"),
        ),
        uses=(
            Target("moto.dynamodb.models", "DynamoDBBackend.get_item"),
            Target("moto.dynamodb.models", "DynamoDBBackend.get_table"),
            Target(_EVENT_MANAGER, "EventManager.get_event_history"),
        ),
        build=_build_write_through,
    ),
)
