"""Artifacts as HTML: Markdown rendered by markdown-it-py, then sanitised by nh3 (Ammonia).

The artifacts already pass through :func:`relay_core.safe_text.markdown_safe` when they
are written; this is the second wall, so an artifact written by anything else still
cannot run script in the console: markdown-it-py runs with raw HTML off (CommonMark
preset plus tables; ``<tag>`` text is escaped, not passed through), and nh3 keeps only
its default allow-list of tags and attributes, links limited to ``http``, ``https`` and
``mailto`` with ``rel="noopener noreferrer nofollow"``.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

#: Link schemes kept in rendered artifacts (everything else, ``javascript:`` included, is dropped).
URL_SCHEMES = frozenset({"http", "https", "mailto"})


@lru_cache(maxsize=1)
def _parser() -> Any:
    from markdown_it import MarkdownIt

    return MarkdownIt("commonmark", {"html": False, "linkify": False}).enable("table")


def render_markdown(text: str) -> str:
    """Markdown → sanitised HTML (a fragment: no ``<html>``/``<body>``)."""
    import nh3

    html = _parser().render(text)
    return str(nh3.clean(html, url_schemes=set(URL_SCHEMES), link_rel="noopener noreferrer nofollow"))


def render_artifact(key: str, data: bytes) -> str:
    """An artifact (an S3 object of the workflow) as sanitised HTML: Markdown rendered,
    anything else shown as escaped text in a ``<pre>`` block."""
    import html

    text = data.decode("utf-8", errors="replace")
    if key.endswith((".md", ".markdown")):
        return render_markdown(text)
    return f"<pre>{html.escape(text)}</pre>"
