"""Benchmark: the retry scenario of Relay's seed plans, side by side in one run.

A workflow (3 questions, offline model, auto-approved) fails at its last expensive
step, WriteReport. Then either

- **redrive**: ``RedriveExecution`` resumes it at WriteReport, or
- **from scratch**: a new execution of the same request runs every state again,

and both end SUCCEEDED. For each we report the wall time of the retry (from the
failure to SUCCEEDED) and the agent work it did: AgentCore researcher invocations and
model-backed Lambda invocations (planner, analyst, writer), counted at the local
endpoints. Run on demand (``python bench/bench_redrive.py [--rounds N]``); it asserts
nothing.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

REQUEST = {"topic": "How do AWS Step Functions task tokens work?", "questions": 3}
#: Lambdas that call a model (the others only move data).
MODEL_FUNCTIONS = ("plan_research", "analyze", "write_report")


class Meter:
    """Counts the agent work done at the local endpoints between two points."""

    def __init__(self, relay: Any):
        self.relay = relay
        self.lambdas = len(relay.lambdas.invocations)
        self.agents = len(relay.gateway.calls)

    def work(self) -> dict[str, int]:
        calls = Counter(name for name, _ in list(self.relay.lambdas.invocations)[self.lambdas :])
        return {
            "researcher": len(self.relay.gateway.calls) - self.agents,
            **{name: calls[name] for name in MODEL_FUNCTIONS},
        }


def finish(relay: Any, arn: str) -> dict[str, Any]:
    from relay.mailbox import approval_emails, approval_link, decide_by_link

    name = arn.rsplit(":", 1)[1]
    seen: set[Path] = {p for p, _ in approval_emails(relay.outbox)}

    def approve() -> None:
        for path, message in approval_emails(relay.outbox, name):
            if path not in seen:
                seen.add(path)
                decide_by_link(approval_link(message), approve=True, decided_by="bench")

    for _ in relay.follow(arn, poll_seconds=0.02, timeout=300, on_poll=approve):
        pass
    return relay.describe(arn)


def failed_at_write_report(relay: Any, name: str) -> str:
    from relay.local.servers import Fault

    relay.lambdas.inject(Fault(error="AgentFailed", message="bench: the writer failed", match="write_report"))
    arn = relay.start_execution(REQUEST, name)
    status = finish(relay, arn)["status"]
    if status != "FAILED":
        raise SystemExit(f"expected FAILED at WriteReport, got {status}")
    return arn


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="rounds of each scenario (default 3)")
    parser.add_argument("--corpus", help="corpus folder (default: botocore's AWS docs)")
    args = parser.parse_args()

    from relay.local.runtime import LocalRelay

    rows: dict[str, list[tuple[float, dict[str, int]]]] = {"redrive": [], "from scratch": []}
    with tempfile.TemporaryDirectory(prefix="relay-bench-") as data, LocalRelay(data_dir=data, corpus=args.corpus) as relay:
        finish(relay, relay.start_execution(REQUEST, "bench-warmup"))  # indexes and imports
        for round_ in range(args.rounds):
            # redrive: resume at WriteReport
            arn = failed_at_write_report(relay, f"bench-redrive-{round_}")
            meter, started = Meter(relay), time.perf_counter()
            relay.redrive(arn)
            assert finish(relay, arn)["status"] == "SUCCEEDED"
            rows["redrive"].append((time.perf_counter() - started, meter.work()))
            # from scratch: a new execution of the same request
            failed_at_write_report(relay, f"bench-failed-{round_}")
            meter, started = Meter(relay), time.perf_counter()
            assert finish(relay, relay.start_execution(REQUEST, f"bench-again-{round_}"))["status"] == "SUCCEEDED"
            rows["from scratch"].append((time.perf_counter() - started, meter.work()))
            print(f"round {round_ + 1}: redrive {rows['redrive'][-1][0]:.2f} s, from scratch {rows['from scratch'][-1][0]:.2f} s", flush=True)

    print(f"\nretry after a failure at WriteReport ({REQUEST['questions']} questions, offline model, {args.rounds} rounds)")
    print(f"{'retry':<13} {'median s':>9} {'researcher':>11} {'planner':>8} {'analyst':>8} {'writer':>7}")
    for label, results in rows.items():
        work = results[-1][1]
        print(
            f"{label:<13} {statistics.median(t for t, _ in results):>9.2f} {work['researcher']:>11} "
            f"{work['plan_research']:>8} {work['analyze']:>8} {work['write_report']:>7}"
        )
    redrive, scratch = (statistics.median(t for t, _ in rows[k]) for k in ("redrive", "from scratch"))
    print(f"redrive / from scratch wall time: {redrive / scratch:.2f}")


if __name__ == "__main__":
    main()
