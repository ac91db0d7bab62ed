"""``relay serve``: the whole of Relay on this machine, until Ctrl-C.

Starts a :class:`relay.local.runtime.LocalRelay` whose REST API listens on
``127.0.0.1:PORT`` and serves the same handlers as API Gateway
(``functions/api`` for ``/workflows``, ``functions/approvals`` for ``/approvals``),
with the local engine, agents and stores behind them. Approval emails land as
``.eml`` files in ``DIR/outbox/``; their links point at this server.

It writes ``DIR/serve.json`` (``{"api_url", "pid"}``) so ``relay start`` and
friends find it without configuration, and removes it on exit. Finished reports
are copied to ``DIR/reports/{workflow_id}.md`` (the S3 bucket is in memory). State
lives in memory: stopping the server forgets every workflow (outbox and reports stay).
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from relay.client import SERVE_FILE

#: How often finished reports are copied out of the in-memory bucket, seconds.
REPORT_EXPORT_SECONDS = 1.0


def export_reports(relay: Any, folder: Path) -> list[Path]:
    """Copy the report of every COMPLETED workflow not yet in ``folder``; return the new files."""
    from relay_core.models import ArtifactRef
    from relay_core.records import WorkflowRecords
    from relay_core.store import ArtifactStore

    from relay.local.runtime import BUCKET, TABLE

    records = WorkflowRecords(TABLE)
    store = ArtifactStore(BUCKET, client=relay.s3)
    written: list[Path] = []
    start_key = None
    while True:
        items, start_key = records.list_workflows("COMPLETED", limit=100, start_key=start_key)
        for item in items:
            target = folder / f"{item['workflow_id']}.md"
            if isinstance(item.get("report"), dict) and not target.exists():
                folder.mkdir(parents=True, exist_ok=True)
                target.write_text(store.get_text(ArtifactRef.model_validate(item["report"])))
                written.append(target)
        if not start_key:
            return written


@dataclass
class ServeOptions:
    port: int = 8787
    data_dir: Path = Path(".relay")
    corpus: str | None = None
    retry_time_scale: float = 1.0
    verbose: bool = False


def serve(options: ServeOptions, out: TextIO = sys.stdout, stop: threading.Event | None = None) -> int:
    """Run until SIGINT/SIGTERM (or ``stop`` is set). Returns the exit code: 0 stopped
    cleanly, 2 bad options (missing corpus folder, port in use)."""
    if options.corpus is not None and not Path(options.corpus).is_dir():
        print(f"relay: error: corpus: folder {options.corpus} does not exist", file=sys.stderr)
        return 2
    if not 0 <= options.port <= 65535:
        print(f"relay: error: port: {options.port} is not 0-65535", file=sys.stderr)
        return 2
    # Powertools warns on every request that publishes no metric (GETs); not news locally.
    warnings.filterwarnings("ignore", message="No application metrics to publish")
    stop = stop or threading.Event()
    previous: dict[signal.Signals, Any] = {}
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, lambda *_: stop.set())

    from relay.local.runtime import LocalRelay

    data_dir = Path(options.data_dir)
    marker = data_dir / SERVE_FILE
    try:
        with LocalRelay(
            data_dir=data_dir,
            corpus=options.corpus,
            api_port=options.port,
            retry_time_scale=options.retry_time_scale,
            log_level="INFO" if options.verbose else "WARNING",
        ) as relay:
            marker.write_text(json.dumps({"api_url": relay.api_url, "pid": os.getpid()}))
            reports = data_dir / "reports"
            out.write(
                f"relay: serving {relay.api_url}\n"
                f"relay: approval emails land in {relay.outbox}/, finished reports in {reports}/\n"
                f"relay: try  relay start \"How do task tokens work?\" --api-url {relay.api_url}\n"
                "relay: press Ctrl-C to stop (workflows live in memory and are forgotten)\n"
            )
            out.flush()
            while not stop.wait(REPORT_EXPORT_SECONDS):
                try:
                    for path in export_reports(relay, reports):
                        out.write(f"relay: report ready: {path}\n")
                        out.flush()
                except Exception as exc:  # keep serving; say what went wrong
                    out.write(f"relay: could not copy reports: {exc}\n")
                    out.flush()
    except OSError as exc:
        print(f"relay: error: cannot serve on port {options.port}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    finally:
        marker.unlink(missing_ok=True)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    out.write("relay: stopped\n")
    out.flush()
    return 0
