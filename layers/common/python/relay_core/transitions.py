"""The rules for changing a workflow record, as pure functions of the stored record.

A record is written by execution attempts: attempt 0, then n after the n-th redrive
(``$$.Execution.RedriveCount``, stored as ``redrive_count``). The rules make every
write safe to retry and safe to arrive late or out of order:

- COMPLETED and REJECTED are final (the execution succeeded): nothing moves them.
- FAILED and CANCELLED are final for the attempt that wrote them: only a later
  attempt moves the record on.
- No attempt overwrites what a later attempt wrote.

The DynamoDB adapter (:mod:`relay_core.adapters.workflow_records`) states the same
rules as ``ConditionExpression`` s, so each change is one atomic conditional write;
``tests/unit/test_ports.py`` checks that adapter and these functions agree on every
combination of stored status, stored attempt and writing attempt.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Any

from .contracts import FINAL_STATUSES, STOPPED_STATUSES


def _attempt(record: Mapping[str, Any]) -> int | None:
    value = record.get("redrive_count")
    return None if value is None else int(value)


def may_set_status(record: Mapping[str, Any] | None, attempt: int) -> bool:
    """Whether a step of attempt ``attempt`` may set the status of ``record`` (``None``:
    no record yet, which the write creates)."""
    if record is None:
        return True
    stored, status = _attempt(record), record.get("status")
    if stored is not None and stored > attempt:
        return False
    if status is None:
        return True
    if status in FINAL_STATUSES:
        return False
    if status in STOPPED_STATUSES:
        return stored is None or stored < attempt
    return True


def may_record_stopped(record: Mapping[str, Any] | None, redrive_count: int) -> bool:
    """Whether the stop of attempt ``redrive_count`` (FAILED, TIMED_OUT, ABORTED) may be
    recorded: not over a later attempt's write, never over COMPLETED/REJECTED."""
    if record is None:
        return True
    stored = _attempt(record)
    if stored is not None and stored > redrive_count:
        return False
    return record.get("status") is None or record.get("status") not in FINAL_STATUSES


class RedriveUpdate(StrEnum):
    """What recording the redrive of attempt n does to a record."""

    #: FAILED/CANCELLED → RUNNING, with the count and the state it resumed from.
    RESUME = "RESUME"
    #: A step of that attempt already moved the record on: only add the count and state.
    ANNOTATE = "ANNOTATE"
    #: Nothing: no record, or a later attempt (or this one's stop) wrote it.
    NONE = "NONE"


def redriven_update(record: Mapping[str, Any] | None, redrive_count: int) -> RedriveUpdate:
    """How the ``ExecutionRedriven`` event of attempt ``redrive_count`` changes ``record``."""
    if record is None or record.get("status") is None:
        return RedriveUpdate.NONE
    stored, status = _attempt(record), record["status"]
    if status in STOPPED_STATUSES:
        return RedriveUpdate.RESUME if stored is None or stored < redrive_count else RedriveUpdate.NONE
    return RedriveUpdate.ANNOTATE if stored is None or stored <= redrive_count else RedriveUpdate.NONE
