"""The data folder as the local runtime's durable store.

On AWS, Step Functions, S3 and DynamoDB keep every execution, artifact and record.
Locally they live in moto's memory, so :class:`DurableStore` writes every change
through to ``{data_dir}/state/`` as it happens (the engine reports each change:
:func:`relay.local.moto_patches.add_persistence`), and :meth:`DurableStore.restore` puts
everything back when a runtime starts on the same folder:

```
state/
  objects/<bucket>/<key>                 S3 objects, byte for byte
  items/<table>/<urlencoded key>.json    DynamoDB items (DynamoDB JSON)
  executions/<name>/execution.json       status, dates, input, output, error, cause, redrive count
  executions/<name>/history.json         the GetExecutionHistory events, oldest first
  executions/<name>/map.json             succeeded Distributed Map iterations (for a redrive)
```

Every file but ``history.json`` is written to a temporary name in the same folder and
renamed over the old one (``os.replace``, atomic on POSIX), so the folder is consistent
whenever the process dies: each such file holds either its previous or its new content.

``history.json`` is a JSON array with one event per line (``[``, the events joined by
``,`` and a line break, ``]``) that grows by appending: new events overwrite the
closing line break and ``]`` with ``,``, their lines and a new ``]``, in one ``pwrite`` call, so
keeping a history of n events costs O(n) in all instead of O(n²) for rewriting it at
every event. The file is written whole (through a temporary name and a rename) when a
history is new to the store: a new execution, a redrive, a restored execution. The
process dying during an append leaves the file either as it was or cut inside the last
event's line; :meth:`DurableStore.executions` then reads the complete lines and drops
the torn last event (that event is lost, as if the process had died a moment earlier,
and a warning names the file). Histories written by earlier versions (one JSON document,
indented) are read as they are.

Nothing is written only at exit. Writes are not fsync'ed: they survive the process
dying, not the machine losing power.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import threading
import urllib.parse
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from relay_core.contracts import RUNTIME_STOPPED_ERROR

#: The folder under the data folder that holds the store.
STATE_DIR = "state"
#: How ``history.json`` ends (see the module docstring); an append overwrites it.
_HISTORY_END = b"\n]\n"
_log = logging.getLogger("relay.local")


def _default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _safe_key(key: str) -> Path:
    """An S3 key as a relative path; refuses keys that would leave the folder."""
    parts = [p for p in key.split("/") if p]
    if not parts or any(p in {".", ".."} for p in parts):
        raise ValueError(f"S3 key {key!r} cannot be stored as a file")
    return Path(*parts)


def read_history(path: Path) -> list[dict[str, Any]]:
    """The events of a ``history.json`` (see the module docstring), oldest first.

    A file cut inside its last event's line (the process died while appending) yields
    the complete events before it and logs a warning naming the file; an indented
    history written whole by earlier versions is read as one JSON document.

    Raises:
        ValueError: the file is neither a JSON array nor the store's one-event-a-line
            form, or an event line other than the last is unreadable.
    """
    data = path.read_bytes()
    try:
        events = json.loads(data)
    except ValueError:
        events = None
    if isinstance(events, list):
        return events
    lines = data.split(b"\n")
    if not lines or lines[0].strip() != b"[":
        raise ValueError(f"{path}: not a history file (a JSON array, one event a line)")
    decoder = json.JSONDecoder()
    events = []
    for number, line in enumerate(lines[1:], start=2):
        text = line.decode("utf-8", "replace").strip()
        if text == "]":
            break
        if not text:  # only where an append stopped before its closing bracket
            continue
        try:
            event, _ = decoder.raw_decode(text)
        except ValueError:
            event = None
        if not isinstance(event, dict):
            if any(rest.strip() for rest in lines[number:]):
                raise ValueError(f"{path}: line {number} is not an event, and lines follow it")
            _log.warning("%s: dropped a torn last event (line %d: the process stopped while writing it)", path, number)
            break
        events.append(event)
    return events


@dataclass
class Restored:
    """What :meth:`DurableStore.restore` put back."""

    objects: int
    items: int
    executions: int
    aborted: list[str]


class DurableStore:
    """Write-through persistence of one local runtime's bucket, table and state machine.

    Args:
        data_dir: the data folder (``relay serve --data-dir``, a ``relay run`` folder).
        bucket, table: the local artifact bucket and workflow table (others are ignored).
        state_machine_arn: executions of this state machine are kept.
    """

    def __init__(self, data_dir: Path, bucket: str, table: str, state_machine_arn: str):
        self.root = Path(data_dir) / STATE_DIR
        self.bucket = bucket
        self.table = table
        self.state_machine_arn = state_machine_arn
        self._prefix = state_machine_arn.replace(":stateMachine:", ":execution:") + ":"
        self._lock = threading.Lock()
        #: The id of the last event written to each ``history.json`` by this store.
        self._history_ids: dict[Path, int] = {}
        self.paused = False

    # ----- paths --------------------------------------------------------------------------
    def _execution_dir(self, execution_arn: str) -> Path | None:
        if not execution_arn.startswith(self._prefix):
            return None  # another state machine's, or a Map child's
        return self.root / "executions" / execution_arn[len(self._prefix) :]

    def _item_path(self, key: dict[str, Any]) -> Path:
        flat = "&".join(f"{k}={next(iter(v.values()))}" for k, v in sorted(key.items()))
        return self.root / "items" / self.table / (urllib.parse.quote(flat, safe="") + ".json")

    def _write_json(self, path: Path, value: Any) -> None:
        write_atomic(path, json.dumps(value, default=_default, indent=1).encode("utf-8"))

    # ----- the hooks (relay.local.moto_patches.add_persistence) -------------------------------
    def object_put(self, bucket: str, key: str, data: bytes) -> None:
        if bucket == self.bucket and not self.paused:
            write_atomic(self.root / "objects" / bucket / _safe_key(key), data)

    def object_deleted(self, bucket: str, key: str) -> None:
        if bucket == self.bucket and not self.paused:
            (self.root / "objects" / bucket / _safe_key(key)).unlink(missing_ok=True)

    def item_changed(self, table: str, key: dict[str, Any], item: dict[str, Any] | None) -> None:
        if table != self.table or self.paused:
            return
        path = self._item_path(key)
        if item is None:
            path.unlink(missing_ok=True)
        else:
            self._write_json(path, item)

    def history_changed(self, execution_arn: str, events: list[dict[str, Any]]) -> None:
        """Append ``events`` (the events new since the last call, oldest first) to the
        execution's ``history.json``; a history that starts at event 1 is written whole.

        Raises:
            RuntimeError: ``events`` do not follow the last event written (the store missed
                events, which the engine's hook never does).
        """
        folder = self._execution_dir(execution_arn)
        if folder is None or self.paused or not events:
            return
        path = folder / "history.json"
        lines = b",\n".join(json.dumps(event, default=_default).encode("utf-8") for event in events)
        first, last = int(events[0]["id"]), int(events[-1]["id"])
        with self._lock:
            if first == 1:
                write_atomic(path, b"[\n" + lines + _HISTORY_END)
            else:
                written = self._history_ids.get(path)
                if written != first - 1:
                    raise RuntimeError(
                        f"{path}: event {first} does not follow the last event written "
                        f"({written if written is not None else 'none since this runtime started'})"
                    )
                fd = os.open(path, os.O_RDWR)
                try:
                    end = os.fstat(fd).st_size - len(_HISTORY_END)
                    if end < 1 or os.pread(fd, len(_HISTORY_END), end) != _HISTORY_END:
                        raise RuntimeError(f"{path}: does not end as the store writes it; cannot append event {first}")
                    os.pwrite(fd, b",\n" + lines + _HISTORY_END, end)
                finally:
                    os.close(fd)
            self._history_ids[path] = last

    def execution_changed(self, execution: Any, status: str | None) -> None:
        folder = self._execution_dir(execution.exec_arn)
        if folder is None or self.paused:
            return
        raw = status or getattr(execution.exec_status, "value", execution.exec_status)
        meta = {
            "name": execution.name,
            "execution_arn": execution.exec_arn,
            "status": str(getattr(raw, "value", raw)),
            "start_date": execution.start_date,
            "stop_date": execution.stop_date if status is None else None,
            "input": execution.execution_input,
            "output": json.dumps(execution.output) if execution.output is not None else None,
            "error": execution.error,
            "cause": execution.cause,
            "redrive_count": int(getattr(execution, "redrive_count", 0)),
            "redrive_date": getattr(execution, "redrive_date", None),
        }
        self._write_json(folder / "execution.json", meta)

    def memo_changed(self, execution_arn: str, entries: list[list[Any]]) -> None:
        folder = self._execution_dir(execution_arn)
        if folder is not None and not self.paused:
            self._write_json(folder / "map.json", entries)

    # ----- reading back ------------------------------------------------------------------------
    def executions(self) -> list[tuple[dict[str, Any], list[dict[str, Any]], list[list[Any]], float]]:
        """Every kept execution: ``(meta, history, memo, last write as epoch seconds)``,
        oldest start first. A folder without ``execution.json`` is skipped."""
        found = []
        for folder in sorted((self.root / "executions").glob("*")):
            meta_path = folder / "execution.json"
            if not meta_path.is_file():
                continue
            meta = json.loads(meta_path.read_text())
            history_path, memo_path = folder / "history.json", folder / "map.json"
            history = read_history(history_path) if history_path.is_file() else []
            memo = json.loads(memo_path.read_text()) if memo_path.is_file() else []
            touched = max(p.stat().st_mtime for p in (meta_path, history_path, memo_path) if p.is_file())
            found.append((meta, history, memo, touched))
        return sorted(found, key=lambda f: str(f[0].get("start_date")))

    def heartbeat(self) -> None:
        """Note that the runtime is alive now (``state/heartbeat``): after a crash, the
        newest write in the store is when the runtime was last known to run."""
        write_atomic(self.root / "heartbeat", datetime.now(UTC).isoformat().encode())

    def last_alive(self) -> datetime | None:
        """The time of the newest write in the store, or ``None`` for an empty store."""
        times = [p.stat().st_mtime for p in self.root.rglob("*") if p.is_file()] if self.root.is_dir() else []
        return datetime.fromtimestamp(max(times), UTC) if times else None

    def restore(self, s3: Any, dynamodb: Any) -> Restored:
        """Put every kept object, item and execution back into the engine.

        Executions that were RUNNING when their process died become ABORTED with the
        cause "local runtime stopped at <time>" (an ``ExecutionAborted`` event), so they
        can be redriven; their status change reaches the record-failure function like
        any other.
        """
        from relay.local import moto_patches

        objects = items = 0
        stopped = self.last_alive()
        self.paused = True  # putting things back must not rewrite them
        try:
            folder = self.root / "objects" / self.bucket
            for path in sorted(folder.rglob("*")) if folder.is_dir() else []:
                if path.is_file() and not path.name.startswith("."):
                    s3.put_object(Bucket=self.bucket, Key=path.relative_to(folder).as_posix(), Body=path.read_bytes())
                    objects += 1
            folder = self.root / "items" / self.table
            for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
                dynamodb.put_item(TableName=self.table, Item=json.loads(path.read_text()))
                items += 1
            restored = [moto_patches.restore_execution(self.state_machine_arn, m, h, memo) for m, h, memo, _ in self.executions()]
        finally:
            self.paused = False
        aborted = []
        for execution in restored:
            if execution.status == "RUNNING" and stopped is not None:
                cause = f"local runtime stopped at {stopped.strftime('%Y-%m-%d %H:%M:%S UTC')}"
                moto_patches.abort_restored(execution, RUNTIME_STOPPED_ERROR, cause, stopped)
                aborted.append(execution.name)
        return Restored(objects=objects, items=items, executions=len(restored), aborted=aborted)
