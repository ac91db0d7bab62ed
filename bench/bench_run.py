"""Benchmark: wall time of ``relay run "TOPIC" --questions 3 --auto-approve``, process
start included, on the local runtime with the default corpus (botocore's AWS docs).

Run on demand (``make bench`` or ``python bench/bench_run.py [--runs N]``); it is not a
test and asserts nothing. The first run may build the corpus index (cached under
``RELAY_CACHE_DIR``, default ``~/.cache/relay``); it is reported separately as the
warm-up and left out of the median. Target: median under 10 s on a 2-core box.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TOPIC = "How do AWS Step Functions task tokens work?"


def one_run(runs_dir: Path) -> float:
    relay = Path(sys.executable).with_name("relay")
    command = [str(relay), "run", TOPIC, "--questions", "3", "--auto-approve", "--runs-dir", str(runs_dir)]
    started = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, env=os.environ.copy())
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"relay run failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="measured runs after the warm-up (default 5)")
    args = parser.parse_args()
    runs_dir = Path(tempfile.mkdtemp(prefix="relay-bench-"))
    try:
        warmup = one_run(runs_dir)
        print(f"warm-up (may build the corpus index): {warmup:.2f} s", flush=True)
        times = []
        for i in range(args.runs):
            times.append(one_run(runs_dir))
            print(f"run {i + 1}: {times[-1]:.2f} s", flush=True)
        print(f"relay run, 3 questions, auto-approved: median {statistics.median(times):.2f} s "
              f"(min {min(times):.2f}, max {max(times):.2f}, n={len(times)})")
    finally:
        shutil.rmtree(runs_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
