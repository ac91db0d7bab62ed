"""Load test: ``relay serve`` with N workflows started at once, each approved through its
emailed link, repeated R times. Bounded: N requests per round, a deadline per round,
loopback only; it stops the server it started.

The clients behave as people would: the approver follows each approval email's link
once, as it lands in the outbox; the watcher reads the workflow list
(``GET /workflows``, every page) once a second, not each workflow in turn.

For each round it reports how many ``POST /workflows`` answered 202 with
``Idempotent-Replayed: false`` (distinct keys: a replay would be a lost workflow), how
many workflows were COMPLETED (report written, approved), the wall time from the first
request to the last one listed COMPLETED, workflows per second, the server's peak
RSS, and the peak of the resident memory of the server and every process below it (fork
server, function workers) summed, sampled once a poll (pages the workers share with the
fork server are counted in each). Run on demand::

    python bench/bench_load.py [--workflows 50] [--rounds 3] [--questions 1] [--deadline 900]

It asserts nothing; read the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
import uuid
from pathlib import Path
from typing import Any

RELAY = str(Path(sys.executable).with_name("relay"))
#: Seconds between the watcher's looks at the outbox and the workflow list.
POLL_SECONDS = 1.0
#: Record statuses that end a workflow.
DONE = frozenset({"COMPLETED", "REJECTED", "FAILED", "CANCELLED"})


def request(method: str, url: str, body: dict[str, Any] | None = None, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], Any]:
    data = json.dumps(body).encode() if body is not None else None
    sent = {"Content-Type": "application/json", **(headers or {})} if data is not None else dict(headers or {})
    req = urllib.request.Request(url, data=data, method=method, headers=sent)
    try:
        with urllib.request.urlopen(req, timeout=60) as answer:
            return answer.status, dict(answer.headers), json.loads(answer.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read().decode("utf-8", "replace")


def listed(url: str) -> dict[str, str]:
    """Every workflow ``GET /workflows`` lists (all statuses, every page): id → status."""
    found: dict[str, str] = {}
    token = ""
    while True:
        query = "limit=100" + (f"&next_token={urllib.parse.quote(token)}" if token else "")
        code, _, body = request("GET", f"{url}/workflows?{query}")
        if code != 200:
            raise SystemExit(f"GET /workflows?{query} answered {code}: {body}")
        found.update({item["workflow_id"]: item["status"] for item in body["items"]})
        token = body.get("next_token") or ""
        if not token:
            return found


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def process_tree(pid: int) -> list[int]:
    """``pid`` and every process below it (Linux /proc): the server, its fork server and workers."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            children.setdefault(int(stat.read_text().rsplit(")", 1)[1].split()[1]), []).append(int(stat.parent.name))
        except (OSError, ValueError, IndexError):
            continue
    tree, todo = [pid], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            tree.append(child)
            todo.append(child)
    return tree


def total_rss_mib(pid: int) -> tuple[float, int]:
    """The resident memory of ``pid`` and all its descendants together (MiB), and how many they are."""
    total, count = 0, 0
    for member in process_tree(pid):
        try:
            for line in Path(f"/proc/{member}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
                    count += 1
        except OSError:
            continue
    return total / 1024, count


def cpu_seconds(pid: int) -> tuple[float, float]:
    """CPU seconds (user + system) used so far by ``pid`` itself, and by the processes below it
    that are still running (the fork server and the function workers)."""
    tick = os.sysconf("SC_CLK_TCK")

    def used(member: int) -> float:
        try:
            fields = Path(f"/proc/{member}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return 0.0
        return (int(fields[11]) + int(fields[12])) / tick

    return used(pid), sum(used(member) for member in process_tree(pid)[1:])


def one_round(workflows: int, questions: int, deadline_seconds: float, corpus: str | None, relay: list[str]) -> dict[str, Any]:
    from relay.mailbox import (
        approval_id_of,
        approval_link,
        decide_by_link,
        read_email,
        workflow_id_of,
    )

    data = Path(tempfile.mkdtemp(prefix="relay-load-"))
    command = [*relay, "serve", "--port", "0", "--data-dir", str(data)] + (["--corpus", corpus] if corpus else [])
    server = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert server.stdout is not None
    url = re.match(r"relay: serving (\S+)", server.stdout.readline()).group(1)  # type: ignore[union-attr]
    threading.Thread(target=server.stdout.read, daemon=True).start()  # keep its pipe drained
    try:
        started: dict[str, str] = {}
        replayed = refused = 0
        lock = threading.Lock()

        def start(i: int) -> None:
            nonlocal replayed, refused
            status, headers, body = request(
                "POST", f"{url}/workflows", {"topic": f"How do task tokens work? (load {i})", "questions": questions},
                {"Idempotency-Key": str(uuid.uuid4())},
            )
            with lock:
                if status != 202:
                    refused += 1
                elif headers.get("Idempotent-Replayed") == "true":
                    replayed += 1
                else:
                    started[body["workflow_id"]] = "RUNNING"

        t0 = time.perf_counter()
        threads = [threading.Thread(target=start, args=(i,)) for i in range(workflows)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        # Like an approver with an inbox and a client that lists: each approval email is
        # followed once as it lands, and the finished workflows are read from the status
        # lists (GET /workflows?status=...), not by asking after each workflow in turn.
        approved: set[str] = set()
        seen_mail: set[Path] = set()
        peak_total, peak_processes = 0.0, 0
        deadline = time.monotonic() + deadline_seconds
        while time.monotonic() < deadline and any(s not in DONE for s in started.values()):
            for path in sorted((data / "outbox").glob("*.eml")):
                if path in seen_mail:
                    continue
                seen_mail.add(path)
                message = read_email(path)
                if workflow_id_of(message) in started and approval_id_of(message) not in approved:
                    decide_by_link(approval_link(message), approve=True, decided_by="load test")
                    approved.add(approval_id_of(message))
            for workflow_id, status in listed(url).items():
                if workflow_id in started:
                    started[workflow_id] = status
            rss, processes = total_rss_mib(server.pid)
            peak_total, peak_processes = max(peak_total, rss), max(peak_processes, processes)
            time.sleep(POLL_SECONDS)
        wall = time.perf_counter() - t0
        server_cpu, below_cpu = cpu_seconds(server.pid)
        succeeded = sum(1 for s in started.values() if s == "COMPLETED")
        return {
            "accepted": len(started), "replayed": replayed, "refused": refused, "succeeded": succeeded,
            "wall_s": wall, "per_s": succeeded / wall if wall else 0.0, "peak_rss_mib": peak_rss_mib(server.pid),
            "peak_total_rss_mib": peak_total, "peak_processes": peak_processes,
            "server_cpu_s": server_cpu, "below_cpu_s": below_cpu,
        }  # fmt: skip
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(timeout=60)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workflows", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--questions", type=int, default=1)
    parser.add_argument("--deadline", type=float, default=900, help="seconds per round before giving up")
    parser.add_argument("--corpus", help="corpus folder (default: botocore's AWS docs)")
    parser.add_argument("--relay", default=RELAY, help="the relay command to serve with (to compare versions)")
    args = parser.parse_args()
    rows = []
    for round_ in range(args.rounds):
        row = one_round(args.workflows, args.questions, args.deadline, args.corpus, args.relay.split())
        rows.append(row)
        print(
            f"round {round_ + 1}: {row['succeeded']}/{args.workflows} COMPLETED (accepted {row['accepted']}, "
            f"replayed {row['replayed']}, refused {row['refused']}) in {row['wall_s']:.1f} s = "
            f"{row['per_s']:.2f} workflows/s, serve peak RSS {row['peak_rss_mib']:.0f} MiB, "
            f"all processes peak {row['peak_total_rss_mib']:.0f} MiB (sampled; up to {row['peak_processes']} processes); "
            f"CPU: server {row['server_cpu_s']:.1f} s, its workers {row['below_cpu_s']:.1f} s",
            flush=True,
        )
    full = sum(1 for r in rows if r["succeeded"] == args.workflows)
    print(f"{full} of {args.rounds} rounds had {args.workflows} of {args.workflows} COMPLETED")


if __name__ == "__main__":
    main()
