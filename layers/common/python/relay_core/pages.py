"""The approval link's HTML pages, rendered from Jinja2 templates (``relay_core/templates``).

Autoescaping is on for every template, so text from a workflow (topic, summary,
feedback, names, source titles, questions) is always HTML-escaped (as ``html.escape``
spells it: :func:`_escaped`); no page builds HTML from strings here. The one exception
is the analysis, Markdown rendered and sanitised by
:func:`relay_core.markdown_html.render_markdown` (raw HTML off, then nh3's allow-list),
the renderer the local console uses too. Pages hold no task token. The routes that
serve them are in ``functions/approvals/app.py``.
"""

from __future__ import annotations

import contextlib
import functools
import html
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from .approvals import ApprovalView, next_step
from .markdown_html import render_markdown
from .models import ApprovalDecision

#: Page titles of error answers by HTTP status; any other status is "Error".
ERROR_TITLES = {400: "Bad request", 404: "Not found", 409: "Already decided", 410: "Link no longer valid"}


def _escaped(value: Any) -> Any:
    """Every ``{{ … }}`` value: text escaped as ``html.escape`` spells it (``&quot;``,
    ``&#x27;``; markupsafe writes ``&#34;``, ``&#39;``), so pages read exactly as before
    the templates; ``Markup`` (a macro's or a block's output) is already safe."""
    return value if isinstance(value, Markup) else Markup(html.escape(str(value)))


@functools.cache
def _templates() -> Environment:
    """The template environment, made once per process (the first page pays for it)."""
    return Environment(
        loader=PackageLoader("relay_core", "templates"),
        autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=True, default=True),
        undefined=StrictUndefined,  # a name a template uses but was not given is an error, not ""
        finalize=_escaped,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render(template: str, **values: Any) -> str:
    """Render ``templates/{template}`` with ``values`` (escaped unless already ``Markup``).

    Raises:
        jinja2.TemplateNotFound: no such template. jinja2.UndefinedError: a value it uses is missing.
    """
    return _templates().get_template(template).render(**values)


def approval_page(view: ApprovalView) -> str:
    """The GET page: the request, the analysis rendered from Markdown (sanitised; the
    summary and a note when it could not be read), the research sources by title, a
    "Quality check" block (the headline and the unanswered questions by name) and,
    while PENDING, the approve and reject forms below it."""
    expires = datetime.fromtimestamp(view.expires_at, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    title = "Approval requested" if view.status == "PENDING" else "Approval already decided"
    analysis_html = Markup(render_markdown(view.analysis_markdown)) if view.analysis_markdown is not None else None
    headline = view.quality.headline() if view.quality else None
    return render("approval.html", title=title, view=view, expires=expires, analysis_html=analysis_html, quality_headline=headline)


def decision_page(decision: ApprovalDecision, approval: Mapping[str, Any] | None = None) -> str:
    """The page after a successful POST: the decision and, truthfully, what happens next
    (:func:`relay_core.approvals.next_step`, from the approval record's ``revision`` and
    ``max_revisions``; said conditionally when the record could not be read)."""
    verb = "approved" if decision.approved else "rejected"
    revision = max_revisions = None
    with contextlib.suppress(TypeError, ValueError):
        if approval is not None and "revision" in approval and "max_revisions" in approval:
            revision, max_revisions = int(approval["revision"]), int(approval["max_revisions"])
    return render(
        "decision.html", title=f"Thank you: {verb}", verb=verb,
        next_step=next_step(decision, revision, max_revisions), feedback=decision.feedback,
    )


def already_decided_page(decided_by: str | None, decided_at: str | None) -> str:
    """The 409 page: someone decided first, by whom and when (nothing changed)."""
    return render("already_decided.html", title="Already decided", decided_by=decided_by, decided_at=decided_at)


def error_page(status: int, message: str) -> str:
    """The page for a 4xx/5xx answer with ``message``; a 404 reveals nothing about whether the id exists."""
    return render("error.html", title=ERROR_TITLES.get(status, "Error"), message=message)
