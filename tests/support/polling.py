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


def api_status(api_url: str, workflow_id: str) -> dict[str, Any]:
    """``GET {api_url}/workflows/{workflow_id}`` of a local ``relay serve``, in-process: what
    ``relay status`` prints, without starting a client process (about 0.5 s of CPU each) for
    every poll. A test polls with this, then checks the condition once more through the CLI.

    Raises:
        urllib.error.URLError: the server cannot be reached or answers an error.
    """
    import json
    import urllib.parse
    import urllib.request

    url = f"{api_url}/workflows/{urllib.parse.quote(workflow_id, safe='')}"
    request = urllib.request.Request(url, headers={"Accept": "application/json", "X-Relay-User": "e2e-poll"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return dict(json.loads(response.read()))
