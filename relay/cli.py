"""The ``relay`` command line (Typer, with rich help and tables).

``relay run "TOPIC" [--corpus DIR] [--questions N] [--auto-approve]`` runs one
workflow on the local runtime (see :mod:`relay.run`). Exit codes: 0 succeeded,
1 the execution failed (the message names the state), 2 invalid input.

``relay serve --port PORT --data-dir DIR [--corpus DIR]`` serves the HTTP API locally
until Ctrl-C (see :mod:`relay.serve`). The client commands talk to a served API,
local or deployed (see :mod:`relay.client` for where the URL comes from):
``relay start TOPIC``, ``relay status ID``, ``relay list [--status S]``,
``relay approve ID``, ``relay reject ID --feedback TEXT``, ``relay cancel ID --reason TEXT``,
``relay redrive ID`` (resume a FAILED, TIMED_OUT or ABORTED workflow from the state that
failed), ``relay history ID``. ``relay redrive RUN_DIR [--auto-approve]`` resumes a
failed or interrupted ``relay run`` from its folder, in-process (exit codes as
``relay run``; 130 when interrupted).
They print the API's answer: as JSON (indented, parseable) whenever stdout is not a
terminal or ``--json`` is given, else as rich tables (``list`` and ``history`` one row per
item, the others one row per field; no colour when ``NO_COLOR`` is set). Exit codes:
0 done, 1 the API refused (its message is printed), 2 bad configuration or arguments.

No command prints a traceback. Bad input exits 2 with one line on stderr naming the
option and its rule (``relay: error: argument --port: '99999' is not a port number (must
be 0-65535; …) (see: relay run --help)``); Typer's own usage errors (an unknown command
or option, a missing argument) are one line too, in the same words as before Typer
(``invalid choice``, ``the following arguments are required``, ``unrecognized
arguments``), ending with where the help is (no usage block). Anything unexpected exits
1 with one line (``relay: error: <type>: <what went wrong>; run with --verbose or
RELAY_DEBUG=1 for the traceback``); ``--verbose`` or ``RELAY_DEBUG=1`` prints the
traceback first. Ctrl-C exits 130.

The options every command shares are declared once (:func:`_command`): ``--verbose`` on
every command and ``--api-url``, ``--data-dir``, ``--config``, ``--json`` on the client
commands, given after the command's name like its own options; their values reach the
command through Typer's context (``ctx.obj``), and each client command calls
:class:`relay.client.RelayClient` itself.

Start-up: this module imports Typer and the status enum (``relay_core.contracts``); each
command imports what it needs when it runs (the local runtime, the HTTP client, rich for
tables). Typer itself imports pydantic to convert parameters (Typer 0.29), which is most
of the start-up time of ``relay <command> --help``.
"""

from __future__ import annotations

import inspect
import json
import math
import os
import re
import sys
import traceback
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from relay_core.contracts import RecordStatus

from relay import output
from relay.output import CONTROL, one_line

if TYPE_CHECKING:
    from relay.client import RelayClient

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., int])

#: Longest piece of a user's value echoed in an error line.
ECHO_MAX_CHARS = 120
#: Workflow ids are execution names (relay_core.models.EXECUTION_NAME_RE).
WORKFLOW_ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,80}$")
#: An approval link as the email carries it (relay.mailbox.LINK_RE, anchored).
APPROVAL_LINK_RE = re.compile(r"^https?://[^\s<>\"]+/approvals/[A-Za-z0-9_-]+\?[^\s<>\"]+$")
#: Printable ASCII, 1-255 characters, no leading or trailing space (the API's Idempotency-Key rule).
IDEMPOTENCY_KEY_RE = re.compile(r"^[\x21-\x7e](?:[\x20-\x7e]{0,253}[\x21-\x7e])?$")
#: Help text width when stdout is not a terminal: wide enough that no line wraps.
HELP_UNWRAPPED_WIDTH = 100_000
#: The record statuses ``relay list --status`` accepts.
STATUSES: tuple[str, ...] = tuple(status.value for status in RecordStatus)


class UsageError(Exception):
    """Bad command-line input: the message is one line naming the option and its rule."""


class _ParseError(UsageError):
    """A value refused while the command line is parsed (the line ends with where the help is)."""


class _Interrupted(Exception):
    """Ctrl-C inside a command (Typer would turn a ``KeyboardInterrupt`` into a silent 130)."""


class _Invalid(Exception):
    """A value breaks its option's rule; the message says how (the caller names the option)."""


def echo(value: str) -> str:
    """A user's value quoted for an error line (escaped, shortened)."""
    return repr(value if len(value) <= ECHO_MAX_CHARS else value[: ECHO_MAX_CHARS - 1] + "…")


# ----- value rules: text typed → value, or _Invalid saying why ---------------------------------
def _whole(text: str) -> int:
    """A whole number, range checked later with the workflow input (``--questions`` …)."""
    try:
        return int(text)
    except ValueError:
        raise _Invalid(f"invalid int value: {echo(text)}") from None


def _integer(low: int, high: int | None = None) -> Callable[[str], int]:
    """A whole number in ``low..high``."""
    rule = f"{low}-{high:,}" if high is not None else f"{low} or more"

    def parse(text: str) -> int:
        try:
            value = int(text.strip())
        except ValueError:
            raise _Invalid(f"{echo(text)} is not a whole number (must be {rule})") from None
        if value < low or (high is not None and value > high):
            raise _Invalid(f"{echo(text)} is out of range (must be {rule})")
        return value

    return parse


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise _Invalid(f"{echo(text)} is not a number") from None
    if not (math.isfinite(value) and value > 0):
        raise _Invalid(f"{echo(text)} must be a number above 0")
    return value


def _port(text: str) -> int:
    try:
        value = int(text.strip())
    except ValueError:
        raise _Invalid(f"{echo(text)} is not a port number (must be 0-65535)") from None
    if not 0 <= value <= 65535:
        raise _Invalid(f"{echo(text)} is not a port number (must be 0-65535; 0 = any free port)")
    return value


def _text(max_chars: int, *, required: bool = True) -> Callable[[str], str]:
    """Text of at most ``max_chars`` characters without control characters (and, if
    ``required``, not blank)."""

    def parse(text: str) -> str:
        if required and not text.strip():
            raise _Invalid("must not be empty")
        if CONTROL.search(text):
            raise _Invalid(f"{echo(text)} holds control characters (newlines, tabs…)")
        if len(text) > max_chars:
            raise _Invalid(f"is {len(text):,} characters; at most {max_chars:,}")
        return text

    return parse


def _folder(text: str) -> str:
    if not text.strip():
        raise _Invalid("must not be empty (a folder)")
    return text


def _folder_path(text: str) -> Path:
    return Path(_folder(text))


def _feedback(text: str) -> str:
    """Reviewer feedback: not blank, at most 4,000 characters; line breaks and tabs are fine."""
    _text(4000)(re.sub(r"[\r\n\t]", " ", text))
    return text


def _workflow_id(text: str) -> str:
    if not text:
        raise _Invalid("must not be empty (a workflow id such as relay-20261121-141858-23e6)")
    if not WORKFLOW_ID_RE.fullmatch(text):
        raise _Invalid(f"{echo(text)} is not a workflow id (1-80 letters, digits, '-' or '_', as relay start prints it)")
    return text


def _idempotency_key(text: str) -> str:
    if not IDEMPOTENCY_KEY_RE.fullmatch(text):
        problem = "is empty" if not text else f"{echo(text)} is invalid"
        raise _Invalid(
            f"{problem}: use 1-255 printable ASCII characters (no control characters, no non-ASCII), "
            "not starting or ending with a space"
        )
    return text


def _approval_link(text: str) -> str:
    problem = f"{echo(text)} is not an http(s) approval link"
    if not APPROVAL_LINK_RE.fullmatch(text):
        raise _Invalid(f"{problem} (https://HOST/…/approvals/ID?exp=…&sig=…, as in the email)")
    try:
        parts = urllib.parse.urlsplit(text)
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError:
        raise _Invalid(f"{problem}: its host or port is invalid") from None
    if not parts.hostname:
        raise _Invalid(f"{problem}: it names no host")
    return text


def _api_url(text: str) -> str:
    from relay import client as api

    try:
        api.check_api_url(text, "--api-url")
    except api.ConfigError as exc:
        raise _Invalid(str(exc).removeprefix("--api-url: ")) from None
    return text


def _model(text: str) -> str:
    from relay.local.llm import INSTALL_COMMAND, MODEL_CHOICES

    if text not in MODEL_CHOICES:
        choices = ", ".join(repr(m) for m in MODEL_CHOICES)
        raise _Invalid(f"invalid choice: {echo(text)} (choose from {choices}; local is installed by: {INSTALL_COMMAND})")
    return text


def _status(text: str) -> str:
    if text not in STATUSES:
        raise _Invalid(f"invalid choice: {echo(text)} (choose from {', '.join(repr(s) for s in STATUSES)})")
    return text


# ----- declaring options: every value goes through its rule, named as the user typed it ------
def _parse(name: str, rule: Callable[[str], T]) -> Callable[[Any], T]:
    """A Typer ``parser`` for option or argument ``name``: ``rule`` applied to the text typed
    (a default, already a value, passes through); a broken rule is one line naming ``name``."""

    def parse(value: Any) -> T:
        if not isinstance(value, str):
            return value  # type: ignore[no-any-return]
        try:
            return rule(value)
        except _Invalid as exc:
            raise _ParseError(f"argument {name}: {exc}") from None

    return parse


def _option(name: str, help_text: str, rule: Callable[[str], Any], metavar: str, *, hidden: bool = False) -> Any:
    return typer.Option(name, help=help_text, parser=_parse(name, rule), metavar=metavar, show_default=False, hidden=hidden)


def _flag(name: str, help_text: str) -> Any:
    return typer.Option(name, help=help_text, show_default=False)


def _argument(metavar: str, help_text: str, rule: Callable[[str], Any] | None = None) -> Any:
    return typer.Argument(metavar=metavar, help=help_text, parser=_parse(metavar, rule) if rule else None, show_default=False)


Topic = Annotated[str, _argument("topic", "the research topic (1-2,000 characters)")]
WorkflowId = Annotated[str, _argument("WORKFLOW_ID", "the workflow id, as relay start prints it", _workflow_id)]
Corpus = Annotated[
    str | None, _option("--corpus", "folder of .md/.txt/.html documents to research (default: AWS docs in botocore)", _folder, "DIR")
]
ApiUrl = Annotated[
    str | None, _option("--api-url", "API base URL (else RELAY_API_URL, the config file, or a running relay serve)", _api_url, "URL")
]
DataDir = Annotated[
    str | None, _option("--data-dir", "relay serve's data folder, for its outbox and serve.json (default ./.relay)", _folder, "DIR")
]
ConfigFile = Annotated[
    str | None, _option("--config", "config file (default RELAY_CONFIG or ~/.config/relay/config.toml)", _text(4096), "FILE")
]
AsJson = Annotated[bool, _flag("--json", "print the answer as JSON on a terminal too (it is JSON whenever stdout is not a terminal)")]
Questions = Annotated[int | None, _option("--questions", "research questions, 1-40 (default 3)", _whole, "N")]
MaxRevisions = Annotated[int | None, _option("--max-revisions", "rejections sent back for revision, 0-10 (default 2)", _whole, "N")]
ApprovalTimeout = Annotated[int | None, _option("--approval-timeout", "approval wait (default 86400)", _whole, "SECONDS")]
NextToken = Annotated[str | None, _option("--next-token", "the next_token of the previous page", _text(4096), "TOKEN")]
AutoApprove = Annotated[bool, _flag("--auto-approve", "approve the emailed link automatically")]
Model = Annotated[
    str | None,
    _option("--model", "offline (default) or local: a small LLM served in-process (install: make setup-llm)", _model, "MODEL"),
]

app = typer.Typer(
    name="relay",
    help="Relay: research topic in, approved report out.",
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
#: Unknown options and extra arguments reach the command, which refuses them in argparse's
#: words (``unrecognized arguments: …``, naming every one of them).
_EXTRAS = {"ignore_unknown_options": True, "allow_extra_args": True}


# ----- the options every command shares, declared once --------------------------------------------
@dataclass(frozen=True)
class ClientOptions:
    """Where the API is and how its answer is shown: ``--api-url``, ``--data-dir``,
    ``--config`` and ``--json``, which every client command takes (see :mod:`relay.client`
    for where the URL comes from when ``--api-url`` is not given)."""

    api_url: str | None = None
    data_dir: str | None = None
    config: str | None = None
    as_json: bool = False

    def checked(self) -> ClientOptions:
        """These options, once ``--data-dir`` is known not to be a file.

        Raises:
            relay.client.ConfigError: it is a file.
        """
        from relay import client as api

        if self.data_dir is not None:
            api.check_data_dir(self.data_dir, "--data-dir")
        return self

    def connect(self) -> RelayClient:
        """The API client: URL and signing resolved (:func:`relay.client.resolve_settings`).

        Raises:
            relay.client.ConfigError: no API URL anywhere, or a bad one.
        """
        from relay import client as api

        return api.client_for(api.resolve_settings(self.api_url, self.data_dir, self.config))

    def outbox(self) -> Path:
        """The local outbox of ``relay serve``'s data folder, where approval emails land."""
        from relay import client as api

        return api.resolve_data_dir(self.data_dir, self.config) / "outbox"

    def show(self, command: str, answer: Any) -> int:
        """Print ``answer`` (:func:`relay.output.show`); exit code 0."""
        output.show(command, answer, self.as_json)
        return 0


@dataclass
class _Session:
    """What the shared options say for the command being run: Typer's ``ctx.obj``, set before
    the command runs (:func:`_command`) and read by the command (``_session(ctx)``) and, after
    an unexpected error, by :func:`main` (``verbose``: show the traceback)."""

    verbose: bool = False
    client: ClientOptions = ClientOptions()


def _session(ctx: typer.Context) -> _Session:
    if not isinstance(ctx.obj, _Session):
        ctx.obj = _Session()
    return ctx.obj


def _shared(name: str, annotation: Any, default: Any) -> inspect.Parameter:
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation)


#: ``--verbose``: every command takes it, after its name like its own options.
VERBOSE = _shared(
    "verbose",
    Annotated[bool, _flag("--verbose", "print the traceback of an unexpected error; run, serve and redrive RUN_DIR: also handler logs")],
    False,
)
#: The client commands' options (:class:`ClientOptions`).
CLIENT_OPTIONS: tuple[inspect.Parameter, ...] = (
    _shared("api_url", ApiUrl, None),
    _shared("data_dir", DataDir, None),
    _shared("config", ConfigFile, None),
    _shared("as_json", AsJson, False),
)


def _command(name: str, help_text: str, epilog: str | None = None, *, client: bool = False) -> Callable[[F], F]:
    """Register ``func(ctx, …its own parameters)`` as command ``name``.

    The command line takes the function's parameters and the shared options, declared once
    here: ``--verbose`` for every command and, with ``client``, :data:`CLIENT_OPTIONS`. Their
    values go to ``ctx.obj`` (:class:`_Session`) before the function runs. Every command
    refuses extra arguments; Ctrl-C inside it becomes :class:`_Interrupted` (exit 130 with a
    line); a client command's configuration errors exit 2 and the API's refusals exit 1, one
    line each (:func:`_answer_errors`).
    """
    shared = (*CLIENT_OPTIONS, VERBOSE) if client else (VERBOSE,)

    def register(func: F) -> F:
        own = inspect.signature(func, eval_str=True)

        def command(ctx: typer.Context, **values: Any) -> int:
            session = _session(ctx)
            session.verbose = values.pop(VERBOSE.name)
            if client:
                session.client = ClientOptions(**{p.name: values.pop(p.name) for p in CLIENT_OPTIONS})
            _refuse_extras(ctx)
            try:
                return _answer_errors(func, ctx, values) if client else func(ctx, **values)
            except KeyboardInterrupt:
                raise _Interrupted from None

        signature = own.replace(parameters=[*own.parameters.values(), *shared])
        command.__signature__ = signature  # type: ignore[attr-defined]  # what Typer reads
        command.__annotations__ = {p.name: p.annotation for p in signature.parameters.values()} | {"return": int}
        command.__name__, command.__doc__ = func.__name__, func.__doc__
        app.command(name, help=help_text, epilog=epilog, context_settings=_EXTRAS)(command)
        return func

    return register


def _answer_errors(func: Callable[..., int], ctx: typer.Context, values: dict[str, Any]) -> int:
    """Run a client command: a configuration error exits 2 (``relay: error: …``), an API
    refusal or an unreachable API 1 (``relay: HTTP 409: …``), each one line."""
    from relay import client as api

    try:
        return func(ctx, **values)
    except api.ConfigError as exc:
        print(f"relay: error: {one_line(str(exc))}", file=sys.stderr)
        return 2
    except api.ClientError as exc:
        where = f"HTTP {exc.status}: " if exc.status else ""
        print(f"relay: {where}{one_line(str(exc))}", file=sys.stderr)
        return 1


def _refuse_extras(ctx: typer.Context) -> None:
    if ctx.args:
        raise _ParseError("unrecognized arguments: " + " ".join(ctx.args))


def _client(ctx: typer.Context) -> ClientOptions:
    """The client options of this command line (``--data-dir`` checked)."""
    return _session(ctx).client.checked()


# ----- commands ----------------------------------------------------------------------------------
@_command("run", "run one workflow locally and offline, start to finish", "A failed or interrupted run resumes with: relay redrive runs/<execution-name>/")
def _run(
    ctx: typer.Context,
    topic: Topic,
    corpus: Corpus = None,
    questions: Annotated[int, _option("--questions", "research questions, 1-40 (default 3)", _whole, "N")] = 3,
    auto_approve: AutoApprove = False,
    approval_timeout: Annotated[int, _option("--approval-timeout", "approval wait (default 86400)", _whole, "SECONDS")] = 24 * 3600,
    max_revisions: Annotated[int, _option("--max-revisions", "rejections sent back for revision (default 2)", _whole, "N")] = 2,
    runs_dir: Annotated[Path, _option("--runs-dir", "where run folders go (default ./runs)", _folder_path, "DIR")] = Path("runs"),
    port: Annotated[int, _option("--port", "local API port for approval links (default: any free port)", _port, "PORT")] = 0,
    console: Annotated[bool, _flag("--console", "serve the web console (on the --port, under /console/) during and after the run, until Ctrl-C")] = False,
    model: Model = None,
) -> int:
    from relay.run import RunOptions, run

    return run(
        RunOptions(
            topic=topic,
            questions=questions,
            corpus=corpus,
            auto_approve=auto_approve,
            runs_dir=runs_dir,
            approval_timeout_seconds=approval_timeout,
            max_revisions=max_revisions,
            api_port=port,
            verbose=_session(ctx).verbose,
            console=console,
            model=model,
        )
    )


@_command("serve", "serve the HTTP API locally (engine, agents, stores, outbox) until Ctrl-C")
def _serve(
    ctx: typer.Context,
    port: Annotated[int, _option("--port", "port on 127.0.0.1 (default 8787; 0 = any free port)", _port, "PORT")] = 8787,
    data_dir: Annotated[Path, _option("--data-dir", "outbox and signing key folder (default ./.relay)", _folder_path, "DIR")] = Path(".relay"),
    corpus: Corpus = None,
    retry_time_scale: Annotated[float, _option("--retry-time-scale", "", _positive_float, "FACTOR", hidden=True)] = 1.0,
    model: Model = None,
) -> int:
    from relay.serve import ServeOptions, serve

    options = ServeOptions(
        port=port, data_dir=data_dir, corpus=corpus, retry_time_scale=retry_time_scale, verbose=_session(ctx).verbose, model=model
    )
    return serve(options)


@_command("start", "start a workflow through the API", client=True)
def _start(
    ctx: typer.Context,
    topic: Topic,
    questions: Questions = None,
    max_revisions: MaxRevisions = None,
    approval_timeout: ApprovalTimeout = None,
    approver: Annotated[str | None, typer.Option("--approver", help="email address the approval link is sent to", metavar="EMAIL", show_default=False)] = None,
    idempotency_key: Annotated[
        str | None, _option("--idempotency-key", "retrying with the same key returns the same workflow", _idempotency_key, "KEY")
    ] = None,
) -> int:
    options = _client(ctx)
    request = _start_request(
        {"topic": topic, "questions": questions, "max_revisions": max_revisions, "approval_timeout_seconds": approval_timeout, "approver": approver}
    )
    return options.show("start", options.connect().start(request, idempotency_key=idempotency_key))


@_command("status", "show a workflow's status, current state, approval and report", client=True)
def _status_command(ctx: typer.Context, workflow_id: WorkflowId) -> int:
    options = _client(ctx)
    return options.show("status", options.connect().status(workflow_id))


@_command("list", "list workflows, newest first", client=True)
def _list(
    ctx: typer.Context,
    status: Annotated[str | None, _option("--status", f"only this status: {', '.join(STATUSES)}", _status, "STATUS")] = None,
    limit: Annotated[int | None, _option("--limit", "page size, 1-100 (default 20)", _integer(1, 100), "N")] = None,
    next_token: NextToken = None,
) -> int:
    options = _client(ctx)
    return options.show("list", options.connect().list(status=status, limit=limit, next_token=next_token))


Link = Annotated[
    str | None, _option("--link", "the approval link from the email (default: found in the local outbox)", _approval_link, "LINK")
]
DecidedBy = Annotated[str, _option("--as", "your name or email, recorded with the decision", _text(254, required=False), "NAME")]


@_command("approve", "approve the workflow's pending analysis by its emailed link", client=True)
def _approve(ctx: typer.Context, workflow_id: WorkflowId, link: Link = None, decided_by: DecidedBy = "") -> int:
    return _decide(ctx, "approve", workflow_id, link, decided_by)


@_command("reject", "reject the workflow's pending analysis by its emailed link", client=True)
def _reject(
    ctx: typer.Context,
    workflow_id: WorkflowId,
    feedback: Annotated[str, _option("--feedback", "what the analysis should change (required to reject)", _feedback, "TEXT")],
    link: Link = None,
    decided_by: DecidedBy = "",
) -> int:
    return _decide(ctx, "reject", workflow_id, link, decided_by, feedback)


def _decide(ctx: typer.Context, decision: str, workflow_id: str, link: str | None, decided_by: str, feedback: str = "") -> int:
    """approve/reject: submit the approval page's form at the workflow's link. The signed link
    is the only credential: with ``--link`` no API URL or AWS credentials are needed; without
    it, the API names the workflow's newest approval and the local outbox holds its email."""
    from relay import client as api

    options = _client(ctx)
    if not link:
        outbox = options.outbox()
        link = api.approval_link_for(options.connect(), outbox, workflow_id)
    decided_by = decided_by.strip() or f"{api.local_user()} (relay CLI)"
    text = api.decide(link, approve=decision == "approve", feedback=feedback, decided_by=decided_by)
    return options.show(decision, {"workflow_id": workflow_id, "decision": decision, "result": text})


@_command("cancel", "stop a running workflow, recording who and why", client=True)
def _cancel(
    ctx: typer.Context,
    workflow_id: WorkflowId,
    reason: Annotated[str, _option("--reason", "why it is cancelled (recorded)", _text(1000), "TEXT")],
) -> int:
    options = _client(ctx)
    return options.show("cancel", options.connect().cancel(workflow_id, reason))


@_command("redrive", "resume a failed, timed-out or stopped workflow (or relay run folder) from the state that failed", client=True)
def _redrive(
    ctx: typer.Context,
    target: Annotated[str, _argument("WORKFLOW_ID|RUN_DIR", "a workflow id, or a relay run folder (runs/<name>/)")],
    auto_approve: Annotated[bool, _flag("--auto-approve", "RUN_DIR only: approve the emailed link automatically")] = False,
    port: Annotated[int, _option("--port", "RUN_DIR only: local API port for approval links", _port, "PORT")] = 0,
) -> int:
    if is_run_folder(target):
        from relay.run import redrive_run

        return redrive_run(Path(target), auto_approve=auto_approve, api_port=port, verbose=_session(ctx).verbose)
    try:
        _workflow_id(target)
    except _Invalid as exc:
        looks_like_folder = "/" in target or target in {".", ".."}
        raise UsageError(
            f"WORKFLOW_ID|RUN_DIR: {echo(target)} is not a relay run folder" if looks_like_folder else f"WORKFLOW_ID|RUN_DIR: {exc}"
        ) from None
    if auto_approve or port:
        raise UsageError("--auto-approve and --port: only for a relay run folder (RUN_DIR), not a workflow id")
    options = _client(ctx)
    return options.show("redrive", options.connect().redrive(target))


@_command("history", "show a workflow's execution history (GetExecutionHistory events)", client=True)
def _history(
    ctx: typer.Context,
    workflow_id: WorkflowId,
    limit: Annotated[int | None, _option("--limit", "events per page, 1-1000 (default 100)", _integer(1, 1000), "N")] = None,
    next_token: NextToken = None,
    reverse: Annotated[bool, _flag("--reverse", "newest first")] = False,
) -> int:
    options = _client(ctx)
    return options.show("history", options.connect().history(workflow_id, limit=limit, next_token=next_token, reverse=reverse))


@_command("reconcile", "record status changes whose events were lost (the local relay serve; deployed it runs every 15 min)", client=True)
def _reconcile(ctx: typer.Context) -> int:
    from relay import client as api
    from relay.discovery import published
    from relay.reconcile import describe, invoke_reconcile

    options = _client(ctx)
    if options.api_url:
        raise UsageError("--api-url: relay reconcile runs against the local relay serve of --data-dir; deployed, the "
                         "reconcile function runs on its EventBridge schedule")  # fmt: skip
    data_dir = api.resolve_data_dir(options.data_dir, options.config)
    lambda_url = (published(data_dir) or {}).get("lambda_url")
    if not lambda_url:
        print(f"relay: no relay serve is publishing in {echo(str(data_dir))}/serve.json; start relay serve first", file=sys.stderr)
        return 1
    try:
        result = invoke_reconcile(str(lambda_url))
    except Exception as exc:  # the server is gone, or the function raised: one line
        print(f"relay: reconcile failed: {one_line(str(exc))}", file=sys.stderr)
        return 1
    print(json.dumps(result) if options.as_json or not sys.stdout.isatty() else "\n".join(describe(result)))
    return 0


#: The commands, in the order ``relay --help`` lists them.
COMMANDS: tuple[str, ...] = ("run", "serve", "start", "status", "list", "approve", "reject", "cancel", "redrive", "history", "reconcile")


def _start_request(fields: dict[str, object]) -> dict[str, object]:
    """``relay start``'s request body (the fields given), checked here first so that bad
    options exit 2 naming the option (the API checks again).

    Raises:
        UsageError: a field breaks its rule (``--questions: Input should be …``).
    """
    from pydantic import ValidationError
    from relay_core.models import WorkflowRequest

    from relay.run import describe_options

    request = {k: v for k, v in fields.items() if v is not None}
    try:
        WorkflowRequest.model_validate(request)
    except ValidationError as exc:
        raise UsageError(describe_options(exc)) from None
    return request


def is_run_folder(target: str) -> bool:
    """A ``relay run`` folder (it holds the durable store), as opposed to a workflow id."""
    try:
        return bool(target) and (Path(target, "state").is_dir() or ("/" in target and Path(target).is_dir()))
    except OSError:  # e.g. a name too long for the filesystem: not a folder
        return False


# ----- entry points ----------------------------------------------------------------------------------------
#: Typer's own usage errors (click's wording) → argparse's wording, which scripts and tests
#: match; anything else is shown as Typer words it.
_ARGPARSE_WORDS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"No such command '(?P<value>.*?)'\.(?P<rest>.*)", re.S), "argument command: invalid choice: '{value}' ({choices}){rest}"),
    (re.compile(r"Missing command\.?", re.S), "the following arguments are required: command"),
    (re.compile(r"Missing (?:argument|option|parameter) '?(?P<value>.*?)'?\.?", re.S), "the following arguments are required: {value}"),
    (re.compile(r"No such option: (?P<value>.*?)\.?(?:\s.*)?", re.S), "unrecognized arguments: {value}"),
    (re.compile(r"Got unexpected extra arguments? \((?P<value>.*)\)", re.S), "unrecognized arguments: {value}"),
    (re.compile(r"Option '(?P<value>.*?)' requires an argument\.?", re.S), "argument {value}: expected one argument"),
    (re.compile(r"Option '(?P<value>.*?)' does not take a value\.?", re.S), "argument {value}: ignored explicit argument"),
    (re.compile(r"Invalid value for '(?P<value>.*?)': (?:Value error, )?(?P<rest>.*)", re.S), "argument {value}: {rest}"),
)


def _argparse_words(message: str) -> str:
    choices = "choose from " + ", ".join(repr(c) for c in COMMANDS)
    for pattern, words in _ARGPARSE_WORDS:
        if match := pattern.fullmatch(message.strip()):
            return words.format(choices=choices, **match.groupdict())
    return message


def _invoke(argv: list[str], session: _Session) -> int:
    """Parse ``argv`` with Typer and run its command, its shared options recorded in
    ``session`` (the command's ``ctx.obj``); returns the command's exit code.

    Raises:
        UsageError: the command line breaks a rule (one line, ending with where the help is).
    """
    see = f"(see: relay {argv[0]} --help)" if argv and argv[0] in COMMANDS else "(see: relay --help)"
    if not argv:
        raise UsageError(f"the following arguments are required: command {see}")
    # Help: rich panels on a terminal; elsewhere (a pipe, a file) plain text, one line per
    # option and never wrapped, so that it can be searched and parsed.
    terminal = output.is_terminal(sys.stdout)
    app.rich_markup_mode = "rich" if terminal else None
    unwrapped = {} if terminal else {"terminal_width": HELP_UNWRAPPED_WIDTH, "max_content_width": HELP_UNWRAPPED_WIDTH}
    try:
        code = app(args=argv, prog_name="relay", standalone_mode=False, obj=session, **unwrapped)
    except _ParseError as exc:
        raise UsageError(f"{exc} {see}") from None
    except typer.TyperException as exc:
        if exc.exit_code != 2:  # not a usage error
            raise
        raise UsageError(f"{_argparse_words(exc.format_message())} {see}") from None
    except SystemExit as exc:  # Typer exits 1 itself when stdout is a closed pipe
        return exc.code if isinstance(exc.code, int) else 1
    return code if isinstance(code, int) else 0


def main(argv: list[str] | None = None) -> int:
    """Run one ``relay`` command; returns the exit code (0 done, 1 failed, 2 bad input,
    130 interrupted). Never lets a traceback through unless ``--verbose`` or
    ``RELAY_DEBUG`` asks for it (see the module docstring)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    session = _Session()
    try:
        if any("\x00" in arg for arg in argv):  # a real command line cannot hold one; os calls refuse it
            raise UsageError("arguments must not contain NUL characters")
        return _invoke(argv, session)
    except UsageError as exc:
        print(f"relay: error: {one_line(str(exc))}", file=sys.stderr)
        return 2
    except (KeyboardInterrupt, _Interrupted):
        print("relay: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - the last line of defence: one line, never a traceback
        debug = session.verbose or os.environ.get("RELAY_DEBUG", "").strip().lower() not in {"", "0", "false", "no"}
        if debug:
            traceback.print_exc()
        what = one_line(f"{type(exc).__name__}: {exc}", 500)
        hint = "" if debug else "; run with --verbose or RELAY_DEBUG=1 for the traceback"
        print(f"relay: error: {what}{hint}", file=sys.stderr)
        return 1


def entry() -> None:
    """The ``relay`` console script: :func:`main`, then a fast exit. Everything a command
    writes is on disk when it returns (the durable store writes through), so the process
    leaves without the interpreter's final sweep of the heap (over a second after a run)."""
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    entry()
