"""Every `relay` command answers bad input with one line and exit 2, and an unexpected
error with one line and exit 1: never a traceback. No sockets: nothing here
gets as far as starting the local runtime or calling an API."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from relay import cli
from relay.cli import main

pytestmark = pytest.mark.unit


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    for key in ("RELAY_API_URL", "RELAY_CONFIG", "RELAY_DATA_DIR", "RELAY_CORPUS", "RELAY_KNOWLEDGE_BASE_ID", "RELAY_DEBUG"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("RELAY_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a-file").write_text("not a folder")
    (tmp_path / "empty").mkdir()
    return tmp_path


@pytest.fixture
def no_runtime(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any attempt to start the local runtime fails at once (so a test that gets that far shows it)."""
    import relay.local.runtime as runtime

    class Refused:
        def __init__(self, *args, **kwargs) -> None:
            raise RuntimeError("the local runtime is not started in unit tests")

    monkeypatch.setattr(runtime, "LocalRelay", Refused)


def one_error_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("relay: error: ")
    return lines[0]


@pytest.mark.parametrize(
    ("args", "names"),
    [
        (["run", "t", "--port", "99999"], ["--port", "0-65535"]),
        (["run", "t", "--port", "-1"], ["--port", "0-65535"]),
        (["run", "t", "--port", "eighty"], ["--port", "not a port number"]),
        (["run", "t", "--runs-dir", "a-file"], ["--runs-dir", "a-file is a file, not a folder"]),
        (["run", "t", "--runs-dir", "a-file/inside"], ["--runs-dir", "is a file, not a folder"]),
        (["run", "t", "--runs-dir", ""], ["--runs-dir", "must not be empty"]),
        (["run", "t", "--questions", "0"], ["--questions", "greater than or equal to 1"]),
        (["run", "t", "--questions", "9" * 40], ["--questions", "less than or equal to 40"]),
        (["run", "t", "--approval-timeout", "-5"], ["--approval-timeout", "greater than or equal to 1"]),
        (["run", "t", "--max-revisions", "11"], ["--max-revisions", "less than or equal to 10"]),
        (["run", "t", "--corpus", ""], ["--corpus", "must not be empty"]),
        (["run", "t", "--corpus", "a-file"], ["--corpus", "a-file is a file, not a folder"]),
        (["run", "t", "--corpus", "empty"], ["--corpus", "is empty"]),
        (["run", "t", "--corpus", "nowhere"], ["--corpus", "nowhere does not exist"]),
        (["serve", "--port", "65536"], ["--port", "0-65535"]),
        (["serve", "--data-dir", "a-file"], ["--data-dir", "is a file, not a folder"]),
        (["serve", "--corpus", "empty"], ["--corpus", "is empty"]),
        (["serve", "--retry-time-scale", "nan"], ["--retry-time-scale", "above 0"]),
        (["start", "t", "--idempotency-key", ""], ["--idempotency-key", "is empty", "printable ASCII"]),
        (["start", "t", "--idempotency-key", "clé"], ["--idempotency-key", "printable ASCII"]),
        (["start", "t", "--idempotency-key", "a\r\nX-Injected: 1"], ["--idempotency-key", "no control characters"]),
        (["start", "", "--api-url", "http://127.0.0.1:9"], ["topic", "at least 1 character"]),
        (["start", "t", "--questions", "41", "--api-url", "http://127.0.0.1:9"], ["--questions", "less than or equal to 40"]),
        (["start", "t", "--approver", "not an email", "--api-url", "http://127.0.0.1:9"], ["--approver"]),
        (["start", "t", "--api-url", "ftp://example.com"], ["--api-url", "not an http(s) URL"]),
        (["start", "t", "--api-url", "http://example.com:99999"], ["--api-url", "not a valid URL"]),
        (["start", "t", "--api-url", "http://exa mple.com"], ["--api-url", "spaces or control characters"]),
        (["status", ""], ["WORKFLOW_ID", "must not be empty"]),
        (["status", "../etc/passwd"], ["WORKFLOW_ID", "is not a workflow id"]),
        (["status", "wf\n1"], ["WORKFLOW_ID", "is not a workflow id"]),
        (["status", "wf-1", "--data-dir", "a-file"], ["--data-dir", "is a file, not a folder"]),
        (["cancel", "", "--reason", "x"], ["WORKFLOW_ID", "must not be empty"]),
        (["cancel", "wf-1", "--reason", "  "], ["--reason", "must not be empty"]),
        (["cancel", "wf-1", "--reason", "x" * 1001], ["--reason", "at most 1,000"]),
        (["history", "wf-1", "--limit", "0"], ["--limit", "1-1,000"]),
        (["history", "wf-1", "--limit", "1001"], ["--limit", "1-1,000"]),
        (["history", "", "--limit", "5"], ["WORKFLOW_ID", "must not be empty"]),
        (["list", "--limit", "-3"], ["--limit", "1-100"]),
        (["list", "--next-token", ""], ["--next-token", "must not be empty"]),
        (["list", "--status", "DONE"], ["--status", "invalid choice"]),
        (["approve", "wf-1", "--link", "not a url"], ["--link", "not an http(s) approval link"]),
        (["approve", "wf-1", "--link", "file:///etc/passwd"], ["--link", "not an http(s) approval link"]),
        (["approve", "wf-1", "--link", "javascript:alert(1)//approvals/a?sig=1"], ["--link", "not an http(s) approval link"]),
        (["approve", "wf-1", "--link", "https://h:99999/approvals/a?sig=1"], ["--link", "host or port is invalid"]),
        (["reject", "wf-1", "--link", "https://h/approvals/a?sig=1"], ["--feedback", "required"]),
        (["reject", "wf-1", "--feedback", " ", "--link", "https://h/approvals/a?sig=1"], ["--feedback", "must not be empty"]),
        (["approve", "", "--link", "https://h/approvals/a?sig=1"], ["WORKFLOW_ID", "must not be empty"]),
        (["redrive", ""], ["WORKFLOW_ID|RUN_DIR", "must not be empty"]),
        (["redrive", "runs/nowhere/"], ["WORKFLOW_ID|RUN_DIR", "not a relay run folder"]),
        (["redrive", "empty/"], ["RUN_DIR", "not a relay run folder"]),
        (["redrive", "wf-1", "--auto-approve"], ["--auto-approve", "only for a relay run folder"]),
        (["nonsense"], ["invalid choice", "relay --help"]),
        (["run"], ["required: topic", "relay run --help"]),
        (["run", "t", "--no-such-option", "x\ny"], ["unrecognized arguments", "x\\ny"]),
        (["status", "wf\x001"], ["NUL"]),
    ],
)
def test_bad_input_exits_2_with_one_line_naming_the_option_and_starts_nothing(args, names, capsys, clean_env, no_runtime):
    # When a command gets input that breaks a rule
    code = main(args)
    # Then it exits 2 with one line naming the option and the rule, and creates nothing
    line = one_error_line(capsys)
    assert code == 2
    for name in names:
        assert name in line, line
    assert not (clean_env / "runs").exists() and not (clean_env / ".relay").exists()
    assert not any((clean_env / "empty").iterdir())


@pytest.mark.parametrize("variable", ["--corpus", "RELAY_CORPUS"])
@pytest.mark.parametrize("command", ["run", "serve"])
def test_a_bad_corpus_is_named_by_where_it_came_from(command, variable, capsys, clean_env, monkeypatch, no_runtime):
    # Given a folder of binary files only
    (clean_env / "binary").mkdir()
    (clean_env / "binary" / "dump.txt").write_bytes(b"\x7fELF\x00\x00")
    args = [command, "t"] if command == "run" else [command, "--data-dir", "data"]
    if variable == "--corpus":
        args += ["--corpus", "binary"]
    else:
        monkeypatch.setenv("RELAY_CORPUS", "binary")
    # When the command starts / Then it names the option or variable and the reason
    assert main(args) == 2
    line = one_error_line(capsys)
    assert line.startswith(f"relay: error: {variable}: folder ") and "no document with text to index" in line
    assert "dump.txt: binary file" in line
    assert not (clean_env / "runs").exists() and not (clean_env / "data").exists()


def test_a_good_corpus_with_one_bad_file_warns_in_one_line_and_goes_on(capsys, clean_env, no_runtime):
    # Given a corpus with one readable document and one that is not UTF-8
    docs = clean_env / "docs"
    docs.mkdir()
    (docs / "tokens.md").write_text("# Tokens\n\nTask tokens resume callbacks.\n")
    (docs / "legacy.txt").write_bytes("naïve".encode("latin-1"))
    # When a run starts (the runtime start is refused in this test)
    code = main(["run", "t", "--corpus", "docs"])
    err = capsys.readouterr().err.splitlines()
    # Then the bad file is one warning line, and the run went past the check
    assert err[0] == "relay: warning: --corpus: skipped legacy.txt: not UTF-8 text (invalid byte at offset 2)"
    assert code == 1 and err[1].startswith("relay: error: RuntimeError: the local runtime is not started")
    assert len(err) == 2


def test_redrive_checks_the_runs_saved_corpus_before_it_starts(capsys, clean_env, no_runtime):
    # Given a run folder whose saved corpus is now empty
    run_dir = clean_env / "runs" / "relay-1"
    (run_dir / "state" / "executions" / "relay-1").mkdir(parents=True)
    (run_dir / "state" / "executions" / "relay-1" / "execution.json").write_text("{}")
    (run_dir / "run.json").write_text(json.dumps({"name": "relay-1", "corpus": str(clean_env / "empty")}))
    # When it is redriven / Then one line names the saved corpus and the reason
    assert main(["redrive", str(run_dir)]) == 2
    line = one_error_line(capsys)
    assert line.startswith("relay: error: --corpus (saved in ") and line.endswith("is empty")
    # And a run.json that is not JSON is one line too
    (run_dir / "run.json").write_text("{not json")
    assert main(["redrive", str(run_dir)]) == 2
    assert "run.json is unreadable" in one_error_line(capsys)


def test_an_unexpected_error_is_one_line_and_exit_1(capsys, monkeypatch):
    # Given a command that fails in a way nobody planned for
    def boom(*args, **kwargs):
        raise ValueError("something\nbroke")

    monkeypatch.setattr(cli.ClientOptions, "connect", boom)
    # When it runs / Then one escaped line names the error and how to see details
    assert main(["status", "wf-1"]) == 1
    line = one_error_line(capsys)
    assert line == "relay: error: ValueError: something\\nbroke; run with --verbose or RELAY_DEBUG=1 for the traceback"


@pytest.mark.parametrize("ask", ["--verbose", "RELAY_DEBUG"])
def test_verbose_or_relay_debug_shows_the_traceback(ask, capsys, monkeypatch):
    def boom(*args, **kwargs):
        raise ValueError("broke")

    monkeypatch.setattr(cli.ClientOptions, "connect", boom)
    args = ["status", "wf-1"]
    if ask == "--verbose":
        args.append("--verbose")
    else:
        monkeypatch.setenv("RELAY_DEBUG", "1")
    assert main(args) == 1
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err and err.splitlines()[-1] == "relay: error: ValueError: broke"


def test_ctrl_c_outside_a_run_exits_130_with_one_line(capsys, monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli.ClientOptions, "connect", interrupted)
    assert main(["list"]) == 130
    assert capsys.readouterr().err == "relay: interrupted\n"


def test_help_still_exits_0(capsys):
    assert main(["run", "--help"]) == 0
    assert "--corpus" in capsys.readouterr().out
