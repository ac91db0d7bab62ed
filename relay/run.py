"""``relay run``: one workflow, start to finish, on the local runtime.

Validates the input first (nothing starts on bad input), starts a named execution,
prints each state as the execution history records it, handles the approval email
(auto-approves it, or prints the link and waits for a person), and writes
``runs/<execution-name>/``: ``report.md``, ``history.json`` (the GetExecutionHistory
events), ``execution.json`` (DescribeExecution), ``artifacts/`` (every S3 object of
the workflow) and ``outbox/`` (the delivered emails), and prints what the execution
cost (:mod:`relay_core.cost`) and the report's quality check (:func:`quality_lines`). With ``console=True`` the web console
(:mod:`relay.local.console`) watches the run live and keeps serving after it, until Ctrl-C.
"""

from __future__ import annotations

import gc
import json
import secrets
import signal
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from pydantic import ValidationError
from relay_core.contracts import REDRIVABLE_STATUSES, RUNTIME_STOPPED_ERROR
from relay_core.history import failure_after, open_state, short_cause
from relay_core.models import WorkflowRequest

#: Exit code of an interrupted run (128 + SIGINT, the shell convention).
EXIT_INTERRUPTED = 130
#: The file in a run folder that records what a resume needs.
RUN_FILE = "run.json"


class InputError(ValueError):
    """Bad CLI input; the message is one line naming the field."""


@dataclass
class RunOptions:
    topic: str
    questions: int = 3
    corpus: str | None = None
    auto_approve: bool = False
    runs_dir: Path = Path("runs")
    approval_timeout_seconds: int = 24 * 3600
    max_revisions: int = 2
    name: str | None = None
    api_port: int = 0
    verbose: bool = False
    #: Serve the web console while the run goes and after it ends, until Ctrl-C.
    console: bool = False
    #: ``--model``: ``offline``, ``local`` (the embedded model, relay.local.llm), or ``None``
    #: (the environment's ``RELAY_MODEL_PROVIDER``, offline when unset).
    model: str | None = None


#: The ``relay run``/``relay start`` option that sets each workflow input field (errors name
#: the option the user typed, not the field).
OPTION_OF_FIELD = {
    "topic": "topic",
    "questions": "--questions",
    "max_concurrency": "--questions",
    "approval_timeout_seconds": "--approval-timeout",
    "max_revisions": "--max-revisions",
    "approver": "--approver",
}


def describe_options(error: ValidationError) -> str:
    """One line naming each failing option and its rule (see :data:`OPTION_OF_FIELD`)."""
    parts = []
    for item in error.errors():
        field = str((item.get("loc") or ("input",))[0])
        part = f"{OPTION_OF_FIELD.get(field, field)}: {item.get('msg', 'invalid')}"
        if part not in parts:
            parts.append(part)
    return "; ".join(parts)


def check_port(port: int, option: str = "--port") -> None:
    """``port`` is 0-65535 and, unless 0 (any free port), free on 127.0.0.1 now.

    Raises:
        InputError: naming ``option`` and the rule, or that the port is in use.
    """
    import errno
    import socket

    if not 0 <= port <= 65535:
        raise InputError(f"{option}: {port} is not a port number (must be 0-65535; 0 = any free port)")
    if port == 0:
        return
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the local servers do
        try:
            probe.bind(("127.0.0.1", port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise InputError(f"{option}: port {port} on 127.0.0.1 is in use (pick another, or 0 for any free port)") from None
            raise InputError(f"{option}: cannot listen on 127.0.0.1:{port}: {exc.strerror or exc}") from None


def check_folder_option(path: Path, option: str) -> None:
    """``path`` is a folder, or can be created as one (its nearest existing parent is a
    writable folder).

    Raises:
        InputError: ``<option>: <path> is a file, not a folder`` and the like.
    """
    import os

    try:
        if path.exists():
            if not path.is_dir():
                raise InputError(f"{option}: {path} is a file, not a folder")
            if not os.access(path, os.W_OK | os.X_OK):
                raise InputError(f"{option}: folder {path} is not writable")
            return
        parent = path.absolute().parent
        while not parent.exists():
            parent = parent.parent
        if not parent.is_dir():
            raise InputError(f"{option}: {path} cannot be created: {parent} is a file, not a folder")
        if not os.access(parent, os.W_OK | os.X_OK):
            raise InputError(f"{option}: {path} cannot be created: folder {parent} is not writable")
    except OSError as exc:
        raise InputError(f"{option}: {path}: {exc.strerror or exc}") from None


def check_corpus_option(corpus: str | None, option: str = "--corpus") -> Any:
    """Check the corpus a run researches before anything starts: ``corpus`` (from
    ``option``), else ``RELAY_CORPUS``; nothing to check for botocore's documentation,
    an ``s3://`` prefix or a Knowledge Base. Returns the
    :class:`relay_agents.corpus.CorpusCheck` (its ``warnings()`` name skipped files) or ``None``.

    Raises:
        InputError: ``<option or RELAY_CORPUS>: <reason>`` (missing, a file, empty,
            unreadable, a symlink loop, no indexable document).
    """
    import os

    if corpus is None:
        if os.environ.get("RELAY_KNOWLEDGE_BASE_ID", "").strip():
            return None
        corpus, option = os.environ.get("RELAY_CORPUS", "").strip() or None, "RELAY_CORPUS"
    if corpus is None:
        return None  # botocore's documentation: nothing to check (and the agents load later, while the runtime starts)
    from relay_agents.corpus import CorpusError, check_corpus

    try:
        return check_corpus(corpus)
    except CorpusError as exc:
        raise InputError(f"{option}: {exc}") from None


def check_model_option(model: str | None) -> None:
    """Check ``--model`` (or without it the ``RELAY_MODEL_*`` environment) before anything
    starts (:func:`relay.local.llm.check_model`).

    Raises:
        InputError: one line naming ``--model`` (and the command that installs the embedded
            model) or the variable at fault.
    """
    from relay_core.errors import ConfigurationError

    from relay.local.llm import check_model

    try:
        check_model(model)
    except (ValueError, RuntimeError, ConfigurationError) as exc:
        raise InputError(str(exc)) from None


def checked_corpus(corpus: str | None, option: str = "--corpus", warn_as: str | None = None) -> Any:
    """:func:`check_corpus_option`, then one ``relay: warning: <where>: <file skipped>`` line on
    stderr per corpus file that cannot be researched; ``<where>`` is ``warn_as``, else
    ``option`` (``RELAY_CORPUS`` when the folder came from the environment). Used by
    ``relay run``, ``relay redrive RUN_DIR`` and ``relay serve`` before anything starts.

    Raises:
        InputError: as :func:`check_corpus_option`.
    """
    checked = check_corpus_option(corpus, option)
    where = warn_as or (option if corpus is not None else "RELAY_CORPUS")
    for warning in checked.warnings() if checked else ():
        print(f"relay: warning: {where}: {warning}", file=sys.stderr)
    return checked


def validate(options: RunOptions) -> WorkflowRequest:
    """The execution input for ``options``; also checks ``--runs-dir`` and ``--port``
    (the corpus is checked by :func:`check_corpus_option`).

    Raises:
        InputError: one line naming each option that breaks its rule.
    """
    try:
        request = WorkflowRequest(
            topic=options.topic,
            questions=options.questions,
            max_concurrency=min(max(options.questions, 1), 40),
            approval_timeout_seconds=options.approval_timeout_seconds,
            max_revisions=options.max_revisions,
        )
    except ValidationError as exc:
        raise InputError(describe_options(exc)) from None
    check_folder_option(Path(options.runs_dir), "--runs-dir")
    check_port(options.api_port)
    return request


def execution_name() -> str:
    """``relay-YYYYmmdd-HHMMSS-xxxx``: sortable, unique, a valid execution name."""
    return f"relay-{datetime.now(UTC).strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(2)}"


class Progress:
    """Turns history events into one line per state transition."""

    def __init__(self, out: TextIO, started: float):
        self.out = out
        self.started = started
        self.entered: dict[str, float] = {}

    def _line(self, text: str) -> None:
        self.out.write(f"[{time.time() - self.started:6.1f}s] {text}\n")
        self.out.flush()

    def event(self, event: dict[str, Any]) -> None:
        kind = event["type"]
        if kind.endswith("StateEntered"):
            name = event["stateEnteredEventDetails"]["name"]
            self.entered[name] = time.time()
            self._line(f"→ {name}")
        elif kind.endswith("StateExited"):
            name = event["stateExitedEventDetails"]["name"]
            took = time.time() - self.entered.get(name, time.time())
            self._line(f"✓ {name} ({took:.1f}s)")
        elif kind == "MapRunStarted":
            self._line("  fanning out research questions to the researcher runtime")
        elif kind in {"TaskFailed", "LambdaFunctionFailed"}:
            details = event.get("taskFailedEventDetails") or event.get("lambdaFunctionFailedEventDetails") or {}
            self._line(f"  ! {details.get('error', 'error')}: {str(details.get('cause', ''))[:200]}")
        elif kind == "TaskTimedOut":
            self._line("  ! timed out")
        elif kind == "MapRunFailed":
            details = event.get("mapRunFailedEventDetails") or {}
            self._line(f"  ! Map run failed: {details.get('error', '')} {details.get('cause', '')}")

    def note(self, text: str) -> None:
        self._line(text)


def failure_of(description: dict[str, Any], history: list[dict[str, Any]]) -> str:
    """``<state> failed (<error>): <cause>`` for a stopped execution, naming the state
    that was entered and never exited (the one a redrive resumes at)."""
    status = description["status"]
    error = str(description.get("error") or "")
    cause = short_cause(description.get("cause") or "")
    failed = open_state(history)
    if failed is None:
        return f"the execution {status.lower().replace('_', ' ')}" + (f" ({error}): {cause}" if error else "")
    if status != "ABORTED":
        own = failure_after(history, failed.entered_event_id)
        if own is not None:
            error, cause = own[0] or error, short_cause(own[1]) or cause
    if status == "TIMED_OUT":
        return f"the execution timed out in {failed.name}"
    if status == "ABORTED":
        return f"{failed.name} was stopped ({error or 'aborted'}): {cause}" if cause else f"{failed.name} was stopped"
    return f"{failed.name} failed ({error}): {cause}" if cause else f"{failed.name} failed ({error})"


@contextmanager
def starting_up() -> Iterator[None]:
    """Start the local runtime without the cyclic garbage collector, then freeze the heap.

    Start-up makes about half a million objects that live as long as the process
    (modules, the engine, the servers, the agents, the corpus index) and little cyclic
    garbage. With the collector on, the heap's growth triggers a full collection at
    every quarter it grows (CPython's rule for the oldest generation), each walking
    everything made so far: 7 to 9 of them, 1.2-1.8 s of CPU in a ``relay run``
    (measured with ``gc.callbacks``; about 1 s of the run's CPU time in all). This
    block turns the collector off and, when it ends, moves every object alive into the
    permanent generation (``gc.freeze()``: later collections no longer walk them) and
    turns the collector back on if it was on. The cost is the cyclic garbage made while
    starting, kept until the process exits: about 10 MB more peak memory in a
    ``relay run`` (344-347 MB against 334-335 MB with the collector on throughout).
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if enabled:
            gc.enable()


class Interrupted(Exception):
    """SIGINT or SIGTERM arrived while a run was in progress."""


@contextmanager
def interruptible() -> Iterator[None]:
    """Turn SIGINT and SIGTERM into :class:`Interrupted` in the main thread, for the block."""
    if threading_main():

        def handler(signum: int, frame: Any) -> None:
            raise Interrupted(signal.Signals(signum).name)

        previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for sig, old in previous.items():
                signal.signal(sig, old)
    else:
        yield


def threading_main() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


def _resume_command(run_dir: Path, auto_approve: bool) -> str:
    return f"relay redrive {run_dir}/" + (" --auto-approve" if auto_approve else "")


def _drive(relay: Any, arn: str, run_dir: Path, auto_approve: bool, progress: Progress, out: TextIO, skip: int = 0) -> int:
    """Follow the execution to its end (answering approval emails), write the run folder's
    exports, print the outcome. Returns the exit code."""
    from relay_core.adapters.workflow_records import DynamoDBWorkflowRecords

    from relay.local.runtime import TABLE
    from relay.mailbox import approval_emails, approval_id_of, approval_link, decide_by_link

    handled: set[Path] = {p for p, _ in approval_emails(relay.outbox)}  # emails from before a redrive are spent
    started = progress.started

    name = arn.rsplit(":", 1)[1]
    records = DynamoDBWorkflowRecords(TABLE)

    def check_outbox() -> None:
        if all(path in handled for path in relay.outbox.glob("*.eml")):
            return  # nothing new delivered: read no email
        for path, message in approval_emails(relay.outbox, name):
            if path in handled:
                continue
            pending = records.latest_approval_for(name) or {}
            if approval_id_of(message) != pending.get("approval_id"):
                continue  # not (yet) the workflow's newest approval: follow only that one's link
            handled.add(path)
            link = approval_link(message)
            progress.note(f"✉ approval email delivered: {path}")
            if auto_approve:
                decide_by_link(link, approve=True, decided_by="relay run --auto-approve")
                progress.note("  approved (--auto-approve followed the emailed link)")
            else:
                progress.note(f"  open this link to approve or reject:\n\n    {link}\n")

    interrupted = None
    try:
        with interruptible():
            for index, event in enumerate(relay.follow(arn, poll_seconds=0.05, on_poll=check_outbox)):
                if index >= skip:
                    progress.event(event)
    except Interrupted as signal_name:
        interrupted = str(signal_name)
        stopped_at = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        if relay.describe(arn)["status"] == "RUNNING":
            relay.sfn.stop_execution(executionArn=arn, error=RUNTIME_STOPPED_ERROR, cause=f"relay run interrupted ({interrupted}) at {stopped_at}")
        relay.wait(arn, timeout=30)
    description = relay.describe(arn)
    history = relay.history(arn)
    export(relay, run_dir, arn.rsplit(":", 1)[1], description, history)
    elapsed = time.time() - started
    out.write(f"relay: cost: {cost_of(relay, history)}\n")
    resume = _resume_command(run_dir, auto_approve)
    if interrupted:
        print(f"relay: interrupted ({interrupted}); everything is kept in {run_dir}/; resume with:  {resume}", file=sys.stderr)
        return EXIT_INTERRUPTED
    if description["status"] == "SUCCEEDED":
        result = json.loads(description.get("output") or "{}")
        if result.get("status") == "REJECTED":
            out.write(f"relay: REJECTED in {elapsed:.1f}s: the approver rejected the analysis and no revisions remain\n")
            return 1
        out.write(f"relay: SUCCEEDED in {elapsed:.1f}s\n")
        out.writelines(f"relay: {line}\n" for line in quality_lines(result, run_dir))
        out.write(f"relay: report: {run_dir / 'report.md'}\n")
        return 0
    out.write(f"relay: history: {run_dir / 'history.json'}\n")
    print(f"relay: {description['status']}: {failure_of(description, history)}", file=sys.stderr)
    print(f"relay: resume from the state that failed with:  {resume}", file=sys.stderr)
    return 1


def quality_lines(result: dict[str, Any], run_dir: Path) -> list[str]:
    """The report's quality check as ``relay run`` prints it: ``quality: <headline>``, then
    ``  unanswered: <question>`` per unanswered planned question (``  unanswered: … and N
    more`` past the ten a check names). From the execution output (FinalizeWorkflow's
    ``quality``), else the run folder's ``artifacts/report.quality.json``; nothing when
    neither holds one."""
    from pydantic import ValidationError
    from relay_core.models import QualityAssessment, QualityCheck
    from relay_core.safe_text import plain_text

    check: QualityCheck | None = None
    try:
        if isinstance(result.get("quality"), dict):
            check = QualityCheck.model_validate(result["quality"])
        elif (run_dir / "artifacts" / "report.quality.json").is_file():
            check = QualityAssessment.model_validate_json((run_dir / "artifacts" / "report.quality.json").read_bytes()).check()
    except (ValidationError, OSError):
        return []
    if check is None:
        return []
    lines = [f"quality: {check.headline()}"]
    lines += [f"  unanswered: {' '.join(plain_text(question).split())}" for question in check.unanswered]
    if check.unlisted:
        lines.append(f"  unanswered: … and {check.unlisted} more")
    return lines


def cost_of(relay: Any, history: list[dict[str, Any]]) -> str:
    """One line: what the execution cost at list prices (:func:`relay_core.cost.execution_cost`)."""
    from relay_core.cost import cost_line, execution_cost

    definition = json.loads(relay.sfn.describe_state_machine(stateMachineArn=relay.state_machine_arn)["definition"])
    return cost_line(execution_cost(history, definition))


def keep_serving(console: Any, out: TextIO) -> None:
    """Block until Ctrl-C or SIGTERM while the console serves (``relay run --console``)."""
    import threading

    out.write(f"relay: the console keeps serving at {console.url}; press Ctrl-C to stop\n")
    out.flush()
    try:
        with interruptible():
            threading.Event().wait()
    except Interrupted:
        out.write("relay: console stopped\n")
        out.flush()


def export(relay: Any, run_dir: Path, name: str, description: dict[str, Any], history: list[dict[str, Any]]) -> None:
    """Write the run folder's human-readable files (the durable store is ``state/``)."""
    from relay.local.durable import write_atomic

    def text(value: Any) -> bytes:
        return json.dumps(value, indent=2, default=str).encode()

    write_atomic(run_dir / "history.json", text(history))
    write_atomic(run_dir / "execution.json", text(description))
    artifacts = relay.artifacts(name)
    for key, data in artifacts.items():
        write_atomic(run_dir / "artifacts" / key, data)
    if description["status"] == "SUCCEEDED" and "report.md" in artifacts:
        write_atomic(run_dir / "report.md", artifacts["report.md"])


def run(options: RunOptions, out: TextIO | None = None) -> int:
    """Run one workflow. Returns the exit code: 0 succeeded, 1 failed or rejected, 2 bad
    input, 130 interrupted (resumable). ``out`` defaults to the current ``sys.stdout``."""
    out = out or sys.stdout
    try:
        request = validate(options)
        checked_corpus(options.corpus)
        check_model_option(options.model)
    except InputError as exc:
        print(f"relay: error: {exc}", file=sys.stderr)
        return 2
    name = options.name or execution_name()
    run_dir = options.runs_dir / name
    started = time.time()
    progress = Progress(out, started)
    out.write(f"relay: execution {name}\nrelay: output in {run_dir}/\n")
    out.flush()
    with interruptible():
        try:
            from relay.local.durable import write_atomic
            from relay.local.runtime import LocalRelay

            run_dir.mkdir(parents=True, exist_ok=True)
            saved = {"name": name, "corpus": str(Path(options.corpus).resolve()) if options.corpus else None, "model": options.model}
            write_atomic(run_dir / RUN_FILE, json.dumps(saved, indent=2).encode())
            relay = LocalRelay(
                data_dir=run_dir,
                corpus=options.corpus,
                api_port=options.api_port,
                log_level="INFO" if options.verbose else "WARNING",
                model=options.model,
            )
            with starting_up():
                relay.__enter__()
        except Interrupted as signal_name:
            print(f"relay: interrupted ({signal_name}) before the execution started; nothing to resume", file=sys.stderr)
            return EXIT_INTERRUPTED
        console = None
        try:
            progress.note("local runtime ready (moto Step Functions engine, Lambda + AgentCore endpoints on loopback)")
            if relay.llm is not None:
                progress.note(f"embedded model {relay.llm.model_id} loaded in {relay.llm.load_seconds:.1f}s, serving {relay.llm.url}")
            if options.console:
                from relay.local.console import serve_console

                console = serve_console(relay)
                progress.note(f"console: {console.url}executions/{name} (Step Functions API: --endpoint-url {console.sfn_endpoint})")
            arn = relay.start_execution(request.model_dump(mode="json", exclude_none=True), name)
            code = _drive(relay, arn, run_dir, options.auto_approve, progress, out)
            out.flush()  # the outcome is on screen before the runtime stops
            if console is not None and code != EXIT_INTERRUPTED:
                keep_serving(console, out)
            return code
        except Interrupted as signal_name:  # between the start and the first event
            print(f"relay: interrupted ({signal_name}); resume with:  {_resume_command(run_dir, options.auto_approve)}", file=sys.stderr)
            return EXIT_INTERRUPTED
        finally:
            if console is not None:
                console.stop()
            relay.close()


def _saved_run(run_dir: Path) -> dict[str, Any]:
    """The run folder's ``run.json`` (``{}`` when there is none).

    Raises:
        InputError: it cannot be read or is not a JSON object.
    """
    path = run_dir / RUN_FILE
    if not path.is_file():
        return {}
    try:
        saved = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise InputError(f"RUN_DIR: {path} is unreadable: {exc}") from None
    if not isinstance(saved, dict) or not isinstance(saved.get("corpus"), str | None):
        raise InputError(f"RUN_DIR: {path} is not a relay run file (a JSON object with name and corpus)")
    return saved


def redrive_run(run_dir: Path, auto_approve: bool = False, api_port: int = 0, verbose: bool = False, out: TextIO | None = None) -> int:
    """``relay redrive RUN_DIR``: resume a failed or interrupted ``relay run`` from its
    folder, in-process, from the state it stopped in; the folder is updated. Returns the
    exit code: 0 succeeded, 1 failed or rejected again, 2 not a resumable run folder,
    130 interrupted."""
    from relay.local.durable import STATE_DIR

    out = out or sys.stdout
    run_dir = Path(str(run_dir).rstrip("/") or "/")
    try:
        executions = sorted((run_dir / STATE_DIR / "executions").glob("*/execution.json")) if run_dir.is_dir() else []
        if not executions:
            raise InputError(f"RUN_DIR: {run_dir} is not a relay run folder (no {STATE_DIR}/executions/ in it)")
        saved = _saved_run(run_dir)
        name = str(saved.get("name") or executions[-1].parent.name)
        corpus = saved.get("corpus")
        model = saved.get("model") if isinstance(saved.get("model"), str) else None
        check_port(api_port)
        if corpus:
            checked_corpus(corpus, f"--corpus (saved in {run_dir / RUN_FILE})", warn_as="--corpus")
        check_model_option(model)
    except InputError as exc:
        print(f"relay: error: {exc}", file=sys.stderr)
        return 2
    started = time.time()
    progress = Progress(out, started)
    out.write(f"relay: resuming execution {name} from {run_dir}/\n")
    out.flush()
    from relay.local.runtime import LocalRelay

    with interruptible():
        try:
            relay = LocalRelay(data_dir=run_dir, corpus=corpus, api_port=api_port, log_level="INFO" if verbose else "WARNING", model=model)
            with starting_up():
                relay.__enter__()
        except Interrupted as signal_name:
            print(f"relay: interrupted ({signal_name}) before the redrive started; nothing changed", file=sys.stderr)
            return EXIT_INTERRUPTED
        try:
            arn = relay.state_machine_arn.replace(":stateMachine:", ":execution:") + f":{name}"
            description = relay.describe(arn)
            if description["status"] not in REDRIVABLE_STATUSES:
                print(f"relay: error: execution {name} is {description['status']}: there is nothing to resume", file=sys.stderr)
                return 2
            history = relay.history(arn)
            resumed = open_state(history)
            relay.redrive(arn)
            count = int(relay.describe(arn).get("redriveCount") or 0)
            progress.note(f"redrive {count}: resuming at {resumed.name if resumed else 'the first state'}")
            return _drive(relay, arn, run_dir, auto_approve, progress, out, skip=len(history))
        except Interrupted as signal_name:
            print(f"relay: interrupted ({signal_name}); resume with:  {_resume_command(run_dir, auto_approve)}", file=sys.stderr)
            return EXIT_INTERRUPTED
        finally:
            relay.close()
