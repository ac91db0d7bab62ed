"""The `relay` command line under generated hostile input: every command ×
its options × adversarial values (empty, huge, non-ASCII, control characters, negative
and huge numbers, files where folders are wanted, missing folders, URLs of other
schemes), run in-process through ``relay.cli.main(argv)``.

Properties: the exit code is 0, 1, 2 or 130; no output holds a traceback; a non-zero
exit writes exactly one line to stderr and it starts with ``relay: ``; exit 2 is
``relay: error: …``. The real validation code runs; only what lies beyond it is
stubbed so that no example starts the local runtime or reaches an API: starting
``LocalRelay`` raises at once, and the API client and the approval form answer
"unreachable". Examples are derandomized, so every run tries the same inputs.
"""

from __future__ import annotations

import contextlib
import io
import socket
from collections import Counter
from pathlib import Path

import pytest
import typer.main
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from relay import cli
from tests.support.tally import REPORTS

_get_command = typer.main.get_command

EXAMPLES = 400

#: Per command: positional arguments, options taking a value, flags.
COMMANDS: dict[str, tuple[int, tuple[str, ...], tuple[str, ...]]] = {
    "run": (1, ("--corpus", "--questions", "--approval-timeout", "--max-revisions", "--runs-dir", "--port"), ("--auto-approve",)),
    "serve": (0, ("--port", "--data-dir", "--corpus", "--retry-time-scale"), ()),
    "start": (1, ("--questions", "--max-revisions", "--approval-timeout", "--approver", "--idempotency-key", "--api-url", "--data-dir", "--config"), ()),
    "status": (1, ("--api-url", "--data-dir", "--config"), ()),
    "list": (0, ("--status", "--limit", "--next-token", "--api-url", "--data-dir", "--config"), ()),
    "approve": (1, ("--link", "--as", "--data-dir", "--config"), ()),
    "reject": (1, ("--link", "--as", "--feedback", "--data-dir", "--config"), ()),
    "cancel": (1, ("--reason", "--api-url", "--data-dir", "--config"), ()),
    "redrive": (1, ("--port", "--api-url", "--data-dir", "--config"), ("--auto-approve",)),
    "history": (1, ("--limit", "--next-token", "--api-url", "--data-dir", "--config"), ("--reverse",)),
}

HOSTILE = st.one_of(
    st.just(""),
    st.text(max_size=24),  # any Unicode, control characters included
    st.text(alphabet=st.sampled_from("\x00\x01\t\n\r\x1b\x7f\x85\u2028 é€😀"), min_size=1, max_size=8),
    st.integers(min_value=-(10**30), max_value=10**30).map(str),
    st.sampled_from(["0", "-1", "1", "40", "41", "65535", "65536", "99999", "1e9", "nan", "inf", "-0", " 7 "]),
    st.sampled_from(["x" * 5000, "9" * 5000, "é" * 3000]),
    st.sampled_from(["a-file", "a-file/inside", "nowhere", "nowhere/deeper/", "empty", "empty/", "docs", ".", "/", "runs-dir-ok", "relay-run/"]),
    st.sampled_from(
        [
            "file:///etc/passwd",
            "ftp://example.com/approvals/a?sig=1",
            "javascript:alert(1)",
            "http://127.0.0.1:1/approvals/abc?exp=1&sig=x",
            "https://example.com:99999/approvals/a?sig=1",
            "http://[::1/approvals/a?sig=1",
            "http://127.0.0.1:1",
            "data:text/html,hi",
        ]
    ),
    st.sampled_from(["wf-1", "relay-20261121-141858-23e6", "RUNNING", "DONE", "ann@example.com", "--", "-h"]),
)


#: A valid value per option (and positional), drawn half the time so that examples also
#: get past the first check and reach the later ones (the corpus check, the API call).
VALID = {
    "run": "How do task tokens work?",
    "start": "How do task tokens work?",
    "--corpus": "docs",
    "--questions": "2",
    "--approval-timeout": "60",
    "--max-revisions": "1",
    "--runs-dir": "runs-ok",
    "--port": "0",
    "--data-dir": "data-ok",
    "--retry-time-scale": "0.5",
    "--approver": "ann@example.com",
    "--idempotency-key": "key-1",
    "--api-url": "http://127.0.0.1:1",
    "--config": "home/relay.toml",
    "--status": "RUNNING",
    "--limit": "5",
    "--next-token": "abc",
    "--link": "http://127.0.0.1:1/approvals/abc?exp=1&sig=x",
    "--as": "Ann",
    "--feedback": "Cover expiry.",
    "--reason": "Started by mistake.",
}


@st.composite
def command_lines(draw: st.DrawFn) -> list[str]:
    command = draw(st.sampled_from(sorted(COMMANDS)))
    positionals, options, flags = COMMANDS[command]

    def pick(name: str) -> str:
        return VALID.get(name, "wf-1") if draw(st.booleans()) else draw(HOSTILE)

    argv = [command] + [pick(command) for _ in range(draw(st.sampled_from([positionals, positionals, 0, positionals + 1])))]
    for option in draw(st.lists(st.sampled_from(options), max_size=4, unique=True)) if options else []:
        value = pick(option)
        argv += [f"{option}={value}"] if draw(st.booleans()) else [option, value]
    argv += draw(st.lists(st.sampled_from(flags), max_size=1)) if flags else []
    return argv


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("cli-fuzz")
    (root / "a-file").write_text("a file, not a folder")
    (root / "empty").mkdir()
    (root / "docs").mkdir()
    (root / "docs" / "tokens.md").write_text("# Task tokens\n\nA task token resumes a paused callback task.\n")
    run_dir = root / "relay-run"
    (run_dir / "state" / "executions" / "relay-run").mkdir(parents=True)
    (run_dir / "state" / "executions" / "relay-run" / "execution.json").write_text("{}")
    (root / "home").mkdir()
    (root / "home" / "relay.toml").write_text('api_url = "http://127.0.0.1:1"\n')
    return root


_COMMANDS: dict[tuple[int, object], object] = {}


def _built_once(typer_instance):
    """``typer.main.get_command``, memoized per Typer app and help markup mode.

    ``relay.cli.main`` calls the Typer app, which converts every command's signature into a
    click command on each call (about 60 ms, most of an in-process example). A process runs
    one command, so the conversion is not what this test is about: it is done once, and every
    example parses and runs its command line with the same click command, which click
    re-enters with a fresh context each time.
    """
    key = (id(typer_instance), typer_instance.rich_markup_mode)
    if key not in _COMMANDS:
        _COMMANDS[key] = _get_command(typer_instance)
    return _COMMANDS[key]


@contextlib.contextmanager
def sandbox(workspace: Path):
    """Environment and stubs beyond the validation code: nothing starts, nothing is sent."""
    import relay.local.runtime as runtime
    from relay import client

    class RuntimeRefused:
        def __init__(self, *args, **kwargs) -> None:
            raise RuntimeError("the local runtime is not started in this property test")

    def unreachable(*args, **kwargs):
        raise client.ClientError(0, "no API in this property test")

    with pytest.MonkeyPatch.context() as mp:
        for key in ("RELAY_API_URL", "RELAY_CONFIG", "RELAY_DATA_DIR", "RELAY_CORPUS", "RELAY_KNOWLEDGE_BASE_ID", "RELAY_DEBUG"):
            mp.delenv(key, raising=False)
        mp.setenv("HOME", str(workspace / "home"))
        mp.setenv("RELAY_CACHE_DIR", str(workspace / "cache"))
        mp.chdir(workspace)
        mp.setattr(runtime, "LocalRelay", RuntimeRefused)
        mp.setattr(client.RelayClient, "_request", unreachable)
        mp.setattr(client, "decide", unreachable)
        mp.setattr(typer.main, "get_command", _built_once)
        yield


def run_cli(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main(argv)
    return code, out.getvalue(), err.getvalue()


@settings(
    max_examples=EXAMPLES,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(argv=command_lines())
def _one_command_line(workspace: Path, tried: Counter[str], argv: list[str]) -> None:
    with sandbox(workspace):
        code, out, err = run_cli(argv)
    tried[f"{argv[0]} exit {code}"] += 1
    assert code in {0, 1, 2, 130}, (argv, code, err)
    assert "Traceback" not in out and "Traceback" not in err, (argv, err)
    if code != 0:
        lines = err.splitlines()
        assert len(lines) == 1 and lines[0].startswith("relay: "), (argv, err)
    if code == 2:
        assert err.startswith("relay: error: "), (argv, err)


def test_any_command_line_exits_cleanly_with_at_most_one_error_line(workspace):
    # Given EXAMPLES generated command lines, When each runs / Then each exits cleanly (above)
    tried: Counter[str] = Counter()
    _one_command_line(workspace, tried)
    # And the fuzz really ran them all, on every command (the tally is printed at the end of the session)
    assert sum(tried.values()) >= EXAMPLES and {key.split()[0] for key in tried} == set(COMMANDS), tried
    REPORTS["relay CLI fuzz (command exit code: command lines)"] = [f"{k}: {v}" for k, v in sorted(tried.items())]


@pytest.mark.parametrize(
    "argv",
    [
        ["run", "topic", "--port", "{port}", "--runs-dir", "port-runs"],
        ["serve", "--port", "{port}", "--data-dir", "served"],
        ["redrive", "relay-run/", "--port", "{port}"],
    ],
)
def test_a_port_in_use_is_one_line_naming_port_and_nothing_starts(workspace, argv):
    # Given a port some other process listens on
    with socket.socket() as taken, sandbox(workspace):
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        # When a command is asked to serve on it
        code, _out, err = run_cli([a.replace("{port}", port) for a in argv])
    # Then exit 2 with one line naming --port and that it is in use, before anything started
    assert code == 2 and err == f"relay: error: --port: port {port} on 127.0.0.1 is in use (pick another, or 0 for any free port)\n"
    assert not (workspace / "served").exists() and not (workspace / "port-runs").exists()

