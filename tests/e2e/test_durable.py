"""Nothing is lost when the local runtime stops: `relay serve` killed with SIGKILL or
stopped with SIGTERM, and `relay run` interrupted with Ctrl-C, each in a real process.

After a restart on the same data folder every workflow is listed with its status,
history and report; the ones in flight are ABORTED ("local runtime stopped at …") and
`relay redrive` takes each to SUCCEEDED without re-running a state that had completed.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from relay.mailbox import fetch
from tests.support.polling import api_status, eventually

RELAY = str(Path(sys.executable).with_name("relay"))


@pytest.fixture(scope="module")
def corpus(callbacks_corpus: Path) -> Path:
    return callbacks_corpus


def environment(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RELAY_")}
    return env | {"HOME": str(home)} | extra


class Server:
    """A `relay serve` process on a data folder."""

    def __init__(self, data_dir: Path, corpus: Path, port: int = 0, **env: str):
        self.data_dir = data_dir
        self.process = subprocess.Popen(
            [RELAY, "serve", "--port", str(port), "--data-dir", str(data_dir), "--corpus", str(corpus), "--retry-time-scale", "0.01"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=environment(data_dir, **env),
        )  # fmt: skip
        assert self.process.stdout is not None
        self.lines: list[str] = []
        while True:
            line = self.process.stdout.readline()
            if not line:
                pytest.fail(f"relay serve stopped: {''.join(self.lines)}{self.process.stderr.read() if self.process.stderr else ''}")
            self.lines.append(line)
            if line.startswith("relay: press Ctrl-C"):
                break
        self.url = re.match(r"relay: serving (\S+)", self.lines[0]).group(1)  # type: ignore[union-attr]

    def cli(self, *args: str) -> tuple[int, Any, str]:
        result = subprocess.run(
            [RELAY, *args, "--data-dir", str(self.data_dir)], capture_output=True, text=True, timeout=60, env=environment(self.data_dir)
        )
        try:
            out = json.loads(result.stdout) if result.stdout.strip() else None
        except ValueError:
            out = result.stdout
        return result.returncode, out, result.stderr

    def status(self, workflow_id: str) -> dict[str, Any]:
        code, status, err = self.cli("status", workflow_id)
        assert code == 0, err
        return dict(status)

    def start(self, topic: str, questions: int = 1) -> str:
        code, started, err = self.cli("start", topic, "--questions", str(questions))
        assert code == 0, err
        return str(started["workflow_id"])

    def wait_for(self, workflow_id: str, what: str, check: Any, timeout: float = 90) -> dict[str, Any]:
        """Poll the API in-process until ``check`` holds, then check it through `relay status`."""
        eventually(lambda: check(api_status(self.url, workflow_id)), timeout=timeout, what=f"{workflow_id}: {what}")
        status = self.status(workflow_id)
        assert check(status), (what, status)
        return status

    def pending(self, workflow_id: str) -> dict[str, Any]:
        return self.wait_for(workflow_id, "approval pending", lambda s: (s.get("approval") or {}).get("status") == "PENDING")

    def approve(self, workflow_id: str) -> None:
        self.pending(workflow_id)
        code, _, err = self.cli("approve", workflow_id)
        assert code == 0, err

    def succeeded(self, workflow_id: str) -> dict[str, Any]:
        return self.wait_for(workflow_id, "SUCCEEDED", lambda s: s["status"] == "SUCCEEDED" and s["record_status"] == "COMPLETED")

    def entered(self, workflow_id: str) -> Counter[str]:
        code, page, err = self.cli("history", workflow_id, "--limit", "1000")
        assert code == 0, err
        return Counter(e["stateEnteredEventDetails"]["name"] for e in page["events"] if e["type"].endswith("StateEntered"))

    def stop(self, sig: signal.Signals) -> int:
        self.process.send_signal(sig)
        self.process.communicate(timeout=60)
        return int(self.process.returncode)


def link_of(server: Server, workflow_id: str) -> str:
    from relay.client import find_approval_link

    return find_approval_link(server.data_dir / "outbox", workflow_id)


def test_kill_9_mid_research_and_mid_approval_loses_nothing_and_redrive_finishes_each(tmp_path, corpus):
    data = tmp_path / "data"
    # Given a server whose researcher answers q03 slowly, so a 3-question workflow is mid-research when killed
    slow = json.dumps([{"endpoint": "agentcore", "match": "q03", "delay_seconds": 300, "times": 1}])
    first = Server(data, corpus, RELAY_LOCAL_FAULTS=slow)
    done = first.start("Task token callbacks, finished")
    first.approve(done)
    report = first.succeeded(done)["report"]
    waiting = [first.start("Task token callbacks, waiting A"), first.start("Task token callbacks, waiting B")]
    for workflow_id in waiting:
        first.pending(workflow_id)
    researching = first.start("Task token callbacks, researching", questions=3)
    first.wait_for(researching, "in research", lambda s: s["current_state"] == "ResearchQuestions")
    old_link = link_of(first, waiting[0])
    # When the server is killed with SIGKILL
    first.process.kill()
    first.process.wait(timeout=30)
    # Then a client command says there is no server, in one line
    code, _, err = first.cli("status", done)
    assert code == 2 and f"no relay serve is running for data folder {data}" in err and len(err.strip().splitlines()) == 1
    # And a new server on the folder replaces the stale serve.json and restores all four workflows
    second = Server(data, corpus)
    banner = "".join(second.lines)
    assert "replaced a stale serve.json" in banner and "restored 4 workflow(s)" in banner
    for workflow_id in [*waiting, researching]:
        assert f"relay: {workflow_id} was running when the last server stopped: ABORTED" in banner
    code, listed, _ = second.cli("list", "--limit", "100")
    assert code == 0 and {i["workflow_id"] for i in listed["items"]} == {done, *waiting, researching}
    assert second.status(done)["report"]["sha256"] == report["sha256"]  # the report survived
    for workflow_id in [*waiting, researching]:
        status = second.wait_for(workflow_id, "recorded as stopped", lambda s: s["record_status"] == "FAILED")
        assert status["status"] == "ABORTED" and status["failure"]["error"] == "Relay.RuntimeStopped"
        assert status["failure"]["cause"].startswith("local runtime stopped at ")
    assert second.status(waiting[0])["failure"]["state"] == "RequestApproval"
    assert second.status(researching)["failure"]["state"] == "ResearchQuestions"
    # the pending approval's link says the server stopped and how to resume (410)
    page = fetch(old_link.replace(first.url, second.url))
    assert page.status == 410 and f"relay redrive {waiting[0]}" in page.html
    # When each interrupted workflow is redriven (and approved), Then it succeeds without re-running completed states
    for workflow_id in [*waiting, researching]:
        code, redriven, err = second.cli("redrive", workflow_id)
        assert code == 0, err
    for workflow_id in [*waiting, researching]:
        second.approve(workflow_id)
        assert second.succeeded(workflow_id)["redrive_count"] == 1
    for workflow_id in waiting:
        entered = second.entered(workflow_id)
        assert [entered[s] for s in ("PlanResearch", "ResearchQuestions", "CompileResearch", "AnalyzeResearch")] == [1, 1, 1, 1]
        assert entered["RequestApproval"] == 2
    entered = second.entered(researching)
    assert entered["PlanResearch"] == 1 and entered["ResearchQuestions"] == 2
    assert second.stop(signal.SIGINT) == 0


def test_kill_9_while_the_researcher_works_by_callback_then_redrive_asks_it_again(tmp_path, corpus):
    data = tmp_path / "data"
    # Given a server whose researcher accepts q02 and never calls back (it works, as far as
    # the engine knows: the task waits for its callback, HeartbeatSeconds 300)
    lost = json.dumps([{"endpoint": "agentcore", "match": "q02", "lost": True, "times": 1}])
    first = Server(data, corpus, RELAY_LOCAL_FAULTS=lost)
    researching = first.start("Task token callbacks, researching", questions=2)
    first.wait_for(researching, "in research", lambda s: s["current_state"] == "ResearchQuestions")
    # (q01's finding written through to the folder: its sibling q02 was asked beside it)
    eventually(lambda: [p for p in data.rglob("*q01.md") if researching in str(p)], timeout=60, what="q01's finding on disk")
    # When the server is killed with SIGKILL while the Map waits on q02's callback
    first.process.kill()
    first.process.wait(timeout=30)
    # Then a new server restores it ABORTED at the Map
    second = Server(data, corpus)
    assert f"relay: {researching} was running when the last server stopped: ABORTED" in "".join(second.lines)
    status = second.wait_for(researching, "recorded as stopped", lambda s: s["record_status"] == "FAILED")
    assert status["status"] == "ABORTED" and status["failure"]["state"] == "ResearchQuestions"
    # And a redrive asks the researcher again (a new task token) and the workflow succeeds
    code, _, err = second.cli("redrive", researching)
    assert code == 0, err
    second.approve(researching)
    assert second.succeeded(researching)["redrive_count"] == 1
    entered = second.entered(researching)
    assert entered["PlanResearch"] == 1 and entered["ResearchQuestions"] == 2
    assert second.stop(signal.SIGINT) == 0


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_sigterm_then_restart_keeps_the_waiting_workflow_redrivable(tmp_path, corpus):
    import urllib.request

    data, port = tmp_path / "data", _free_port()
    first = Server(data, corpus, port=port)
    # (one address: serve.json records the API and the console, both on the server's port)
    addresses = {"api_url": f"http://127.0.0.1:{port}", "console_url": f"http://127.0.0.1:{port}/console/"}
    published = json.loads((data / "serve.json").read_text())
    assert {k: published[k] for k in addresses} == addresses
    assert f"relay: console {addresses['console_url']} " in "".join(first.lines)
    with urllib.request.urlopen(addresses["console_url"] + "executions", timeout=30) as answer:
        assert answer.status == 200 and "Executions" in answer.read().decode("utf-8")
    workflow_id = first.start("Task token callbacks after SIGTERM")
    first.pending(workflow_id)
    assert first.stop(signal.SIGTERM) == 0
    assert not (data / "serve.json").exists()
    second = Server(data, corpus, port=port)
    published = json.loads((data / "serve.json").read_text())
    assert {k: published[k] for k in addresses} == addresses  # the same two addresses after the restart
    assert f"relay: {workflow_id} was running when the last server stopped: ABORTED" in "".join(second.lines)
    second.wait_for(workflow_id, "recorded as stopped", lambda s: s["record_status"] == "FAILED")
    code, _, err = second.cli("redrive", workflow_id)
    assert code == 0, err
    second.approve(workflow_id)
    assert second.succeeded(workflow_id)["redriven_from"] == "RequestApproval"
    assert second.entered(workflow_id)["AnalyzeResearch"] == 1
    assert second.stop(signal.SIGINT) == 0


def test_a_second_server_on_the_same_folder_is_refused_naming_the_first(tmp_path, corpus):
    data = tmp_path / "data"
    first = Server(data, corpus)
    result = subprocess.run(
        [RELAY, "serve", "--port", "0", "--data-dir", str(data)], capture_output=True, text=True, timeout=60, env=environment(data)
    )
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"relay: error: another relay serve (pid {first.process.pid}, {first.url}) is using data folder {data}; "
        "stop it first, or use another --data-dir"
    )
    assert json.loads((data / "serve.json").read_text())["pid"] == first.process.pid  # the first keeps its file
    assert first.stop(signal.SIGINT) == 0


def test_ctrl_c_of_relay_run_while_it_waits_then_redrive_of_its_folder_writes_the_report(tmp_path, corpus):
    runs = tmp_path / "runs"
    process = subprocess.Popen(
        [RELAY, "run", "Task token callbacks interrupted", "--questions", "2", "--corpus", str(corpus), "--runs-dir", str(runs)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=environment(tmp_path),
    )  # fmt: skip
    assert process.stdout is not None
    lines = []
    for line in process.stdout:
        lines.append(line)
        if "open this link to approve or reject" in line:
            break
    else:
        pytest.fail("".join(lines))
    # When Ctrl-C arrives while it waits for approval
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=60)
    # Then it exits 130 with one line naming the command that resumes it, and no traceback
    (run_dir,) = runs.iterdir()
    assert process.returncode == 130
    assert err.strip().splitlines()[-1] == (
        f"relay: interrupted (SIGINT); everything is kept in {run_dir}/; resume with:  relay redrive {run_dir}/"
    )
    assert "Traceback" not in err
    assert json.loads((run_dir / "execution.json").read_text())["status"] == "ABORTED"
    # When the folder is redriven with --auto-approve
    resumed = subprocess.run(
        [RELAY, "redrive", f"{run_dir}/", "--auto-approve"], capture_output=True, text=True, timeout=120, env=environment(tmp_path)
    )
    # Then the report is written and no earlier state ran again
    assert resumed.returncode == 0, resumed.stderr
    assert "redrive 1: resuming at RequestApproval" in resumed.stdout
    assert (run_dir / "report.md").is_file() and "callbacks.md" in (run_dir / "report.md").read_text()
    history = json.loads((run_dir / "history.json").read_text())
    entered = Counter(e["stateEnteredEventDetails"]["name"] for e in history if e["type"].endswith("StateEntered"))
    assert entered["PlanResearch"] == 1 and entered["ResearchQuestions"] == 1 and entered["RequestApproval"] == 2
    assert json.loads((run_dir / "execution.json").read_text())["status"] == "SUCCEEDED"
    # And a folder that is not a run is refused in one line
    code = subprocess.run([RELAY, "redrive", f"{tmp_path}/"], capture_output=True, text=True, timeout=60, env=environment(tmp_path))
    assert code.returncode == 2 and code.stderr.strip().startswith(f"relay: error: RUN_DIR: {tmp_path} is not a relay run folder")
