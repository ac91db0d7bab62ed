"""Source a newcomer can read: no docstring or comment points at the issue tracker by
number ("issue 13"), which means nothing to someone reading the code."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FOLDERS = ("relay", "layers/common/python", "agents/relay_agents", "functions", "stacks", "bench", "tests", "statemachines")
SUFFIXES = {".py", ".js", ".html", ".css", ".json"}
ISSUE_NUMBER = re.compile(r"\bissues?\s*#?\s*\d+\b|\bissue\s+no\.?\s*\d+", re.IGNORECASE)


def references(text: str) -> list[str]:
    return [match.group(0) for match in ISSUE_NUMBER.finditer(text)]


def test_no_source_refers_to_an_issue_number() -> None:
    found = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()[:100]}"
        for folder in FOLDERS
        for path in sorted((ROOT / folder).rglob("*"))
        if path.suffix in SUFFIXES and path.is_file() and path != Path(__file__) and "node_modules" not in path.parts
        for number, line in enumerate(path.read_text(errors="replace").splitlines(), start=1)
        if references(line)
    ]
    assert found == []


def test_the_pattern_finds_the_usual_spellings() -> None:
    assert references('"""The local console (issue 13): a web UI"""') == ["issue 13"]
    assert references("# see Issue #9 and issues 10") == ["Issue #9", "issues 10"]
    assert references("an issue with 2 causes; reissue 3 times") == []
