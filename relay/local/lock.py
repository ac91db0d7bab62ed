"""One ``relay serve`` per data folder.

A server holds an exclusive ``flock`` on ``{data_dir}/serve.lock`` for as long as its
process lives (the kernel releases it when the process dies, ``kill -9`` included), and
publishes ``{data_dir}/serve.json`` (``{"api_url", "console_url", "pid"}``) for the client
commands, which read both with :mod:`relay.discovery`.
So a second server on the same folder is refused while the first lives, a
``serve.json`` left by a killed server is recognised as stale (nobody holds the lock)
and replaced, and the client commands can tell "no server is running" from a server
that does not answer.
"""

from __future__ import annotations

import fcntl
import json
import os
from pathlib import Path
from typing import Any, TextIO

from relay.discovery import LOCK_FILE, SERVE_FILE, published
from relay.local.durable import write_atomic


class ServerRunning(RuntimeError):
    """Another live ``relay serve`` holds the data folder; the message names its PID and URL."""


class ServerLock:
    """The exclusive hold of a data folder by one ``relay serve``.

    Raises:
        ServerRunning: (from :meth:`acquire`) another live server holds the folder.
    """

    def __init__(self, data_dir: Path):
        self.data_dir = Path(data_dir)
        self._handle: TextIO | None = None
        #: The stale ``serve.json`` this server replaced, if any.
        self.replaced: dict[str, Any] | None = None

    def acquire(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        handle = open(self.data_dir / LOCK_FILE, "a+")  # noqa: SIM115 - held for the process's life
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            other = published(self.data_dir) or {}
            raise ServerRunning(
                f"another relay serve (pid {other.get('pid', '?')}, {other.get('api_url', 'URL unknown')}) is using "
                f"data folder {self.data_dir}; stop it first, or use another --data-dir"
            ) from None
        self._handle = handle
        self.replaced = published(self.data_dir)

    def publish(self, api_url: str, console_url: str | None = None, lambda_url: str | None = None) -> None:
        """Write ``serve.json`` for the client commands: ``{"api_url", "console_url", "pid"}``
        (``console_url`` is null when the server serves no console), and ``lambda_url`` (the
        local Lambda Invoke API, for ``relay reconcile``) when given."""
        info = {"api_url": api_url, "console_url": console_url, "pid": os.getpid()}
        if lambda_url:
            info["lambda_url"] = lambda_url
        write_atomic(self.data_dir / SERVE_FILE, json.dumps(info).encode())

    def release(self) -> None:
        if self._handle is None:
            return
        (self.data_dir / SERVE_FILE).unlink(missing_ok=True)
        fcntl.flock(self._handle, fcntl.LOCK_UN)
        self._handle.close()
        self._handle = None
