"""Reports and pages are safe: properties of relay_core.safe_text over any text."""

from __future__ import annotations

import html
import re

from hypothesis import given, settings
from hypothesis import strategies as st
from relay_core.safe_text import markdown_safe, plain_text

FUZZ = settings(max_examples=300, derandomize=True, deadline=None)
#: Pieces hostile input is made of, mixed with any text.
hostile = st.sampled_from([
    "<script>alert(1)</script>", "<img src=x onerror=alert(1)>", "<!-- c -->", "<?php ?>", "<![CDATA[x]]>", "</p>",
    "&lt;script&gt;", "&#60;b&#62;", "&#x6A;avascript:", "javascript:", "JaVaScRiPt\t:", "java\nscript:", "data:text/html,",
    "[x](javascript:alert(1))", "[x](<vbscript:msgbox>)", "<https://example.com/a?b=1&c=2>", "<mailto:a@example.com>",
    "<javascript:alert(1)>", "`<b>`", "```\n<b>\n```", "> quote", "&amp;", "&", "<", "\x00", "\x1b[31m", "\r\n", "\x85",
])
texts = st.lists(st.one_of(hostile, st.text(max_size=12)), max_size=8).map("".join)
#: A "<" that could open raw HTML (a tag, comment, declaration or processing instruction).
HTML_START = re.compile(r"<[A-Za-z/!?]")
AUTOLINK = re.compile(r"<[A-Za-z][A-Za-z0-9+.\-]{1,31}:[^\s<>\x00-\x1f\x7f]*>")


@FUZZ
@given(text=texts)
def test_markdown_safe_leaves_no_raw_html_no_script_scheme_and_no_control_characters(text):
    safe = markdown_safe(text)
    outside_autolinks = AUTOLINK.sub("", safe)
    assert not HTML_START.search(outside_autolinks), safe
    assert "<" not in outside_autolinks, safe
    assert not re.search(r"(?i)(?<![a-z])(javascript|vbscript|data)[\t\n]*\\?:", safe.replace("\t", "").replace("\n", "")), safe
    assert not re.search(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]", safe), safe
    assert markdown_safe(safe) == safe  # idempotent: escaped research is not escaped again


#: Text with no ":" (so no autolink and no scheme to break), rich in "<", "&" and entity-like runs.
entity_texts = st.one_of(
    st.text(alphabet="<>&;#x0123456789abcdefltgampquot ", max_size=30),
    texts.map(lambda text: text.replace(":", "")),
)


@FUZZ
@given(text=entity_texts)
def test_markdown_safe_escapes_exactly_once(text):
    # Given text without a link, When it is made safe and read back (one decoding, as a viewer renders it)
    safe = markdown_safe(text)
    # Then it reads exactly as the text decodes (no "&amp;lt;" where a "<" was written, no raw "<" either)
    assert html.unescape(safe) == plain_text(html.unescape(text)), safe
    assert safe.count("&") == html.unescape(safe).count("&") + html.unescape(safe).count("<"), safe


@FUZZ
@given(text=texts)
def test_plain_text_keeps_tab_and_newline_only(text):
    out = plain_text(text)
    assert not re.search(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]", out)
    assert out.replace("\n", "") == re.sub(r"[\x00-\x08\x0a-\x1f\x7f-\x9f]", "", text)


def test_markdown_structure_and_https_autolinks_survive():
    doc = "# Title\n\n> quoted & kept\n\n1. Source <https://example.com/a?b=1&c=2>\n- [x](https://example.com)"
    assert markdown_safe(doc) == "# Title\n\n> quoted &amp; kept\n\n1. Source <https://example.com/a?b=1&c=2>\n- [x](https://example.com)"
    assert markdown_safe("a < b && c &lt; d") == "a &lt; b &amp;&amp; c &lt; d"  # one escape each, never &amp;lt;
