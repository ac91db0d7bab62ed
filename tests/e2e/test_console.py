"""The local console in a real browser: headless Chromium (Debian's package) driven by Playwright,
against a local runtime and its console (relay.local.console).

1. An execution started from the console's start page (after the page refused bad input and
   started nothing) is watched live: the graph advances over the server-sent event stream with
   no page reload and no polling request; the approval is decided through the emailed link; the
   page then shows SUCCEEDED, the report rendered, the state details, the Map Run and the cost;
   the Step Functions API at ``/sfn`` answers boto3 in another process; a second execution is
   stopped with the Stop button. No task token appears in any page, stream, view or API answer,
   and Stop, Redrive and Start without the CSRF token (or from another site) are refused.
2. A run whose WriteReport fails (``RELAY_LOCAL_FAULTS``) shows WriteReport in red with its
   cause, and the Redrive button resumes it to SUCCEEDED.

Screenshots of each page are written to ``test-artifacts/console/`` (``RELAY_UPDATE_DOCS=1``
also copies the top of the execution page to ``docs/console-execution.png`` for the README).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.polling import eventually

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-proxy-server",
]
pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).exists(), reason=f"Debian's chromium is not installed at {CHROMIUM} (`make setup-test` installs it)"
)
SCREENSHOTS = ROOT / "test-artifacts" / "console"
TOPIC = "How do task tokens resume a workflow waiting for approval?"
#: Generous upper bounds for a page to reach a state (failure guards, not timings).
WAIT_MS = 90_000


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


@pytest.fixture
def console(tmp_path: Path, corpus: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> Iterator[Any]:
    """A local runtime and its console; ``RELAY_LOCAL_FAULTS`` from the test's ``faults`` marker argument."""
    from relay.local.console import serve_console
    from relay.local.runtime import LocalRelay

    faults = getattr(request, "param", None)
    if faults:
        monkeypatch.setenv("RELAY_LOCAL_FAULTS", json.dumps(faults))
    else:
        monkeypatch.delenv("RELAY_LOCAL_FAULTS", raising=False)
    with LocalRelay(data_dir=tmp_path / "relay", corpus=str(corpus), retry_time_scale=0.01) as relay:
        server = serve_console(relay)
        try:
            yield server, relay
        finally:
            server.stop()


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")), executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True,
            viewport={"width": 1400, "height": 1000},
        )
        yield context
        context.close()


def shot(page: Any, name: str) -> Path:
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def http(method: str, url: str, body: bytes | None = None, headers: dict[str, str] | None = None) -> tuple[int, str]:
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def first_stream_event(url: str) -> str:
    """The first ``view`` event of an execution's event stream (then the connection is closed)."""
    with urllib.request.urlopen(url, timeout=30) as response:
        assert response.headers["Content-Type"].startswith("text/event-stream")
        lines: list[str] = []
        for raw in response:
            line = raw.decode().rstrip("\r\n")
            if not line and any(x.startswith("event: view") for x in lines):
                return "\n".join(lines)
            if line:
                lines.append(line)
    raise AssertionError("the stream ended before a view event")


def sfn_call(endpoint: str, script: str) -> Any:
    """Run a boto3 script in another Python process (no moto there) against ``endpoint``; returns its JSON output."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env |= {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}
    program = "import boto3, json, sys\nsfn = boto3.client('stepfunctions', endpoint_url=sys.argv[1])\n" + textwrap.dedent(script)
    result = subprocess.run([sys.executable, "-c", program, endpoint], capture_output=True, text=True, timeout=60, env=env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


AWS_CLI = ROOT / ".venv" / "awscli" / "bin" / "aws"


def aws_cli(endpoint: str, *args: str) -> Any:
    """``aws stepfunctions <args> --endpoint-url <endpoint> --output json`` in another process; its JSON answer."""
    assert AWS_CLI.exists(), f"{AWS_CLI} is missing: `make setup-test` installs the AWS CLI there"
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env |= {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}
    command = [str(AWS_CLI), "stepfunctions", *args, "--endpoint-url", endpoint, "--output", "json"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, env=env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def approval_tokens(workflow_id: str) -> list[str]:
    import boto3

    table = boto3.resource("dynamodb").Table("relay-workflows-local")
    items = [i for i in table.scan()["Items"] if i["pk"].startswith("APPROVAL#") and i["workflow_id"] == workflow_id]
    return [str(i["task_token"]) for i in items]


def node(page: Any, name: str) -> Any:
    return page.locator(f"#graph g.node[data-name='{name}']").first


def test_start_from_the_console_watch_it_live_approve_by_email_and_see_the_report(console, browser):
    from relay.local.console.app import EXAMPLE_INPUT
    from relay.mailbox import approval_emails, approval_link

    server, relay = console
    seen_pages: list[str] = []
    page = browser.new_page()

    # Given the state machine page: every state drawn, the Map with its item processor, Choice branches labelled
    page.goto(server.url + "state-machine")
    page.wait_for_selector("#graph[data-ready=true]", timeout=WAIT_MS)
    drawn = set(page.locator("#graph g.node").evaluate_all("nodes => nodes.map(n => n.dataset.id)"))
    definition = json.loads((ROOT / "statemachines" / "research_report.asl.json").read_text())
    assert set(definition["States"]) <= drawn and "ResearchQuestions/AskResearcher" in drawn
    labels = " ".join(page.locator("#graph text.edge-label").all_text_contents())
    assert "$.approval.approved == true" in labels and "Default" in labels
    seen_pages.append(page.content())
    shot(page, "state-machine")

    # When the start page is given input the API refuses
    page.goto(server.url + "executions/new")
    assert json.loads(page.input_value("#input")) == EXAMPLE_INPUT
    shot(page, "start")
    page.fill("#name", "console-e2e")
    page.fill("#input", json.dumps({"topic": TOPIC, "questions": 0}))
    page.click("#start")
    # Then it says why, keeps the input, and starts nothing
    assert "questions" in page.inner_text("#error") and page.input_value("#name") == "console-e2e"
    page.fill("#input", "{not json")
    page.click("#start")
    assert "not valid JSON" in page.inner_text("#error")
    assert relay.sfn.list_executions(stateMachineArn=relay.state_machine_arn)["executions"] == []

    # When valid input is started from the console
    navigations: list[str] = []
    requests: list[str] = []
    page.on("framenavigated", lambda frame: navigations.append(frame.url) if frame == page.main_frame else None)
    page.fill("#input", json.dumps({"topic": TOPIC, "questions": 2, "max_concurrency": 2}))
    with page.expect_navigation():
        page.click("#start")
    assert page.url == server.url + "executions/console-e2e"
    page.wait_for_selector("#graph[data-ready=true]", timeout=WAIT_MS)
    page.on("request", lambda r: requests.append(r.url))  # from here on (the assets are loaded)

    # Then the graph advances live: PlanResearch succeeds and RequestApproval runs, with no reload
    node(page, "RequestApproval").and_(page.locator(".IN_PROGRESS")).wait_for(timeout=WAIT_MS)
    assert "SUCCEEDED" in node(page, "PlanResearch").get_attribute("class")
    assert "NOT_RUN" in node(page, "WriteReport").get_attribute("class")
    # (the run may reach the approval before the page subscribes: pushes are counted after it)
    seen_before_approval = page.evaluate("window.relayConsole.messages")
    shot(page, "execution-waiting-for-approval")

    # And the pending approval shows the emailed link
    emails = eventually(lambda: approval_emails(relay.outbox, "console-e2e"), what="the approval email")
    link = approval_link(emails[-1][1])
    page.locator("#approval-link").wait_for(timeout=WAIT_MS)
    assert page.get_attribute("#approval-link", "href") == link

    # And the page shows the analysis's quality check while it waits
    page.locator("#quality [data-artifact='analysis-r0.md'] .quality-headline").wait_for(timeout=WAIT_MS)
    assert "questions answered" in page.inner_text("#quality")

    # When the approver follows the email's link
    approver = browser.new_page()
    approver.goto(link)
    # Then the approval page shows the analysis rendered (no script), its sources by title and the
    # quality check above the buttons, the same headline as the console's
    analysis_headline = page.inner_text("#quality [data-artifact='analysis-r0.md'] .quality-headline")
    assert approver.locator("#analysis h1, #analysis h2").count() > 0 and approver.locator("#analysis script").count() == 0
    assert approver.locator("#sources li").count() > 0
    assert approver.inner_text("#quality-headline") == analysis_headline
    assert approver.locator("#quality ~ #approve-form").count() == 1
    # When they approve
    approver.fill("input[name=decided_by]", "console approver")
    with approver.expect_navigation():
        approver.click("#approve")
    assert "You approved this analysis" in approver.inner_text("#result")
    approver.close()

    # Then the execution page shows SUCCEEDED with the report and its quality check, without having been reloaded
    page.wait_for_selector("body[data-status=SUCCEEDED]", timeout=WAIT_MS)
    page.locator("#quality [data-artifact='report.md'] .quality-headline").wait_for(timeout=WAIT_MS)
    node(page, "FinalizeWorkflow").and_(page.locator(".SUCCEEDED")).wait_for(timeout=WAIT_MS)
    assert page.evaluate("window.relayConsole.messages") > seen_before_approval  # the change was pushed
    assert page.inner_text("#status") == "SUCCEEDED"
    report = page.locator("details[data-key='report.md'] .markdown")
    assert "offline extractive model" in report.inner_text()
    assert report.locator("script").count() == 0
    assert navigations == [server.url + "executions/console-e2e"]  # one load, then pushed updates only
    stream = server.url + "executions/console-e2e/stream"
    assert set(requests) <= {stream}, f"the page made requests other than its event stream: {sorted(set(requests))}"
    # the Map Run lists each iteration, the approval who decided, the event history every event
    assert page.locator("#iterations tbody tr").count() == 2
    assert "console approver" in page.inner_text("#approval")
    events = relay.history(relay.state_machine_arn.replace(":stateMachine:", ":execution:") + ":console-e2e")
    assert page.inner_text("#event-count") == f"{len(events)} of {len(events)} events"
    page.select_option("#event-type", "TaskSubmitted")
    assert page.locator("#events tbody tr").count() == sum(e["type"] == "TaskSubmitted" for e in events) == 1
    page.select_option("#event-type", "")
    page.fill("#event-filter", "WriteReport")
    assert 0 < page.locator("#events tbody tr").count() < len(events)
    page.fill("#event-filter", "")

    # When a state is clicked, its input, output and parameters show (the token redacted)
    node(page, "RequestApproval").click()
    assert page.inner_text("#state-name") == "RequestApproval"
    assert '"<redacted>"' in page.text_content("#state-parameters") and "approved" in page.inner_text("#state-output")
    node(page, "WriteReport").click()
    assert page.inner_text("#state-status") == "Succeeded" and "report" in page.inner_text("#state-output")
    shot(page, "execution-succeeded")
    if os.environ.get("RELAY_UPDATE_DOCS"):  # the README's picture: the top of the page (summary, graph, state)
        page.set_viewport_size({"width": 1400, "height": 1340})
        page.evaluate("window.scrollTo(0, 0)")
        page.screenshot(path=str(SCREENSHOTS / "execution-top.png"))
        page.set_viewport_size({"width": 1400, "height": 1000})
        shutil.copy(SCREENSHOTS / "execution-top.png", ROOT / "docs" / "console-execution.png")

    # And the cost on the page is the API's, and so is the report's quality check
    status, body = http("GET", relay.api_url + "/workflows/console-e2e")
    api_cost = json.loads(body)["cost"]
    api_quality = json.loads(body)["quality"]
    assert api_quality["artifact"] == "report.md"
    assert page.inner_text("#quality [data-artifact='report.md'] .quality-headline") == api_quality["headline"]
    assert status == 200 and api_cost["state_transitions"] >= len(definition["States"]) - 3
    # with the model tokens every agent reported (planner, researchers via CompileResearch, analyst, writer)
    [tokens] = api_cost["model_tokens"]
    assert tokens["model"] == "relay-offline-extractive" and tokens["input_tokens"] > 0 and tokens["output_tokens"] > 0
    assert f"{api_cost['state_transitions']} (incl." in page.inner_text("#cost-table")
    seen_pages.append(page.content())

    # And the executions list shows it
    page.goto(server.url + "executions?status=SUCCEEDED")
    row = page.locator("#executions tr[data-name='console-e2e']")
    assert "SUCCEEDED" in row.inner_text() and row.locator("td").nth(4).inner_text() == "0"
    page.goto(server.url + "executions?status=FAILED")
    assert page.locator("#executions tr[data-name]").count() == 0
    page.goto(server.url + "executions")
    shot(page, "executions")
    seen_pages.append(page.content())

    # And the Step Functions API answers boto3 in another process
    listed = sfn_call(server.sfn_endpoint, f"""
        arn = {relay.state_machine_arn!r}
        names = [e['name'] for e in sfn.list_executions(stateMachineArn=arn)['executions']]
        execution = arn.replace(':stateMachine:', ':execution:') + ':console-e2e'
        history = sfn.get_execution_history(executionArn=execution, maxResults=1000)
        print(json.dumps({{'names': names, 'status': sfn.describe_execution(executionArn=execution)['status'],
                          'history': history['events']}}, default=str))
    """)
    assert listed["names"] == ["console-e2e"] and listed["status"] == "SUCCEEDED"
    assert len(listed["history"]) == len(events)
    # and the AWS CLI (installed by `make setup-test` in .venv/awscli)
    execution = relay.state_machine_arn.replace(":stateMachine:", ":execution:") + ":console-e2e"
    cli_listed = aws_cli(server.sfn_endpoint, "list-executions", "--state-machine-arn", relay.state_machine_arn)
    assert [e["name"] for e in cli_listed["executions"]] == ["console-e2e"]
    cli_history = aws_cli(server.sfn_endpoint, "get-execution-history", "--execution-arn", execution)
    assert len(cli_history["events"]) == len(events)
    tokens = approval_tokens("console-e2e")
    assert tokens and all(token not in json.dumps(cli_history) for token in tokens)

    # When a second execution is stopped with the Stop button while it waits for approval
    started = relay.start_execution({"topic": TOPIC, "questions": 1}, "console-stop")
    page.goto(server.url + "executions/console-stop")
    node(page, "RequestApproval").and_(page.locator(".IN_PROGRESS")).wait_for(timeout=WAIT_MS)
    page.fill("#stop-form input[name=cause]", "testing the Stop button")
    with page.expect_navigation():
        page.click("#stop")
    # Then it is ABORTED, the waiting state is shown cancelled, and Redrive is offered
    page.wait_for_selector("body[data-status=ABORTED]", timeout=WAIT_MS)
    node(page, "RequestApproval").and_(page.locator(".CANCELLED")).wait_for(timeout=WAIT_MS)
    assert "testing the Stop button" in page.inner_text("#execution-error")
    assert page.is_visible("#redrive") and not page.is_visible("#stop")
    assert relay.describe(started)["status"] == "ABORTED"
    seen_pages.append(page.content())

    # And without the CSRF token, or from another site, Stop, Redrive and Start are refused
    base = server.url.rstrip("/")
    for path in ("/executions/console-stop/redrive", "/executions/console-stop/stop", "/executions"):
        assert http("POST", base + path, b"cause=x", {"Content-Type": "application/x-www-form-urlencoded"})[0] == 403
    cookies = {c["name"]: c["value"] for c in browser.cookies(server.url)}
    token = page.locator("#redrive-form input[name=csrf_token]").input_value()
    form = urllib.parse.urlencode({"csrf_token": token}).encode()
    cookie = "; ".join(f"{k}={v}" for k, v in cookies.items())
    common = {"Content-Type": "application/x-www-form-urlencoded", "Cookie": cookie}
    assert http("POST", base + "/executions/console-stop/redrive", form, common | {"Sec-Fetch-Site": "cross-site"})[0] == 403
    assert http("POST", base + "/executions/console-stop/redrive", form, common | {"Origin": "http://evil.example"})[0] == 403
    assert relay.describe(started)["status"] == "ABORTED"  # nothing was redriven
    # (the browser's own form post with the token is accepted: the Redrive button works)
    with page.expect_navigation():
        page.click("#redrive")
    node(page, "RequestApproval").and_(page.locator(".IN_PROGRESS")).wait_for(timeout=WAIT_MS)
    assert page.inner_text("#redrive-count") == "1"

    # And the executions list pages newest first (here one execution a page)
    import relay.local.console.app as console_module

    patch = pytest.MonkeyPatch()
    patch.setattr(console_module, "PAGE_SIZE", 1)
    try:
        page.goto(server.url + "executions")
        assert page.locator("#executions tr[data-name]").evaluate_all("rows => rows.map(r => r.dataset.name)") == ["console-stop"]
        page.click("#next-page")
        assert page.locator("#executions tr[data-name]").evaluate_all("rows => rows.map(r => r.dataset.name)") == ["console-e2e"]
        assert page.locator("#next-page").count() == 0
    finally:
        patch.undo()

    # And no task token appears in any page, stream, view or API answer
    answers = [
        first_stream_event(stream),
        http("GET", server.url + "executions/console-e2e/view")[1],
        http("GET", relay.api_url + "/workflows/console-e2e")[1],
        json.dumps(listed),
    ]
    seen_pages.append(page.content())
    tokens = eventually(
        lambda: len(t := approval_tokens("console-e2e") + approval_tokens("console-stop")) == 3 and t, what="three approval requests"
    )
    assert all(len(t) >= 16 for t in tokens)
    assert all("RequestApproval" in answers[i] for i in (0, 1, 3))  # (they hold the history that held the tokens)
    for where, texts in {"pages": seen_pages, "answers": answers}.items():
        for token in tokens:
            assert not any(token in text for text in texts), f"a task token leaked into the console's {where}"
    page.close()


FAULTS = [{"endpoint": "lambda", "error": "AgentFailed", "message": "the writer broke (injected fault)", "match": "write_report", "times": 1}]


@pytest.mark.parametrize("console", [FAULTS], indirect=True)
def test_a_failed_state_is_red_with_its_cause_and_redrive_resumes_it(console, browser):
    from relay.mailbox import approval_emails, approval_link, decide_by_link

    server, relay = console
    page = browser.new_page()
    page.goto(server.url + "executions/new")
    page.fill("#name", "console-fail")
    page.fill("#input", json.dumps({"topic": TOPIC, "questions": 1}))
    with page.expect_navigation():
        page.click("#start")
    emails = eventually(lambda: approval_emails(relay.outbox, "console-fail"), what="the approval email")
    decide_by_link(approval_link(emails[-1][1]), approve=True, decided_by="console test")

    # Then the failed state is red, and its details give the error and cause
    page.wait_for_selector("body[data-status=FAILED]", timeout=WAIT_MS)
    node(page, "WriteReport").and_(page.locator(".FAILED")).wait_for(timeout=WAIT_MS)
    assert "SUCCEEDED" in node(page, "RequestApproval").get_attribute("class")
    node(page, "WriteReport").click()
    details = page.inner_text("#state-error")
    assert "AgentFailed" in details and "the writer broke (injected fault)" in details
    assert "AgentFailed" in page.inner_text("#execution-error")
    assert page.is_visible("#redrive") and not page.is_visible("#stop")
    shot(page, "execution-failed")

    # When Redrive is clicked
    with page.expect_navigation():
        page.click("#redrive")
    # Then the execution resumes at WriteReport and succeeds; nothing before it ran again
    page.wait_for_selector("body[data-status=SUCCEEDED]", timeout=WAIT_MS)
    node(page, "WriteReport").and_(page.locator(".SUCCEEDED")).wait_for(timeout=WAIT_MS)
    assert page.inner_text("#redrive-count") == "1"
    assert "offline extractive model" in page.inner_text("details[data-key='report.md'] .markdown")
    events = relay.history(relay.state_machine_arn.replace(":stateMachine:", ":execution:") + ":console-fail")
    entered = [e["stateEnteredEventDetails"]["name"] for e in events if e["type"].endswith("StateEntered")]
    assert entered.count("WriteReport") == 2 and entered.count("PlanResearch") == 1
    shot(page, "execution-redriven")
    page.close()


def test_the_map_run_shows_the_researcher_s_last_heartbeat_while_it_works(console, browser, monkeypatch):
    import threading
    import time

    import relay_agents.researcher as researcher

    server, relay = console
    # Given a researcher that heartbeats every 0.2 s and takes until released to answer
    monkeypatch.setenv("RELAY_RESEARCH_HEARTBEAT_SECONDS", "0.2")
    release = threading.Event()
    real_research = researcher.research

    def slow_research(question: str, **kwargs: Any) -> Any:
        release.wait(60)
        return real_research(question, **kwargs)

    monkeypatch.setattr(researcher, "research", slow_research)
    page = browser.new_page()
    try:
        relay.start_execution({"topic": TOPIC, "questions": 1}, "console-heartbeats")
        page.goto(server.url + "executions/console-heartbeats")
        # When the researcher has heartbeated a few times
        cell = page.locator("#iterations tbody tr[data-index='0'] td.heartbeat")
        started = time.monotonic()
        cell.filter(has_text="heartbeats").wait_for(timeout=WAIT_MS)
        first = cell.inner_text()
        # Then its running iteration shows the last heartbeat, pushed as they come (no reload),
        # under a header that says it is the local engine's record
        eventually(lambda: cell.inner_text() != first, timeout=30, what="a newer heartbeat pushed to the page")
        assert "UTC" in cell.inner_text() and time.monotonic() - started < 30
        assert "Last heartbeat (local engine)" in page.inner_text("#iterations thead")
        assert "records no history event for a heartbeat" in page.inner_text("#map-runs")
        shot(page, "execution-heartbeats")
    finally:
        release.set()
        page.close()
    # And once the researcher sent its Finding the engine no longer waits on the task
    eventually(lambda: not moto_open(relay), timeout=60, what="the callback task to close")


def moto_open(relay: Any) -> list[Any]:
    from relay.local import moto_patches

    execution = relay.state_machine_arn.replace(":stateMachine:", ":execution:") + ":console-heartbeats"
    return list(moto_patches.open_tasks(execution))
