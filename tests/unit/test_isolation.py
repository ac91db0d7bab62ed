"""Invocation isolation in the local runtime: no request or invocation sees another's state.

Powertools resolvers keep the current request in class attributes, and its logger keeps
the correlation id in one dict per process. On Lambda an execution environment serves
one invocation at a time, so that is safe there; locally invocations are threads of one
process. These tests interleave two invocations deterministically (a barrier inside the
route) and check each sees only its own request and log keys.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from relay.local.servers import Environments, FakeLambdaContext, isolate_powertools, proxy_event

HANDLER = '''
from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayRestResolver

app = APIGatewayRestResolver()
logger = Logger(service="isolation-test")
WAIT = None  # set by the test: a barrier both invocations meet at


@app.get("/echo/<name>")
def echo(name):
    first = app.current_event.path
    logger.append_keys(request_name=name)
    WAIT()
    return {"name": name, "first": first, "then": app.current_event.path,
            "request_id": app.lambda_context.aws_request_id,
            "logged": logger.get_current_keys().get("request_name")}


def handler(event, context):
    return app.resolve(event, context)
'''


@pytest.fixture
def function_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "echo"
    folder.mkdir()
    (folder / "app.py").write_text(HANDLER)
    return folder


def call(module, name: str, results: dict[str, dict]) -> None:
    context = FakeLambdaContext(function_name="echo", invoked_function_arn="arn:aws:lambda:local:000000000000:function:echo")
    answer = module.handler(proxy_event("GET", f"/echo/{name}", {}, b""), context)
    results[name] = json.loads(answer["body"]) | {"expected_request_id": context.aws_request_id}


def interleave(first_module, second_module) -> dict[str, dict]:
    barrier = threading.Barrier(2, timeout=10)
    first_module.WAIT = second_module.WAIT = barrier.wait
    results: dict[str, dict] = {}
    threads = [threading.Thread(target=call, args=(m, n, results)) for m, n in ((first_module, "a"), (second_module, "b"))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=20)
    return results


def test_one_shared_module_leaks_the_request_between_concurrent_invocations(function_dir):
    # Given the naive setup: one module instance called from two threads (what the local
    # API server did before it had execution environments)
    module = _plain_module(function_dir)
    results = interleave(module, module)
    # Then at least one invocation read the other's request after the barrier
    assert any(r["then"] != r["first"] for r in results.values()), results


def _plain_module(function_dir: Path):
    """The handler module without the environment's resolver fix (Powertools as shipped)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("relay_functions.echo_plain", function_dir / "app.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_execution_environments_give_each_concurrent_invocation_its_own_request_and_log_keys(function_dir):
    # Given two invocations of one function at the same time
    isolate_powertools()
    environments = Environments(function_dir)
    results: dict[str, dict] = {}
    barrier = threading.Barrier(2, timeout=10)

    def invoke(name: str) -> None:
        with environments.acquire() as module:
            module.WAIT = barrier.wait
            call(module, name, results)

    threads = [threading.Thread(target=invoke, args=(n,)) for n in ("a", "b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=20)
    # Then each ran in its own environment and saw only its own request, context and keys
    assert environments.created == 2
    for name, result in results.items():
        assert result["first"] == result["then"] == f"/echo/{name}", results
        assert result["request_id"] == result["expected_request_id"]
        assert result["logged"] == name
    # And a warm environment is reused for the next invocation
    with environments.acquire():
        pass
    assert environments.created == 2
