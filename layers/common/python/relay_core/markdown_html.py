"""Markdown as safe HTML: rendered by markdown-it-py, then sanitised by nh3 (Ammonia).

The one implementation for every page that shows an artifact: the approval page
(:mod:`relay_core.pages`) and the local console (``relay.local.console.markdown``).

The artifacts already pass through :func:`relay_core.safe_text.markdown_safe` when they
are written; this is the second wall, so an artifact written by anything else still
cannot run script where it is shown: markdown-it-py runs with raw HTML off (CommonMark
preset plus tables; ``<tag>`` text is escaped, not passed through), and nh3 keeps only
its default allow-list of tags and attributes, links limited to ``http``, ``https`` and
``mailto`` with ``rel="noopener noreferrer nofollow"``.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

#: Link schemes kept in rendered Markdown (everything else, ``javascript:`` included, is dropped).
URL_SCHEMES = frozenset({"http", "https", "mailto"})


@lru_cache(maxsize=1)
def _parser() -> Any:
    from markdown_it import MarkdownIt

    return MarkdownIt("commonmark", {"html": False, "linkify": False}).enable("table")


def render_markdown(text: str) -> str:
    """Markdown → sanitised HTML (a fragment: no ``<html>``/``<body>``).

    Raises:
        ImportError: markdown-it-py or nh3 is not installed (both are in every lock that
            ships ``relay_core``: ``layers/requirements/slim.in``).
    """
    import nh3

    html = _parser().render(text)
    return str(nh3.clean(html, url_schemes=set(URL_SCHEMES), link_rel="noopener noreferrer nofollow"))
