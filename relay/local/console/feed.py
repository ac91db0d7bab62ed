"""Wake the console's server-sent event streams when the local AWS state changes.

A :class:`ChangeFeed` is a persistence hook of :func:`relay.local.moto_patches.add_persistence`:
the engine calls it on its own threads whenever a history grows, an execution changes
status, a Map iteration finishes, an S3 object or a DynamoDB item (an approval record)
is written. It bumps a version and wakes every subscribed stream on that stream's
event loop (``loop.call_soon_threadsafe``), so a stream waits at no cost and reacts at
once; it never blocks the engine.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any


class ChangeFeed:
    """Counts changes and wakes subscribers. Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._subscribers: set[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = set()
        self.version = 0
        #: Set by :meth:`close`: streams end instead of waiting for the next change.
        self.closed = False

    # ----- for the streams -----------------------------------------------------------
    def subscribe(self) -> asyncio.Event:
        """An event set at every change (call from the stream's event loop; :meth:`unsubscribe` when done)."""
        event = asyncio.Event()
        with self._lock:
            self._subscribers.add((asyncio.get_running_loop(), event))
        return event

    def unsubscribe(self, event: asyncio.Event) -> None:
        with self._lock:
            self._subscribers = {s for s in self._subscribers if s[1] is not event}

    def changed(self) -> None:
        """Record a change and wake every subscriber."""
        with self._lock:
            self.version += 1
            subscribers = list(self._subscribers)
        for loop, event in subscribers:
            try:
                loop.call_soon_threadsafe(event.set)
            except RuntimeError:  # its loop closed (the server stopped): it will never wait again
                self.unsubscribe(event)

    def close(self) -> None:
        """Wake every subscriber one last time with :attr:`closed` set (the server is stopping)."""
        self.closed = True
        self.changed()

    # ----- the persistence hook interface (relay.local.moto_patches.add_persistence) ----------------
    def history_changed(self, execution_arn: str, events: Any) -> None:
        self.changed()

    def execution_changed(self, execution: Any, status: Any) -> None:
        self.changed()

    def object_put(self, *args: Any) -> None:
        self.changed()

    def object_deleted(self, *args: Any) -> None:
        self.changed()

    def item_changed(self, *args: Any) -> None:
        self.changed()

    def memo_changed(self, *args: Any) -> None:
        self.changed()
