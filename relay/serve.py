"""``relay serve``: the whole of Relay on this machine, until Ctrl-C.

Starts a :class:`relay.local.runtime.LocalRelay` whose REST API listens on
``127.0.0.1:PORT`` and serves the same handlers as API Gateway
(``functions/api`` for ``/workflows``, ``functions/approvals`` for ``/approvals``),
with the local engine, agents and stores behind them. Approval emails land as
``.eml`` files in ``DIR/outbox/``; their links point at this server.

Nothing is lost when it stops, however it stops: ``DIR/state/`` is the local
runtime's durable store (:mod:`relay.local.durable`), written through as executions,
artifacts and records change. A server started on the same folder puts everything
back: every past workflow is listed with its history and report; one that was running
when the process died is ABORTED ("local runtime stopped at …") and resumes with
``relay redrive ID``.

One server per folder (:mod:`relay.local.lock`): it holds ``DIR/serve.lock`` and
publishes ``DIR/serve.json`` (``{"api_url", "console_url", "pid", "lambda_url"}``) so ``relay start`` and friends
find it without configuration; a second server on a held folder is refused, a stale
``serve.json`` left by a killed server is replaced. Finished reports are also copied
to ``DIR/reports/{workflow_id}.md``. The reconcile function runs every minute, as the
EventBridge schedule runs it deployed (:class:`LocalReconcile`, ``relay reconcile``).

The web console (:mod:`relay.local.console`) is served by the same server, under
``/console/`` (one address: ``http://127.0.0.1:PORT/console/``, the same at every start
on the same port), and its URL printed; it also answers the Step Functions API at
``/console/sfn``.
"""

from __future__ import annotations

import contextlib
import queue
import signal
import sys
import threading
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from relay_core.contracts import RecordStatus

#: How often finished reports are copied out of the in-memory bucket, seconds.
REPORT_EXPORT_SECONDS = 1.0


class ReportExporter:
    """Copies the report of every COMPLETED workflow into ``folder`` as
    ``{workflow_id}.md``, once each (a file already there is left alone).

    :meth:`export_all` copies every report the table lists (at start: workflows restored
    from the data folder). After that the exporter is told of each record as it is
    written (it is a persistence hook, :func:`relay.local.moto_patches.add_persistence`),
    and :meth:`export` copies only the reports finished since: an idle server reads
    nothing, however many workflows it keeps.
    """

    def __init__(self, relay: Any, folder: Path):
        from relay_core.adapters.artifact_store import S3ArtifactStore
        from relay_core.adapters.workflow_records import DynamoDBWorkflowRecords

        from relay.local.runtime import BUCKET, TABLE

        self.folder = folder
        self._table = TABLE
        self._records = DynamoDBWorkflowRecords(TABLE)
        self._store = S3ArtifactStore(BUCKET, client=relay.s3)
        self._finished: queue.SimpleQueue[tuple[str, dict[str, Any]]] = queue.SimpleQueue()

    # ----- the persistence hook: called on the engine's threads, so it only queues ---------
    def item_changed(self, table: str, key: dict[str, Any], item: dict[str, Any] | None) -> None:
        """A record was written (``item`` in DynamoDB JSON, ``None`` when deleted)."""
        if table != self._table or not item or item.get("status") != {"S": RecordStatus.COMPLETED}:
            return
        report = item.get("report", {}).get("M")
        if report is not None and "workflow_id" in item:
            self._finished.put((item["workflow_id"]["S"], {k: _deserialize(v) for k, v in report.items()}))

    def object_put(self, *args: Any) -> None:
        return None

    object_deleted = history_changed = execution_changed = memo_changed = object_put

    # ----- copying -----------------------------------------------------------------------
    def export_all(self) -> list[Path]:
        """Copy the report of every COMPLETED workflow the table lists; return the new files."""
        written: list[Path] = []
        start_key = None
        while True:
            items, start_key = self._records.list_workflows(
                RecordStatus.COMPLETED, limit=100, start_key=start_key, fields=("workflow_id", "report")
            )
            written += [p for i in items if isinstance(i.get("report"), dict) and (p := self._copy(i["workflow_id"], i["report"]))]
            if not start_key:
                return written

    def export(self) -> list[Path]:
        """Copy the reports finished since the last call; return the new files."""
        written: list[Path] = []
        while True:
            try:
                workflow_id, report = self._finished.get_nowait()
            except queue.Empty:
                return written
            if path := self._copy(workflow_id, report):
                written.append(path)

    def _copy(self, workflow_id: str, report: dict[str, Any]) -> Path | None:
        from relay_core.models import ArtifactRef

        target = self.folder / f"{workflow_id}.md"
        if target.exists():
            return None
        self.folder.mkdir(parents=True, exist_ok=True)
        target.write_text(self._store.get_text(ArtifactRef.model_validate(report)))
        return target


def _deserialize(value: dict[str, Any]) -> Any:
    """One DynamoDB JSON value as Python (boto3's deserializer)."""
    from boto3.dynamodb.types import TypeDeserializer

    return TypeDeserializer().deserialize(value)


@dataclass
class ServeOptions:
    port: int = 8787
    data_dir: Path = Path(".relay")
    corpus: str | None = None
    retry_time_scale: float = 1.0
    verbose: bool = False
    #: Serve the web console under ``/console/`` of the API's port.
    console: bool = True
    #: ``--model`` (see relay.run.RunOptions.model).
    model: str | None = None


class LocalReconcile:
    """The EventBridge schedule of the reconcile function, locally: every
    :data:`relay.reconcile.LOCAL_EVERY_SECONDS` it is invoked through the local Lambda
    endpoint, and what it recorded is printed."""

    def __init__(self, lambda_url: str, out: TextIO):
        import time

        from relay.reconcile import LOCAL_EVERY_SECONDS

        self.lambda_url, self.out = lambda_url, out
        self._clock = time.monotonic
        self._every = LOCAL_EVERY_SECONDS
        self._next = self._clock() + self._every

    def maybe_run(self) -> None:
        if self._clock() < self._next:
            return
        self._next = self._clock() + self._every
        from relay.reconcile import describe, invoke_reconcile

        try:
            result = invoke_reconcile(self.lambda_url)
        except Exception as exc:  # keep serving; say what went wrong
            self.out.write(f"relay: reconcile failed: {exc}\n")
            self.out.flush()
            return
        if result.get("recorded") or result.get("unexplained"):
            self.out.write("\n".join(describe(result)) + "\n")
            self.out.flush()


def serve(options: ServeOptions, out: TextIO | None = None, stop: threading.Event | None = None) -> int:
    """Run until SIGINT/SIGTERM (or ``stop`` is set). Returns the exit code: 0 stopped
    cleanly, 2 bad options (port out of range or in use, ``--data-dir`` a file, a corpus
    that cannot be researched: see :func:`relay.run.checked_corpus`)."""
    import math

    out = out or sys.stdout
    from relay.run import InputError, check_folder_option, check_model_option, check_port, checked_corpus

    try:
        check_port(options.port)
        check_folder_option(Path(options.data_dir), "--data-dir")
        if not (math.isfinite(options.retry_time_scale) and options.retry_time_scale > 0):
            raise InputError(f"--retry-time-scale: {options.retry_time_scale} must be a number above 0")
        # --corpus, else RELAY_CORPUS: checked before the server, the engine or the lock start
        checked_corpus(options.corpus)
        check_model_option(options.model)
    except InputError as exc:
        print(f"relay: error: {exc}", file=sys.stderr)
        return 2
    # Powertools warns on every request that publishes no metric (GETs); not news locally.
    warnings.filterwarnings("ignore", message="No application metrics to publish")
    stop = stop or threading.Event()
    previous: dict[signal.Signals, Any] = {}
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, lambda *_: stop.set())

    from relay.local.lock import ServerLock, ServerRunning
    from relay.local.runtime import LocalRelay

    data_dir = Path(options.data_dir)
    if data_dir.exists() and not data_dir.is_dir():
        print(f"relay: error: --data-dir: {data_dir} is a file, not a folder", file=sys.stderr)
        return 2
    lock = ServerLock(data_dir)
    try:
        lock.acquire()
    except ServerRunning as exc:
        print(f"relay: error: {exc}", file=sys.stderr)
        return 2
    try:
        with (
            LocalRelay(
                data_dir=data_dir,
                corpus=options.corpus,
                api_port=options.port,
                retry_time_scale=options.retry_time_scale,
                log_level="INFO" if options.verbose else "WARNING",
                model=options.model,
            ) as relay,
            contextlib.ExitStack() as stack,  # the console, stopped before the runtime
        ):
            reports = data_dir / "reports"
            restored = relay.restored
            console = None
            if options.console:
                from relay.local.console import serve_console

                console = serve_console(relay)
                stack.callback(console.stop)
            # serve.json first: whoever reads "relay: serving" may run `relay start` at once.
            lock.publish(relay.api_url, console.url if console else None, relay.lambdas.url)
            out.write(
                f"relay: serving {relay.api_url}\n"
                f"relay: approval emails land in {relay.outbox}/, finished reports in {reports}/\n"
            )
            if console is not None:
                out.write(
                    f"relay: console {console.url} (Step Functions API: --endpoint-url {console.sfn_endpoint})\n"
                )
            if lock.replaced:
                out.write(f"relay: replaced a stale serve.json (pid {lock.replaced.get('pid')} is gone)\n")
            if restored.executions:
                out.write(f"relay: restored {restored.executions} workflow(s) from {data_dir / 'state'}/\n")
            for name in restored.aborted:
                out.write(f"relay: {name} was running when the last server stopped: ABORTED; resume it with  relay redrive {name}\n")
            out.write(
                f"relay: try  relay start \"How do task tokens work?\" --api-url {relay.api_url}\n"
                f"relay: press Ctrl-C to stop; workflows are kept in {data_dir / 'state'}/\n"
            )
            out.flush()
            from relay.local import moto_patches

            exporter = ReportExporter(relay, reports)  # told of every record from now on, so
            moto_patches.add_persistence(exporter)  # the first pass (all listed) misses none
            stack.callback(moto_patches.remove_persistence, exporter)
            pending = exporter.export_all
            reconciler = LocalReconcile(relay.lambdas.url, out)
            while not stop.wait(REPORT_EXPORT_SECONDS):
                reconciler.maybe_run()
                try:
                    relay.store.heartbeat()
                    for path in pending():
                        out.write(f"relay: report ready: {path}\n")
                        out.flush()
                    pending = exporter.export
                except Exception as exc:  # keep serving; say what went wrong
                    out.write(f"relay: could not copy reports: {exc}\n")
                    out.flush()
    except OSError as exc:
        print(f"relay: error: cannot serve on port {options.port}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    finally:
        lock.release()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    out.write("relay: stopped\n")
    out.flush()
    return 0
