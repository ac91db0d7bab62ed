"""The ``relay`` command line.

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
They print the API's JSON answer; exit codes: 0 done, 1 the API refused (its message
is printed), 2 bad configuration or arguments.

No command prints a traceback. Bad input exits 2 with one line on stderr naming the
option and its rule (``relay: error: --port: 99999 is not a port number (must be
0-65535; …)``), argparse's own usage errors included: they are one line too, ending
with where the help is (no usage block). Anything unexpected exits 1 with one line
(``relay: error: <type>: <what went wrong>; run with --verbose or RELAY_DEBUG=1 for the
traceback``); ``--verbose`` or ``RELAY_DEBUG=1`` prints the traceback first. Ctrl-C
exits 130.
"""

from __future__ import annotations

import argparse
import math
import os
import re
import sys
import traceback
import urllib.parse
from collections.abc import Callable
from pathlib import Path

#: Longest piece of a user's value echoed in an error line.
ECHO_MAX_CHARS = 120
#: Workflow ids are execution names (relay_core.models.EXECUTION_NAME_RE).
WORKFLOW_ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,80}$")
#: An approval link as the email carries it (relay.local.mail.LINK_RE, anchored).
APPROVAL_LINK_RE = re.compile(r"^https?://[^\s<>\"]+/approvals/[A-Za-z0-9_-]+\?[^\s<>\"]+$")
#: Printable ASCII, 1-255 characters, no leading or trailing space (the API's Idempotency-Key rule).
IDEMPOTENCY_KEY_RE = re.compile(r"^[\x21-\x7e](?:[\x20-\x7e]{0,253}[\x21-\x7e])?$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


class UsageError(Exception):
    """Bad command-line input: the message is one line naming the option and its rule."""


def one_line(text: str, limit: int = 1000) -> str:
    """``text`` safe to print as one line: control characters (newlines included) and
    unpaired surrogates escaped, cut at ``limit`` characters."""
    text = _CONTROL.sub(lambda m: m.group(0).encode("unicode_escape").decode("ascii"), str(text))
    text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def echo(value: str) -> str:
    """A user's value quoted for an error line (escaped, shortened)."""
    return repr(value if len(value) <= ECHO_MAX_CHARS else value[: ECHO_MAX_CHARS - 1] + "…")


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (``relay: error: …``, exit 2), not a
    usage block: the message names the argument; ``--help`` shows the usage."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{message} (see: {self.prog} --help)")


def _rule(check: Callable[[str], object], name: str) -> Callable[[str], object]:
    check.__name__ = name  # argparse names the type in "invalid <name> value" messages
    return check


def _integer(low: int, high: int | None = None) -> Callable[[str], int]:
    """An argparse type: an integer in ``low..high``."""
    rule = f"{low}-{high:,}" if high is not None else f"{low} or more"

    def parse(text: str) -> int:
        try:
            value = int(text.strip())
        except ValueError:
            raise argparse.ArgumentTypeError(f"{echo(text)} is not a whole number (must be {rule})") from None
        if value < low or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f"{echo(text)} is out of range (must be {rule})")
        return value

    return _rule(parse, "integer")  # type: ignore[return-value]


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{echo(text)} is not a number") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"{echo(text)} must be a number above 0")
    return value


def _port(text: str) -> int:
    try:
        value = int(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"{echo(text)} is not a port number (must be 0-65535)") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{echo(text)} is not a port number (must be 0-65535; 0 = any free port)")
    return value


def _text(max_chars: int, *, required: bool = True) -> Callable[[str], str]:
    """An argparse type: text of at most ``max_chars`` characters without control
    characters (and, if ``required``, not blank)."""

    def parse(text: str) -> str:
        if required and not text.strip():
            raise argparse.ArgumentTypeError("must not be empty")
        if _CONTROL.search(text):
            raise argparse.ArgumentTypeError(f"{echo(text)} holds control characters (newlines, tabs…)")
        if len(text) > max_chars:
            raise argparse.ArgumentTypeError(f"is {len(text):,} characters; at most {max_chars:,}")
        return text

    return _rule(parse, "text")  # type: ignore[return-value]


def _folder(text: str) -> str:
    if not text.strip():
        raise argparse.ArgumentTypeError("must not be empty (a folder)")
    return text


def _feedback(text: str) -> str:
    """Reviewer feedback: not blank, at most 4,000 characters; line breaks and tabs are fine."""
    _text(4000)(re.sub(r"[\r\n\t]", " ", text))
    return text


def _workflow_id(text: str) -> str:
    if not text:
        raise argparse.ArgumentTypeError("must not be empty (a workflow id such as relay-20261121-141858-23e6)")
    if not WORKFLOW_ID_RE.fullmatch(text):
        raise argparse.ArgumentTypeError(
            f"{echo(text)} is not a workflow id (1-80 letters, digits, '-' or '_', as relay start prints it)"
        )
    return text


def _idempotency_key(text: str) -> str:
    if not IDEMPOTENCY_KEY_RE.fullmatch(text):
        problem = "is empty" if not text else f"{echo(text)} is invalid"
        raise argparse.ArgumentTypeError(
            f"{problem}: use 1-255 printable ASCII characters (no control characters, no non-ASCII), "
            "not starting or ending with a space"
        )
    return text


def _approval_link(text: str) -> str:
    problem = f"{echo(text)} is not an http(s) approval link"
    if not APPROVAL_LINK_RE.fullmatch(text):
        raise argparse.ArgumentTypeError(f"{problem} (https://HOST/…/approvals/ID?exp=…&sig=…, as in the email)")
    try:
        parts = urllib.parse.urlsplit(text)
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError:
        raise argparse.ArgumentTypeError(f"{problem}: its host or port is invalid") from None
    if not parts.hostname:
        raise argparse.ArgumentTypeError(f"{problem}: it names no host")
    return text


def _api_url(text: str) -> str:
    from relay import client as api

    try:
        api.check_api_url(text, "--api-url")
    except api.ConfigError as exc:
        raise argparse.ArgumentTypeError(str(exc).removeprefix("--api-url: ")) from None
    return text


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="relay", description="Relay: research topic in, approved report out.")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run one workflow locally and offline, start to finish")
    run.add_argument("topic", help="the research topic (1-2,000 characters)")
    run.add_argument("--corpus", type=_folder, help="folder of .md/.txt/.html documents to research (default: AWS docs in botocore)")
    run.add_argument("--questions", type=int, default=3, help="research questions, 1-40 (default 3)")
    run.add_argument("--auto-approve", action="store_true", help="approve the emailed link automatically")
    run.add_argument("--approval-timeout", type=int, default=24 * 3600, metavar="SECONDS", help="approval wait (default 86400)")
    run.add_argument("--max-revisions", type=int, default=2, help="rejections sent back for revision (default 2)")
    run.add_argument("--runs-dir", type=_rule(lambda v: Path(_folder(v)), "folder"), default=Path("runs"), help="where run folders go (default ./runs)")
    run.add_argument("--port", type=_port, default=0, help="local API port for approval links (default: any free port)")
    run.add_argument("--verbose", action="store_true", help="show handler logs")
    run.epilog = "A failed or interrupted run resumes with: relay redrive runs/<execution-name>/"

    serve = sub.add_parser("serve", help="serve the HTTP API locally (engine, agents, stores, outbox) until Ctrl-C")
    serve.add_argument("--port", type=_port, default=8787, help="port on 127.0.0.1 (default 8787; 0 = any free port)")
    serve.add_argument("--data-dir", type=_rule(lambda v: Path(_folder(v)), "folder"), default=Path(".relay"), help="outbox and signing key folder (default ./.relay)")
    serve.add_argument("--corpus", type=_folder, help="folder of .md/.txt/.html documents to research (default: AWS docs in botocore)")
    serve.add_argument("--retry-time-scale", type=_positive_float, default=1.0, help=argparse.SUPPRESS)
    serve.add_argument("--verbose", action="store_true", help="show handler logs")

    def client(name: str, help_text: str) -> argparse.ArgumentParser:
        command = sub.add_parser(name, help=help_text)
        command.add_argument("--api-url", type=_api_url, help="API base URL (else RELAY_API_URL, the config file, or a running relay serve)")
        command.add_argument("--data-dir", type=_folder, help="relay serve's data folder, for its outbox and serve.json (default ./.relay)")
        command.add_argument("--config", type=_rule(lambda v: _text(4096)(v), "path"), help="config file (default RELAY_CONFIG or ~/.config/relay/config.toml)")
        command.add_argument("--verbose", action="store_true", help="print the traceback of an unexpected error (RUN_DIR: also handler logs)")
        return command

    start = client("start", "start a workflow through the API")
    start.add_argument("topic", help="the research topic (1-2,000 characters)")
    start.add_argument("--questions", type=int, help="research questions, 1-40 (default 3)")
    start.add_argument("--max-revisions", type=int, help="rejections sent back for revision, 0-10 (default 2)")
    start.add_argument("--approval-timeout", type=int, metavar="SECONDS", help="approval wait (default 86400)")
    start.add_argument("--approver", help="email address the approval link is sent to")
    start.add_argument("--idempotency-key", type=_idempotency_key, help="retrying with the same key returns the same workflow")

    status = client("status", "show a workflow's status, current state, approval and report")
    status.add_argument("workflow_id", metavar="WORKFLOW_ID", type=_workflow_id)

    listing = client("list", "list workflows, newest first")
    listing.add_argument(
        "--status", choices=["RUNNING", "AWAITING_APPROVAL", "COMPLETED", "REJECTED", "FAILED", "CANCELLED"], help="only this status"
    )
    listing.add_argument("--limit", type=_integer(1, 100), help="page size, 1-100 (default 20)")
    listing.add_argument("--next-token", type=_text(4096), help="the next_token of the previous page")

    for verb in ("approve", "reject"):
        decide = client(verb, f"{verb} the workflow's pending analysis by its emailed link")
        decide.add_argument("workflow_id", metavar="WORKFLOW_ID", type=_workflow_id)
        decide.add_argument("--link", type=_approval_link, help="the approval link from the email (default: found in the local outbox)")
        decide.add_argument("--as", dest="decided_by", type=_text(254, required=False), default="", help="your name or email, recorded with the decision")
        if verb == "reject":
            decide.add_argument("--feedback", type=_feedback, required=True, help="what the analysis should change (required to reject)")

    cancel = client("cancel", "stop a running workflow, recording who and why")
    cancel.add_argument("workflow_id", metavar="WORKFLOW_ID", type=_workflow_id)
    cancel.add_argument("--reason", type=_text(1000), required=True, help="why it is cancelled (recorded)")

    redrive = client("redrive", "resume a failed, timed-out or stopped workflow (or relay run folder) from the state that failed")
    redrive.add_argument("workflow_id", metavar="WORKFLOW_ID|RUN_DIR", help="a workflow id, or a relay run folder (runs/<name>/)")
    redrive.add_argument("--auto-approve", action="store_true", help="RUN_DIR only: approve the emailed link automatically")
    redrive.add_argument("--port", type=_port, default=0, help="RUN_DIR only: local API port for approval links")

    history = client("history", "show a workflow's execution history (GetExecutionHistory events)")
    history.add_argument("workflow_id", metavar="WORKFLOW_ID", type=_workflow_id)
    history.add_argument("--limit", type=_integer(1, 1000), help="events per page, 1-1000 (default 100)")
    history.add_argument("--next-token", type=_text(4096), help="the next_token of the previous page")
    history.add_argument("--reverse", action="store_true", help="newest first")
    return parser


def _client_command(args: argparse.Namespace) -> int:
    """start/status/list/approve/reject/cancel/redrive/history: print the answer as JSON."""
    import json

    from relay import client as api

    def show(value: object) -> None:
        print(json.dumps(value, indent=2, sort_keys=False))

    try:
        if args.data_dir is not None:
            api.check_data_dir(args.data_dir, "--data-dir")
        if args.command in {"approve", "reject"}:
            # The signed link is the only credential: no API URL or AWS credentials needed.
            link = args.link
            if not link:  # the API says which approval is the workflow's newest; its email has the link
                outbox = api.resolve_data_dir(args.data_dir, args.config) / "outbox"
                status = api.client_for(api.resolve_settings(args.api_url, args.data_dir, args.config)).status(args.workflow_id)
                approval_id = (status.get("approval") or {}).get("approval_id")
                if not approval_id:
                    raise api.ConfigError(f"workflow {args.workflow_id} has not asked for approval (yet)")
                link = api.find_approval_link(outbox, args.workflow_id, str(approval_id))
            decided_by = args.decided_by.strip() or f"{api.local_user()} (relay CLI)"
            feedback = getattr(args, "feedback", "")
            text = api.decide(link, approve=args.command == "approve", feedback=feedback, decided_by=decided_by)
            show({"workflow_id": args.workflow_id, "decision": args.command, "result": text})
            return 0
        request: dict[str, object] = {}
        if args.command == "start":
            request = _start_request(args)
        settings = api.resolve_settings(args.api_url, args.data_dir, args.config)
        relay = api.client_for(settings)
        if args.command == "start":
            show(relay.start(request, idempotency_key=args.idempotency_key))
        elif args.command == "status":
            show(relay.status(args.workflow_id))
        elif args.command == "list":
            show(relay.list(status=args.status, limit=args.limit, next_token=args.next_token))
        elif args.command == "cancel":
            show(relay.cancel(args.workflow_id, args.reason))
        elif args.command == "redrive":
            show(relay.redrive(args.workflow_id))
        elif args.command == "history":
            show(relay.history(args.workflow_id, limit=args.limit, next_token=args.next_token, reverse=args.reverse))
    except api.ConfigError as exc:
        print(f"relay: error: {one_line(str(exc))}", file=sys.stderr)
        return 2
    except api.ClientError as exc:
        where = f"HTTP {exc.status}: " if exc.status else ""
        print(f"relay: {where}{one_line(str(exc))}", file=sys.stderr)
        return 1
    return 0


def _start_request(args: argparse.Namespace) -> dict[str, object]:
    """``relay start``'s request body, checked here first so that bad options exit 2 naming
    the option (the API checks again).

    Raises:
        UsageError: a field breaks its rule (``--questions: Input should be …``).
    """
    from pydantic import ValidationError
    from relay_core.models import WorkflowRequest

    from relay.run import describe_options

    request = {
        "topic": args.topic,
        "questions": args.questions,
        "max_revisions": args.max_revisions,
        "approval_timeout_seconds": args.approval_timeout,
        "approver": args.approver,
    }
    request = {k: v for k, v in request.items() if v is not None}
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


def main(argv: list[str] | None = None) -> int:
    """Run one ``relay`` command; returns the exit code (0 done, 1 failed, 2 bad input,
    130 interrupted). Never lets a traceback through unless ``--verbose`` or
    ``RELAY_DEBUG`` asks for it (see the module docstring)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    debug = "--verbose" in argv or os.environ.get("RELAY_DEBUG", "").strip().lower() not in {"", "0", "false", "no"}
    try:
        if any("\x00" in arg for arg in argv):  # a real command line cannot hold one; os calls refuse it
            raise UsageError("arguments must not contain NUL characters")
        try:
            args = _parser().parse_args(argv)
        except SystemExit as done:  # --help printed its text
            return done.code if isinstance(done.code, int) else 0
        return _dispatch(args)
    except UsageError as exc:
        print(f"relay: error: {one_line(str(exc))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("relay: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - the last line of defence: one line, never a traceback
        if debug:
            traceback.print_exc()
        what = one_line(f"{type(exc).__name__}: {exc}", 500)
        hint = "" if debug else "; run with --verbose or RELAY_DEBUG=1 for the traceback"
        print(f"relay: error: {what}{hint}", file=sys.stderr)
        return 1


def _dispatch(args: argparse.Namespace) -> int:
    if args.command == "run":
        from relay.run import RunOptions, run

        return run(
            RunOptions(
                topic=args.topic,
                questions=args.questions,
                corpus=args.corpus,
                auto_approve=args.auto_approve,
                runs_dir=args.runs_dir,
                approval_timeout_seconds=args.approval_timeout,
                max_revisions=args.max_revisions,
                api_port=args.port,
                verbose=args.verbose,
            )
        )
    if args.command == "redrive" and is_run_folder(args.workflow_id):
        from relay.run import redrive_run

        return redrive_run(Path(args.workflow_id), auto_approve=args.auto_approve, api_port=args.port, verbose=args.verbose)
    if args.command == "redrive":
        try:
            _workflow_id(args.workflow_id)
        except argparse.ArgumentTypeError as exc:
            looks_like_folder = "/" in args.workflow_id or args.workflow_id in {".", ".."}
            raise UsageError(
                f"WORKFLOW_ID|RUN_DIR: {echo(args.workflow_id)} is not a relay run folder"
                if looks_like_folder
                else f"WORKFLOW_ID|RUN_DIR: {exc}"
            ) from None
        if args.auto_approve or args.port:
            raise UsageError("--auto-approve and --port: only for a relay run folder (RUN_DIR), not a workflow id")
    if args.command == "serve":
        from relay.serve import ServeOptions, serve

        return serve(
            ServeOptions(
                port=args.port,
                data_dir=args.data_dir,
                corpus=args.corpus,
                retry_time_scale=args.retry_time_scale,
                verbose=args.verbose,
            )
        )
    return _client_command(args)


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
