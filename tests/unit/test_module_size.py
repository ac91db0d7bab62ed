"""No module does six jobs: every project Python file outside ``tests/`` stays within
:data:`MAX_LINES` lines (split a bigger one by job, as ``relay/local/moto_patches/`` and
``relay/local/servers/`` are)."""

from __future__ import annotations

from pathlib import Path

from tests.support.sources import ROOT, python_sources

MAX_LINES = 800


def oversized(root: Path = ROOT) -> list[str]:
    """``"path: N lines"`` of every project Python file under ``root`` over :data:`MAX_LINES`."""
    found = []
    for path in python_sources(root):
        lines = len(path.read_text(encoding="utf-8").splitlines())
        if lines > MAX_LINES:
            found.append(f"{path.relative_to(root)}: {lines} lines")
    return found


def test_no_module_outside_tests_is_over_800_lines():
    assert oversized() == []


def test_the_walk_names_a_big_file_and_skips_tests_and_build_output(tmp_path):
    # Given a big module, and big files where the walk must not look
    big = "\n".join(f"x{i} = {i}" for i in range(MAX_LINES + 1)) + "\n"
    for where in ("pkg/big.py", "tests/big_test.py", ".venv/lib/big.py", "build/big.py", "cdk.out/big.py", "node_modules/x/big.py"):
        (tmp_path / where).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / where).write_text(big)
    (tmp_path / "pkg" / "small.py").write_text("x = 1\n" * MAX_LINES)
    # Then only the module over the limit is named, with its size
    assert oversized(tmp_path) == [f"pkg/big.py: {MAX_LINES + 1} lines"]
