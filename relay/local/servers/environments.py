"""Lambda execution environments, locally: each one a worker **process** serving one
invocation at a time, as Lambda runs them.

Each local function has a pool of workers (:class:`Environments`). An invocation takes
an idle (warm) worker, or starts a new one when all are busy (a cold start: Lambda scales
out the same way), and gives it back when it returns. A worker:

- has exactly the environment variables its :class:`FunctionConfig` gives it (the local
  runtime builds them with :func:`relay_core.contracts.function_environment`, the rule
  the stack deploys with), and nothing of the runtime's own environment;
- imports the function's ``app.py`` once (the init phase), then runs ``handler(event,
  context)`` per invocation, with a Lambda context object whose deadline is the
  function's timeout and whose ``memory_limit_in_mb`` is its memory setting;
- is ended at the function's timeout: the invocation answers as Lambda's Invoke API does
  (``X-Amz-Function-Error: Unhandled``, ``errorType`` ``Sandbox.Timedout``, "Task timed
  out after N seconds"), so Step Functions fails the Task with that error and the
  state's Retry applies as deployed; the worker is replaced;
- that exits or dies mid-invocation (``os._exit``, a segfault in a native library) is
  answered as Lambda answers it (``Runtime.ExitError``, "Runtime exited with error: exit
  status 1" / "signal: segmentation fault") and replaced;
- dies with the runtime: workers are forked by :mod:`multiprocessing`'s fork server
  (started from the runtime, with the heavy libraries imported once, so a cold start is a
  ``fork`` and the handler's import), which exits when the runtime does; each worker asks
  Linux for ``SIGKILL`` when its parent dies (``prctl(PR_SET_PDEATHSIG)``), so even a
  ``kill -9`` of ``relay serve`` leaves no worker behind.

Workers reach the in-memory AWS over HTTP, as handlers reach AWS
(:class:`relay.local.servers.aws_endpoint.AwsEndpoint`, the ``AWS_ENDPOINT_URL_*``
variables of their environment). Every invocation ends with a :class:`Report`, the
figures of Lambda's ``REPORT`` log line (duration, billed duration, memory size, max
memory used, and the init duration of a cold start), logged by ``relay.local.lambda``.

:class:`InProcessEnvironment` runs a handler module in the calling process instead, one
invocation at a time: for tests of the HTTP layer and benchmarks of the engine, whose
handlers share the test's fakes.
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib.util
import json
import logging
import math
import multiprocessing
import os
import resource
import signal
import sys
import tempfile
import threading
import time
import traceback
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from types import ModuleType
from typing import Any, Protocol

#: Where the Lambda handlers live.
FUNCTIONS_DIR = Path(__file__).resolve().parents[3] / "functions"
#: Modules the fork server imports once, so a worker's cold start does not: the heaviest
#: of what the handlers import (measured with ``python -X importtime``). Only modules that
#: read no environment variable at import time (not ``relay_core.observability``, whose
#: Powertools logger reads its settings when made): a worker's environment is set after
#: the fork, before it imports its handler.
PRELOAD = (
    "relay.local.servers.environments",
    "boto3",
    "botocore.session",
    "pydantic",
    "pydantic_settings",
    "aws_lambda_powertools.utilities.typing",
    "aws_lambda_powertools.event_handler",
    "aws_xray_sdk.core",
    "email_validator",
    "jinja2",
    "rapidfuzz",
    "strands",
    "numpy",
    "sklearn.feature_extraction.text",
    "bm25s",
    "relay_core.models",
    "relay_core.api_models",
    "relay_core.quality",
    "relay_core.links",
    "relay_core.ports",
    "relay_agents.analyst",
    "relay_agents.writer",
    "relay_agents.text",
    "relay.local.servers.worker_preload",
)
#: Workers one function may have at once, by default. Lambda scales a function out to
#: its concurrency quota (1,000 per Region); this machine has a few cores, and more
#: workers than cores only share them, so an invocation beyond this waits for a worker.
MAX_WORKERS = max(2, os.cpu_count() or 1)
#: Linux ``prctl`` option: the signal a process gets when its parent dies (``prctl(2)``).
PR_SET_PDEATHSIG = 1
#: Linux ``prctl`` option: the process's name (``/proc/PID/comm``).
PR_SET_NAME = 15
_log = logging.getLogger("relay.local.lambda")


@dataclass(frozen=True)
class FunctionConfig:
    """How one local function runs: what the stack deploys for it.

    Attributes:
        name: the function's name (its folder in ``functions/``).
        folder: the folder holding its ``app.py``.
        environment: every environment variable a worker has (nothing else is inherited).
        timeout_seconds: the function timeout: an invocation still running then is ended.
        memory_mb: the memory setting, reported (context, ``AWS_LAMBDA_FUNCTION_MEMORY_SIZE``, REPORT).
        arn: the function ARN the context object gives.
        prime: ``"module:function"`` a worker calls after importing the handler, in its
            init phase (as Lambda SnapStart's priming hooks do): work every first
            invocation would otherwise do, such as loading a search index. Its failure
            is logged and ignored (the invocation that needs the work does it again).
    """

    name: str
    folder: Path
    environment: dict[str, str]
    timeout_seconds: float = 30
    memory_mb: int = 512
    arn: str = ""
    prime: str = ""

    def invoked_arn(self) -> str:
        return self.arn or f"arn:aws:lambda:us-east-1:000000000000:function:{self.name}"


@dataclass
class FakeLambdaContext:
    """The parts of the Lambda context object the handlers and Powertools read."""

    function_name: str
    invoked_function_arn: str
    memory_limit_in_mb: int = 1024
    function_version: str = "$LATEST"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    log_group_name: str = "/aws/lambda/local"
    log_stream_name: str = "local"
    deadline: float = field(default_factory=lambda: time.time() + 900)

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.deadline - time.time()) * 1000))


@dataclass(frozen=True)
class Report:
    """The figures of Lambda's ``REPORT`` log line for one invocation.

    Attributes:
        request_id: the invocation's request id. function: the function's name.
        duration_ms: how long the handler ran (init excluded), in milliseconds.
        memory_mb: the memory setting. max_memory_used_mb: the worker's peak resident set.
        init_duration_ms: the cold start's init phase (fork and handler import), or
            ``None`` when a warm worker served the invocation.
        worker: the worker's process id.
    """

    request_id: str
    function: str
    duration_ms: float
    memory_mb: int
    max_memory_used_mb: int
    init_duration_ms: float | None
    worker: int

    @property
    def billed_duration_ms(self) -> int:
        """The duration rounded up to the next millisecond, as Lambda bills it."""
        return max(1, math.ceil(self.duration_ms))

    @property
    def cold_start(self) -> bool:
        return self.init_duration_ms is not None

    def line(self) -> str:
        """The line as Lambda writes it to the function's log stream."""
        text = (
            f"REPORT RequestId: {self.request_id}\tDuration: {self.duration_ms:.2f} ms\t"
            f"Billed Duration: {self.billed_duration_ms} ms\tMemory Size: {self.memory_mb} MB\t"
            f"Max Memory Used: {self.max_memory_used_mb} MB"
        )
        if self.init_duration_ms is not None:
            text += f"\tInit Duration: {self.init_duration_ms:.2f} ms"
        return text


@dataclass(frozen=True)
class Invocation:
    """What one invocation answered, as Lambda's Invoke API does.

    Attributes:
        payload: the JSON result, or the error object ``{errorMessage, errorType, stackTrace}``.
        function_error: ``"Unhandled"`` when ``payload`` is an error, else ``None``.
        report: the invocation's REPORT figures.
        logs: what the function wrote to stdout and stderr during the invocation (its log
            lines: what Lambda sends to the function's log stream).
    """

    payload: bytes
    function_error: str | None
    report: Report
    logs: str = ""

    def tail(self) -> str:
        """The end of the invocation's log, as ``LogType=Tail`` returns it (the last 4 KB:
        the log lines, then the REPORT line)."""
        return (self.logs + self.report.line() + "\n").encode()[-4096:].decode(errors="replace")


class Runner(Protocol):
    """What the local servers invoke: a pool of workers or one in-process environment."""

    config: FunctionConfig

    def invoke(self, event: bytes, request_id: str | None = None) -> Invocation: ...

    def close(self) -> None: ...


def load_handler(function_dir: Path) -> ModuleType:
    """Import ``{function_dir}/app.py`` as its own module (each folder is a separate Lambda).
    Every call makes a new, independent module instance."""
    spec = importlib.util.spec_from_file_location(f"relay_functions.{function_dir.name}", function_dir / "app.py")
    if spec is None or spec.loader is None:
        raise FileNotFoundError(f"no handler at {function_dir / 'app.py'}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _error(exc: BaseException, error_type: str | None = None) -> dict[str, Any]:
    return {
        "errorMessage": str(exc),
        "errorType": error_type or type(exc).__name__,
        "stackTrace": traceback.format_tb(exc.__traceback__),
    }


def _max_rss_mb() -> int:
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024)  # Linux: KiB


def _run_handler(module: ModuleType, config: FunctionConfig, event: bytes, request_id: str, deadline: float) -> tuple[bytes, bool]:
    """``handler(event, context)``: the JSON answer, and whether it is an error object."""
    context = FakeLambdaContext(
        function_name=config.name,
        invoked_function_arn=config.invoked_arn(),
        memory_limit_in_mb=config.memory_mb,
        aws_request_id=request_id,
        log_group_name=f"/aws/lambda/{config.name}",
        log_stream_name=f"{time.strftime('%Y/%m/%d')}/[$LATEST]{os.getpid()}",
        deadline=deadline,
    )
    try:
        result = module.handler(json.loads(event or b"null"), context)
    except Exception as exc:
        return json.dumps(_error(exc)).encode(), True
    try:
        return json.dumps(result).encode(), False
    except (TypeError, ValueError) as exc:  # Lambda cannot serialise the result either
        return json.dumps(_error(exc, "Runtime.MarshalError")).encode(), True


# ----- the worker process ----------------------------------------------------------------------
def _die_with_parent(name: str) -> None:
    """Ask Linux for SIGKILL when this process's parent dies, and name the process
    ``relay:<function>`` (what ``ps -o comm`` and ``top`` show; 15 bytes at most). No-op elsewhere."""
    if not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        libc.prctl(PR_SET_NAME, f"relay:{name}".encode()[:15], 0, 0, 0)


def _log_to(path: str) -> None:
    """Send this process's stdout and stderr (file descriptors 1 and 2, and Python's
    streams, line-buffered) to the worker's log file, which the pool reads after each
    invocation."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    sys.stdout = open(1, "w", buffering=1, encoding="utf-8", errors="backslashreplace", closefd=False)  # noqa: SIM115
    sys.stderr = open(2, "w", buffering=1, encoding="utf-8", errors="backslashreplace", closefd=False)  # noqa: SIM115


def _flush() -> None:
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()


def _serve(conn: Connection, config: FunctionConfig, log_path: str) -> None:
    """A worker's life: the function's environment, the init phase, then one invocation
    at a time until the pool closes the pipe. Messages to the pool:
    ``("ready", init_ms, init_error | None)`` once, then ``("done", payload, is_error,
    duration_ms, max_rss_mb)`` per invocation; what it prints goes to ``log_path``."""
    _die_with_parent(config.name)
    if os.getppid() == 1:  # the parent died before the line above
        os._exit(1)
    _log_to(log_path)
    os.environ.clear()
    os.environ.update(config.environment)
    started = time.perf_counter()
    try:
        sys.path.insert(0, str(config.folder))  # Lambda's task root is on the path
        module: ModuleType | None = load_handler(config.folder)
        init_error = None
    except Exception as exc:
        module, init_error = None, _error(exc, "Runtime.ImportModuleError" if isinstance(exc, ImportError) else None)
    if module is not None and config.prime:
        try:
            prime_module, _, prime_name = config.prime.partition(":")
            getattr(importlib.import_module(prime_module), prime_name)()
        except Exception:  # the invocation that needs it does the work itself
            traceback.print_exc()
    _flush()
    conn.send(("ready", (time.perf_counter() - started) * 1000, init_error))
    if module is None:
        return
    while True:
        try:
            request_id, event, deadline = conn.recv()
        except (EOFError, OSError):
            return
        began = time.perf_counter()
        payload, is_error = _run_handler(module, config, event, request_id, deadline)
        _flush()
        conn.send(("done", payload, is_error, (time.perf_counter() - began) * 1000, _max_rss_mb()))


def _context() -> Any:
    """The fork-server multiprocessing context, with :data:`PRELOAD` imported by the server
    (and the main module, which :mod:`multiprocessing` otherwise imports again in every
    new process: once in the server, so a worker finds it there)."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["__main__", *PRELOAD])
    return context


def start_fork_server() -> None:
    """Start the fork server now (it imports :data:`PRELOAD`, seconds of CPU in a process
    of its own), so the first cold start does not wait for it. Idempotent."""
    from multiprocessing import forkserver

    _context()
    forkserver.ensure_running()


def _exit_message(exitcode: int | None) -> str:
    if exitcode is not None and exitcode < 0:
        try:
            name = signal.Signals(-exitcode).name
        except ValueError:
            name = f"signal {-exitcode}"
        words = {"SIGSEGV": "segmentation fault", "SIGKILL": "killed", "SIGABRT": "aborted", "SIGTERM": "terminated"}
        return f"signal: {words.get(name, name)}"
    return f"exit status {exitcode if exitcode is not None else 'unknown'}"


class _Worker:
    """One execution environment: a worker process and the pipe to it."""

    def __init__(self, config: FunctionConfig):
        context = _context()
        self.conn, child = context.Pipe(duplex=True)
        self.log = tempfile.NamedTemporaryFile(prefix=f"relay-{config.name}-", suffix=".log", delete=False)  # noqa: SIM115
        log_path = self.log.name
        self.process = context.Process(target=_serve, args=(child, config, log_path), name=f"relay-lambda-{config.name}", daemon=True)
        self.process.start()
        child.close()
        self.pid = int(self.process.pid or 0)
        self.ready = False
        self.init_ms: float | None = None
        self.init_error: dict[str, Any] | None = None

    def wait_ready(self, timeout: float) -> str:
        """Read the init phase's message: ``"ready"``, ``"timeout"`` (not in ``timeout``
        seconds) or ``"died"`` (the worker exited first)."""
        if self.ready:
            return "ready"
        try:
            if not self.conn.poll(timeout):
                return "timeout"
            _, self.init_ms, self.init_error = self.conn.recv()
        except (EOFError, OSError):
            return "died"
        self.ready = True
        return "ready"

    def read_log(self) -> str:
        """What the worker wrote since the last read (then the file is emptied)."""
        with contextlib.suppress(OSError, ValueError):
            self.log.seek(0)
            text = self.log.read().decode("utf-8", errors="replace")
            self.log.seek(0)
            self.log.truncate()
            return text
        return ""

    def kill(self) -> None:
        with contextlib.suppress(Exception):
            self.log.close()
            os.unlink(self.log.name)
        with contextlib.suppress(Exception):
            self.conn.close()
        with contextlib.suppress(Exception):
            self.process.kill()
            self.process.join(5)
        with contextlib.suppress(Exception):
            self.process.close()


class Environments:
    """The execution environments of one function: a pool of worker processes, each
    serving one invocation at a time; idle workers are reused warm, a new one starts when
    all are busy.

    Args:
        config: the function's name, folder, environment, timeout and memory.
        max_workers: at most this many workers at once (:data:`MAX_WORKERS`); an invocation
            that finds them all busy waits for one (its timeout starts when it runs).
        reports: where every invocation's :class:`Report` is appended (a bounded deque).
    """

    def __init__(self, config: FunctionConfig, max_workers: int = MAX_WORKERS, reports: deque[Report] | None = None):
        self.config = config
        self.max_workers = max_workers
        self.reports: deque[Report] = reports if reports is not None else deque(maxlen=10_000)
        #: The log lines of recent invocations (one text per invocation that wrote any).
        self.logs: deque[str] = deque(maxlen=1000)
        self._idle: list[_Worker] = []
        self._all: set[_Worker] = set()
        self._lock = threading.Condition()
        self._reserved = 0  # workers being started: counted against max_workers
        self._closed = False
        #: How many workers were started (cold starts, pre-started ones included).
        self.created = 0

    def _start_worker(self) -> _Worker:
        """A new worker, counted in :attr:`_all` already (a slot was reserved under the lock)."""
        try:
            worker = _Worker(self.config)
        except BaseException:
            with self._lock:
                self._reserved -= 1
                self._lock.notify()
            raise
        with self._lock:
            self._reserved -= 1
            self.created += 1
            self._all.add(worker)
            closed = self._closed
        if closed:
            self._discard(worker)
            raise RuntimeError(f"function {self.config.name}: the local runtime is stopping")
        return worker

    def prestart(self, count: int = 1, wait: bool = False) -> None:
        """Start ``count`` workers now and put them in the pool; with ``wait``, return once
        their init phase is done (up to the function's timeout). An invocation a
        pre-started worker serves is warm: its REPORT has no init duration, as with
        Lambda's provisioned concurrency."""
        for _ in range(count):
            with self._lock:
                if self._closed or len(self._all) + self._reserved >= self.max_workers:
                    return
                self._reserved += 1
            worker = self._start_worker()
            if wait:
                worker.wait_ready(self.config.timeout_seconds)
            self._give_back(worker)

    def _take(self) -> _Worker:
        with self._lock:
            while True:
                if self._closed:
                    raise RuntimeError(f"function {self.config.name}: the local runtime is stopping")
                while self._idle:
                    worker = self._idle.pop()
                    if worker.process.is_alive():
                        return worker
                    self._all.discard(worker)
                if len(self._all) + self._reserved < self.max_workers:
                    self._reserved += 1
                    break
                self._lock.wait()
        return self._start_worker()

    def _give_back(self, worker: _Worker) -> None:
        with self._lock:
            if not self._closed:
                self._idle.append(worker)
                self._lock.notify()
                return
        self._discard(worker)

    def _discard(self, worker: _Worker) -> None:
        with self._lock:
            self._all.discard(worker)
            self._lock.notify()
        worker.kill()

    def workers(self) -> list[int]:
        """The process ids of the function's workers."""
        with self._lock:
            return [w.pid for w in self._all]

    def invoke(self, event: bytes, request_id: str | None = None) -> Invocation:
        """Run one invocation on a worker and answer as Lambda does (see the module docstring)."""
        request_id = request_id or str(uuid.uuid4())
        config = self.config
        worker = self._take()
        was_ready = worker.ready
        started = time.monotonic()
        deadline = time.time() + config.timeout_seconds
        state = worker.wait_ready(config.timeout_seconds)
        if state != "ready":
            return self._ended(worker, request_id, started, None, timed_out=state == "timeout")
        init_ms = None if was_ready else worker.init_ms
        if worker.init_error is not None:  # Lambda answers the invocation with the init error
            logs = worker.read_log()
            self._discard(worker)
            return self._answer(request_id, json.dumps(worker.init_error).encode(), True, 0.0, 0, init_ms, worker.pid, logs)
        try:
            worker.conn.send((request_id, event, deadline))
            remaining = max(0.0, config.timeout_seconds - (time.monotonic() - started))
            if not worker.conn.poll(remaining):
                return self._ended(worker, request_id, started, init_ms, timed_out=True)
            _, payload, is_error, duration_ms, rss = worker.conn.recv()
        except (EOFError, OSError, BrokenPipeError):
            return self._ended(worker, request_id, started, init_ms)
        logs = worker.read_log()
        self._give_back(worker)
        return self._answer(request_id, payload, is_error, duration_ms, rss, init_ms, worker.pid, logs)

    def _ended(self, worker: _Worker, request_id: str, started: float, init_ms: float | None, timed_out: bool = False) -> Invocation:
        """The worker timed out (killed here) or died: Lambda's error, and the worker replaced."""
        duration_ms = (time.monotonic() - started) * 1000
        if not timed_out:
            worker.process.join(5)  # it closed its pipe: it is exiting
        if timed_out or worker.process.exitcode is None:
            worker.kill()
            error = {
                "errorType": "Sandbox.Timedout",
                "errorMessage": f"RequestId: {request_id} Error: Task timed out after {self.config.timeout_seconds:.2f} seconds",
            }
        else:
            error = {
                "errorType": "Runtime.ExitError",
                "errorMessage": f"RequestId: {request_id} Error: Runtime exited with error: {_exit_message(worker.process.exitcode)}",
            }
        logs = worker.read_log() + f"{error['errorMessage']}\n"
        self._discard(worker)
        _log.warning("%s %s: %s", self.config.name, request_id, error["errorMessage"])
        return self._answer(request_id, json.dumps(error).encode(), True, duration_ms, 0, init_ms, worker.pid, logs)

    def _answer(
        self, request_id: str, payload: bytes, is_error: bool, duration_ms: float, rss: int, init_ms: float | None, pid: int,
        logs: str = "",
    ) -> Invocation:
        """The invocation's answer; its REPORT line logged, its log lines kept (:attr:`logs`)
        and written to this process's stdout, where a handler in this process wrote them."""
        report = Report(request_id, self.config.name, duration_ms, self.config.memory_mb, rss, init_ms, pid)
        self.reports.append(report)
        if logs:
            self.logs.append(logs)
            with contextlib.suppress(Exception):
                sys.stdout.write(logs)
                sys.stdout.flush()
        _log.info("%s %s", self.config.name, report.line())
        return Invocation(payload, "Unhandled" if is_error else None, report, logs)

    def close(self) -> None:
        """Stop every worker (one in flight is ended: the runtime is stopping)."""
        with self._lock:
            self._closed = True
            workers = list(self._all)
            self._all.clear()
            self._idle.clear()
            self._lock.notify_all()
        for worker in workers:  # all at once: SIGKILL each, then reap them
            with contextlib.suppress(Exception):
                worker.process.kill()
        for worker in workers:
            worker.kill()


class InProcessEnvironment:
    """One execution environment in the calling process: the handler module loaded once,
    one invocation at a time (a lock). No timeout, no isolation from the caller: for tests
    of the HTTP layer and engine benchmarks whose handlers use the caller's fakes."""

    def __init__(self, config: FunctionConfig, load: Callable[[Path], ModuleType] = load_handler):
        self.config = config
        self._load = load
        self._module: ModuleType | None = None
        self._lock = threading.Lock()
        self.reports: deque[Report] = deque(maxlen=1000)

    def invoke(self, event: bytes, request_id: str | None = None) -> Invocation:
        request_id = request_id or str(uuid.uuid4())
        with self._lock:
            init_ms = None
            if self._module is None:
                began = time.perf_counter()
                self._module = self._load(self.config.folder)
                init_ms = (time.perf_counter() - began) * 1000
            began = time.perf_counter()
            payload, is_error = _run_handler(self._module, self.config, event, request_id, time.time() + self.config.timeout_seconds)
            duration_ms = (time.perf_counter() - began) * 1000
        report = Report(request_id, self.config.name, duration_ms, self.config.memory_mb, _max_rss_mb(), init_ms, os.getpid())
        self.reports.append(report)
        return Invocation(payload, "Unhandled" if is_error else None, report)

    def close(self) -> None:
        return None
