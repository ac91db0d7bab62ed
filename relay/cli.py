"""The ``relay`` command line.

``relay run "TOPIC" [--corpus DIR] [--questions N] [--auto-approve]`` runs one
workflow on the local runtime (see :mod:`relay.run`). Exit codes: 0 succeeded,
1 the execution failed (the message names the state), 2 invalid input.
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
    return parser


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
    return 2


if __name__ == "__main__":
    sys.exit(main())
