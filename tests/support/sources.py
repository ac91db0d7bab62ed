"""The repository's own Python source files, as the source-reading tests walk them: every
``*.py`` under the repository root but tests, virtual environments, build output
(``build``, ``cdk.out``), ``node_modules`` and hidden folders."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
#: Folders (by name, at any depth) whose files are not the project's source.
SKIPPED = {"tests", ".venv", "venv", "build", "cdk.out", "node_modules", "__pycache__"}


def python_sources(root: Path = ROOT) -> Iterator[Path]:
    """Every project Python file under ``root``, sorted."""
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(root).parts[:-1]
        if any(part in SKIPPED or part.startswith(".") for part in parts):
            continue
        yield path


def string_constants(path: Path) -> Iterator[tuple[int, str]]:
    """``(line, value)`` of every string constant in a Python file (docstrings included)."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            yield node.lineno, node.value


def collection_literals(path: Path) -> Iterator[tuple[int, set[str]]]:
    """``(line, strings)`` of every set, list, tuple and dict literal (dict: its keys) in a
    Python file, with the string constants it holds directly."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        elements = node.keys if isinstance(node, ast.Dict) else node.elts if isinstance(node, (ast.Set, ast.List, ast.Tuple)) else None
        if elements is None:
            continue
        values = {e.value for e in elements if isinstance(e, ast.Constant) and isinstance(e.value, str)}
        yield node.lineno, values
