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


def test_console_options_reach_the_run(monkeypatch, tmp_path):
    # Given `relay run` with the console asked for, and the run itself replaced
    import relay.run

    seen = []
    monkeypatch.setattr(relay.run, "run", lambda options: seen.append(options) or 0)
    # When the command line is parsed
    code = main(["run", "Task tokens", "--console", "--console-port", "0", "--runs-dir", str(tmp_path / "runs")])
    # Then the run is asked to serve the console on any free port
    assert code == 0
    assert [(o.console, o.console_port, o.topic) for o in seen] == [(True, 0, "Task tokens")]
    # and without the flag it is not
    main(["run", "Task tokens", "--runs-dir", str(tmp_path / "runs")])
    assert seen[-1].console is False
