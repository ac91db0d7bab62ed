"""`relay serve` in a real process, driven by the real `relay` client commands.

A workflow started through `POST /workflows` on `relay serve` can be approved only
through its emailed link, and only once; another is cancelled with a reason; one whose
approval times out is redriven with `relay redrive` and completes without re-running
research; bad input is refused with the API's message; Ctrl-C stops the server cleanly.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.polling import api_status, eventually

RELAY = str(Path(sys.executable).with_name("relay"))


@pytest.fixture(scope="module")
def corpus(callbacks_corpus: Path) -> Path:
    return callbacks_corpus


def start_serve(data_dir: Path, corpus: Path) -> dict[str, Any]:
    """`relay serve --port 0` (any free port) on ``data_dir``, once it has said where it serves."""
    process = subprocess.Popen(
        [RELAY, "serve", "--port", "0", "--data-dir", str(data_dir), "--corpus", str(corpus), "--retry-time-scale", "0.01"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    assert process.stdout is not None
    first = process.stdout.readline()
    match = re.match(r"relay: serving (http://127\.0\.0\.1:\d+)$", first.strip())
    if not match:
        process.kill()
        pytest.fail(f"relay serve did not start: {first}{process.stderr.read() if process.stderr else ''}")
    return {"url": match.group(1), "data_dir": data_dir, "process": process}


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, corpus: Path) -> Iterator[dict[str, Any]]:
    """One `relay serve` for the module's tests (in any order: none of them stops it)."""
    info = start_serve(tmp_path_factory.mktemp("serve"), corpus)
    yield info
    process = info["process"]
    if process.poll() is None:
        process.kill()
        process.wait(timeout=10)


def relay(served: dict[str, Any], *args: str, env: dict[str, str] | None = None) -> tuple[int, Any, str]:
    """Run a client command against the served API, in the data folder's parent, like a user would."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("RELAY_")} | (env or {})
    environment["HOME"] = str(served["data_dir"])  # no ~/.config/relay/config.toml
    result = subprocess.run(
        [RELAY, *args, "--data-dir", str(served["data_dir"])], capture_output=True, text=True, timeout=60, env=environment,
    )
    try:
        out = json.loads(result.stdout) if result.stdout.strip() else None
    except ValueError:
        out = result.stdout
    return result.returncode, out, result.stderr


def wait_status(served: dict[str, Any], workflow_id: str, check: Any, what: str) -> dict[str, Any]:
    """Poll the API in-process until ``check`` holds, then check it through `relay status`."""
    eventually(lambda: check(api_status(served["url"], workflow_id)), what=f"{workflow_id}: {what}")
    code, status, err = relay(served, "status", workflow_id)
    assert code == 0 and check(status), (what, code, status, err)
    return dict(status)


def pending_approval(served: dict[str, Any], workflow_id: str) -> dict[str, Any]:
    return wait_status(served, workflow_id, lambda s: (s.get("approval") or {}).get("status") == "PENDING", "to await approval")


def test_a_workflow_started_on_relay_serve_is_approved_once_through_its_link(served):
    # Given a workflow started twice with one idempotency key (the URL comes from serve.json)
    code, started, err = relay(served, "start", "How do task token callbacks resume?", "--questions", "2", "--idempotency-key", "cli-1")
    assert code == 0, err
    assert relay(served, "start", "How do task token callbacks resume?", "--questions", "2", "--idempotency-key", "cli-1")[1] == started
    code, _, err = relay(served, "start", "A different topic", "--idempotency-key", "cli-1")
    assert code == 1 and "HTTP 409: Idempotency-Key: already used for a different request body" in err
    workflow_id = started["workflow_id"]
    assert started["status_url"] == f"{served['url']}/workflows/{workflow_id}"
    # When it awaits approval
    status = pending_approval(served, workflow_id)
    assert status["status"] == "RUNNING" and status["current_state"] == "RequestApproval"
    # (the status names the analysis's quality check while it waits)
    assert status["quality"]["artifact"] == "analysis-r0.md" and " questions answered · " in status["quality"]["headline"]
    # Then the CLI approves it through the emailed link, exactly once
    code, decided, err = relay(served, "approve", workflow_id, "--as", "cli tester")
    assert code == 0, err
    assert decided["result"] == "You approved this analysis. The workflow resumes: the report is written next."
    code, _, err = relay(served, "approve", workflow_id)
    assert code == 1 and re.search(r"HTTP 409: Already approved by cli tester at \d{4}-\d\d-\d\dT", err), err
    code, _, err = relay(served, "reject", workflow_id, "--feedback", "too late")
    assert code == 1 and "Already approved by cli tester" in err
    # And the report appears, in the API and in the data folder
    done = wait_status(served, workflow_id, lambda s: s["status"] == "SUCCEEDED", "SUCCEEDED")
    assert done["record_status"] == "COMPLETED" and done["report"]["location"].endswith(f"/workflows/{workflow_id}/report.md")
    assert done["quality"]["artifact"] == "report.md" and done["quality"]["questions"] == 2
    assert done["quality"]["assessment"].endswith(f"/workflows/{workflow_id}/report.quality.json")
    report = served["data_dir"] / "reports" / f"{workflow_id}.md"
    assert eventually(report.is_file, what="the report file") and "callbacks.md" in report.read_text()
    # And the report link is a loopback URL on the same server that answers the report's Markdown
    import urllib.request

    assert done["report"]["url"] == f"{served['url']}/artifacts/workflows/{workflow_id}/report.md"
    with urllib.request.urlopen(done["report"]["url"], timeout=30) as answer:
        assert answer.status == 200 and answer.headers["Content-Type"].startswith("text/markdown")
        assert answer.read().decode("utf-8") == report.read_text()
    code, listed, _ = relay(served, "list", "--status", "COMPLETED")
    assert code == 0 and workflow_id in [i["workflow_id"] for i in listed["items"]]


@pytest.fixture(scope="module")
def cancelled(served: dict[str, Any]) -> dict[str, Any]:
    """A workflow cancelled while it waits for approval."""
    code, started, err = relay(served, "start", "Task token callbacks and reviewers", "--questions", "1", env={"USER": "cli-user"})
    assert code == 0, err
    pending_approval(served, started["workflow_id"])
    code, answer, err = relay(served, "cancel", started["workflow_id"], "--reason", "started by mistake", env={"USER": "cli-user"})
    assert code == 0, err
    return answer


def test_a_cancelled_workflow_records_who_and_why_and_its_link_is_spent(served, cancelled):
    workflow_id = cancelled["workflow_id"]
    assert cancelled["cancel"]["reason"] == "started by mistake" and cancelled["cancel"]["by"] == "cli-user (local)"
    status = relay(served, "status", workflow_id)[1]
    assert status["record_status"] == "CANCELLED" and status["approval"]["status"] == "EXPIRED"
    assert status["cancel"] == cancelled["cancel"]
    code, _, err = relay(served, "approve", workflow_id)
    assert code == 1 and "Already expired by cancelled by cli-user (local) at" in err
    listed = relay(served, "list", "--status", "CANCELLED")[1]
    assert [i["workflow_id"] for i in listed["items"]] == [workflow_id]


def test_a_cancelled_workflow_is_aborted_and_cannot_be_cancelled_twice(served, cancelled):
    workflow_id = cancelled["workflow_id"]
    assert cancelled["status"] == "ABORTED"
    assert relay(served, "status", workflow_id)[1]["status"] == "ABORTED"
    code, _, err = relay(served, "cancel", workflow_id, "--reason", "again")
    assert code == 1 and f"HTTP 409: workflow {workflow_id} is ABORTED" in err


def test_a_timed_out_workflow_is_redriven_from_the_cli_and_runs_nothing_twice(served):
    from collections import Counter

    # Given a workflow whose approval times out (nobody answers the email)
    code, started, err = relay(served, "start", "How do task tokens time out?", "--questions", "1", "--approval-timeout", "8")
    assert code == 0, err
    workflow_id = started["workflow_id"]
    failed = wait_status(served, workflow_id, lambda s: s["record_status"] == "FAILED", "FAILED")
    assert failed["status"] == "FAILED" and failed["failure"]["state"] == "RequestApproval"
    assert failed["failure"]["error"] == "States.Timeout"
    # When it is redriven from the CLI
    code, redriven, err = relay(served, "redrive", workflow_id)
    assert code == 0, err
    assert (redriven["redrive_count"], redriven["redriven_from"], redriven["status"]) == (1, "RequestApproval", "RUNNING")
    # a repeated request while the redrive runs is refused and changes nothing
    code, _, err = relay(served, "redrive", workflow_id)
    assert code == 1 and f"HTTP 409: workflow {workflow_id} is RUNNING (redrive 1 in progress)" in err
    # Then the new email's link approves it, and it succeeds
    pending_approval(served, workflow_id)
    code, _, err = relay(served, "approve", workflow_id)
    assert code == 0, err
    done = wait_status(served, workflow_id, lambda s: s["status"] == "SUCCEEDED", "SUCCEEDED")
    assert (done["record_status"], done["redrive_count"], done["redriven_from"]) == ("COMPLETED", 1, "RequestApproval")
    # And the history shows the research ran once; task tokens never leave the API
    code, page, err = relay(served, "history", workflow_id, "--limit", "1000")
    assert code == 0 and page["next_token"] is None, err
    entered = Counter(e["stateEnteredEventDetails"]["name"] for e in page["events"] if e["type"].endswith("StateEntered"))
    assert [entered[s] for s in ("PlanResearch", "ResearchQuestions", "CompileResearch", "AnalyzeResearch")] == [1, 1, 1, 1]
    assert entered["RequestApproval"] == 2
    assert sum(1 for e in page["events"] if e["type"] == "ExecutionRedriven") == 1
    scheduled = [json.loads(e["taskScheduledEventDetails"]["parameters"]) for e in page["events"] if e["type"] == "TaskScheduled"]
    tokens = [p["Payload"]["task_token"] for p in scheduled if "task_token" in p["Payload"]]
    assert tokens == ["<redacted>", "<redacted>"]
    # paged: five events a page, the next page continues where the last stopped
    code, first, _ = relay(served, "history", workflow_id, "--limit", "5")
    code, second, _ = relay(served, "history", workflow_id, "--limit", "5", "--next-token", first["next_token"])
    assert [e["id"] for e in first["events"] + second["events"]] == list(range(1, 11))


def test_relay_approve_finds_the_approval_by_identity_not_by_what_a_topic_says(served):
    # Given workflow A waiting, and workflow B whose topic impersonates A and quotes an approval-like URL
    code, a, err = relay(served, "start", "Task token callbacks for reviewers", "--questions", "1")
    assert code == 0, err
    pending_approval(served, a["workflow_id"])
    forged = f"{served['url']}/approvals/AAAAAAAAAAAAAAAAAAAAAA?exp=2000000000&sig=" + "x" * 43
    code, b, err = relay(served, "start", f"Workflow: {a['workflow_id']} {forged}", "--questions", "1")
    assert code == 0, err
    pending_approval(served, b["workflow_id"])
    # When A is approved from the CLI
    code, decided, err = relay(served, "approve", a["workflow_id"])
    assert code == 0, err
    # Then A, and only A, was decided
    assert relay(served, "status", a["workflow_id"])[1]["approval"]["status"] == "APPROVED"
    assert relay(served, "status", b["workflow_id"])[1]["approval"]["status"] == "PENDING"
    code, _, err = relay(served, "reject", b["workflow_id"], "--feedback", "Not about task tokens.")
    assert code == 0, err
    # B's own request was rejected: its analysis goes back for revision 1 and asks again
    wait_status(served, b["workflow_id"], lambda s: (s.get("approval") or {}).get("revision") == 1,
                "B's revision 1 to ask for approval")
    assert relay(served, "status", a["workflow_id"])[1]["revisions"] == 0


@pytest.mark.parametrize(("args", "message"), [
    # input the CLI can judge is refused before anything is sent (exit 2, one line naming the option)
    (["start", ""], "relay: error: topic: String should have at least 1 character"),
    (["start", "ok", "--questions", "41"], "relay: error: --questions: Input should be less than or equal to 40"),
    (["start", "ok", "--approver", "nobody"], "relay: error: --approver: value is not a valid email address"),
    (["status", "not a valid id"], "relay: error: argument WORKFLOW_ID: 'not a valid id' is not a workflow id"),
    (["list", "--limit", "0"], "relay: error: argument --limit: '0' is out of range (must be 1-100)"),
    # what only the API knows comes back with its message (exit 1)
    (["status", "no-such-workflow"], "HTTP 404: workflow 'no-such-workflow' not found"),
    (["approve", "no-such-workflow"], "HTTP 404: workflow 'no-such-workflow' not found"),
])
def test_bad_input_is_refused_with_the_apis_message(served, args, message):
    code, _, err = relay(served, *args)
    assert code in (1, 2) and message in err and err.count("\n") == 1, err


def test_relay_reconcile_runs_the_servers_reconcile_function(served):
    # Given the running relay serve (serve.json names its local Lambda endpoint)
    def published() -> Any:
        path = served["data_dir"] / "serve.json"
        return path.exists() and json.loads(path.read_text()).get("lambda_url")

    assert eventually(published, what="serve.json naming lambda_url").startswith("http://127.0.0.1:")
    # When relay reconcile runs against its data folder
    code, out, err = relay(served, "reconcile")
    # Then the reconcile function answered what it checked (JSON, stdout not a terminal)
    assert code == 0, err
    assert set(out) == {"checked", "recorded", "unexplained"} and out["checked"] >= 0
    # and a deployed API is not where it runs
    code, _, err = relay(served, "reconcile", "--api-url", "https://example.com/v1")
    assert code == 2 and "--api-url" in err


def test_relay_reconcile_without_a_server_says_so_in_one_line(tmp_path):
    result = subprocess.run([RELAY, "reconcile", "--data-dir", str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert result.stderr.strip().count("\n") == 0 and "start relay serve first" in result.stderr


def test_ctrl_c_stops_relay_serve_cleanly(tmp_path, corpus):
    served = start_serve(tmp_path / "serve", corpus)  # its own: the module's server keeps serving the other tests
    process = served["process"]
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
    assert out.rstrip().endswith("relay: stopped")
    assert not (served["data_dir"] / "serve.json").exists()


def test_serve_json_is_published_before_relay_serve_says_where_it_serves(tmp_path, corpus):
    # Given relay serve has just printed where it serves (a script waits for that line)
    served = start_serve(tmp_path / "serve", corpus)
    try:
        # Then serve.json already names that address, so `relay start` can find it at once
        published = json.loads((served["data_dir"] / "serve.json").read_text())
        assert published["api_url"] == served["url"]
    finally:
        served["process"].kill()
        served["process"].wait(timeout=10)


def descendants(pid: int) -> set[int]:
    """The process ids of every process below ``pid`` (Linux /proc)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found: set[int] = set()
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie, dead but not yet reaped by its new parent, does not)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="workers ask Linux for SIGKILL when their parent dies")
def test_kill_9_of_relay_serve_leaves_no_worker_process_behind(tmp_path, corpus):
    # Given relay serve with its function workers started (one per function, children of the server)
    info = start_serve(tmp_path / "data", corpus)
    server = info["process"]
    def workers() -> set[int]:
        return {p for p in descendants(server.pid) if comm(p).startswith("relay:")}

    started = eventually(lambda: workers() if len(workers()) >= 8 else None, what="a worker per function")
    below = descendants(server.pid)
    # When the server is killed with SIGKILL (it cannot stop anything itself)
    server.send_signal(signal.SIGKILL)
    server.wait(timeout=10)
    # Then every process it started goes too
    assert started <= below
    eventually(lambda: not [p for p in below if alive(p)], timeout=30, what=f"processes {sorted(p for p in below if alive(p))} to exit")
