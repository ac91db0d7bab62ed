"""`relay run` input validation: one line naming the field, nothing started."""

from __future__ import annotations

import pytest

from relay.cli import main


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (["run", ""], "topic"),
        (["run", "x" * 2001], "topic"),
        (["run", "ok", "--questions", "0"], "--questions"),
        (["run", "ok", "--questions", "41"], "--questions"),
        (["run", "ok", "--corpus", "/nonexistent/folder"], "--corpus"),
    ],
)
def test_invalid_input_is_one_line_naming_the_field_and_starts_nothing(args, field, capsys, tmp_path):
    code = main([*args, "--runs-dir", str(tmp_path / "runs")])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith(f"relay: error: {field}") and err.count("\n") == 1
    assert not (tmp_path / "runs").exists()
