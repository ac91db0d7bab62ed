"""``relay run``: one workflow, start to finish, on the local runtime.

Validates the input first (nothing starts on bad input), starts a named execution,
prints each state as the execution history records it, handles the approval email
(auto-approves it, or prints the link and waits for a person), and writes
``runs/<execution-name>/``: ``report.md``, ``history.json`` (the GetExecutionHistory
events), ``execution.json`` (DescribeExecution), ``artifacts/`` (every S3 object of
the workflow) and ``outbox/`` (the delivered emails).
"""

from __future__ import annotations

import json
import secrets
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from pydantic import ValidationError
from relay_core.errors import describe_validation_error
from relay_core.models import WorkflowRequest


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


def validate(options: RunOptions) -> WorkflowRequest:
    """The execution input for ``options``.

    Raises:
        InputError: a field breaks its rule, or the corpus folder does not exist.
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
        raise InputError(describe_validation_error(exc)) from None
    if options.corpus is not None and not Path(options.corpus).is_dir():
        raise InputError(f"corpus: folder {options.corpus} does not exist")
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


def failure_of(description: dict[str, Any]) -> str:
    """"<state> failed: <error>: <cause>" for a stopped execution."""
    error = description.get("error") or ""
    cause = description.get("cause") or ""
    if description["status"] == "TIMED_OUT":
        return "the execution timed out"
    if description["status"] == "ABORTED":
        return "the execution was stopped"
    if error == "Relay.ReportRejected":
        return "ReportRejected: the approver rejected the analysis and no revisions remain"
    return f"{cause or error}" + (f" [{error}]" if error and error not in cause else "")


def run(options: RunOptions, out: TextIO = sys.stdout) -> int:
    """Run one workflow. Returns the exit code: 0 succeeded, 1 failed, 2 bad input."""
    try:
        request = validate(options)
    except InputError as exc:
        print(f"relay: error: {exc}", file=sys.stderr)
        return 2
    name = options.name or execution_name()
    run_dir = options.runs_dir / name
    started = time.time()
    progress = Progress(out, started)
    out.write(f"relay: execution {name}\nrelay: output in {run_dir}/\n")
    out.flush()

    from relay.local.mail import approval_emails, approval_link, decide_by_link
    from relay.local.runtime import LocalRelay

    with LocalRelay(
        data_dir=run_dir,
        corpus=options.corpus,
        api_port=options.api_port,
        log_level="INFO" if options.verbose else "WARNING",
    ) as relay:
        progress.note("local runtime ready (moto Step Functions engine, Lambda + AgentCore endpoints on loopback)")
        arn = relay.start_execution(request.model_dump(mode="json", exclude_none=True), name)
        handled: set[Path] = set()

        def check_outbox() -> None:
            for path, message in approval_emails(relay.outbox):
                if path in handled:
                    continue
                handled.add(path)
                link = approval_link(message)
                progress.note(f"✉ approval email delivered: {path}")
                if options.auto_approve:
                    decide_by_link(link, approve=True, decided_by="relay run --auto-approve")
                    progress.note("  approved (--auto-approve followed the emailed link)")
                else:
                    progress.note(f"  open this link to approve or reject:\n\n    {link}\n")

        for event in relay.follow(arn, poll_seconds=0.05, on_poll=check_outbox):
            progress.event(event)
        description = relay.describe(arn)
        history = relay.history(arn)
        artifacts = relay.artifacts(name)

    (run_dir / "history.json").write_text(json.dumps(history, indent=2, default=str))
    (run_dir / "execution.json").write_text(json.dumps(description, indent=2, default=str))
    for key, data in artifacts.items():
        target = run_dir / "artifacts" / key
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    elapsed = time.time() - started
    if description["status"] == "SUCCEEDED":
        (run_dir / "report.md").write_bytes(artifacts.get("report.md", b""))
        out.write(f"relay: SUCCEEDED in {elapsed:.1f}s\nrelay: report: {run_dir / 'report.md'}\n")
        return 0
    print(f"relay: {description['status']}: {failure_of(description)}", file=sys.stderr)
    out.write(f"relay: history: {run_dir / 'history.json'}\n")
    return 1
