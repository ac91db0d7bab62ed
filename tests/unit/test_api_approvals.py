"""Approval links under scanners, double clicks, late clicks, forgers and cross-site forms:
the approvals handler (functions/approvals) in-process on API Gateway events, against moto.

Each approval is created by the real RequestApproval step, so the link tested is the
one the email carries. Step Functions is a recording stub: a test can tell whether
anything resumed the execution.
"""

from __future__ import annotations

import html
import json
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest
from relay_core import links
from relay_core.adapters.workflow_records import DynamoDBWorkflowRecords
from relay_core.models import MAX_QUESTIONS, WorkflowRequest

from relay.mailbox import approval_emails, approval_link
from tests.support.apigw import ROOT, MotoStores, call, load_function

TOKEN = "AQCEAAAA-the-task-token+/=-0123456789abcdefghijklmnopqrstuvwxyz"
API_ORIGIN = "https://abc123.execute-api.us-east-1.amazonaws.com"
#: What Chromium sends when the approval page's form posts to its own origin under
#: ``Referrer-Policy: no-referrer`` (Origin is serialised as "null").
BROWSER = {"Content-Type": "application/x-www-form-urlencoded", "Origin": "null", "Sec-Fetch-Site": "same-origin"}


class RecordingSfn:
    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def send_task_success(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(kwargs)
        return {}


@dataclass
class Link:
    approval_id: str
    exp: str
    sig: str
    url: str
    email: str
    workflow_id: str

    @property
    def path(self) -> str:
        return f"/approvals/{self.approval_id}"

    def query(self, **change: str) -> str:
        return self.path + "?" + urlencode({"exp": self.exp, "sig": self.sig, **change})


@pytest.fixture(scope="module")
def moto_stores(tmp_path_factory) -> Any:
    with MotoStores(tmp_path_factory.mktemp("approvals")) as stores:
        yield stores


@pytest.fixture(scope="module")
def approvals_fn() -> Any:
    return load_function("approvals")


@pytest.fixture
def sfn(approvals_fn, moto_stores, monkeypatch) -> RecordingSfn:
    moto_stores.reset()
    stub = RecordingSfn()
    monkeypatch.setattr(approvals_fn, "_sfn", lambda: stub)
    return stub


@pytest.fixture
def records(moto_stores) -> DynamoDBWorkflowRecords:
    return DynamoDBWorkflowRecords("relay-workflows-local")


def secret() -> bytes:
    from relay_core.config import ApprovalSettings, load
    from relay_core.links import load_secret

    return load_secret(load(ApprovalSettings))


def request_approval(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    timeout_seconds: int = 3600,
    now: float | None = None,
    revision: int = 0,
    max_revisions: int = 2,
    topic: str = "Task tokens for reviewers",
    summary: str = "Tokens resume executions.",
    analysis: str | None = "analysis",
    research: dict[str, Any] | None = None,
    quality: dict[str, Any] | None = None,
) -> Link:
    """Run the RequestApproval step as the state machine would; return the emailed link.

    ``analysis`` is the analysis Markdown written to S3 (``None``: its reference names an
    object that was never written); ``research`` a research document written beside it
    and passed as ``research``; ``quality`` the analysis's quality check."""
    from relay_core import steps
    from relay_core.adapters.artifact_store import S3ArtifactStore
    from relay_core.adapters.notifiers import notifier_for
    from relay_core.config import ApprovalSettings, load
    from relay_core.models import ArtifactRef, RequestApprovalEvent

    monkeypatch.setenv("RELAY_OUTBOX_DIR", str(tmp_path / "outbox"))
    settings = load(ApprovalSettings)
    workflow_id = f"wf-{time.time_ns()}"
    store = S3ArtifactStore("relay-artifacts-local")
    key = f"workflows/{workflow_id}/analysis-r0.md"
    ref = store.put_text(key, analysis) if analysis is not None else ArtifactRef(bucket=store.bucket, key=key, bytes=0, sha256="0" * 64)
    research_ref = store.put_text(f"workflows/{workflow_id}/research.json", json.dumps(research)) if research else None
    event = RequestApprovalEvent.model_validate({
        "workflow_id": workflow_id, "task_token": TOKEN, "topic": topic,
        "analysis": {"analysis": ref.model_dump(), "summary": summary, "revision": revision, "quality": quality},
        "research": research_ref.model_dump() if research_ref else None,
        "revision": revision, "max_revisions": max_revisions, "timeout_seconds": timeout_seconds, "approver": None,
    })
    records = DynamoDBWorkflowRecords(settings.table_name)
    steps.request_approval(event, records, notifier_for(settings), settings, secret(), now=now)
    ((path, message),) = approval_emails(tmp_path / "outbox")
    url = approval_link(message)
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    return Link(parts.path.rsplit("/", 1)[1], query["exp"], query["sig"], url, path.read_text(), workflow_id)


def form(link: Link, **fields: str) -> str:
    values = {"decision": "approve", "exp": link.exp, "sig": link.sig, "csrf": links.csrf_token(secret(), link.approval_id, int(link.exp))}
    values.update(fields)
    return urlencode({k: v for k, v in values.items() if v is not None})


def approval(records: DynamoDBWorkflowRecords, link: Link) -> dict[str, Any]:
    return records.get_approval(link.approval_id)


# ----- GET never changes anything ---------------------------------------------------------------
def test_twenty_scanner_fetches_leave_the_approval_exactly_as_it_was(approvals_fn, sfn, records, lambda_context, tmp_path, monkeypatch):
    # Given a pending approval
    link = request_approval(tmp_path, monkeypatch)
    before = approval(records, link)
    # When a mail scanner, a link preview and the approver open the link 20 times
    pages = [call(approvals_fn, lambda_context, "GET", link.query(), user_arn=None) for _ in range(20)]
    # Then every fetch shows the decision forms and nothing was written or resumed
    assert {p[0] for p in pages} == {200}
    assert all('id=approve-form' in p[2] and 'id=reject-form' in p[2] for p in pages)
    assert approval(records, link) == before and before["approval_status"] == "PENDING"
    assert sfn.calls == []


# ----- tampered, unknown, expired ------------------------------------------------------------------
def test_tampered_and_unknown_links_get_one_404_page_that_reveals_nothing(approvals_fn, sfn, records, lambda_context, tmp_path, monkeypatch):
    link = request_approval(tmp_path, monkeypatch)
    flip = "A" if link.sig[-1] != "A" else "B"
    other = links.new_approval_id()
    variants = {
        "changed id": f"/approvals/{link.approval_id[:-1]}{'a' if link.approval_id[-1] != 'a' else 'b'}?exp={link.exp}&sig={link.sig}",
        "unknown id, made-up signature": f"/approvals/{other}?exp={link.exp}&sig={'x' * 43}",
        "changed signature": link.query(sig=link.sig[:-1] + flip),
        "later expiry": link.query(exp=str(int(link.exp) + 1)),
        "same expiry, padded": link.query(exp="0" + link.exp),
        "same expiry, plus sign": link.query(exp="+" + link.exp),
        "non-ASCII signature": link.query(sig="é" * 43),
        "no signature": f"{link.path}?exp={link.exp}",
        "no expiry": f"{link.path}?sig={link.sig}",
        "nothing": link.path,
    }
    answers = {name: call(approvals_fn, lambda_context, "GET", path, user_arn=None) for name, path in variants.items()}
    assert {name: a[0] for name, a in answers.items()} == dict.fromkeys(variants, 404)
    bodies = {a[2] for a in answers.values()}
    assert len(bodies) == 1, "a forger must not tell an unknown id from a bad signature"
    (body,) = bodies
    for secret_part in (link.approval_id, link.workflow_id, "Task tokens for reviewers", TOKEN):
        assert secret_part not in body
    assert approval(records, link)["approval_status"] == "PENDING" and sfn.calls == []


def test_an_expired_link_gets_a_410_page_and_cannot_decide(approvals_fn, sfn, records, lambda_context, tmp_path, monkeypatch):
    link = request_approval(tmp_path, monkeypatch, timeout_seconds=60, now=time.time() - 120)
    shown = call(approvals_fn, lambda_context, "GET", link.query(), user_arn=None)
    posted = call(approvals_fn, lambda_context, "POST", link.path, form(link), BROWSER, user_arn=None)
    assert (shown[0], posted[0]) == (410, 410)
    assert "expired" in shown[2]
    assert approval(records, link)["approval_status"] == "PENDING" and sfn.calls == []


# ----- one decision only -------------------------------------------------------------------------
def test_the_second_decision_is_told_who_decided_when_and_changes_nothing(approvals_fn, sfn, records, lambda_context, tmp_path, monkeypatch):
    # Given an approval decided by Ann
    link = request_approval(tmp_path, monkeypatch)
    first = call(approvals_fn, lambda_context, "POST", link.path, form(link, decided_by="ann"), BROWSER, user_arn=None)
    assert first[0] == 200 and "You approved this analysis" in first[2]
    decided = approval(records, link)
    # When Bob (or Ann's double click) submits again
    second = call(approvals_fn, lambda_context, "POST", link.path, form(link, decision="reject", feedback="no", decided_by="bob"), BROWSER, user_arn=None)
    # Then he is told who decided and when, and nothing changes
    assert second[0] == 409
    assert f"Already decided by ann at {decided['decided_at']}." in second[2]
    assert approval(records, link) == decided and decided["approval_status"] == "APPROVED"
    assert len(sfn.calls) == 1
    output = json.loads(sfn.calls[0]["output"])
    assert output["approved"] is True and output["decided_by"] == "ann" and sfn.calls[0]["taskToken"] == TOKEN
    # And the link now shows the decision instead of forms
    page = call(approvals_fn, lambda_context, "GET", link.query(), user_arn=None)
    assert page[0] == 200 and "Already approved by ann at" in page[2] and "<form" not in page[2]


# ----- cross-site submission -------------------------------------------------------------------------
@pytest.mark.parametrize(("headers", "status"), [
    ({"Origin": "https://evil.example"}, 403),
    ({"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"}, 403),
    ({"Origin": "null", "Sec-Fetch-Site": "cross-site"}, 403),  # e.g. a sandboxed iframe on another site
    ({"Sec-Fetch-Site": "same-site"}, 403),
    ({"Origin": API_ORIGIN, "Sec-Fetch-Site": "same-origin"}, 200),
    ({"Origin": "null", "Sec-Fetch-Site": "same-origin"}, 200),
    ({}, 200),  # a non-browser client: the signature and the CSRF token still have to match
])
def test_cross_site_posts_are_refused_and_same_origin_ones_decide(approvals_fn, sfn, records, lambda_context, tmp_path, monkeypatch, headers, status):
    link = request_approval(tmp_path, monkeypatch)
    answer = call(approvals_fn, lambda_context, "POST", link.path, form(link), {"Content-Type": BROWSER["Content-Type"], **headers}, user_arn=None)
    assert answer[0] == status
    expected = "APPROVED" if status == 200 else "PENDING"
    assert approval(records, link)["approval_status"] == expected and len(sfn.calls) == (status == 200)


@pytest.mark.parametrize("csrf", [None, "", "x" * 43, "csrf-of-another-approval"])
def test_a_post_without_the_pages_csrf_token_is_refused(approvals_fn, sfn, records, lambda_context, tmp_path, monkeypatch, csrf):
    link = request_approval(tmp_path, monkeypatch)
    if csrf == "csrf-of-another-approval":
        csrf = links.csrf_token(secret(), links.new_approval_id(), int(link.exp))
    answer = call(approvals_fn, lambda_context, "POST", link.path, form(link, csrf=csrf), BROWSER, user_arn=None)
    assert answer[0] == 400 and "csrf: the form token is missing or wrong" in answer[2]
    assert approval(records, link)["approval_status"] == "PENDING" and sfn.calls == []


# ----- reject needs feedback; revisions are bounded ------------------------------------------------------
@pytest.mark.parametrize("feedback", [None, "", "   \n "])
def test_reject_requires_feedback(approvals_fn, sfn, records, lambda_context, tmp_path, monkeypatch, feedback):
    link = request_approval(tmp_path, monkeypatch)
    answer = call(approvals_fn, lambda_context, "POST", link.path, form(link, decision="reject", feedback=feedback), BROWSER, user_arn=None)
    assert answer[0] == 400 and "feedback: required when rejecting" in answer[2]
    assert approval(records, link)["approval_status"] == "PENDING" and sfn.calls == []


def test_a_rejection_with_feedback_resumes_the_execution_with_it(approvals_fn, sfn, records, lambda_context, tmp_path, monkeypatch):
    link = request_approval(tmp_path, monkeypatch)
    answer = call(approvals_fn, lambda_context, "POST", link.path, form(link, decision="reject", feedback=" Cover expiry. "), BROWSER, user_arn=None)
    assert answer[0] == 200 and "Cover expiry." in answer[2]
    output = json.loads(sfn.calls[0]["output"])
    assert (output["approved"], output["feedback"]) == (False, "Cover expiry.")
    assert approval(records, link)["approval_status"] == "REJECTED"


def test_revisions_are_bounded_by_the_workflow_input_default_two():
    # The input bounds max_revisions (default 2, at most 10) ...
    assert WorkflowRequest(topic="t").max_revisions == 2
    with pytest.raises(ValueError, match="max_revisions"):
        WorkflowRequest(topic="t", max_revisions=11)
    assert MAX_QUESTIONS == 40
    # ... and the Choice state sends a rejection back for revision only while revision < max_revisions.
    definition = json.loads((ROOT / "statemachines" / "research_report.asl.json").read_text())
    (revise,) = [c for c in definition["States"]["ApprovalDecision"]["Choices"] if c.get("Next") == "PrepareRevision"]
    assert {"Variable": "$.review.revision", "NumericLessThanPath": "$.request.max_revisions"} in revise["And"]
    assert definition["States"]["ApprovalDecision"]["Default"] == "RecordRejection"


# ----- bad forms, headers, and the token -----------------------------------------------------------------
@pytest.mark.parametrize(("fields", "named"), [
    ({"decision": "maybe"}, "decision: Input should be 'approve' or 'reject'"),
    ({"exp": "soon"}, "exp: Input should be a valid integer"),
    ({"sig": "short"}, "sig: String should match pattern"),
    ({"extra": "1"}, "extra: Extra inputs are not permitted"),
])
def test_malformed_forms_are_400_naming_the_field(approvals_fn, sfn, records, lambda_context, tmp_path, monkeypatch, fields, named):
    link = request_approval(tmp_path, monkeypatch)
    answer = call(approvals_fn, lambda_context, "POST", link.path, form(link, **fields), BROWSER, user_arn=None)
    assert answer[0] == 400 and named in html.unescape(answer[2])
    assert approval(records, link)["approval_status"] == "PENDING" and sfn.calls == []


def test_pages_are_not_cached_not_framed_leak_no_referrer_and_never_hold_the_token(approvals_fn, sfn, records, lambda_context, tmp_path, monkeypatch):
    link = request_approval(tmp_path, monkeypatch)
    status, headers, body = call(approvals_fn, lambda_context, "GET", link.query(), user_arn=None)
    assert status == 200
    assert headers["Cache-Control"] == "no-store" and headers["Referrer-Policy"] == "no-referrer"
    assert "frame-ancestors 'none'" in headers["Content-Security-Policy"] and "form-action 'self'" in headers["Content-Security-Policy"]
    decided = call(approvals_fn, lambda_context, "POST", link.path, form(link), BROWSER, user_arn=None)[2]
    for text in (link.url, link.email, body, decided):
        assert TOKEN not in text


def test_unknown_routes_under_approvals_are_the_same_404(approvals_fn, sfn, lambda_context):
    status, _, body = call(approvals_fn, lambda_context, "GET", "/approvals/a/b", user_arn=None)
    assert status == 404 and "This link is not valid." in body


# ----- every decision page tells the truth about what happens next --------------------------------------
@pytest.mark.parametrize(("decision", "feedback", "revision", "max_revisions", "next_step"), [
    ("approve", None, 0, 2, "The workflow resumes: the report is written next."),
    ("approve", None, 2, 2, "The workflow resumes: the report is written next."),
    ("reject", "Cover expiry.", 0, 2, "The analysis goes back for revision 1 of 2."),
    ("reject", "Cover expiry.", 1, 2, "The analysis goes back for revision 2 of 2."),
    ("reject", "Cover expiry.", 2, 2, "The workflow ends REJECTED: all 2 revisions were used."),
    ("reject", "Cover expiry.", 0, 0, "The workflow ends REJECTED: all 0 revisions were used."),
])
def test_the_decision_page_says_what_the_choice_state_will_do(
    approvals_fn, sfn, records, lambda_context, tmp_path, monkeypatch, decision, feedback, revision, max_revisions, next_step
):
    # Given an approval requested at `revision` of at most `max_revisions`
    link = request_approval(tmp_path, monkeypatch, revision=revision, max_revisions=max_revisions)
    # When the approver decides
    status, _, page = call(approvals_fn, lambda_context, "POST", link.path, form(link, decision=decision, feedback=feedback), BROWSER, user_arn=None)
    # Then the page names the next step, and never claims the workflow "has resumed" when it ends
    assert status == 200, page
    verb = "approved" if decision == "approve" else "rejected"
    assert f"<p id=result>You {verb} this analysis. {next_step}</p>" in page
    assert "has resumed" not in page


def test_a_rejection_without_feedback_ends_the_workflow_on_the_page():
    from datetime import UTC, datetime

    from relay_core.models import ApprovalDecision
    from relay_core.pages import decision_page

    decision = ApprovalDecision(approved=False, feedback=None, decided_by="a", decided_at=datetime.now(UTC), approval_id="x")
    assert "The workflow ends REJECTED." in decision_page(decision, {"revision": 0, "max_revisions": 2})
    approved = decision.model_copy(update={"approved": True})
    assert "the report is written next" in decision_page(approved, None)
    unknown = decision.model_copy(update={"feedback": "more"})
    assert "goes back for revision if any revisions remain; otherwise the workflow ends REJECTED" in decision_page(unknown, {})


@pytest.mark.parametrize("field", ["feedback", "decided_by"])
@pytest.mark.parametrize("bad", ["a\x00b", "bell\x07", "esc\x1b[31m", "lone\rcr", "del\x7f", "c1\x85"])
def test_control_characters_in_form_text_are_a_400_naming_the_field(approvals_fn, sfn, records, lambda_context, tmp_path, monkeypatch, field, bad):
    link = request_approval(tmp_path, monkeypatch)
    answer = call(approvals_fn, lambda_context, "POST", link.path, form(link, **{"decision": "reject", "feedback": "ok", field: bad}), BROWSER, user_arn=None)
    assert answer[0] == 400
    assert f"{field}: must not contain control characters (only tab and newline are allowed)" in html.unescape(answer[2])
    assert approval(records, link)["approval_status"] == "PENDING" and sfn.calls == []


def test_textarea_line_breaks_crlf_are_accepted_as_newlines(approvals_fn, sfn, records, lambda_context, tmp_path, monkeypatch):
    link = request_approval(tmp_path, monkeypatch)
    answer = call(approvals_fn, lambda_context, "POST", link.path, form(link, decision="reject", feedback="one\r\n\ttwo"), BROWSER, user_arn=None)
    assert answer[0] == 200, answer[2]
    assert json.loads(sfn.calls[0]["output"])["feedback"] == "one\n\ttwo"


@pytest.mark.parametrize("method", ["PATCH", "OPTIONS", "TRACE", "PUT", "DELETE"])
def test_other_methods_on_an_approval_are_405_json_with_allow(approvals_fn, sfn, lambda_context, method):
    status, headers, body = call(approvals_fn, lambda_context, method, "/approvals/some-id", user_arn=None)
    assert status == 405 and headers["Allow"] == "GET, POST"
    assert headers["Content-Type"] == "application/json"
    assert body["message"] == f"method: {method} is not allowed on /approvals/some-id; allowed: GET, POST"
    assert sfn.calls == []


def test_hostile_topic_and_summary_are_escaped_on_the_approval_page(approvals_fn, sfn, records, lambda_context, tmp_path, monkeypatch):
    # (the analysis is missing, so the page shows the summary)
    link = request_approval(tmp_path, monkeypatch, topic="<script>alert(1)</script>", summary='<img src=x onerror="alert(2)">', analysis=None)
    status, _, page = call(approvals_fn, lambda_context, "GET", link.query(), user_arn=None)
    assert status == 200
    assert "<script>alert" not in page and "<img" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "&lt;img src=x onerror=&quot;alert(2)&quot;&gt;" in page


# ----- what the approver is approving: the analysis, its sources, its quality check -----------------
ANALYSIS = """# Analysis: Task tokens for reviewers

## Key insights

- A **task token** pauses the execution until SendTaskSuccess [1].

### Risks

A link that never expires outlives its token [2].
"""


def research_document(workflow_id: str = "wf-doc", titles: tuple[str, ...] = ("Task tokens guide", "Approval links")) -> dict[str, Any]:
    return {
        "version": 1, "workflow_id": workflow_id, "topic": "Task tokens for reviewers",
        "findings": [{"question_id": "q01", "question": "How do task tokens work?", "status": "answered",
                      "summary": "They pause.", "answer_markdown": "They pause [1].", "sources": [{"number": 1, "ref": 1}]}],
        "sources": [{"number": n, "title": t, "uri": f"file:///docs/{n}.md", "passages": ["passage"]} for n, t in enumerate(titles, 1)],
    }


def quality_check(unanswered: tuple[str, ...] = ("How do heartbeats keep a task alive?",), questions: int = 3) -> dict[str, Any]:
    return {
        "assessment": None, "sentences": 10, "cited": 10, "grounded": 9, "repeated": 1, "fragments": 0,
        "questions": questions, "answered": questions - len(unanswered), "unanswered": list(unanswered),
    }


def test_the_page_shows_the_analysis_rendered_its_sources_by_title_and_the_quality_check_above_the_buttons(
    approvals_fn, sfn, records, lambda_context, tmp_path, monkeypatch
):
    # Given an approval whose analysis, research document and quality check are stored
    link = request_approval(tmp_path, monkeypatch, analysis=ANALYSIS, research=research_document(), quality=quality_check())
    # When the approver opens the link
    status, _, page = call(approvals_fn, lambda_context, "GET", link.query(), user_arn=None)
    # Then the analysis is rendered from Markdown: headings, lists, emphasis
    assert status == 200
    analysis = page[page.index("<article id=analysis"):page.index("</article>")]
    assert "<h2>Key insights</h2>" in analysis and "<h3>Risks</h3>" in analysis
    assert "<li>A <strong>task token</strong> pauses the execution until SendTaskSuccess [1].</li>" in analysis
    assert "id=summary" not in page  # the whole analysis, not the summary excerpt
    # And the research sources are listed by title
    sources = page[page.index("<ol id=sources>"):page.index("</ol>")]
    assert "Task tokens guide" in sources and "Approval links" in sources
    # And the quality check, headline then the unanswered questions by name, comes before the forms
    headline = "2 of 3 questions answered · 90 % of sentences grounded · 1 repeated"
    assert headline in page and "How do heartbeats keep a task alive?" in page
    assert page.index("<h2>Quality check</h2>") < page.index(headline) < page.index("How do heartbeats") < page.index("<form")
    # And opening it still changed nothing
    assert approval(records, link)["approval_status"] == "PENDING" and sfn.calls == []


def test_a_script_in_the_analysis_or_a_source_title_does_not_survive(approvals_fn, sfn, records, lambda_context, tmp_path, monkeypatch):
    # Given an analysis, a source title and an unanswered question written by a hostile hand
    hostile = ANALYSIS + '\n<script>alert(1)</script>\n\n<img src=x onerror="alert(2)">\n\n[click](javascript:alert(3))\n'
    link = request_approval(
        tmp_path, monkeypatch, analysis=hostile,
        research=research_document(titles=("<script>alert(4)</script>",)), quality=quality_check(unanswered=("<b onmouseover=alert(5)>?",)),
    )
    # When the page is opened
    status, _, page = call(approvals_fn, lambda_context, "GET", link.query(), user_arn=None)
    # Then nothing in it is active: every tag arrives as text, the script link is gone
    assert status == 200
    assert "<script" not in page and "<img" not in page and "<b " not in page
    assert not re.search(r"href=[\"']?\s*javascript", page, re.IGNORECASE)  # shown as text, never a link
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "&lt;script&gt;alert(4)&lt;/script&gt;" in page
    assert "&lt;b onmouseover=alert(5)&gt;?" in page


def test_a_missing_analysis_still_gives_the_page_with_the_summary_and_says_so(approvals_fn, sfn, records, lambda_context, tmp_path, monkeypatch):
    # Given an approval whose analysis object is gone and whose research document is unreadable
    link = request_approval(tmp_path, monkeypatch, analysis=None, summary="Tokens resume executions.", quality=quality_check(unanswered=()))
    # When the page is opened
    status, _, page = call(approvals_fn, lambda_context, "GET", link.query(), user_arn=None)
    # Then it answers 200 with the summary, says the analysis could not be loaded, and can still decide
    assert status == 200
    assert '<pre id=summary>Tokens resume executions.</pre>' in page
    assert "The analysis could not be loaded (analysis-r0.md is missing or unreadable)." in page
    assert "id=sources-problem" in page and "3 of 3 questions answered" in page
    assert "id=approve-form" in page
    # (a bucket, a key or a stack trace never reaches the public page)
    assert "relay-artifacts-local" not in page and "workflows/" not in page and "Traceback" not in page


def test_an_approval_requested_before_quality_checks_existed_says_it_was_not_checked(
    approvals_fn, sfn, records, lambda_context, tmp_path, monkeypatch
):
    link = request_approval(tmp_path, monkeypatch, analysis=ANALYSIS, quality=None)
    status, _, page = call(approvals_fn, lambda_context, "GET", link.query(), user_arn=None)
    assert status == 200 and "Not available: this analysis was not checked." in page
    assert "<h2>Key insights</h2>" in page
