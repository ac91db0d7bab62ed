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
    code = main(["run", "Task tokens", "--console", "--runs-dir", str(tmp_path / "runs")])
    # Then the run is asked to serve the console (on its API port, under /console/)
    assert code == 0
    assert [(o.console, o.topic) for o in seen] == [(True, "Task tokens")]
    # and without the flag it is not
    main(["run", "Task tokens", "--runs-dir", str(tmp_path / "runs")])
    assert seen[-1].console is False


def test_relay_run_prints_the_report_quality_headline_then_each_unanswered_question(tmp_path):
    from relay.run import quality_lines

    # Given an execution output carrying the report's quality check with two unanswered questions
    check = {"assessment": None, "sentences": 10, "cited": 10, "grounded": 10, "repeated": 0, "fragments": 2,
             "questions": 3, "answered": 1, "unanswered": ["How do\ntask tokens \x1b[31mexpire?", "Who decides?"]}
    # Then the lines are the headline, then one per unanswered question (control characters gone)
    assert quality_lines({"status": "COMPLETED", "quality": check}, tmp_path) == [
        "quality: 1 of 3 questions answered · 100 % of sentences grounded · 0 repeated · 2 not prose",
        "  unanswered: How do task tokens [31mexpire?",
        "  unanswered: Who decides?",
    ]


def test_relay_run_reads_the_quality_from_the_run_folder_when_the_output_has_none(tmp_path):
    from relay_core.models import QualityAssessment, QuestionCoverage

    from relay.run import quality_lines

    # Given an output without a check (a run redriven from before checks reached the output)
    assert quality_lines({"status": "COMPLETED"}, tmp_path) == []
    # and the run folder's report.quality.json
    assessment = QualityAssessment(
        artifact="report.md", sentences=4, cited=4, grounded=4, repeated=0, fragments=0,
        questions=[QuestionCoverage(question_id="q01", question="What is a task token?", answered=True, relevance=1.0)],
    )
    (tmp_path / "artifacts").mkdir()
    (tmp_path / "artifacts" / "report.quality.json").write_text(assessment.model_dump_json())
    # Then the line comes from it
    assert quality_lines({"status": "COMPLETED"}, tmp_path) == ["quality: 1 of 1 questions answered · 100 % of sentences grounded · 0 repeated"]


@pytest.mark.parametrize("command", ["run", "serve", "start", "status", "list", "approve", "reject", "cancel", "redrive", "history"])
def test_every_command_takes_verbose_and_the_client_commands_the_client_options_once(command, capsys):
    # When a command's help is printed (plain: stdout is not a terminal)
    assert main([command, "--help"]) == 0
    options = [line.split()[0] for line in capsys.readouterr().out.splitlines() if line.strip().startswith("--")]
    # Then --verbose is there once, and the client options are there once for a client command
    assert options.count("--verbose") == 1, options
    client = command not in {"run", "serve"}
    for option in ("--api-url", "--config", "--json"):
        assert options.count(option) == (1 if client else 0), (command, option, options)


@pytest.mark.parametrize("argv", [["status", "wf-1", "--verbose"], ["status", "--verbose", "wf-1"], ["list", "--verbose", "--limit", "5"]])
def test_verbose_works_anywhere_after_the_command(argv, capsys, monkeypatch):
    # Given a client command that fails unexpectedly
    from relay import cli

    def boom(*args, **kwargs):
        raise ValueError("broke")

    monkeypatch.setattr(cli.ClientOptions, "connect", boom)
    monkeypatch.delenv("RELAY_DEBUG", raising=False)
    # When --verbose is given before or after the command's own arguments / Then the traceback is shown
    assert main(argv) == 1
    assert "Traceback (most recent call last)" in capsys.readouterr().err


def test_verbose_reaches_the_local_commands(monkeypatch, tmp_path):
    # Given run, serve and redrive RUN_DIR with their work replaced
    import relay.run
    import relay.serve

    seen = []
    monkeypatch.setattr(relay.run, "run", lambda options: seen.append(("run", options.verbose)) or 0)
    monkeypatch.setattr(relay.serve, "serve", lambda options: seen.append(("serve", options.verbose)) or 0)
    monkeypatch.setattr(relay.run, "redrive_run", lambda run_dir, **kw: seen.append(("redrive", kw["verbose"])) or 0)
    (tmp_path / "runs" / "relay-1" / "state").mkdir(parents=True)
    # When each is run with and without --verbose / Then each is told whether to show handler logs
    for verbose in (["--verbose"], []):
        assert main(["run", "Task tokens", "--runs-dir", str(tmp_path / "runs"), *verbose]) == 0
        assert main(["serve", *verbose, "--port", "0"]) == 0
        assert main(["redrive", str(tmp_path / "runs" / "relay-1"), *verbose]) == 0
    assert seen == [("run", True), ("serve", True), ("redrive", True), ("run", False), ("serve", False), ("redrive", False)]
