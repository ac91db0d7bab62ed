"""The documentation holds together: every relative link in README.md, agents/README.md and
docs/*.md points at a file that exists (and an ``#anchor`` into a Markdown file at one of
its headings, as GitHub slugs them), the README stays short, and the API reference in
docs/api.md is what docs/openapi.json gives (docs/api_reference.py)."""

from __future__ import annotations

import importlib.util
import re
import unicodedata
from pathlib import Path
from types import ModuleType
from urllib.parse import unquote

import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
#: The README is read in five minutes; everything else is a page under docs/.
README_MAX_LINES = 250

_FENCE_RE = re.compile(r"^(```|~~~).*?^\1[ \t]*$", re.MULTILINE | re.DOTALL)
_CODE_SPAN_RE = re.compile(r"(`+)(?:(?!\1).)+?\1", re.DOTALL)
_COMMENT_RE = re.compile(r"<!--.*?-->", re.DOTALL)
#: ``[text](target)`` and ``![alt](target)``, target without spaces, an optional "title".
_INLINE_LINK_RE = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
#: ``[label]: target`` reference definitions.
_REFERENCE_RE = re.compile(r"^ {0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+.*)?$", re.MULTILINE)
_HEADING_RE = re.compile(r"^ {0,3}(#{1,6})[ \t]+(.*?)[ \t]*#*[ \t]*$", re.MULTILINE)
_EXTERNAL_RE = re.compile(r"^(?:[a-z][a-z0-9+.-]*:|//)", re.IGNORECASE)


def documents() -> list[Path]:
    """The Markdown files a reader reaches from the README."""
    return [ROOT / "README.md", ROOT / "agents" / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def without_code(markdown: str) -> str:
    """``markdown`` without fenced blocks, code spans and HTML comments (links there are examples, not links)."""
    return _CODE_SPAN_RE.sub("", _FENCE_RE.sub("", _COMMENT_RE.sub("", markdown)))


def link_targets(markdown: str) -> list[str]:
    """Every link target of ``markdown``, inline links, images and reference definitions, in order."""
    text = without_code(markdown)
    return [m.group(1) for m in _INLINE_LINK_RE.finditer(text)] + [m.group(1) for m in _REFERENCE_RE.finditer(text)]


def slug(heading: str) -> str:
    """GitHub's anchor for a heading's text (github-slugger): inline Markdown reduced to its
    text, lower-cased, every character but letters, marks, numbers, ``_``, ``-`` and spaces
    dropped, spaces made hyphens."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # links and images: their text
    text = re.sub(r"<[^>]+>", "", text).replace("`", "").replace("*", "")
    kept = "".join(
        c for c in text.lower() if c in " -_" or unicodedata.category(c)[0] in "LMN"
    )
    return kept.replace(" ", "-")


def anchors(markdown: str) -> set[str]:
    """The anchors GitHub gives ``markdown``'s headings, a repeated one suffixed ``-1``, ``-2``, …"""
    seen: dict[str, int] = {}
    out: set[str] = set()
    for match in _HEADING_RE.finditer(_FENCE_RE.sub("", markdown)):
        base = slug(match.group(2))
        count = seen.get(base, 0)
        seen[base] = count + 1
        out.add(base if count == 0 else f"{base}-{count}")
    return out


def _shown(path: Path) -> str:
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def broken_links(document: Path) -> list[str]:
    """The relative links of ``document`` that point at nothing, each as ``target: why``."""
    problems = []
    for target in link_targets(document.read_text(encoding="utf-8")):
        if _EXTERNAL_RE.match(target):
            continue
        path, _, anchor = target.partition("#")
        resolved = (document.parent / unquote(path)).resolve() if path else document
        if path.startswith("/") or not resolved.exists():
            problems.append(f"{target}: no file {_shown(resolved)}")
            continue
        if anchor and resolved.suffix == ".md" and unquote(anchor) not in anchors(resolved.read_text(encoding="utf-8")):
            problems.append(f"{target}: no heading with the anchor #{anchor} in {_shown(resolved)}")
    return problems


def api_reference() -> ModuleType:
    spec = importlib.util.spec_from_file_location("api_reference", ROOT / "docs" / "api_reference.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("document", documents(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_resolves_to_a_file_and_heading(document):
    assert broken_links(document) == []


def test_the_readme_links_every_docs_page():
    linked = {Path(t.partition("#")[0]).name for t in link_targets((ROOT / "README.md").read_text(encoding="utf-8"))}
    assert {p.name for p in (ROOT / "docs").glob("*.md")} <= linked


def test_the_readme_is_read_in_five_minutes():
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    assert len(lines) <= README_MAX_LINES, f"README.md has {len(lines)} lines; move detail to a page under docs/"


def test_a_link_to_a_missing_file_or_heading_is_found(tmp_path):
    # Given a page with good links and broken ones (and link-like text in code, which is not a link)
    (tmp_path / "other.md").write_text("# Other page\n\n## The `relay serve` data folder\n\n## Step 1. Build (once)\n")
    page = tmp_path / "page.md"
    page.write_text(
        "# Page\n\n## Same page\n\n"
        "[ok](other.md) [ok](other.md#other-page) [ok](other.md#the-relay-serve-data-folder) "
        "[ok](other.md#step-1-build-once) [ok](#same-page) [ok](https://example.com/nowhere.md) ![ok](other.md)\n"
        "[gone](missing.md) [no heading](other.md#no-such-heading) [no anchor](#nowhere)\n\n"
        "`[code](missing-in-code.md)`\n\n```\n[fenced](missing-in-fence.md)\n```\n\n[ref]: also-missing.md\n"
    )
    # Then exactly the broken ones are reported
    problems = broken_links(page)
    assert [p.split(":")[0] for p in problems] == [
        "missing.md", "other.md#no-such-heading", "#nowhere", "also-missing.md"
    ], problems


def test_repeated_headings_get_numbered_anchors_as_on_github():
    assert anchors("# A\n## Design notes\n## Design notes\n") == {"a", "design-notes", "design-notes-1"}
    assert slug("`POST /workflows/{workflow_id}/cancel`") == "post-workflowsworkflow_idcancel"
    assert slug("Measuring it: bench_quality.py") == "measuring-it-bench_qualitypy"


def test_the_api_reference_is_what_openapi_json_gives():
    import json

    reference = api_reference()
    page = (ROOT / "docs" / "api.md").read_text(encoding="utf-8")
    expected = reference.render(json.loads((ROOT / "docs" / "openapi.json").read_text(encoding="utf-8")))
    assert reference.current_block(page) == expected, (
        "docs/api.md's reference is out of date: run python docs/api_reference.py (after make openapi)"
    )


def test_every_path_of_the_api_is_in_the_reference():
    import json

    doc = json.loads((ROOT / "docs" / "openapi.json").read_text(encoding="utf-8"))
    page = (ROOT / "docs" / "api.md").read_text(encoding="utf-8")
    for path, operations in doc["paths"].items():
        for method in operations:
            assert f"### `{method.upper()} {path}`" in page, (method, path)


def test_the_reference_check_fails_on_a_stale_page(tmp_path, monkeypatch, capsys):
    # Given docs/api.md whose reference no longer matches openapi.json
    reference = api_reference()
    stale = tmp_path / "api.md"
    stale.write_text((ROOT / "docs" / "api.md").read_text(encoding="utf-8").replace("| `GET` |", "| `PUT` |", 1))
    monkeypatch.setattr(reference, "PAGE", stale)
    # Then the check fails, and writing it makes it pass
    assert reference.main(["--check"]) == 1
    assert "out of date" in capsys.readouterr().err
    assert reference.main([]) == 0 and reference.main(["--check"]) == 0
