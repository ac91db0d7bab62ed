"""Benchmark: the local engine's own cost, side by side with LangGraph in one run.

The same 9-step no-op pipeline on each: plan → Map over 3 items → compile → analyze →
a task-token approval answered as soon as the token arrives → write → finalize.

- **Relay's engine**: moto's Step Functions interpreter with Relay's patches
  (``relay/local/moto_patches.py``), a Standard state machine whose Tasks call no-op
  Lambda handlers through the loopback Lambda Invoke server (the same path ``relay run``
  uses), a Distributed Map, and ``waitForTaskToken`` answered by ``SendTaskSuccess``
  from another thread.
  Completion is taken from the engine's status-change event (no polling).
- **LangGraph** (``pip install -e '.[bench]'``): a ``StateGraph`` with the same nodes,
  the Map as three ``Send`` branches, in-process.

Reported: median and p90 milliseconds per workflow over ``--runs`` sequential
workflows after ``--warmup``, the process's CPU milliseconds per workflow over those
runs, and the wall time of ``--burst`` workflows started at once. Run on demand
(``python bench/bench_engine.py``); it asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import operator
import queue
import statistics
import sys
import tempfile
import threading
import time
import types
from pathlib import Path
from typing import Annotated, Any, TypedDict


class PipelineState(TypedDict, total=False):
    """LangGraph's state for the pipeline (module level: LangGraph resolves its annotations)."""

    items: list[int]
    research: Annotated[list[int], operator.add]
    approval: dict[str, Any]
    steps: Annotated[list[str], operator.add]

NOOP = "def handler(event, context):\n    return event\n"
APPROVAL = (
    "import relay_bench_tokens\n\n"
    "def handler(event, context):\n"
    "    relay_bench_tokens.TOKENS.put(event['token'])\n"
    "    return {}\n"
)


def lam(function: str, next_state: str | None, payload: dict[str, Any] | None = None) -> dict[str, Any]:
    state: dict[str, Any] = {
        "Type": "Task",
        "Resource": "arn:aws:states:::lambda:invoke",
        "Parameters": {"FunctionName": f"${{{function}}}", "Payload": payload or {"input.$": "$"}},
        "ResultSelector": {"out.$": "$.Payload"},
        "ResultPath": f"$.{function}",
    }
    state.update({"Next": next_state} if next_state else {"End": True})
    return state


DEFINITION: dict[str, Any] = {
    "StartAt": "Plan",
    "States": {
        "Plan": lam("plan", "Research", {"items": [1, 2, 3]}),
        "Research": {
            "Type": "Map",
            "ItemsPath": "$.plan.out.items",
            "ItemProcessor": {
                "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
                "StartAt": "Ask",
                "States": {"Ask": {**lam("ask", None, {"item.$": "$"}), "ResultPath": None}},
            },
            "ResultPath": "$.research",
            "Next": "Compile",
        },
        "Compile": lam("compile", "Analyze"),
        "Analyze": lam("analyze", "Approve"),
        "Approve": {
            "Type": "Task",
            "Resource": "arn:aws:states:::lambda:invoke.waitForTaskToken",
            "Parameters": {"FunctionName": "${approve}", "Payload": {"token.$": "$$.Task.Token"}},
            "ResultPath": "$.approval",
            "Next": "Write",
        },
        "Write": lam("write", "Finalize"),
        "Finalize": lam("finalize", None),
    },
}
FUNCTIONS = ("plan", "ask", "compile", "analyze", "write", "finalize")


class RelayEngine:
    """moto's interpreter + Relay's patches + the loopback Lambda server, no-op handlers."""

    def __init__(self, workdir: Path):
        import os

        for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}.items():
            os.environ[key] = value
        import boto3
        from moto import mock_aws
        from moto.core import DEFAULT_ACCOUNT_ID

        from relay.local import moto_patches
        from relay.local.runtime import substitute
        from relay.local.servers import FunctionConfig, InProcessEnvironment, LambdaServer

        tokens = types.ModuleType("relay_bench_tokens")
        tokens.TOKENS = queue.Queue()  # type: ignore[attr-defined]
        sys.modules["relay_bench_tokens"] = tokens
        self.tokens: queue.Queue[str] = tokens.TOKENS  # type: ignore[attr-defined]
        for name in FUNCTIONS:
            (workdir / name).mkdir(parents=True)
            (workdir / name / "app.py").write_text(NOOP)
        (workdir / "approve").mkdir()
        (workdir / "approve" / "app.py").write_text(APPROVAL)
        moto_patches.install()
        self.mock = mock_aws(config={"stepfunctions": {"execute_state_machine": True}})
        self.mock.start()
        # The no-op functions run in this process (they hand the bench its task tokens): the
        # engine is what is measured, not the worker processes relay serve runs them in.
        functions = {n: InProcessEnvironment(FunctionConfig(n, workdir / n, {})) for n in (*FUNCTIONS, "approve")}
        self.lambdas = LambdaServer(DEFAULT_ACCOUNT_ID, "us-east-1", functions=functions).start()
        os.environ["AWS_ENDPOINT_URL_LAMBDA"] = self.lambdas.url
        self.sfn = boto3.client("stepfunctions", region_name="us-east-1")
        definition = substitute(json.dumps(DEFINITION), {n: self.lambdas.arn(n) for n in (*FUNCTIONS, "approve")})
        self.arn = self.sfn.create_state_machine(
            name="bench", definition=definition, roleArn=f"arn:aws:iam::{DEFAULT_ACCOUNT_ID}:role/bench", type="STANDARD"
        )["stateMachineArn"]
        self.done: dict[str, threading.Event] = {}
        self.status: dict[str, str] = {}
        moto_patches.add_status_listener(self._on_status)
        threading.Thread(target=self._approver, daemon=True).start()
        self._count = 0

    def _on_status(self, event: dict[str, Any]) -> None:
        detail = event["detail"]
        if detail["status"] != "RUNNING" and detail["executionArn"] in self.done:
            self.status[detail["executionArn"]] = detail["status"]
            self.done[detail["executionArn"]].set()

    def _approver(self) -> None:
        while True:
            token = self.tokens.get()
            self.sfn.send_task_success(taskToken=token, output="{}")

    def start(self) -> str:
        self._count += 1
        name = f"bench-{self._count}"
        arn = self.arn.replace(":stateMachine:", ":execution:") + f":{name}"
        self.done[arn] = threading.Event()
        self.sfn.start_execution(stateMachineArn=self.arn, name=name, input="{}")
        return arn

    def wait(self, arn: str, timeout: float = 120) -> None:
        if not self.done[arn].wait(timeout) or self.status[arn] != "SUCCEEDED":
            raise SystemExit(f"{arn} did not succeed: {self.status.get(arn)}")

    def one(self) -> None:
        self.wait(self.start())

    def burst(self, n: int) -> None:
        for arn in [self.start() for _ in range(n)]:
            self.wait(arn)


class LangGraphPipeline:
    def __init__(self) -> None:
        from langgraph.graph import END, START, StateGraph
        from langgraph.types import Send

        def step(name: str) -> Any:
            return lambda state: {"steps": [name]}

        graph = StateGraph(PipelineState)
        graph.add_node("plan", lambda state: {"items": [1, 2, 3], "steps": ["plan"]})
        graph.add_node("ask", lambda item: {"research": [item["item"]]})
        for name in ("compile", "analyze", "write", "finalize"):
            graph.add_node(name, step(name))
        graph.add_node("approve", lambda state: {"approval": {"approved": True}, "steps": ["approve"]})
        graph.add_edge(START, "plan")
        graph.add_conditional_edges("plan", lambda state: [Send("ask", {"item": i}) for i in state["items"]], ["ask"])
        for a, b in (("ask", "compile"), ("compile", "analyze"), ("analyze", "approve"), ("approve", "write"),
                     ("write", "finalize"), ("finalize", END)):  # fmt: skip
            graph.add_edge(a, b)
        self.app = graph.compile()

    def one(self) -> None:
        self.app.invoke({"items": []})

    def burst(self, n: int) -> None:
        threads = [threading.Thread(target=self.one) for _ in range(n)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()


def measure(system: Any, runs: int, warmup: int, burst: int) -> tuple[float, float, float, float]:
    """``(median ms, p90 ms, CPU ms per workflow, burst s)``: CPU is the whole process's
    (every thread's) over the sequential runs, steadier than wall time on a shared machine."""
    for _ in range(warmup):
        system.one()
    times = []
    cpu_started = time.process_time()
    for _ in range(runs):
        started = time.perf_counter()
        system.one()
        times.append((time.perf_counter() - started) * 1000)
    cpu = (time.process_time() - cpu_started) * 1000 / runs
    started = time.perf_counter()
    system.burst(burst)
    together = time.perf_counter() - started
    times.sort()
    return statistics.median(times), times[int(0.9 * (len(times) - 1))], cpu, together


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--burst", type=int, default=20)
    args = parser.parse_args()
    rows = []
    try:
        rows.append(("LangGraph (in-process)", *measure(LangGraphPipeline(), args.runs, args.warmup, args.burst)))
    except ImportError:
        print("LangGraph is not installed (pip install -e '.[bench]'): measuring Relay only")
    with tempfile.TemporaryDirectory() as workdir:
        rows.append(("Relay local engine", *measure(RelayEngine(Path(workdir)), args.runs, args.warmup, args.burst)))
    print(f"\n9-step no-op pipeline, {args.runs} runs after {args.warmup} warm-up, {args.burst} at once")
    print(f"{'system':<24} {'median ms':>10} {'p90 ms':>8} {'CPU ms':>8} {f'{args.burst} at once s':>14}")
    for name, median, p90, cpu, together in rows:
        print(f"{name:<24} {median:>10.1f} {p90:>8.1f} {cpu:>8.1f} {together:>14.2f}")
    if len(rows) == 2:
        print(f"Relay / LangGraph median: {rows[1][1] / rows[0][1]:.1f}x")


if __name__ == "__main__":
    main()
