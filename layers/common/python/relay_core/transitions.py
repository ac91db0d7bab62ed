"""The rules for changing a workflow record, as pure functions of the stored record.

Every write carries the execution's redrive count (``$$.Execution.RedriveCount``, stored
as ``redrive_count``): 0, then n after the n-th redrive. The rules make every write
safe to retry and safe to arrive late or out of order:

- COMPLETED and REJECTED are final (the execution succeeded): nothing moves them.
- FAILED and CANCELLED are final for the redrive count that wrote them: only a write
  after a later redrive moves the record on.
- No write overwrites what a later redrive wrote.

The DynamoDB adapter (:mod:`relay_core.adapters.workflow_records`) states the same
rules as ``ConditionExpression`` s, so each change is one atomic conditional write;
``tests/unit/test_ports.py`` checks that adapter and these functions agree on every
combination of stored status, stored redrive count and writing redrive count.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Any

from .contracts import FINAL_STATUSES, STOPPED_STATUSES


def _redrive_count(record: Mapping[str, Any]) -> int | None:
    value = record.get("redrive_count")
    return None if value is None else int(value)


def may_set_status(record: Mapping[str, Any] | None, redrive_count: int) -> bool:
    """Whether a step that ran at ``redrive_count`` may set the status of ``record``
    (``None``: no record yet, which the write creates)."""
    if record is None:
        return True
    stored, status = _redrive_count(record), record.get("status")
    if stored is not None and stored > redrive_count:
        return False
    if status is None:
        return True
    if status in FINAL_STATUSES:
        return False
    if status in STOPPED_STATUSES:
        return stored is None or stored < redrive_count
    return True


def may_record_stopped(record: Mapping[str, Any] | None, redrive_count: int) -> bool:
    """Whether a stop (FAILED, TIMED_OUT, ABORTED) at ``redrive_count`` may be
    recorded: not over a later redrive's write, never over COMPLETED/REJECTED."""
    if record is None:
        return True
    stored = _redrive_count(record)
    if stored is not None and stored > redrive_count:
        return False
    return record.get("status") is None or record.get("status") not in FINAL_STATUSES


class RedriveUpdate(StrEnum):
    """What recording the n-th redrive does to a record."""

    #: FAILED/CANCELLED → RUNNING, with the count and the state it resumed from.
    RESUME = "RESUME"
    #: A step after that redrive already moved the record on: only add the count and state.
    ANNOTATE = "ANNOTATE"
    #: Nothing: no record, or a later redrive (or this one's stop) wrote it.
    NONE = "NONE"


def redriven_update(record: Mapping[str, Any] | None, redrive_count: int) -> RedriveUpdate:
    """How the ``ExecutionRedriven`` event of the ``redrive_count``-th redrive changes ``record``."""
    if record is None or record.get("status") is None:
        return RedriveUpdate.NONE
    stored, status = _redrive_count(record), record["status"]
    if status in STOPPED_STATUSES:
        return RedriveUpdate.RESUME if stored is None or stored < redrive_count else RedriveUpdate.NONE
    return RedriveUpdate.ANNOTATE if stored is None or stored <= redrive_count else RedriveUpdate.NONE
