"""Artifacts as HTML for the console: Markdown through the shared renderer
(:func:`relay_core.markdown_html.render_markdown`: markdown-it-py with raw HTML off, then
nh3), anything else as escaped text. The approval page renders with the same function.
"""

from __future__ import annotations

import html

from relay_core.markdown_html import URL_SCHEMES, render_markdown

__all__ = ["URL_SCHEMES", "render_artifact", "render_markdown"]


def render_artifact(key: str, data: bytes) -> str:
    """An artifact (an S3 object of the workflow) as sanitised HTML: Markdown rendered,
    anything else shown as escaped text in a ``<pre>`` block."""
    text = data.decode("utf-8", errors="replace")
    if key.endswith((".md", ".markdown")):
        return render_markdown(text)
    return f"<pre>{html.escape(text)}</pre>"
