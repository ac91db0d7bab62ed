"""Waiting for a condition in tests without sleeping for luck."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


def eventually(check: Callable[[], Any], timeout: float = 60, what: str = "condition", interval: float = 0.05) -> Any:
    """Poll ``check`` every ``interval`` seconds until it returns something truthy; return it.

    Raises:
        AssertionError: still falsy after ``timeout`` seconds, naming ``what``.
    """
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = check()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")
