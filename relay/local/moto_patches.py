"""Patches to moto's Step Functions engine (and its S3/DynamoDB backends) that Relay's
local runtime needs, kept as a list of :class:`Patch` objects and applied all or nothing.

moto 5.2.x ships a port of LocalStack's ASL interpreter. Run under
``mock_aws(config={"stepfunctions": {"execute_state_machine": True}})`` it executes a
definition for real, but (measured on moto 5.2.5) some behaviours differ from Step
Functions and some features Relay relies on are missing. Each entry of :data:`PATCHES`
names one of them:

- ``name``: a short label, used in errors;
- ``corrects``: the moto behaviour it corrects, or the feature it adds, in one sentence;
- ``moto_issue``: the moto GitHub issue that reports it, where one exists (else None);
- ``targets``: the ``(module, attribute)`` pairs it replaces (:class:`Target`);
- ``uses``: the moto internals its replacements call without replacing them;
- ``build``: the function that makes the replacements from moto's originals.

:func:`install` first checks every target and every used internal of every patch (the
module imports, the attribute exists, it is still moto's original, or for an added
attribute moto still lacks it); if any check fails it raises one
:class:`MotoPatchError` that names the patch, the target and the installed moto
version, and nothing is patched. Then it applies every patch; if one fails, every
attribute already replaced is put back. A second :func:`install` changes nothing (a
patched attribute is recognised as this module's own and is not wrapped again), and
:func:`uninstall` puts moto's originals back. ``tests/unit/test_moto_patches.py`` also
reads moto's own source, so an upgrade that moves an internal fails there.

Known and not patched: heartbeat timeouts surface as ``States.Timeout``; JSONata is
stubbed (https://github.com/getmoto/moto/issues/10105; Relay's ASL uses JSONPath);
ListExecutions has no ``redriveFilter``.
The supported moto range is :data:`SUPPORTED_MOTO`.
"""

from __future__ import annotations

import copy
import functools
import http.client
import importlib
import inspect
import io
import json
import os
import pickle
import socket
import threading
import types
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from packaging.specifiers import SpecifierSet
from packaging.version import Version
from pydantic import BaseModel, ConfigDict, Field, RootModel

#: The moto versions whose internals this module was written against (and pyproject.toml's pin).
#: Exact: moto moves internals in patch releases (5.2.6 replaced ``AWSError``).
SUPPORTED_MOTO = SpecifierSet("==5.2.5")

_lock = threading.Lock()
_install_lock = threading.Lock()
_retry_scale = 1.0
_pending_test_case = threading.local()


class MotoPatchError(RuntimeError):
    """moto is not what :data:`PATCHES` was written against (an unsupported version, a
    moved internal, an attribute already replaced by someone else), or a patch failed
    while being applied (then nothing stays patched)."""


# ----- the patch registry ---------------------------------------------------------------------
_ABSENT: Any = object()
#: Where moto's issues live (``Patch.moto_issue`` must be one of them).
MOTO_ISSUES = "https://github.com/getmoto/moto/issues/"


@dataclass(frozen=True)
class Target:
    """One attribute: ``module`` (a dotted import path) and ``attribute`` (``"name"`` or
    ``"Class.name"``).

    ``new``: the patch adds the attribute, so moto must not define it. ``origin``: the
    package whose object the original must be (its ``__module__``, or a module's
    ``__name__``); ``None`` for plain data such as a dict, where only "not replaced by
    this module" can be checked.
    """

    module: str
    attribute: str
    new: bool = False
    origin: str | None = "moto"

    def __str__(self) -> str:
        return f"{self.module}.{self.attribute}"


@dataclass(frozen=True)
class Patch:
    """One correction of moto (see the module docstring for the fields).

    ``build(*originals)`` receives moto's current value of each target, in the order of
    ``targets`` (``_ABSENT`` for a ``new`` target), and returns the replacements in the
    same order.

    Raises:
        ValueError: a field is empty, ``moto_issue`` is not a moto issue URL, or a
            target is listed twice.
    """

    name: str
    corrects: str
    targets: tuple[Target, ...]
    build: Callable[..., tuple[Any, ...]]
    moto_issue: str | None = None
    uses: tuple[Target, ...] = ()
    #: A further precondition: returns the problem found, or None.
    check: Callable[[], str | None] | None = None

    def __post_init__(self) -> None:
        if not self.name.strip():
            raise ValueError("Patch.name: must not be empty")
        if not self.corrects.strip():
            raise ValueError(f"Patch {self.name!r}: corrects must name the moto behaviour it corrects")
        if not self.targets:
            raise ValueError(f"Patch {self.name!r}: targets must not be empty")
        if len(set(self.targets)) != len(self.targets):
            raise ValueError(f"Patch {self.name!r}: a target is listed twice")
        if self.moto_issue is not None and not self.moto_issue.startswith(MOTO_ISSUES):
            raise ValueError(f"Patch {self.name!r}: moto_issue must start with {MOTO_ISSUES}")



@dataclass(frozen=True)
class _Slot:
    """A target resolved on this machine."""

    target: Target
    owner: Any
    name: str
    value: Any  # what getattr returns (what the replacement calls), or _ABSENT
    raw: Any  # the object stored on the owner or inherited (getattr_static), or _ABSENT
    owned: bool  # stored on the owner itself, not inherited


@dataclass(frozen=True)
class _Applied:
    patch: str
    slot: _Slot
    replacement: Any


#: Every attribute replaced now: target → what was replaced and by what.
_applied: dict[Target, _Applied] = {}


def _resolve(target: Target) -> _Slot | str:
    """The target's slot, or the problem that stops it being patched."""
    try:
        owner: Any = importlib.import_module(target.module)
    except ImportError as exc:
        return f"module {target.module} cannot be imported ({exc})"
    *path, name = target.attribute.split(".")
    where = target.module
    for part in path:
        where += "." + part
        owner = getattr(owner, part, _ABSENT)
        if owner is _ABSENT:
            return f"{where} is gone"
    try:
        raw = inspect.getattr_static(owner, name)
    except AttributeError:
        raw = _ABSENT
    value = getattr(owner, name) if raw is not _ABSENT else _ABSENT
    owned = name in vars(owner)
    return _Slot(target, owner, name, value, raw, owned)


def _origin_of(value: Any) -> str | None:
    if inspect.ismodule(value):
        return value.__name__
    return getattr(value, "__module__", None)


def _state(slot: _Slot) -> str:
    """``"applied"`` (this module's replacement is in place), ``"original"``, or the problem."""
    record = _applied.get(slot.target)
    if record is not None and slot.raw is record.replacement:
        return "applied"
    target = slot.target
    if target.new:
        if slot.raw is not _ABSENT:
            return f"{target} now exists in moto: moto implements it, so this patch must be dropped or reworked"
        return "original"
    if slot.raw is _ABSENT:
        return f"{target} is gone"
    if target.origin is not None:
        origin = _origin_of(slot.value) or "?"
        if origin != target.origin and not origin.startswith(target.origin + "."):
            what = getattr(slot.value, "__qualname__", type(slot.value).__name__)
            return f"{target} is {origin}.{what}, not the {target.origin} original (replaced by something else)"
    return "original"


def _examine(patch: Patch) -> tuple[list[_Slot], list[str], bool]:
    """``(slots, problems, applied)``: the patch's resolved targets, what stops it being
    applied, and whether it is applied already."""
    slots: list[_Slot] = []
    problems: list[str] = []
    states: list[str] = []
    for target in patch.targets:
        slot = _resolve(target)
        if isinstance(slot, str):
            problems.append(f"target {target}: {slot}")
            continue
        state = _state(slot)
        if state not in ("applied", "original"):
            problems.append(f"target {target}: {state}")
        slots.append(slot)
        states.append(state)
    for used in patch.uses:
        slot = _resolve(used)
        if isinstance(slot, str):
            problems.append(f"uses {used}: {slot}")
        elif slot.raw is _ABSENT:
            problems.append(f"uses {used}: {used} is gone")
    if patch.check is not None and not problems:
        problem = patch.check()
        if problem:
            problems.append(problem)
    applied = bool(states) and all(s == "applied" for s in states)
    if not problems and "applied" in states and not applied:
        problems.append("partly applied: " + ", ".join(f"{s.target} {st}" for s, st in zip(slots, states, strict=True)))
    return slots, problems, applied


def _survey(patches: Sequence[Patch]) -> tuple[list[str], list[tuple[Patch, list[_Slot]]]]:
    """``(problems, pending)``: what stops ``patches`` being applied, and the patches not
    applied yet with their resolved targets."""
    problems: list[str] = []
    pending: list[tuple[Patch, list[_Slot]]] = []
    seen: dict[Target, str] = {}
    for patch in patches:
        for target in patch.targets:
            if target in seen:
                problems.append(f"patch {patch.name!r}: target {target} is also a target of patch {seen[target]!r}")
            seen.setdefault(target, patch.name)
        slots, found, applied = _examine(patch)
        problems += [f"patch {patch.name!r}: {problem}" for problem in found]
        if not applied:
            pending.append((patch, slots))
    return problems, pending


def check(patches: Iterable[Patch] | None = None) -> list[str]:
    """What stops :func:`install` applying ``patches`` (default :data:`PATCHES`), one
    line per problem (``patch 'name': target module.attribute: …``); empty when none.
    Changes nothing."""
    with _install_lock:
        return _survey(list(PATCHES if patches is None else patches))[0]


def check_moto_version(version: str | None = None) -> str:
    """Return moto's version, or raise :class:`MotoPatchError` outside :data:`SUPPORTED_MOTO`."""
    import moto

    found = version or moto.__version__
    if Version(found) not in SUPPORTED_MOTO:
        raise MotoPatchError(
            f"moto {found} is outside the supported range {SUPPORTED_MOTO}; re-check relay/local/moto_patches.py"
        )
    return found


def install(patches: Sequence[Patch] | None = None) -> None:
    """Apply ``patches`` (default :data:`PATCHES`), all or nothing; thread-safe.

    Every target of every patch is checked before anything changes. A patch already
    applied is left as it is, so calling this again changes nothing.

    Raises:
        MotoPatchError: moto is outside :data:`SUPPORTED_MOTO`; or a check failed (the
            message names the moto version and, per problem, the patch and target;
            nothing was patched); or a patch failed while being applied (every
            attribute already replaced was put back).
    """
    chosen = list(PATCHES if patches is None else patches)
    with _install_lock:
        version = check_moto_version()
        problems, pending = _survey(chosen)
        if problems:
            raise MotoPatchError(
                f"moto {version} does not match relay/local/moto_patches.py; nothing was patched:\n  "
                + "\n  ".join(problems)
            )
        done: list[_Applied] = []
        current = ""
        try:
            for patch, slots in pending:
                current = patch.name
                replacements = tuple(patch.build(*(slot.value for slot in slots)))
                if len(replacements) != len(slots):
                    raise ValueError(f"build returned {len(replacements)} replacements for {len(slots)} targets")
                for slot, replacement in zip(slots, replacements, strict=True):
                    setattr(slot.owner, slot.name, replacement)
                    record = _Applied(patch.name, slot, replacement)
                    done.append(record)
                    _applied[slot.target] = record
        except BaseException as exc:
            for record in reversed(done):
                _restore(record)
            if not isinstance(exc, Exception):
                raise
            raise MotoPatchError(
                f"moto {version}: patch {current!r} failed while being applied ({type(exc).__name__}: {exc}); "
                f"the {len(done)} attributes already replaced were restored"
            ) from exc


def _restore(record: _Applied) -> None:
    slot = record.slot
    if slot.owned:
        setattr(slot.owner, slot.name, slot.raw)
    else:
        delattr(slot.owner, slot.name)  # it was inherited (or, for a new target, absent)
    _applied.pop(slot.target, None)


def uninstall() -> None:
    """Put back every attribute :func:`install` replaced (newest first); changes nothing
    when nothing is installed. State kept by the patches (listeners, persistence hooks,
    caches) is left as it is."""
    with _install_lock:
        for record in reversed(list(_applied.values())):
            _restore(record)


def installed() -> list[str]:
    """The names of the patches applied now, in the order they were applied."""
    with _install_lock:
        return list(dict.fromkeys(record.patch for record in _applied.values()))


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
        raise MotoPatchError(f"test case {test_case_name!r} requested but SFN_MOCK_CONFIG is not set")
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


# ----- redrive, Map memo, status-change events, write-through ----------------------------------
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


_persist_lock = threading.RLock()


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
    from moto.stepfunctions.exceptions import AWSError

    def get_execution_history(self: Any) -> Any:
        history = self.stepfunction_backend.get_execution_history(self._get_param("executionArn"))
        events = list(history.get("events", []))
        if self._get_param("reverseOrder"):
            events.reverse()
        token = self._get_param("nextToken")
        try:
            start = int(base64.urlsafe_b64decode(token.encode()).decode()) if token else 0
        except ValueError:
            raise AWSError("nextToken: not a token this API issued", "InvalidToken") from None
        size = int(self._get_param("maxResults") or 100) or 100
        page = events[start : start + size]
        body: dict[str, Any] = {"events": page}
        if start + size < len(events):
            body["nextToken"] = base64.urlsafe_b64encode(str(start + size).encode()).decode()
        return ActionResult(body)

    return (get_execution_history,)


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


_client_cache: dict[tuple[Any, ...], Any] = {}
_client_lock = threading.Lock()
_parse_cache: dict[str, Any] = {}
_parse_lock = threading.Lock()


def _one_boto_client_for() -> str | None:
    """Every module that imported ``boto_client_for`` holds the same function (else the
    cached one would stand in for a different function)."""
    values = {id(importlib.import_module(m).boto_client_for): m for m in _BOTO_CLIENT_MODULES}
    if len(values) > 1:
        return "the modules of the client-cache patch no longer share one boto_client_for: " + ", ".join(values.values())
    return None


#: Endpoints of Relay's own loopback servers (relay.local.servers), which check no signature.
_LOOPBACK_ENDPOINTS = ("http://127.0.0.1:", "http://localhost:")


class _Body(io.BytesIO):
    """A response body read whole, as botocore reads a raw body (``read`` and ``stream``)."""

    def stream(self, amt: int = 65536, **_: Any) -> Iterator[bytes]:
        while chunk := self.read(amt):
            yield chunk


class _NoDelayConnection(http.client.HTTPConnection):
    def connect(self) -> None:
        super().connect()
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class LoopbackTransport:
    """Sends a loopback client's requests with ``http.client`` over kept-alive connections.

    It is the client's HTTP session (botocore's ``Endpoint.http_session``, whose
    interface is ``send(request) -> AWSResponse`` and ``close()``, as its
    ``URLLib3Session``), so ``before-send`` handlers still answer first. It does what
    botocore's urllib3 session does for a plain-HTTP endpoint with retries off, as moto's
    clients are: up to
    :data:`IDLE_CONNECTIONS` idle connections kept (botocore's ``max_pool_connections``
    default), a kept connection the server has closed is replaced before use, not
    resent (``urllib3.util.wait.wait_for_read``, as urllib3 checks), ``TCP_NODELAY``,
    and the same botocore errors: ``EndpointConnectionError`` (connection refused),
    ``ConnectTimeoutError``/``ReadTimeoutError``, ``ConnectionClosedError`` (the server
    closed or reset the connection mid-request), ``HTTPClientError`` (anything else).
    The body is read whole (a loopback Lambda answer is at most 6 MB). About a fifth
    less CPU per Lambda call than urllib3 through botocore (``bench/bench_engine.py``).
    Thread-safe: a connection serves one request at a time.
    """

    IDLE_CONNECTIONS = 10

    def __init__(self, connect_timeout: float, read_timeout: float):
        self._connect_timeout = connect_timeout
        self._read_timeout = read_timeout
        self._idle: list[_NoDelayConnection] = []
        self._lock = threading.Lock()

    def _take(self, host: str, port: int) -> _NoDelayConnection:
        from urllib3.util.wait import wait_for_read

        with self._lock:
            for index in range(len(self._idle) - 1, -1, -1):
                connection = self._idle[index]
                if (connection.host, connection.port) != (host, port):
                    continue
                del self._idle[index]
                if connection.sock is not None and not wait_for_read(connection.sock, timeout=0.0):
                    return connection
                connection.close()  # the server closed it (or sent what nobody asked for)
        return _NoDelayConnection(host, port, timeout=self._connect_timeout)

    def _keep(self, connection: _NoDelayConnection) -> None:
        with self._lock:
            if len(self._idle) < self.IDLE_CONNECTIONS:
                self._idle.append(connection)
                return
        connection.close()

    def close(self) -> None:
        """Close the idle connections (botocore calls this from ``client.close()``)."""
        with self._lock:
            idle, self._idle = self._idle, []
        for connection in idle:
            connection.close()

    def send(self, request: Any) -> Any:
        """Send botocore's prepared ``request``; returns an ``AWSResponse`` (errors above)."""
        from urllib.parse import urlsplit

        from botocore.awsrequest import AWSResponse
        from botocore.exceptions import (
            ConnectionClosedError,
            ConnectTimeoutError,
            EndpointConnectionError,
            HTTPClientError,
            ReadTimeoutError,
        )

        url = urlsplit(request.url)
        connection = self._take(url.hostname or "127.0.0.1", url.port or 80)
        connected = connection.sock is not None
        target = url.path + (f"?{url.query}" if url.query else "")
        try:
            if not connected:
                connection.connect()
                connected = True
            connection.sock.settimeout(self._read_timeout)
            connection.request(request.method, target or "/", body=request.body, headers=dict(request.headers.items()))
            response = connection.getresponse()
            body = response.read()
        except BaseException as exc:
            connection.close()
            if not isinstance(exc, Exception):
                raise
            if isinstance(exc, (ConnectionRefusedError, socket.gaierror)):
                raise EndpointConnectionError(endpoint_url=request.url, error=exc) from exc
            if isinstance(exc, TimeoutError):
                error = ReadTimeoutError if connected else ConnectTimeoutError
                raise error(endpoint_url=request.url, error=exc) from exc
            if isinstance(exc, (ConnectionError, http.client.HTTPException)):
                raise ConnectionClosedError(endpoint_url=request.url) from exc
            raise HTTPClientError(error=exc) from exc
        if response.will_close:
            connection.close()
        else:
            self._keep(connection)
        return AWSResponse(request.url, response.status, dict(response.getheaders()), _Body(body))


def _loopback_client(moto_client: Any, stubber: Any) -> Any:
    """moto's client for a service answered by one of Relay's loopback servers, made
    lighter: unsigned (the servers check no signature), with a fixed User-Agent
    (botocore otherwise builds it twice per call), without moto's stubber (no moto
    backend answers there, and it matches the URL against every moto service's
    patterns), and sending through a :class:`LoopbackTransport`. Together about half a
    Lambda call's client CPU, measured with ``bench/bench_engine.py``. Only while moto
    intercepts boto calls (``mock_aws``, as the local runtime runs it); the endpoint
    comes from ``AWS_ENDPOINT_URL_<SERVICE>``, as for moto's client then; its other
    settings (no retries, timeouts, no parameter validation) are moto's.
    """
    import boto3
    from botocore import UNSIGNED
    from botocore.config import Config

    config = moto_client.meta.config.merge(Config(signature_version=UNSIGNED, user_agent="relay-local-engine"))
    client = boto3.client(moto_client.meta.service_model.service_name, region_name=moto_client.meta.region_name, config=config)
    client.meta.events.unregister("before-send", stubber)
    endpoint = client._endpoint  # botocore keeps the endpoint private; its http_session is the hook
    endpoint.http_session.close()
    endpoint.http_session = LoopbackTransport(config.connect_timeout, config.read_timeout)
    return client


def _build_client_cache(original_client: Any, *importers: Any) -> tuple[Any, ...]:
    """A boto3 client per service, Region, that service's endpoint variable
    (``AWS_ENDPOINT_URL_<SERVICE>``, read when the client is made) and stubber state,
    made under a lock (boto3 sessions are not thread-safe; its clients are)."""
    from moto.stepfunctions.parser.asl.utils import boto_client as boto_client_mod

    def boto_client_for(region: str, service: str, state_credentials: Any = None) -> Any:
        # moto's own function ignores state_credentials (every client uses fixed fake keys)
        endpoint = os.environ.get("AWS_ENDPOINT_URL_" + service.upper().replace("-", "_"))
        key = (region, service, endpoint, boto_client_mod.botocore_stubber.enabled)
        with _client_lock:
            client = _client_cache.get(key)
            if client is None:
                client = original_client(region, service)
                if key[3] and endpoint is not None and endpoint.startswith(_LOOPBACK_ENDPOINTS):
                    client = _loopback_client(client, boto_client_mod.botocore_stubber)
                _client_cache[key] = client
        return client

    return (boto_client_for,) * (1 + len(importers))


def _build_parse_cache(_original_entrypoint: Any, original_validate: Any) -> tuple[Any, ...]:
    """The parsed program per definition text: evaluation state lives in the execution's
    environment, not in the parsed components (the Map's iteration program is built per
    Map Run from them). CreateStateMachine's validation parses through the same cache, so
    a new state machine's first execution finds its program ready (moto parsed it at
    creation and again at the first execution)."""
    from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser

    def parsed(definition: str) -> Any:
        with _parse_lock:
            program = _parse_cache.get(definition)
            if program is None:
                # parsed under the lock: executions started together wait for one parse
                # instead of each parsing the same text (about a second each)
                program = _parse_cache[definition] = AmazonStateLanguageParser.parse(definition)[0]
        return program

    def _get_evaluation_entrypoint(self: Any) -> Any:
        return parsed(self._evaluation_details.state_machine_details.definition)

    def _validate_definition(definition: str) -> None:
        try:
            parsed(definition)
        except Exception:
            original_validate(definition)  # moto's own InvalidDefinition for this text
            raise  # moto accepted what failed here: keep the failure, do not hide it

    return _get_evaluation_entrypoint, staticmethod(_validate_definition)


def _build_jsonpath_cache(*original_parses: Any) -> tuple[Any, ...]:
    """One cache per parse function (jsonpath-ng's ``parse`` and its ``ext.parse`` build
    different expression classes): a parsed path holds no evaluation state."""
    return tuple(functools.lru_cache(maxsize=4096)(parse) for parse in original_parses)


def _build_stubber_routes(_original: Any) -> tuple[Any, ...]:
    """moto's ``BotocoreStubber.process_request`` with the routing remembered per URL.

    moto finds the handler for every request by matching the URL against every mocked
    service's patterns, then rebuilding that service's URL table (``backend.urls``, a
    property) and matching each entry: about a third of an in-process API call's CPU.
    The patterns and tables depend only on the URL (and on ISO regions being enabled),
    so the ordered ``(service, handler)`` candidates are kept per URL (at most 4,096 URLs);
    the checks that depend on settings (passthrough, the service whitelist) still run on
    every request, in moto's order, with moto's outcomes.
    """
    import re

    import moto.backend_index as backend_index
    from moto.core.base_backend import BackendDict
    from moto.core.config import passthrough_service, passthrough_url, service_whitelisted
    from moto.core.exceptions import HTTPException, ServiceNotWhitelisted
    from moto.core.request import normalize_request
    from moto.core.utils import get_equivalent_url_in_aws_domain
    from moto.settings import enable_iso_regions

    unknown_aws = re.compile(r"https?://.+\.amazonaws.com/.*")

    def candidates(clean_url: str, _iso: bool) -> tuple[tuple[str, Any], ...]:
        import moto.backends as backends
        from moto.core import DEFAULT_ACCOUNT_ID

        found = []
        for service, pattern in backend_index.backend_url_patterns:
            if not pattern.match(clean_url):
                continue
            backend_dict = backends.get_backend(service)  # type: ignore[call-overload]
            if isinstance(backend_dict, BackendDict):
                account = backend_dict[DEFAULT_ACCOUNT_ID]
                backend = account["us-east-1"] if "us-east-1" in account else account["aws"]
            else:
                backend = backend_dict["global"]
            handler = next((h for url, h in backend.urls.items() if re.compile(url).match(clean_url)), None)
            found.append((service, handler))
        return tuple(found)

    routes = functools.lru_cache(maxsize=4096)(candidates)

    def process_request(self: Any, request: Any) -> Any:
        parsed_url, _ = get_equivalent_url_in_aws_domain(request.url)
        clean_url = f"{parsed_url.scheme}://{parsed_url.netloc}{parsed_url.path}"
        if passthrough_url(clean_url):
            return None
        for service, handler in routes(clean_url, enable_iso_regions()):
            if passthrough_service(service):
                return None
            if not service_whitelisted(service):
                raise ServiceNotWhitelisted(service)
            if handler is None:
                continue
            from moto.moto_api import recorder

            normalized_request = normalize_request(request)
            try:
                recorder._record_request(normalized_request)
                status, headers, body = handler(normalized_request, normalized_request.raw_url, normalized_request.headers)
            except HTTPException as e:
                status, headers, body = e.code, e.get_headers(), e.get_body()
            return status, headers, body
        if unknown_aws.match(clean_url):
            return 404, {}, "Not yet implemented"
        return None

    return (process_request,)


#: Set by the untimed-state patch for the one ``Thread`` the state is about to start.
_run_in_caller = threading.local()


class _StateThread(threading.Thread):
    """moto's per-state evaluation thread, run in the calling thread when the state has
    no timeout (see :func:`_build_untimed_states`); otherwise a plain daemon thread."""

    def start(self) -> None:
        if getattr(_run_in_caller, "armed", False):
            _run_in_caller.armed = False  # this thread only, not one a nested state starts
            self.run()
        else:
            super().start()


def _build_untimed_states(original_evaluate: Any, _thread: Any) -> tuple[Any, ...]:
    """moto evaluates every Task, Map and Parallel state in a new thread and waits for it
    with the state's timeout, so that a state running past ``TimeoutSeconds`` fails with
    ``States.Timeout`` while its work goes on unobserved. A state without a timeout waits
    moto's default, 99,999,999 s (``TimeoutSeconds.DEFAULT_TIMEOUT_SECONDS``): the thread
    only costs a start and two hand-offs of the GIL. Such a state is evaluated in the
    calling thread through moto's own code (the same frame, copies, exceptions and
    events); a state with ``TimeoutSeconds`` or ``TimeoutSecondsPath`` keeps its thread.
    Of Relay's states only the research Map's AgentCore call and the approval have a
    timeout. Measured with ``bench/bench_engine.py`` (9 Tasks, none timed) together with
    the action-names cache: about a tenth of a no-op workflow's CPU."""

    def _evaluate_with_timeout(self: Any, env: Any) -> None:
        _run_in_caller.armed = bool(self.timeout.is_default_value())
        try:
            original_evaluate(self, env)
        finally:
            _run_in_caller.armed = False

    return _evaluate_with_timeout, _StateThread


def _build_action_names(original: Any) -> tuple[Any, ...]:
    """moto's ``method_names_from_class`` (``inspect.getmembers`` of the response class,
    run for every API call to find the action's method), kept per class with the size of
    each namespace in the class's MRO: a method added later (a patch adding an action)
    changes a size and the names are listed again; replacing a method keeps the names.
    The sizes are read after listing (``inspect.getmembers`` adds ``__annotations__`` to
    a class that had none)."""
    kept: dict[Any, tuple[tuple[int, ...], list[str]]] = {}

    def method_names_from_class(clazz: Any) -> list[str]:
        entry = kept.get(clazz)
        if entry is not None and entry[0] == tuple(len(vars(k)) for k in clazz.__mro__):
            return entry[1]
        names = list(original(clazz))
        kept[clazz] = (tuple(len(vars(k)) for k in clazz.__mro__), names)
        return names

    return (method_names_from_class,)


_JSON_SCALARS = frozenset({str, int, float, bool, type(None)})


def json_deepcopy(value: Any, memo: dict[int, Any] | None = None) -> Any:
    """``copy.deepcopy`` for state data, made in C: a dict or list is copied by a pickle
    round trip (about 3× faster than ``copy.deepcopy`` on a workflow's state, measured
    here; pickle and deepcopy rebuild objects by the same ``__reduce_ex__`` protocol and
    keep shared references shared). A string, number, boolean or None is returned as it
    is (immutable); anything else, a value pickle refuses, and any call with ``memo``
    go to ``copy.deepcopy``.
    """
    if memo is not None:
        return copy.deepcopy(value, memo)
    kind = type(value)
    if kind in _JSON_SCALARS:
        return value
    if kind is dict or kind is list:
        try:
            return pickle.loads(pickle.dumps(value, pickle.HIGHEST_PROTOCOL))
        except Exception:  # not picklable (a lock, a lambda): deepcopy decides, as moto's code did
            return copy.deepcopy(value)
    return copy.deepcopy(value)


def _build_json_copy(*originals: Any) -> tuple[Any, ...]:
    """Each module's ``copy`` becomes a namespace whose ``deepcopy`` is :func:`json_deepcopy`
    (these modules call nothing else of ``copy``: the source test checks it)."""
    namespace = types.SimpleNamespace(deepcopy=json_deepcopy, __name__="relay.local.moto_patches")
    return (namespace,) * len(originals)


# ----- the registry -------------------------------------------------------------------------------
_P = "moto.stepfunctions.parser."
_STS = _P + "asl.component.state.exec.state_task.service.state_task_service"
_SDK = _STS + "_aws_sdk"
_RESPONSES = "moto.stepfunctions.responses"
_EXECUTION = _P + "backend.execution"
_WORKER = _P + "backend.execution_worker"
_ENVIRONMENT = _P + "asl.eval.environment"
_ERRORS = _P + "asl.component.common.error_name."
_FAILURE = _ERRORS + "failure_event"
_API = _P + "api"
_EXECUTE_STATE = _P + "asl.component.state.exec.execute_state"
_EVENT_DETAIL = _P + "asl.eval.event.event_detail"
_ACTION_RESULT = Target("moto.core.responses", "ActionResult")
#: Every module holding moto's ``boto_client_for``: where it is defined, then every importer.
_BOTO_CLIENT_MODULES = (
    _P + "asl.utils.boto_client",
    _P + "asl.component.state.exec.state_map.item_reader.eval.resource_eval_s3",
    _P + "asl.component.state.exec.state_map.result_writer.resource_eval.resource_eval_s3",
    _P + "asl.component.state.exec.state_task.lambda_eval_utils",
    *(
        f"{_STS}_{service}"
        for service in ("aws_sdk", "batch", "dynamodb", "ecs", "events", "glue", "sfn", "sns", "sqs", "unsupported")
    ),
)

#: The interpreter modules whose ``copy.deepcopy`` calls copy state data (JSON values, and
#: the evaluation stack and history events, whose other objects fall back to deepcopy).
_JSON_COPY_MODULES = (
    "asl.eval.states",
    "asl.eval.environment",
    "asl.eval.event.event_manager",
    "asl.component.common.path.result_path",
    "asl.component.common.string.string_expression",
    "asl.component.intrinsic.function.statesfunction.json_manipulation.json_merge",
    "asl.component.state.exec.execute_state",
    "asl.component.state.exec.state_map.state_map",
    "asl.component.state.exec.state_parallel.state_parallel",
    "asl.component.state.exec.state_task.service.state_task_service",
    "asl.component.state.exec.state_task.mock_eval_utils",
)

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
            Target(_P + "asl.eval.event.event_manager", "EventManager"),
            Target(_P + "asl.eval.event.event_manager", "EventHistoryContext"),
            Target(_P + "asl.component.eval_component", "EvalComponent.eval"),
            Target("moto.core.exceptions", "AWSError"),
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
        uses=(_ACTION_RESULT, Target("moto.stepfunctions.exceptions", "AWSError")),
        build=_build_history_paging,
    ),
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
            Target(_P + "asl.eval.event.event_manager", "EventManager.add_event"),
        ),
        uses=(
            Target("moto.dynamodb.models", "DynamoDBBackend.get_item"),
            Target("moto.dynamodb.models", "DynamoDBBackend.get_table"),
            Target(_P + "asl.eval.event.event_manager", "EventManager.get_event_history"),
        ),
        build=_build_write_through,
    ),
    Patch(
        name="client-cache",
        corrects="moto makes a new boto3 client for every Task (a quarter of a no-op workflow's time).",
        targets=tuple(Target(module, "boto_client_for") for module in _BOTO_CLIENT_MODULES),
        uses=(Target(_P + "asl.utils.boto_client", "botocore_stubber"),),
        check=_one_boto_client_for,
        build=_build_client_cache,
    ),
    Patch(
        name="definition-parse-cache",
        corrects="moto parses the whole definition again for every execution (and at creation).",
        targets=(
            Target(_WORKER, "ExecutionWorker._get_evaluation_entrypoint"),
            Target(_P + "models", "StepFunctionsParserBackend._validate_definition"),
        ),
        uses=(Target(_P + "asl.parse.asl_parser", "AmazonStateLanguageParser.parse"),),
        build=_build_parse_cache,
    ),
    Patch(
        name="jsonpath-parse-cache",
        corrects="moto's JSONPath evaluation has jsonpath-ng build its parser again for every path.",
        targets=(
            Target(_P + "asl.utils.json_path", "parse", origin="jsonpath_ng"),
            Target(_P + "asl.component.common.path.result_path", "parse", origin="jsonpath_ng"),
        ),
        build=_build_jsonpath_cache,
    ),
    Patch(
        name="stubber-routes",
        corrects=(
            "moto matches every in-process API call's URL against every service's patterns and rebuilds "
            "the service's URL table each time (its own TODO: cache this part): a third of the call's CPU."
        ),
        targets=(Target("moto.core.botocore_stubber", "BotocoreStubber.process_request"),),
        uses=(
            Target("moto.backend_index", "backend_url_patterns", origin=None),
            Target("moto.core.config", "passthrough_service"),
            Target("moto.core.config", "passthrough_url"),
            Target("moto.core.config", "service_whitelisted"),
            Target("moto.core.utils", "get_equivalent_url_in_aws_domain"),
            Target("moto.settings", "enable_iso_regions"),
            Target("moto.core.request", "normalize_request"),
            Target("moto.moto_api", "recorder"),
        ),
        build=_build_stubber_routes,
    ),
    Patch(
        name="untimed-states-in-caller-thread",
        corrects=(
            "moto starts a thread for every Task, Map and Parallel state to enforce its timeout, "
            "also when the state has none (a tenth of a no-op workflow's CPU)."
        ),
        targets=(
            Target(_EXECUTE_STATE, "ExecutionState._evaluate_with_timeout"),
            Target(_EXECUTE_STATE, "Thread", origin="threading"),
        ),
        uses=(Target(_P + "asl.component.common.timeouts.timeout", "TimeoutSeconds.is_default_value"),),
        build=_build_untimed_states,
    ),
    Patch(
        name="action-names-cache",
        corrects="moto lists the response class's methods with inspect.getmembers for every API call.",
        targets=(Target("moto.core.responses", "method_names_from_class"),),
        build=_build_action_names,
    ),
    Patch(
        name="json-state-copy",
        corrects=(
            "moto copies state data with copy.deepcopy several times per state (input, result, "
            "ResultPath, Parameters, the evaluation stack): a fifth of a no-op workflow's CPU; "
            "a pickle round trip makes the same copy in C."
        ),
        targets=tuple(Target(_P + module, "copy", origin="copy") for module in _JSON_COPY_MODULES),
        build=_build_json_copy,
    ),
)
