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
