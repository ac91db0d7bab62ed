"""Invocation isolation in the local runtime: no request or invocation sees another's state.

Powertools resolvers keep the current request in class attributes, and its logger keeps
the correlation id in one dict per process. On Lambda an execution environment serves
one invocation at a time, so that is safe there; locally each environment is a worker
process too (:class:`relay.local.servers.Environments`). These tests hold two
invocations inside the route at once (each waits, in the route, until the other has
arrived) and check each saw only its own request, context and log keys.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from relay.local.servers import Environments, FunctionConfig, proxy_event

HANDLER = '''
import os
import time
from pathlib import Path

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayRestResolver

app = APIGatewayRestResolver()
logger = Logger(service="isolation-test")


def meet(folder, name, other):
    """Wait (in the route) until the other invocation has arrived too."""
    Path(folder, name).touch()
    deadline = time.monotonic() + 20
    while not Path(folder, other).exists() and time.monotonic() < deadline:
        time.sleep(0.01)


@app.get("/echo/<name>")
def echo(name):
    first = app.current_event.path
    logger.append_keys(request_name=name)
    meet(app.current_event.get_query_string_value("folder"), name, "b" if name == "a" else "a")
    return {"name": name, "first": first, "then": app.current_event.path,
            "request_id": app.lambda_context.aws_request_id,
            "logged": logger.get_current_keys().get("request_name"), "pid": os.getpid()}


def handler(event, context):
    return app.resolve(event, context)
'''


@pytest.fixture
def echo(tmp_path: Path) -> Environments:
    folder = tmp_path / "echo"
    folder.mkdir()
    (folder / "app.py").write_text(HANDLER)
    environments = Environments(FunctionConfig("echo", folder, {"PATH": "/usr/bin:/bin"}, timeout_seconds=60))
    yield environments
    environments.close()


def test_execution_environments_give_each_concurrent_invocation_its_own_request_and_log_keys(echo, tmp_path):
    # Given two invocations of one function at the same time, both inside the route at once
    results: dict[str, dict] = {}

    def invoke(name: str) -> None:
        event = proxy_event("GET", f"/echo/{name}?folder={tmp_path}", {}, b"")
        answer = echo.invoke(json.dumps(event).encode(), request_id=f"request-{name}")
        results[name] = json.loads(json.loads(answer.payload)["body"])

    threads = [threading.Thread(target=invoke, args=(n,)) for n in ("a", "b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    # Then each ran in its own environment (a process of its own) and saw only its own
    # request, context and keys
    assert echo.created == 2 and results["a"]["pid"] != results["b"]["pid"], results
    for name, result in results.items():
        assert result["first"] == result["then"] == f"/echo/{name}", results
        assert result["request_id"] == f"request-{name}"
        assert result["logged"] == name
    # And a warm environment serves the next invocation: no new worker
    event = proxy_event("GET", f"/echo/a?folder={tmp_path}", {}, b"")
    (tmp_path / "b").touch()
    answer = echo.invoke(json.dumps(event).encode())
    assert answer.function_error is None and echo.created == 2
    assert json.loads(json.loads(answer.payload)["body"])["pid"] in (results["a"]["pid"], results["b"]["pid"])
