"""The durable store never leaves a half-written file: each file it writes whole is written
to a temporary file in the same folder and renamed over the old one, so a process that
dies at any moment leaves the old content or the new, never a mix.

The crash is simulated with an audit hook (PEP 578): it sees every ``open`` and every
rename the store makes, and raises at the rename onto the file, which is where a process
dying mid-write stops. At that moment the file must still hold its old content, whole,
and the renamed temporary file the new content, whole; and the store must never have
opened the file itself for writing (a write straight into it, cut short, is the mix).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from relay.local.durable import DurableStore

MACHINE = "arn:aws:states:us-east-1:123456789012:stateMachine:relay-research-report"
EXECUTION_ARN = MACHINE.replace(":stateMachine:", ":execution:") + ":wf-1"
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_APPEND | os.O_TRUNC


class Crash(Exception):
    """The process "dies" here."""


@dataclass
class Watch:
    """What the audit hook looks for, and what it saw."""

    target: Path | None = None
    crash_at_rename: bool = False
    opened_for_writing: list[str] = field(default_factory=list)
    renamed_in: bytes | None = None  # the content moved onto the target, read at the rename


WATCH = Watch()


def _audit(event: str, args: tuple[Any, ...]) -> None:
    target = WATCH.target
    if target is None:
        return
    if event == "open" and isinstance(args[0], (str, bytes, os.PathLike)) and Path(os.fsdecode(args[0])) == target:
        mode, flags = args[1], args[2]
        if (mode is not None and any(c in mode for c in "wax+")) or (mode is None and flags & _WRITE_FLAGS):
            WATCH.opened_for_writing.append(f"{mode or flags}")
    elif event == "os.rename" and Path(os.fsdecode(args[1])) == target:
        WATCH.renamed_in = Path(os.fsdecode(args[0])).read_bytes()
        if WATCH.crash_at_rename:
            raise Crash(f"the process dies while renaming onto {target.name}")


sys.addaudithook(_audit)  # audit hooks stay for the process; WATCH.target None turns it off


def execution(status: str, output: Any = None) -> Any:
    return SimpleNamespace(
        name="wf-1", exec_arn=EXECUTION_ARN, exec_status=status, start_date="2026-01-01T00:00:00+00:00", stop_date=None,
        execution_input="{}", output=output, error=None, cause=None, redrive_count=0, redrive_date=None,
    )  # fmt: skip


def history(count: int) -> list[dict[str, Any]]:
    return [{"id": n, "previousEventId": n - 1, "type": "PassStateEntered", "timestamp": "t"} for n in range(1, count + 1)]


#: Each file the store writes whole: its path under the store, then a write of an old and a new version.
WRITES: dict[str, tuple[str, Callable[[DurableStore, int], None]]] = {
    "S3 object": ("objects/bucket/workflows/wf-1/report.md", lambda s, v: s.object_put("bucket", "workflows/wf-1/report.md", b"# v%d\n" % v * (2000 * v))),
    "DynamoDB item": (
        "items/table/pk%3DWORKFLOW%23wf-1.json",
        lambda s, v: s.item_changed("table", {"pk": {"S": "WORKFLOW#wf-1"}}, {"pk": {"S": "WORKFLOW#wf-1"}, "v": {"N": str(v) * 500}}),
    ),
    "execution": ("executions/wf-1/execution.json", lambda s, v: s.execution_changed(execution("RUNNING", {"v": "x" * 900 * v}), None)),
    "Map memo": ("executions/wf-1/map.json", lambda s, v: s.memo_changed(EXECUTION_ARN, [["Map", i, "f", {"v": v}] for i in range(50 * v)])),
    "history (a new one)": ("executions/wf-1/history.json", lambda s, v: s.history_changed(EXECUTION_ARN, history(20 * v))),
    "heartbeat": ("heartbeat", lambda s, v: s.heartbeat()),
}


@pytest.fixture(autouse=True)
def _watch_off() -> Any:
    yield
    WATCH.target, WATCH.crash_at_rename, WATCH.renamed_in = None, False, None
    WATCH.opened_for_writing.clear()


@pytest.mark.parametrize("what", list(WRITES))
def test_a_crash_mid_write_leaves_the_old_file_or_the_new_never_a_mix(tmp_path, what):
    relative, write = WRITES[what]
    store = DurableStore(tmp_path, "bucket", "table", MACHINE)
    target = store.root / relative
    # Given the file as a first write left it
    write(store, 1)
    old = target.read_bytes()
    # When the process dies while the next version is being put in place
    WATCH.target, WATCH.crash_at_rename = target, True
    with pytest.raises(Crash):
        write(store, 2)
    # Then the file is the old one, whole, and the store never wrote into the file itself
    assert target.read_bytes() == old
    assert WATCH.opened_for_writing == [], f"{relative} was opened for writing: a crash mid-write leaves a mix"
    new = WATCH.renamed_in
    assert new is not None and new != old, "the new content is renamed onto the file"
    # And when the write completes, the file is the new one, whole (what was renamed in)
    WATCH.crash_at_rename, WATCH.renamed_in = False, None
    write(store, 2)
    assert target.read_bytes() == WATCH.renamed_in != old
    assert WATCH.opened_for_writing == []


def test_the_watch_catches_a_write_straight_into_the_file(tmp_path):
    # control: a store that writes into the file itself is caught (and renames nothing)
    target = tmp_path / "file.json"
    target.write_bytes(b"old")
    WATCH.target, WATCH.crash_at_rename = target, True
    target.write_bytes(b"new, written in place")
    assert WATCH.opened_for_writing and WATCH.renamed_in is None
