"""Approval emails and their links, on the approver's side: reading an outbox of
delivered ``.eml`` files and acting on an approval link as a person would.

:func:`approval_emails` lists delivered approval emails (oldest first);
:func:`approval_link` pulls the link out of one; :func:`decide_by_link` opens the
link (GET, which changes nothing), reads the form on the page, and submits it (POST)
exactly like a browser: same hidden fields, same CSRF token, same Origin header.

Client code: it imports nothing from :mod:`relay.local` (the client commands use it
against a deployed API too: ``relay approve --link``), and the local runtime's
``relay run`` and console use it from here.
"""

from __future__ import annotations

import email
import re
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from email.message import EmailMessage
from email.policy import default
from html.parser import HTMLParser
from pathlib import Path

from relay_core.contracts import APPROVAL_ID_HEADER, WORKFLOW_ID_HEADER

LINK_RE = re.compile(r"https?://[^\s<>\"]+/approvals/[A-Za-z0-9_-]+\?[^\s<>\"]+")


def read_email(path: Path) -> EmailMessage:
    """Parse one ``.eml`` file."""
    with path.open("rb") as fh:
        return email.message_from_binary_file(fh, policy=default)  # type: ignore[return-value]


def approval_emails(outbox: Path, workflow_id: str | None = None) -> list[tuple[Path, EmailMessage]]:
    """Delivered approval emails, oldest first: messages carrying the
    ``X-Relay-Workflow-Id`` and ``X-Relay-Approval-Id`` headers (of ``workflow_id`` when
    given). Emails are found by these headers, never by their body, which quotes user
    text (a topic may contain ``Workflow: <other id>`` or an approval-like URL)."""
    if not outbox.is_dir():
        return []
    found = []
    for path in sorted(outbox.glob("*.eml")):
        message = read_email(path)
        if not message[APPROVAL_ID_HEADER] or not message[WORKFLOW_ID_HEADER]:
            continue
        if workflow_id is None or str(message[WORKFLOW_ID_HEADER]).strip() == workflow_id:
            found.append((path, message))
    return found


def approval_id_of(message: EmailMessage) -> str:
    """The approval id an approval email is about (its ``X-Relay-Approval-Id`` header)."""
    return str(message[APPROVAL_ID_HEADER] or "").strip()


def workflow_id_of(message: EmailMessage) -> str:
    """The workflow an approval email is about (its ``X-Relay-Workflow-Id`` header)."""
    return str(message[WORKFLOW_ID_HEADER] or "").strip()


def approval_link(message: EmailMessage) -> str:
    """The link of the approval the email's ``X-Relay-Approval-Id`` header names: a URL in
    the body whose path is exactly ``/approvals/{that id}`` (any other URL, such as one
    quoted in the topic, is ignored). Raises ``ValueError`` if there is none."""
    approval_id = approval_id_of(message)
    if not approval_id:
        raise ValueError("not an approval email (no X-Relay-Approval-Id header)")
    body = message.get_body(preferencelist=("plain",))
    text = body.get_content() if body is not None else ""
    links = [m.group(0) for m in LINK_RE.finditer(text) if urllib.parse.urlsplit(m.group(0)).path.endswith(f"/approvals/{approval_id}")]
    if not links:
        raise ValueError(f"no link for approval {approval_id} in the email")
    return links[-1]  # the body's own link comes after the quoted topic


class _Forms(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.forms: dict[str, dict[str, str]] = {}
        self.actions: dict[str, str] = {}
        self._current: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self._current = a.get("id", f"form{len(self.forms)}")
            self.forms[self._current] = {}
            self.actions[self._current] = a.get("action", "")
        elif tag == "input" and self._current and a.get("type") == "hidden":
            self.forms[self._current][a.get("name", "")] = a.get("value", "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._current = None


@dataclass
class PageResult:
    status: int
    html: str


def fetch(url: str, data: dict[str, str] | None = None, origin: str | None = None) -> PageResult:
    """GET (or POST ``data`` form-encoded) ``url``; 4xx/5xx pages are returned, not raised."""
    body = urllib.parse.urlencode(data).encode() if data is not None else None
    request = urllib.request.Request(url, data=body, method="POST" if body is not None else "GET")
    if body is not None:
        request.add_header("Content-Type", "application/x-www-form-urlencoded")
        if origin:
            request.add_header("Origin", origin)
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return PageResult(response.status, response.read().decode("utf-8"))
    except urllib.error.HTTPError as exc:
        return PageResult(exc.code, exc.read().decode("utf-8", "replace"))


def decide_by_link(link: str, approve: bool, feedback: str = "", decided_by: str = "") -> PageResult:
    """Open ``link``, then submit its approve or reject form. Returns the POST's page.

    Raises:
        RuntimeError: the link's page has no decision form (expired, decided, invalid);
            the message carries the page's status.
    """
    page = fetch(link)
    parser = _Forms()
    parser.feed(page.html)
    form_id = "approve-form" if approve else "reject-form"
    if page.status != 200 or form_id not in parser.forms:
        raise RuntimeError(f"approval page answered {page.status} without a decision form")
    parts = urllib.parse.urlsplit(link)
    origin = f"{parts.scheme}://{parts.netloc}"
    fields = dict(parser.forms[form_id])
    if not approve:
        fields["feedback"] = feedback
    if decided_by:
        fields["decided_by"] = decided_by
    return fetch(urllib.parse.urljoin(link, parser.actions[form_id]), fields, origin=origin)
