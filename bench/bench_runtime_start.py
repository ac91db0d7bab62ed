"""Benchmark: AgentCore researcher runtime start-up, process start → first ``/ping`` answer.

AgentCore allows a runtime 60 s to become healthy after it starts (AgentCore quotas,
"Runtime initialization time"); Relay's target is 2 s locally, which holds only while
``relay_agents.agentcore_app`` defers the agent's heavy imports to the first invocation.

Usage::

    python bench/bench_runtime_start.py          # 5 runs
    python bench/bench_runtime_start.py -n 10

Each run starts a fresh interpreter that does what the bundle's ``main.py`` does
(``from relay_agents.agentcore_app import app; app.run(...)``, here on a free loopback port),
polls ``GET /ping`` every 10 ms, and records the wall time from ``Popen`` to the first
``200``; then stops the process. Prints each run, the median and the maximum in seconds.
Measures this machine with this virtualenv (warm file cache after the first run, which
is not counted).
"""

from __future__ import annotations

import argparse
import socket
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request

SERVE = "from relay_agents.agentcore_app import app; app.run(host='127.0.0.1', port={port})"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_once(timeout: float = 60.0) -> float:
    port = free_port()
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-c", SERVE.format(port=port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        while time.perf_counter() - start < timeout:
            if proc.poll() is not None:
                sys.exit(f"runtime exited with {proc.returncode} before answering /ping")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=1) as r:
                    if r.status == 200:
                        return time.perf_counter() - start
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.01)
        sys.exit(f"/ping did not answer within {timeout} s")
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    raise AssertionError("unreachable")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("-n", "--runs", type=int, default=5)
    args = parser.parse_args()
    start_once()  # warm-up: file cache
    times = []
    for i in range(args.runs):
        times.append(start_once())
        print(f"run {i + 1}: {times[-1]:.2f} s to the first /ping", flush=True)
    print(f"median {statistics.median(times):.2f} s, max {max(times):.2f} s over {len(times)} runs "
          "(target: 2 s; AgentCore allows 60 s)")  # fmt: skip


if __name__ == "__main__":
    main()
