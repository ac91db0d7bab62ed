"""`relay run` as a user runs it: a real process, a real email, a real link."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

RELAY = str(Path(sys.executable).with_name("relay"))


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("docs")
    (folder / "callbacks.md").write_text(
        "# Callbacks\n\nA Task state can pause with waitForTaskToken until an external system calls SendTaskSuccess "
        "with the task token. A heartbeat keeps long tasks alive. Task tokens are opaque strings.\n"
    )
    (folder / "reviews.html").write_text(
        "<h1>Reviews</h1><p>Reviewers approve or reject an analysis. A rejection carries feedback for the next revision.</p>"
    )
    return folder


def test_auto_approved_run_writes_the_report_history_artifacts_and_email(corpus, tmp_path):
    result = subprocess.run(
        [RELAY, "run", "How do task tokens pause a workflow?", "--questions", "2", "--auto-approve",
         "--corpus", str(corpus), "--runs-dir", str(tmp_path)],
        capture_output=True, text=True, timeout=180,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    for state in ("PlanResearch", "ResearchQuestions", "RequestApproval", "FinalizeWorkflow"):
        assert f"✓ {state}" in result.stdout
    (run_dir,) = tmp_path.iterdir()
    report = (run_dir / "report.md").read_text()
    assert "callbacks.md" in report and "offline extractive model" in report
    history = json.loads((run_dir / "history.json").read_text())
    assert history[0]["type"] == "ExecutionStarted" and history[-1]["type"] == "ExecutionSucceeded"
    assert json.loads((run_dir / "execution.json").read_text())["status"] == "SUCCEEDED"
    assert {p.name for p in (run_dir / "artifacts").iterdir()} >= {"research.md", "analysis-r0.md", "report.md", "findings"}
    assert list((run_dir / "outbox").glob("*.eml"))
    # The last lines: the outcome, the report's quality check (headline, then each unanswered
    # question), then where the report is
    from relay_core.models import QualityAssessment

    check = QualityAssessment.model_validate_json((run_dir / "artifacts" / "report.quality.json").read_text()).check()
    tail = result.stdout.splitlines()[-(3 + len(check.unanswered)):]
    assert tail[0].startswith("relay: SUCCEEDED in ")
    assert tail[1] == f"relay: quality: {check.headline()}" and " questions answered · " in tail[1]
    assert tail[2:-1] == [f"relay:   unanswered: {question}" for question in check.unanswered]
    assert tail[-1] == f"relay: report: {run_dir / 'report.md'}"
    # and the approval email carried the analysis's
    analysis = QualityAssessment.model_validate_json((run_dir / "artifacts" / "analysis-r0.quality.json").read_text()).check()
    from relay.mailbox import approval_emails

    ((_, email),) = approval_emails(run_dir / "outbox")
    assert f"  {analysis.headline()}" in email.get_content()


def test_without_auto_approve_the_run_prints_the_link_and_waits_for_a_person(corpus, tmp_path):
    from relay.mailbox import decide_by_link

    process = subprocess.Popen(
        [RELAY, "run", "Reviews of task token callbacks", "--questions", "1", "--corpus", str(corpus), "--runs-dir", str(tmp_path)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        link = None
        deadline = time.time() + 120
        assert process.stdout is not None
        while link is None and time.time() < deadline:
            line = process.stdout.readline()
            match = re.search(r"(http://127\.0\.0\.1:\d+/approvals/\S+)", line)
            link = match.group(1) if match else None
        assert link, "no approval link printed"
        # still waiting for the decision: the process runs and its execution is RUNNING in RequestApproval
        assert process.poll() is None
        (state,) = tmp_path.glob("*/state/executions/*")
        assert json.loads((state / "execution.json").read_text())["status"] == "RUNNING"
        history = json.loads((state / "history.json").read_text())
        entered = [e["stateEnteredEventDetails"]["name"] for e in history if e["type"].endswith("StateEntered")]
        assert entered[-1] == "RequestApproval"
        page = decide_by_link(link, approve=True, decided_by="e2e")
        assert page.status == 200
        out, err = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, out + err
    assert "SUCCEEDED" in out


def test_auto_approve_follows_only_the_pending_approvals_link_whatever_the_topic_says(corpus, tmp_path):
    # Given a topic that quotes an approval-like URL and another workflow's id
    topic = ("Task tokens: see http://127.0.0.1:9/approvals/AAAAAAAAAAAAAAAAAAAAAA?exp=1&sig=" + "x" * 43
             + " Workflow: relay-20260101-000000-dead")
    result = subprocess.run(
        [RELAY, "run", topic, "--questions", "1", "--auto-approve", "--corpus", str(corpus), "--runs-dir", str(tmp_path)],
        capture_output=True, text=True, timeout=180,
    )
    # Then the run approves its own request through its own link and succeeds, with no traceback
    assert result.returncode == 0, result.stdout + result.stderr
    assert "approved (--auto-approve followed the emailed link)" in result.stdout
    assert "Traceback" not in result.stderr


def test_run_with_console_serves_the_finished_run_until_ctrl_c(corpus, tmp_path):
    import signal
    import urllib.request

    # Given `relay run --console`, auto-approved
    process = subprocess.Popen(
        [RELAY, "run", "How do task tokens pause a workflow?", "--questions", "1", "--auto-approve", "--console",
         "--corpus", str(corpus), "--runs-dir", str(tmp_path)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert process.stdout is not None
        url, lines, deadline = None, [], time.time() + 150
        while url is None and time.time() < deadline:
            line = process.stdout.readline()
            lines.append(line)
            match = re.search(r"the console keeps serving at (http://127\.0\.0\.1:\d+/console/)", line)
            url = match.group(1) if match else None
        assert url, "".join(lines)
        # When the run has finished, Then the process still serves the console, and its list shows the run SUCCEEDED
        assert "relay: SUCCEEDED" in "".join(lines) and process.poll() is None
        with urllib.request.urlopen(url + "executions?status=SUCCEEDED", timeout=30) as answer:
            page = answer.read().decode("utf-8")
        assert answer.status == 200 and "SUCCEEDED" in page and 'data-name="relay-' in page
        # And Ctrl-C stops it
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert "relay: console stopped" in out, out + err
    assert process.returncode == 0, out + err
