"""How a client finds a running ``relay serve``: the files it leaves in its data folder.

A server holds an exclusive ``flock`` on ``{data_dir}/serve.lock`` for as long as its
process lives and publishes ``{data_dir}/serve.json`` (``{"api_url", "console_url",
"pid"}``); :class:`relay.local.lock.ServerLock` writes both. This module only reads them,
so the client commands (:mod:`relay.client`) can tell "no server is running" (a stale
``serve.json`` that nobody's lock backs) from a server that does not answer, without
importing the local runtime.
"""

from __future__ import annotations

import fcntl
import json
from pathlib import Path
from typing import Any

#: Files in the data folder.
LOCK_FILE = "serve.lock"
SERVE_FILE = "serve.json"


def published(data_dir: Path) -> dict[str, Any] | None:
    """The ``serve.json`` of ``data_dir`` (live or stale), or ``None``."""
    try:
        info = json.loads((Path(data_dir) / SERVE_FILE).read_text())
    except (OSError, ValueError):
        return None
    return info if isinstance(info, dict) else None


def is_live(data_dir: Path) -> bool:
    """Whether a process holds the folder's server lock right now."""
    path = Path(data_dir) / LOCK_FILE
    if not path.exists():
        return False
    with open(path, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(handle, fcntl.LOCK_UN)
        return False
