"""A real browser decides a workflow from its emails: headless Chromium (Debian's package)
driven by Playwright, against the local runtime serving the same handlers as API Gateway.

Started through ``POST /workflows``; the first email's link is opened in the browser
and rejected with feedback; the execution goes back to AnalyzeResearch and a second
email arrives; its link is approved; ``GET /workflows/{id}`` then shows SUCCEEDED and
the report. Everything the run produced (log records, emails, the pages the browser
loaded and the URLs it requested, API answers) is searched for the task tokens.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.polling import eventually

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-proxy-server",
]
pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).exists(), reason=f"Debian's chromium is not installed at {CHROMIUM} (`make setup-test` installs it)"
)
TOPIC = "How do task tokens resume a workflow waiting for approval?"
FEEDBACK = "Explain what happens when the approval link expires."


class Captured(logging.Handler):
    """Every log record, with all its fields, as text, appended to ``lines``."""

    def __init__(self, lines: list[str]) -> None:
        super().__init__(logging.DEBUG)
        self.lines = lines

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage() + " " + repr(vars(record)))


@pytest.fixture(scope="module")
def logs() -> Iterator[list[str]]:
    """Log records of the relay logger (Powertools, at DEBUG) and of every other logger.
    Two handlers: Powertools filters the relay logger's records out of root handlers."""
    lines: list[str] = []
    watched = {logging.getLogger(): Captured(lines), logging.getLogger("relay"): Captured(lines)}
    levels = {lg: lg.level for lg in watched}
    for lg, handler in watched.items():
        lg.addHandler(handler)
    logging.getLogger("relay").setLevel(logging.DEBUG)
    yield lines
    for lg, handler in watched.items():
        lg.removeHandler(handler)
        lg.setLevel(levels[lg])


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("corpus")
    (folder / "task-tokens.md").write_text(
        "# Task tokens\n\nA Task state with the waitForTaskToken integration pattern pauses the execution and passes "
        "a task token to the integrated service. The execution resumes when SendTaskSuccess or SendTaskFailure is "
        "called with that token. A task token can wait up to one year in a Standard workflow.\n"
    )
    (folder / "approvals.txt").write_text(
        "Human approval steps email a reviewer a link. The reviewer approves or rejects a workflow. Rejections carry "
        "feedback so the analysis can be revised. Approval links expire and cannot be decided twice.\n"
    )
    return folder


@pytest.fixture(scope="module")
def relay(tmp_path_factory: pytest.TempPathFactory, corpus: Path, logs: list[str]) -> Iterator[Any]:
    from relay.local.runtime import LocalRelay

    with LocalRelay(data_dir=tmp_path_factory.mktemp("relay"), corpus=str(corpus), retry_time_scale=0.01, log_level="INFO") as runtime:
        yield runtime


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")), executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
        )
        yield context
        context.close()


class Seen:
    """What the browser loaded and requested."""

    def __init__(self) -> None:
        self.urls: list[str] = []
        self.pages: list[str] = []
        self.posts: list[Any] = []

    def attach(self, page: Any) -> None:
        page.on("request", self._request)
        page.on("response", self._response)

    def _request(self, request: Any) -> None:
        self.urls.append(request.url)
        if request.method == "POST":
            self.posts.append(request)

    def _response(self, response: Any) -> None:
        with contextlib.suppress(Exception):  # redirects and aborted loads have no body
            self.pages.append(response.text())


def api(relay: Any, method: str, path: str, body: dict[str, Any] | None = None, headers: dict[str, str] | None = None) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(
        relay.api_url + path, data=json.dumps(body).encode() if body is not None else None, method=method,
        headers={"Content-Type": "application/json", **(headers or {})},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.status, json.loads(response.read())


def emails_for(relay: Any, workflow_id: str) -> list[tuple[Path, Any]]:
    from relay.mailbox import approval_emails

    return approval_emails(relay.outbox, workflow_id)


def test_reject_in_the_browser_revises_then_approve_writes_the_report_and_no_token_leaks(relay, browser, logs, tmp_path):
    from relay.mailbox import approval_link, fetch

    answers: list[str] = []
    # Given a workflow started through the API
    status, started = api(relay, "POST", "/workflows", {"topic": TOPIC, "questions": 2}, {"Idempotency-Key": "browser-e2e"})
    assert status == 202
    workflow_id = started["workflow_id"]
    answers.append(json.dumps(started))

    # When its approval email arrives, and a mail scanner fetches the link 20 times
    first_path, first_email = eventually(lambda: emails_for(relay, workflow_id), what="the first approval email")[0]
    first_link = approval_link(first_email)
    assert {fetch(first_link).status for _ in range(20)} == {200}
    _, status_body = api(relay, "GET", f"/workflows/{workflow_id}")
    answers.append(json.dumps(status_body))
    # Then nothing was decided
    assert status_body["approval"]["status"] == "PENDING" and status_body["current_state"] == "RequestApproval"

    # When the approver opens the link in a browser and rejects with feedback
    seen = Seen()
    page = browser.new_page()
    seen.attach(page)
    page.goto(first_link)
    assert page.title() == "Approval requested"
    assert page.inner_text("#topic") == TOPIC
    page.screenshot(path=str(tmp_path / "approval-page.png"), full_page=True)
    if os.environ.get("RELAY_SCREENSHOT_DIR"):
        shutil.copy(tmp_path / "approval-page.png", Path(os.environ["RELAY_SCREENSHOT_DIR"]) / "relay-approval-page.png")
    page.fill("#feedback", FEEDBACK)
    with page.expect_navigation():
        page.click("#reject")
    assert "You rejected this analysis" in page.inner_text("#result") and FEEDBACK in page.content()
    seen.pages.append(page.content())
    # (a same-origin post: under the page's no-referrer policy Chromium sends Origin "null")
    posted = seen.posts[-1].all_headers()
    assert (posted.get("origin"), posted.get("sec-fetch-site")) == ("null", "same-origin")

    # Then the execution goes back to analysis and a second email arrives
    second_path, second_email = eventually(lambda: emails_for(relay, workflow_id)[1:], what="the second approval email")[0]
    assert "revision 1" in str(second_email["Subject"])
    arn = relay.state_machine_arn.replace(":stateMachine:", ":execution:") + ":" + workflow_id
    entered = [e["stateEnteredEventDetails"]["name"] for e in relay.history(arn) if e["type"].endswith("StateEntered")]
    assert entered.count("AnalyzeResearch") == 2 and entered[-1] == "RequestApproval"
    _, status_body = api(relay, "GET", f"/workflows/{workflow_id}")
    answers.append(json.dumps(status_body))
    assert status_body["revisions"] == 1 and status_body["approval"]["revision"] == 1 and status_body["approval"]["status"] == "PENDING"

    # And the first link is spent: it says who decided, with no forms
    page.goto(first_link)
    assert page.title() == "Approval already decided" and "Already rejected by" in page.inner_text("#decided")
    assert page.locator("form").count() == 0
    seen.pages.append(page.content())

    # When the approver approves from the second email
    page.goto(approval_link(second_email))
    page.fill("input[name=decided_by]", "browser approver")
    with page.expect_navigation():
        page.click("#approve")
    assert "You approved this analysis" in page.inner_text("#result")
    seen.pages.append(page.content())

    # Then the workflow succeeds and its report appears
    done = eventually(lambda: (b := api(relay, "GET", f"/workflows/{workflow_id}")[1])["status"] == "SUCCEEDED" and b, what="SUCCEEDED")
    answers.append(json.dumps(done))
    assert done["record_status"] == "COMPLETED" and done["approval"]["decided_by"] == "browser approver"
    assert done["report"]["location"] == f"s3://relay-artifacts-local/workflows/{workflow_id}/report.md"
    artifacts = relay.artifacts(workflow_id)
    assert artifacts["report.md"].strip() and FEEDBACK in artifacts["analysis-r1.md"].decode()
    page.close()

    # And the task tokens appear in no log line, email, page, URL or API answer
    import boto3

    table = boto3.resource("dynamodb").Table("relay-workflows-local")
    approvals = [i for i in table.scan()["Items"] if i["pk"].startswith("APPROVAL#") and i["workflow_id"] == workflow_id]
    tokens = [str(a["task_token"]) for a in approvals]
    assert len(tokens) == 2 and all(len(t) >= 16 for t in tokens)
    emails = [first_path.read_text(), second_path.read_text()]
    function_logs = relay.lambdas.logs()  # what the function workers wrote (their log streams)
    haystacks = {"log records": logs, "function logs": function_logs, "emails": emails, "browser pages": seen.pages,
                 "browser URLs": seen.urls, "API answers": answers}  # fmt: skip
    # (the capture is real: each place holds what it should)
    assert any("approval requested" in text for text in function_logs)
    assert all("/approvals/" in e for e in emails) and any("Already rejected by" in p for p in seen.pages)
    assert any(a["approval_id"] in u for a in approvals for u in seen.urls)
    for where, texts in haystacks.items():
        for token in tokens:
            assert not any(token in text for text in texts), f"a task token leaked into {where}"
