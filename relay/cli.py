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
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="relay", description="Relay: research topic in, approved report out.")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run one workflow locally and offline, start to finish")
    run.add_argument("topic", help="the research topic (1-2,000 characters)")
    run.add_argument("--corpus", help="folder of .md/.txt/.html documents to research (default: AWS docs in botocore)")
    run.add_argument("--questions", type=int, default=3, help="research questions, 1-40 (default 3)")
    run.add_argument("--auto-approve", action="store_true", help="approve the emailed link automatically")
    run.add_argument("--approval-timeout", type=int, default=24 * 3600, metavar="SECONDS", help="approval wait (default 86400)")
    run.add_argument("--max-revisions", type=int, default=2, help="rejections sent back for revision (default 2)")
    run.add_argument("--runs-dir", type=Path, default=Path("runs"), help="where run folders go (default ./runs)")
    run.add_argument("--port", type=int, default=0, help="local API port for approval links (default: any free port)")
    run.add_argument("--verbose", action="store_true", help="show handler logs")
    run.epilog = "A failed or interrupted run resumes with: relay redrive runs/<execution-name>/"

    serve = sub.add_parser("serve", help="serve the HTTP API locally (engine, agents, stores, outbox) until Ctrl-C")
    serve.add_argument("--port", type=int, default=8787, help="port on 127.0.0.1 (default 8787; 0 = any free port)")
    serve.add_argument("--data-dir", type=Path, default=Path(".relay"), help="outbox and signing key folder (default ./.relay)")
    serve.add_argument("--corpus", help="folder of .md/.txt/.html documents to research (default: AWS docs in botocore)")
    serve.add_argument("--retry-time-scale", type=float, default=1.0, help=argparse.SUPPRESS)
    serve.add_argument("--verbose", action="store_true", help="show handler logs")

    def client(name: str, help_text: str) -> argparse.ArgumentParser:
        command = sub.add_parser(name, help=help_text)
        command.add_argument("--api-url", help="API base URL (else RELAY_API_URL, the config file, or a running relay serve)")
        command.add_argument("--data-dir", help="relay serve's data folder, for its outbox and serve.json (default ./.relay)")
        command.add_argument("--config", help="config file (default RELAY_CONFIG or ~/.config/relay/config.toml)")
        return command

    start = client("start", "start a workflow through the API")
    start.add_argument("topic", help="the research topic (1-2,000 characters)")
    start.add_argument("--questions", type=int, help="research questions, 1-40 (default 3)")
    start.add_argument("--max-revisions", type=int, help="rejections sent back for revision, 0-10 (default 2)")
    start.add_argument("--approval-timeout", type=int, metavar="SECONDS", help="approval wait (default 86400)")
    start.add_argument("--approver", help="email address the approval link is sent to")
    start.add_argument("--idempotency-key", help="retrying with the same key returns the same workflow")

    status = client("status", "show a workflow's status, current state, approval and report")
    status.add_argument("workflow_id")

    listing = client("list", "list workflows, newest first")
    listing.add_argument(
        "--status", choices=["RUNNING", "AWAITING_APPROVAL", "COMPLETED", "REJECTED", "FAILED", "CANCELLED"], help="only this status"
    )
    listing.add_argument("--limit", type=int, help="page size, 1-100 (default 20)")
    listing.add_argument("--next-token", help="the next_token of the previous page")

    for verb in ("approve", "reject"):
        decide = client(verb, f"{verb} the workflow's pending analysis by its emailed link")
        decide.add_argument("workflow_id")
        decide.add_argument("--link", help="the approval link from the email (default: found in the local outbox)")
        decide.add_argument("--as", dest="decided_by", default="", help="your name or email, recorded with the decision")
        if verb == "reject":
            decide.add_argument("--feedback", required=True, help="what the analysis should change (required to reject)")

    cancel = client("cancel", "stop a running workflow, recording who and why")
    cancel.add_argument("workflow_id")
    cancel.add_argument("--reason", required=True, help="why it is cancelled (recorded)")

    redrive = client("redrive", "resume a failed, timed-out or stopped workflow (or relay run folder) from the state that failed")
    redrive.add_argument("workflow_id", metavar="WORKFLOW_ID|RUN_DIR", help="a workflow id, or a relay run folder (runs/<name>/)")
    redrive.add_argument("--auto-approve", action="store_true", help="RUN_DIR only: approve the emailed link automatically")
    redrive.add_argument("--port", type=int, default=0, help="RUN_DIR only: local API port for approval links")
    redrive.add_argument("--verbose", action="store_true", help="RUN_DIR only: show handler logs")

    history = client("history", "show a workflow's execution history (GetExecutionHistory events)")
    history.add_argument("workflow_id")
    history.add_argument("--limit", type=int, help="events per page, 1-1000 (default 100)")
    history.add_argument("--next-token", help="the next_token of the previous page")
    history.add_argument("--reverse", action="store_true", help="newest first")
    return parser


def _client_command(args: argparse.Namespace) -> int:
    """start/status/list/approve/reject/cancel: print the answer as JSON."""
    import json

    from relay import client as api

    def show(value: object) -> None:
        print(json.dumps(value, indent=2, sort_keys=False))

    try:
        if args.command in {"approve", "reject"}:
            # The signed link is the only credential: no API URL or AWS credentials needed.
            outbox = api.resolve_data_dir(args.data_dir, args.config) / "outbox"
            link = args.link
            if not link:  # the API says which approval is the workflow's newest; its email has the link
                status = api.client_for(api.resolve_settings(args.api_url, args.data_dir, args.config)).status(args.workflow_id)
                approval_id = (status.get("approval") or {}).get("approval_id")
                if not approval_id:
                    raise api.ConfigError(f"workflow {args.workflow_id} has not asked for approval (yet)")
                link = api.find_approval_link(outbox, args.workflow_id, str(approval_id))
            decided_by = args.decided_by or f"{api.local_user()} (relay CLI)"
            feedback = getattr(args, "feedback", "")
            text = api.decide(link, approve=args.command == "approve", feedback=feedback, decided_by=decided_by)
            show({"workflow_id": args.workflow_id, "decision": args.command, "result": text})
            return 0
        settings = api.resolve_settings(args.api_url, args.data_dir, args.config)
        relay = api.client_for(settings)
        if args.command == "start":
            request = {
                "topic": args.topic,
                "questions": args.questions,
                "max_revisions": args.max_revisions,
                "approval_timeout_seconds": args.approval_timeout,
                "approver": args.approver,
            }
            show(relay.start({k: v for k, v in request.items() if v is not None}, idempotency_key=args.idempotency_key))
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
        print(f"relay: error: {exc}", file=sys.stderr)
        return 2
    except api.ClientError as exc:
        where = f"HTTP {exc.status}: " if exc.status else ""
        print(f"relay: {where}{exc}", file=sys.stderr)
        return 1
    return 0


def is_run_folder(target: str) -> bool:
    """A ``relay run`` folder (it holds the durable store), as opposed to a workflow id."""
    return Path(target, "state").is_dir() or ("/" in target and Path(target).is_dir())


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
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


if __name__ == "__main__":
    sys.exit(main())
