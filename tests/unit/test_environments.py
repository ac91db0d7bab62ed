"""Local Lambda execution environments are worker processes (relay.local.servers.Environments):
each function's own environment variables (from the one rule the stack deploys with,
relay_core.contracts.function_environment), its timeout ended as Lambda ends it, a crash
answered as Lambda answers it with the worker replaced, module state kept warm in one
environment and never seen by another."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from relay_core.contracts import TaskFunction, function_environment

from relay.local.servers import Environments, FunctionConfig

PROBE = '''
import ctypes
import os
import time

CALLS = []  # module state: kept by a warm environment, never seen by another


def handler(event, context):
    CALLS.append(context.aws_request_id)
    print(f"call {len(CALLS)} of {context.function_name}", flush=True)
    if event.get("exit"):
        os._exit(event["exit"])
    if event.get("segfault"):
        ctypes.string_at(0)
    if event.get("sleep"):
        time.sleep(event["sleep"])
    if event.get("raise"):
        raise ValueError(event["raise"])
    return {"variable": os.environ.get(event.get("variable", "RELAY_PROBE")), "calls": len(CALLS), "pid": os.getpid(),
            "memory": context.memory_limit_in_mb, "memory_variable": os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE"),
            "remaining_ms": context.get_remaining_time_in_millis()}
'''
SHARED = {"RELAY_TABLE_NAME": "table"}


@pytest.fixture
def probe_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "probe"
    folder.mkdir()
    (folder / "app.py").write_text(PROBE)
    return folder


@pytest.fixture
def pools():
    made: list[Environments] = []

    def make(spec: TaskFunction, folder: Path, own: dict[str, str] | None = None, shared: dict[str, str] = SHARED) -> Environments:
        environment = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory_mb)}
        environment |= function_environment(spec, shared, own)
        pool = Environments(FunctionConfig(spec.name, folder, environment, spec.timeout_seconds, spec.memory_mb))
        made.append(pool)
        return pool

    yield make
    for pool in made:
        pool.close()


def call(pool: Environments, **event) -> tuple[dict, str | None]:
    answer = pool.invoke(json.dumps(event).encode())
    return json.loads(answer.payload), answer.function_error


def test_a_variable_only_another_function_has_is_absent(pools, probe_dir, monkeypatch):
    # Given the runtime's own process has the variable, and so does one function (its own)
    monkeypatch.setenv("RELAY_PROBE", "from the runtime")
    owner = pools(TaskFunction("owner", (), "has it", variables=("RELAY_PROBE",)), probe_dir, own={"RELAY_PROBE": "mine"})
    other = pools(TaskFunction("other", (), "has not"), probe_dir, own={"RELAY_PROBE": "mine"})
    # When each reads it
    # Then the function that names it sees its value, the other gets nothing
    assert call(owner)[0]["variable"] == "mine"
    assert call(other)[0]["variable"] is None
    # And both see the variables every function gets
    assert call(other, variable="RELAY_TABLE_NAME")[0]["variable"] == "table"


def test_two_functions_with_different_values_for_one_variable_each_see_their_own(pools, probe_dir):
    first = pools(TaskFunction("first", (), "one"), probe_dir, shared={"RELAY_PROBE": "first value"})
    second = pools(TaskFunction("second", (), "two"), probe_dir, shared={"RELAY_PROBE": "second value"})
    assert [call(first)[0]["variable"], call(second)[0]["variable"], call(first)[0]["variable"]] == [
        "first value", "second value", "first value"]


def test_module_state_survives_warm_reuse_and_is_absent_in_another_environment(pools, probe_dir):
    pool = pools(TaskFunction("stateful", (), "keeps state", memory_mb=256), probe_dir)
    other = pools(TaskFunction("stateless", (), "another function"), probe_dir)
    # Given one invocation, then another on the same (warm) environment
    first, second = call(pool)[0], call(pool)[0]
    # Then the second saw the state the first left, in the same process
    assert (first["calls"], second["calls"]) == (1, 2) and first["pid"] == second["pid"] != os.getpid()
    # And another environment starts with none of it
    assert call(other)[0]["calls"] == 1
    # And the memory setting is what the context and the environment report
    assert (first["memory"], first["memory_variable"]) == (256, "256")
    assert pool.created == 1 and len(pool.reports) == 2
    assert pool.reports[0].cold_start and not pool.reports[1].cold_start
    assert "Memory Size: 256 MB" in pool.reports[1].line() and "Init Duration" not in pool.reports[1].line()
    # And each invocation's log lines come back with it, as its log stream has them
    assert list(pool.logs) == ["call 1 of stateful\n", "call 2 of stateful\n"]
    tail = pool.invoke(b"{}").tail()
    assert tail.startswith("call 3 of stateful\nREPORT RequestId: ") and "Duration: " in tail


def test_a_handler_past_its_timeout_ends_with_lambdas_timeout_error_and_the_worker_is_replaced(pools, probe_dir):
    pool = pools(TaskFunction("slow", (), "sleeps", timeout_seconds=1), probe_dir)
    warm = call(pool)[0]
    # When an invocation runs past the function's timeout
    error, function_error = call(pool, sleep=30)
    # Then it ends as Lambda ends it
    assert function_error == "Unhandled" and error["errorType"] == "Sandbox.Timedout"
    assert error["errorMessage"].endswith("Task timed out after 1.00 seconds")
    # And the next invocation runs on a new worker (the timed-out one was stopped)
    after = call(pool)[0]
    assert after["pid"] != warm["pid"] and after["calls"] == 1
    assert warm["pid"] not in pool.workers()


@pytest.mark.parametrize(("event", "message"), [({"exit": 3}, "exit status 3"), ({"segfault": True}, "signal: segmentation fault")])
def test_a_worker_that_dies_mid_invocation_gives_lambdas_error_and_the_next_runs_on_a_new_worker(pools, probe_dir, event, message):
    pool = pools(TaskFunction("crashy", (), "dies"), probe_dir)
    before = call(pool)[0]
    error, function_error = call(pool, **event)
    assert function_error == "Unhandled" and error["errorType"] == "Runtime.ExitError"
    assert error["errorMessage"].endswith(f"Runtime exited with error: {message}")
    after, function_error = call(pool)
    assert function_error is None and after["pid"] != before["pid"] and after["calls"] == 1


def test_a_handler_exception_is_unhandled_with_its_type_and_the_worker_stays_warm(pools, probe_dir):
    pool = pools(TaskFunction("raising", (), "raises"), probe_dir)
    error, function_error = call(pool, **{"raise": "bad input"})
    assert function_error == "Unhandled" and (error["errorType"], error["errorMessage"]) == ("ValueError", "bad input")
    assert call(pool)[0]["calls"] == 2 and pool.created == 1
