"""Benchmark: wall time of a full ``cdk synth`` of the Relay app through the pinned npm CLI.

Usage::

    python bench/bench_synth.py            # 5 runs
    python bench/bench_synth.py -n 3 --fresh

Each run is ``npx --no-install cdk synth --quiet`` offline, with fake credentials and
no telemetry, into ``cdk.out`` under a temporary directory: reused across runs by
default (a developer's repeated synth: assets already staged), or a new one per run
with ``--fresh`` (a clean checkout's first synth after the layer build). The layers
must already be built (``python -m stacks.layer_build``); the first, cache-warming run
is not counted. Prints each run and the median in seconds.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from stacks.offline_env import offline_env as env  # noqa: E402


def synth_once(outdir: Path, home: Path) -> float:
    cmd = ["npx", "--no-install", "cdk", "synth", "--quiet", "--no-notices", "-c", "approverEmail=bench@example.com",
           "--output", str(outdir)]  # fmt: skip
    start = time.perf_counter()
    result = subprocess.run(cmd, cwd=ROOT, env=env(home), capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        sys.exit(f"cdk synth failed ({result.returncode}):\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("-n", "--runs", type=int, default=5)
    parser.add_argument("--fresh", action="store_true", help="a new cdk.out for every run")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="relay-bench-") as tmp:
        home = Path(tmp)
        shared = home / "cdk.out"
        synth_once(shared, home)  # warm-up: layer cache, assets staged once
        times = []
        for i in range(args.runs):
            out = home / f"cdk.out.{i}" if args.fresh else shared
            times.append(synth_once(out, home))
            print(f"run {i + 1}: {times[-1]:.2f} s", flush=True)
            if args.fresh:
                shutil.rmtree(out, ignore_errors=True)
    print(
        f"median of {args.runs} {'fresh' if args.fresh else 'warm'} synths: {statistics.median(times):.2f} s"
    )


if __name__ == "__main__":
    main()
