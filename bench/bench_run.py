"""Benchmark: ``relay run "TOPIC" --questions 3 --auto-approve``, process start to exit, on
the local runtime with the default corpus (botocore's AWS docs): wall time, CPU time and
a per-phase timeline.

Run on demand (``make bench`` or ``python bench/bench_run.py [--runs N] [--relay PATH]
[--model offline|local] [--fallbacks]``);
it is not a test and asserts nothing. The first run may build the corpus index (cached
under ``RELAY_CACHE_DIR``, default ``~/.cache/relay``); it is reported separately as the
warm-up and left out of the medians. Target: median under 3 s wall on a 2-core box.

Each run is one ``relay`` process. Its CPU time (user and system seconds, its threads and
any children included) is the kernel's accounting of the finished process
(``os.wait4``); the wall time is a monotonic clock read before the start and after the
process is reaped. The timeline stamps each line the process prints as it arrives (the
CLI flushes one line per state), so a phase is the time between two lines:

``validated``  the first line (``relay: execution …``): interpreter, CLI and input checks;
``runtime up`` ``local runtime ready``: moto, the loopback servers, the agents;
``→ State``    each state entered (the state's own time is up to the next line);
``report``     ``relay: SUCCEEDED`` (the run folder is written by then);
``exit``       the process is reaped.

The medians are taken phase by phase over the measured runs. CPU time cannot be
split by phase from outside; the total is printed.

``--model`` is passed to ``relay run`` (``local``: the embedded model, ``make setup-llm``).
Each run's model tokens are read from its cost line. ``--fallbacks`` runs ``relay run
--verbose`` and counts, per run, the ``model fallback`` log lines by fallback
(``relay_agents.runner.FALLBACKS``) and the failed Task attempts the run printed
(``! <Error>``: a named error the state machine retried or reported).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

TOPIC = "How do AWS Step Functions task tokens work?"
#: Lines of ``relay run``'s output that mark a phase, and the phase's name.
MARKS = (
    (re.compile(r"^relay: execution "), "validated"),
    (re.compile(r"local runtime ready"), "runtime up"),
    (re.compile(r"→ (\w+)"), "→ {0}"),
    (re.compile(r"^relay: (SUCCEEDED|REJECTED|FAILED)"), "report"),
)


#: ``relay run``'s cost line's token count.
TOKENS = re.compile(r"^relay: cost: .*?, ([\d,]+) model tokens")
#: A failed Task attempt as ``relay run`` prints it.
FAILED_ATTEMPT = re.compile(r"^\[[ \d.]+s\]\s+! (\w+):")


@dataclass
class Run:
    wall: float
    user: float
    system: float
    #: ``(phase, seconds since the process started)`` in the order printed.
    marks: list[tuple[str, float]] = field(default_factory=list)
    #: Model tokens the cost line counts (``None``: not reported).
    tokens: int | None = None
    #: Fallbacks taken and failed Task attempts, by name (with ``--fallbacks``).
    fallbacks: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)

    @property
    def cpu(self) -> float:
        return self.user + self.system


def one_run(relay: str, runs_dir: Path, model: str | None = None, fallbacks: bool = False) -> Run:
    """One ``relay run`` process; raises ``SystemExit`` with its output when it fails."""
    command = [relay, "run", TOPIC, "--questions", "3", "--auto-approve", "--runs-dir", str(runs_dir)]
    command += ["--model", model] if model else []
    command += ["--verbose"] if fallbacks else []
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=os.environ.copy())
    assert process.stdout is not None and process.stderr is not None
    marks: list[tuple[str, float]] = []
    lines = []
    for line in process.stdout:
        now = time.perf_counter() - started
        lines.append(line)
        for pattern, name in MARKS:
            match = pattern.search(line)
            if match:
                marks.append((name.format(*match.groups()), now))
                break
    errors = process.stderr.read()
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise SystemExit(f"relay run failed ({process.returncode}):\n{''.join(lines)}\n{errors}")
    marks.append(("exit", wall))
    run = Run(wall=wall, user=usage.ru_utime, system=usage.ru_stime, marks=marks)
    for line in lines:
        if (tokens := TOKENS.search(line)) is not None:
            run.tokens = int(tokens.group(1).replace(",", ""))
        if (failed := FAILED_ATTEMPT.search(line)) is not None:
            run.errors[failed.group(1)] += 1
        if line.startswith("{") and '"model fallback"' in line:
            with contextlib.suppress(ValueError):
                run.fallbacks[str(json.loads(line).get("fallback"))] += 1
    return run


def describe(run: Run) -> str:
    text = f"{run.wall:.2f} s wall, {run.cpu:.2f} s CPU ({run.user:.2f} user + {run.system:.2f} sys)"
    text += f", {run.tokens:,} model tokens" if run.tokens is not None else ""
    if run.fallbacks or run.errors:
        counted = sorted(run.fallbacks.items()) + sorted(run.errors.items())
        text += "; " + ", ".join(f"{name} ×{n}" for name, n in counted)
    return text


def timeline(runs: list[Run]) -> list[str]:
    """The median time of each phase mark over ``runs`` (marks every run printed)."""
    names = [name for name, _ in runs[0].marks]
    common = [n for n in names if all(n in dict(r.marks) for r in runs)]
    rows, previous = [], 0.0
    for name in common:
        at = statistics.median(dict(r.marks)[name] for r in runs)
        rows.append(f"  {at:6.2f} s  (+{at - previous:5.2f})  {name}")
        previous = at
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="measured runs after the warm-up (default 5)")
    parser.add_argument("--relay", default=str(Path(sys.executable).with_name("relay")), help="the relay executable (default: this venv's)")
    parser.add_argument("--model", choices=("offline", "local"), default=None, help="relay run --model (default: not passed)")
    parser.add_argument("--fallbacks", action="store_true", help="run with --verbose and count the model fallbacks taken")
    args = parser.parse_args()
    runs_dir = Path(tempfile.mkdtemp(prefix="relay-bench-"))
    try:
        warm_up = one_run(args.relay, runs_dir, args.model, args.fallbacks)
        print(f"warm-up (may build the corpus index): {describe(warm_up)}", flush=True)
        runs = []
        for i in range(args.runs):
            runs.append(one_run(args.relay, runs_dir, args.model, args.fallbacks))
            print(f"run {i + 1}: {describe(runs[-1])}", flush=True)
        walls, cpus = [r.wall for r in runs], [r.cpu for r in runs]
        if all(r.tokens is not None for r in runs):
            print(f"model tokens: median {statistics.median(r.tokens or 0 for r in runs):,.0f}")
        if args.fallbacks:
            total = sum((r.fallbacks + r.errors for r in [warm_up, *runs]), Counter())
            print(f"fallbacks and failed attempts over {len(runs) + 1} runs: " + (", ".join(f"{k} ×{n}" for k, n in sorted(total.items())) or "none"))
        print(
            f"relay run{' --model ' + args.model if args.model else ''}, 3 questions, auto-approved (n={len(runs)}): "
            f"median {statistics.median(walls):.2f} s wall (min {min(walls):.2f}, max {max(walls):.2f}), "
            f"median {statistics.median(cpus):.2f} s CPU (user {statistics.median(r.user for r in runs):.2f}, "
            f"sys {statistics.median(r.system for r in runs):.2f})"
        )
        print("median timeline since the process started (wall):")
        print("\n".join(timeline(runs)))
    finally:
        shutil.rmtree(runs_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
