"""Patches to moto's Step Functions engine (and its S3/DynamoDB backends) that Relay's
local runtime needs, kept as a list of :class:`Patch` objects and applied all or nothing.

moto 5.2.x ships a port of LocalStack's ASL interpreter. Run under
``mock_aws(config={"stepfunctions": {"execute_state_machine": True}})`` it executes a
definition for real, but (measured on moto 5.2.5) some behaviours differ from Step
Functions and some features Relay relies on are missing. One module per job:

- :mod:`~relay.local.moto_patches.framework`: :class:`Patch`, :class:`Target`, the
  version guard :data:`SUPPORTED_MOTO`, :func:`install` / :func:`check` / :func:`uninstall`;
- :mod:`~relay.local.moto_patches.engine`: corrections to the interpreter and the API
  (aws-sdk integrations, SendTaskFailure, tolerated failures, StopExecution, Retry
  waits, history paging);
- :mod:`~relay.local.moto_patches.mock_config`: the Step Functions Local MockConfigFile;
- :mod:`~relay.local.moto_patches.redrive`: RedriveExecution, the Distributed Map's
  kept iterations, executions restored from disk;
- :mod:`~relay.local.moto_patches.events`: status-change events and persistence hooks;
- :mod:`~relay.local.moto_patches.task_tokens`: ``.waitForTaskToken`` tokens as Step
  Functions treats them (``States.HeartbeatTimeout``, closed tokens, early heartbeats,
  the heartbeat clock's scale);
- :mod:`~relay.local.moto_patches.transport`: the engine's client cache and the
  loopback transport;
- :mod:`~relay.local.moto_patches.speed`: caches and cheaper copies, same results.

:data:`PATCHES` lists every patch; ``docs/local-runtime.md`` gives each one's reason
and the test that guards it, and ``tests/unit/test_moto_patches.py`` reads moto's own
source, so an upgrade that moves an internal fails there.

Known and not patched: JSONata is
stubbed (https://github.com/getmoto/moto/issues/10105; Relay's ASL uses JSONPath);
ListExecutions has no ``redriveFilter``.
"""

from __future__ import annotations

from relay.local.moto_patches import engine, events, mock_config, redrive, speed, task_tokens, transport
from relay.local.moto_patches.engine import set_retry_time_scale
from relay.local.moto_patches.events import (
    add_persistence,
    add_status_listener,
    remove_persistence,
    remove_status_listener,
    status_change_event,
)
from relay.local.moto_patches.framework import (
    MOTO_ISSUES,
    SUPPORTED_MOTO,
    MotoPatchError,
    Patch,
    Target,
    check,
    check_moto_version,
    install,
    installed,
    uninstall,
)
from relay.local.moto_patches.mock_config import MockConfigFile, load_mock_config
from relay.local.moto_patches.redrive import (
    MAX_HISTORY_EVENTS,
    MAX_REDRIVES,
    REDRIVE_WINDOW_SECONDS,
    abort_restored,
    forget_executions,
    memo_entries,
    restore_execution,
    resume_point,
)
from relay.local.moto_patches.speed import json_deepcopy
from relay.local.moto_patches.task_tokens import (
    OpenTask,
    add_heartbeat_listener,
    open_tasks,
    remove_heartbeat_listener,
    set_heartbeat_time_scale,
)
from relay.local.moto_patches.transport import LoopbackTransport

#: Every patch, in the order :func:`install` applies them.
PATCHES: tuple[Patch, ...] = (
    *engine.PATCHES,
    *mock_config.PATCHES,
    *redrive.PATCHES,
    *events.PATCHES,
    *task_tokens.PATCHES,
    *transport.PATCHES,
    *speed.PATCHES,
)

__all__ = [
    "MAX_HISTORY_EVENTS",
    "MAX_REDRIVES",
    "MOTO_ISSUES",
    "PATCHES",
    "REDRIVE_WINDOW_SECONDS",
    "SUPPORTED_MOTO",
    "LoopbackTransport",
    "MockConfigFile",
    "MotoPatchError",
    "OpenTask",
    "Patch",
    "Target",
    "abort_restored",
    "add_heartbeat_listener",
    "add_persistence",
    "add_status_listener",
    "check",
    "check_moto_version",
    "forget_executions",
    "install",
    "installed",
    "json_deepcopy",
    "load_mock_config",
    "memo_entries",
    "open_tasks",
    "remove_heartbeat_listener",
    "remove_persistence",
    "remove_status_listener",
    "restore_execution",
    "resume_point",
    "set_heartbeat_time_scale",
    "set_retry_time_scale",
    "status_change_event",
    "uninstall",
]
