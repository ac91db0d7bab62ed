"""User-controlled text made inert before it reaches an artifact people open.

Topics, reviewer feedback, questions and corpus passages end up in ``research.md``,
``analysis-r{n}.md``, ``report.md``, the approval email and the approval pages. Each
artifact passes through one function here, once, where it is built:

- :func:`markdown_safe` for Markdown artifacts. CommonMark passes raw HTML through
  (spec 0.31, "Raw HTML" and "HTML blocks"), and raw HTML can only start with ``<``;
  so every ``<`` becomes ``&lt;`` and every ``&`` ``&amp;`` (entities could otherwise
  spell a ``javascript:`` link). Autolinks ``<scheme:…>`` are kept, except for the
  ``javascript``/``vbscript``/``data`` schemes, and those schemes are broken with a
  U+2060 WORD JOINER wherever they appear (a link destination ``javascript:…`` then
  has no valid scheme: WHATWG URL standard, "scheme state"). ``>`` is left alone: it
  cannot open markup and it is Markdown's blockquote marker. Entities already present
  are decoded first, so the function is idempotent (an artifact built from escaped
  research is not escaped twice). Trade-off: inside code spans and blocks the escapes
  show literally (``&lt;``); we prefer that to parsing Markdown to find code.
- :func:`plain_text` for plain-text email bodies: control characters other than tab
  and newline are removed (CRLF and CR become LF).
- Pages are HTML and escape every value with :func:`html.escape` where they are built
  (:mod:`relay_core.approvals`).
"""

from __future__ import annotations

import html
import re

#: C0/C1 control characters and DEL except tab and newline (same set the API refuses).
_CONTROL_RE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
#: URL schemes that run code or embed documents when a viewer follows the link.
DANGEROUS_SCHEMES = ("javascript", "vbscript", "data")
#: Browsers drop tab and newline anywhere in a URL (WHATWG URL standard), so a scheme may
#: be spelled with them in between its letters.
_SCHEME_RE = re.compile(
    r"(?<![A-Za-z])(" + "|".join("[\t\n]*".join(name) for name in DANGEROUS_SCHEMES) + r")([\t\n]*\\?:)",
    re.IGNORECASE,
)
#: A CommonMark autolink (spec "Autolinks"): scheme of 2-32 characters, no spaces, < or >.
_AUTOLINK_RE = re.compile(r"<([A-Za-z][A-Za-z0-9+.\-]{1,31}):([^\s<>\x00-\x1f\x7f]*)>")
WORD_JOINER = "\u2060"


def plain_text(text: str) -> str:
    """``text`` without control characters other than tab and newline; CRLF and CR become LF."""
    return _CONTROL_RE.sub("", text.replace("\r\n", "\n").replace("\r", "\n"))


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;")


def markdown_safe(markdown: str) -> str:
    """``markdown`` with no raw HTML and no script links, its Markdown otherwise intact.

    Guarantees (checked by ``tests/property/test_safe_text.py``): the result contains no
    ``<`` except as the opening of an autolink whose scheme is not dangerous, no control
    character but tab and newline, no ``javascript:``/``vbscript:``/``data:`` scheme, and
    ``markdown_safe(markdown_safe(x)) == markdown_safe(x)``.
    """
    text = plain_text(html.unescape(markdown))
    text = _SCHEME_RE.sub(lambda m: m.group(1) + WORD_JOINER + m.group(2), text)
    out: list[str] = []
    last = 0
    for match in _AUTOLINK_RE.finditer(text):
        if match.group(1).lower() in DANGEROUS_SCHEMES:
            continue
        out.append(_escape(text[last:match.start()]))
        out.append(match.group(0))
        last = match.end()
    out.append(_escape(text[last:]))
    return "".join(out)
