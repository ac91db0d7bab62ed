"""Real local HTTP endpoints that stand in for AWS service front doors.

- :class:`LambdaServer`: the Lambda Invoke API
  (``POST /2015-03-31/functions/{FunctionName}/invocations``) running the real
  handlers from ``functions/``. A handler exception answers 200 with
  ``X-Amz-Function-Error: Unhandled`` and ``{errorMessage, errorType, stackTrace}``,
  as Lambda does (Lambda API reference, Invoke), so Step Functions sees the
  exception class name as the error.
- :class:`AgentCoreGateway`: the AgentCore data plane's InvokeAgentRuntime
  (``POST /runtimes/{agentRuntimeArn}/invocations``), forwarding to agent apps served
  on loopback with the ``X-Amzn-Bedrock-AgentCore-Runtime-Session-Id`` header.
  Agent answers of 429 become ``ThrottlingException``, 5xx ``RuntimeClientError``.
- :class:`ApiServer`: the REST API, turning requests into API Gateway proxy events
  (payload format 1.0) for the API handlers, as API Gateway does.

Each is a Starlette app served by uvicorn (HTTP/1.1 parsed by h11) on an asyncio loop
in a daemon thread of its own, bound to 127.0.0.1 only, with a listen backlog of
:data:`BACKLOG` (moto's clients do not retry). Every accepted connection has
``TCP_NODELAY``, so an answer on a kept-alive connection never waits for the peer's
delayed ACK (~40 ms per call otherwise, measured with ``bench/bench_engine.py``).
The handlers are synchronous: each call runs in a worker thread, at most
:data:`CONCURRENCY` at once per server.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import importlib.util
import json
import logging
import queue
import re
import socket
import threading
import time
import traceback
import urllib.error
import urllib.request
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email.utils import formatdate
from pathlib import Path
from types import ModuleType
from typing import Any, Self
from urllib.parse import parse_qsl, urlsplit

import h11
import uvicorn
from h11._readers import ChunkedReader
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from starlette.types import Receive, Scope, Send
from uvicorn.protocols.http.h11_impl import STATUS_PHRASES, H11Protocol

#: Listen backlog for every local server.
BACKLOG = 1024
#: Where the Lambda handlers live.
FUNCTIONS_DIR = Path(__file__).resolve().parents[2] / "functions"
#: Largest request body a local server reads, in bytes: API Gateway's payload quota
#: (10 MB, "Amazon API Gateway quotas"); larger bodies are refused with 413.
MAX_BODY_BYTES = 10 * 1024 * 1024
#: Seconds a client may take to send each part of the body it announced (Content-Length
#: or chunks) before the answer is 408 and the connection closes. Idle keep-alive waits
#: are limited by :data:`KEEP_ALIVE_SECONDS` instead.
BODY_TIMEOUT_SECONDS = 30.0
#: Largest request line plus headers, in bytes (h11's ``max_incomplete_event_size``);
#: a larger request head is refused with 431.
MAX_HEAD_BYTES = 65_536
#: Handler calls one server runs at once, each in a worker thread: Lambda's default
#: concurrent-executions quota ("Lambda quotas": 1,000 per Region). Lambda gives each
#: concurrent invocation its own execution environment, and so do the servers here.
CONCURRENCY = 1000
#: Seconds an idle kept-alive connection stays open. Long, because a server closing a
#: pooled connection just as a client reuses it fails that call, and moto's clients do
#: not retry; an idle connection costs no thread here.
KEEP_ALIVE_SECONDS = 3600
#: After refusing a request whose body is still arriving, seconds to read and drop what
#: the client still sends before closing: closing with unread input makes the kernel send
#: RST, which can destroy the answer before the client reads it (RFC 9112 §9.6).
LINGER_SECONDS = 1.0
#: Seconds between the server loop's housekeeping ticks (the ``Date`` header); a stop
#: wakes it at once.
_TICK_SECONDS = 1.0
#: Longest chunk-size line of a chunked body (RFC 9112 §7.1), in bytes.
_MAX_CHUNK_LINE_BYTES = 1024
_CHUNK_SIZE_RE = re.compile(rb"[0-9A-Fa-f]{1,16}")
#: The blank line ending a request head (h11 accepts a bare LF too).
_BLANK_LINE_RE = re.compile(rb"\n\r?\n")
_CONTENT_LENGTH_RE = re.compile(r"[0-9]{1,19}")
#: A header name is a token (RFC 9110 §5.1, §5.6.2).
_TOKEN_RE = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
#: Characters h11 refuses in a header value (RFC 9110 §5.5), but tab.
_BAD_VALUE_RE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
#: Headers the server writes itself; a handler's own values for them are ignored.
_FRAMING_HEADERS = {"content-length", "transfer-encoding", "connection"}
#: The scope extension holding the request's header names as the client sent them.
_RAW_HEADERS = "relay.raw_headers"
#: The scope extension saying the whole body had arrived when the request was handed on.
_BODY_RECEIVED = "relay.body_received"
#: The Invoke API's path, as Starlette's ``{name}`` path parameter matches it (one segment).
_INVOKE_PATH = re.compile(r"/2015-03-31/functions/([^/]+)/invocations")
#: Client mistakes are answered, not logged; errors in this module's code are logged.
_log = logging.getLogger("relay.local.servers")
_log.setLevel(logging.ERROR)


class _Refused(Exception):
    """A request the server answers itself, without calling the handler, then closes."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


class _Gone(Exception):
    """The request ended without a complete body and was already answered (or the client left)."""


class _RuleBroken(h11.RemoteProtocolError):
    """A framing rule of this module's, in the words of the refusal."""


class _H11Connection(h11.Connection):
    """h11's server side of one connection, plus what the answers to refused requests need.

    h11 parses requests and frames bodies. This adds:

    - the header names of the current request as the client sent them (ASGI lowercases
      them; API Gateway hands them to the handler as sent);
    - whether the request being read is ``HEAD`` (no answer to HEAD has a body, a 400 included);
    - two rules for chunked bodies h11 does not have: a chunk-size line is at most
      1,024 bytes and a chunk size 1-16 hexadecimal digits (RFC 9112 §7.1);
    - :meth:`refusal`: the status and the words naming the rule a request broke, and for
      a body cut short how many of how many announced bytes arrived.

    The chunk rules and the cut-short counts read h11 0.16's reader state (``_reader``,
    ``_receive_buffer``). ``tests/property/test_local_http.py`` pins every message, so an
    h11 release that changes that state fails there, loudly.
    """

    def __init__(self) -> None:
        super().__init__(h11.SERVER, max_incomplete_event_size=MAX_HEAD_BYTES)
        self.error: h11.RemoteProtocolError | None = None
        self.head = False
        self.raw_headers: list[tuple[bytes, bytes]] = []
        self._chunk_got = 0
        self._in_chunk = False
        self._last_reader: Any = None

    def next_event(self) -> Any:
        self._last_reader = self._reader  # h11 drops its reader when the peer errs
        try:
            if self.their_state is h11.IDLE:
                self._check_head_size()
            elif self.their_state is h11.SEND_BODY:
                self._check_chunk_size_line()
            event = super().next_event()
        except h11.RemoteProtocolError as exc:
            self.error = exc
            raise
        if type(event) is h11.Data:
            self._chunk_got = (0 if event.chunk_start else self._chunk_got) + len(event.data)
            self._in_chunk = not event.chunk_end
        elif type(event) is h11.Request:
            self.raw_headers = list(event.headers.raw_items())
            self._chunk_got, self._in_chunk = 0, False
        return event

    def _check_head_size(self) -> None:
        """h11 limits only a head still arriving; one that arrived whole is held to the same limit."""
        data = self._receive_buffer._data
        self.head = data[:5] == b"HEAD "
        if len(data) > MAX_HEAD_BYTES and not _BLANK_LINE_RE.search(data, 0, MAX_HEAD_BYTES + 3):
            raise _RuleBroken(f"request: the request line and headers are longer than {MAX_HEAD_BYTES:,} bytes", error_status_hint=431)

    def _check_chunk_size_line(self) -> None:
        reader = self._reader
        if type(reader) is not ChunkedReader or reader._bytes_in_chunk or reader._bytes_to_discard or reader._reading_trailer:
            return
        data = self._receive_buffer._data
        end = data.find(b"\n", 0, _MAX_CHUNK_LINE_BYTES + 1)
        if end < 0:
            if len(data) > _MAX_CHUNK_LINE_BYTES:
                raise _RuleBroken(f"Transfer-Encoding: chunked body ended or has a chunk-size line over {_MAX_CHUNK_LINE_BYTES:,} bytes")
            return
        if not _CHUNK_SIZE_RE.fullmatch(bytes(data[:end]).split(b";", 1)[0].strip()):
            raise _RuleBroken("Transfer-Encoding: a chunk size must be 1-16 hexadecimal digits")

    def refusal(self) -> tuple[int, str]:
        """The status and the message for the request h11 (or a rule here) refused."""
        exc = self.error
        text = str(exc)
        if exc is None:
            return 400, "request: malformed"
        if isinstance(exc, _RuleBroken):
            return exc.error_status_hint, text
        if text in ("bad Content-Length", "conflicting Content-Length headers"):
            return 400, "Content-Length: must be one decimal number of bytes"
        if "Transfer-Encoding" in text:  # a coding other than chunked, or several
            return 411, "Transfer-Encoding: only chunked is read; send Content-Length instead"
        if text.startswith("illegal chunk header"):
            return 400, "Transfer-Encoding: a chunk size must be 1-16 hexadecimal digits"
        if text.startswith("malformed chunk footer"):
            return 400, "Transfer-Encoding: a chunk's data must end with CRLF"
        if text.startswith("peer closed connection without sending complete message body"):
            return 400, self._cut_short(text)
        if exc.error_status_hint == 431:
            return 431, f"request: the request line and headers are longer than {MAX_HEAD_BYTES:,} bytes"
        return exc.error_status_hint, f"request: {text}"

    def _cut_short(self, text: str) -> str:
        counts = re.search(r"received (\d+) bytes, expected (\d+)", text)
        if counts:  # Content-Length
            return f"body: the connection ended after {counts[1]} of {counts[2]} announced bytes"
        reader = self._last_reader
        if type(reader) is ChunkedReader:
            if reader._bytes_in_chunk:
                got = self._chunk_got if self._in_chunk else 0
                return f"body: the connection ended after {got} of {got + reader._bytes_in_chunk} announced bytes"
            if reader._bytes_to_discard:
                return "Transfer-Encoding: a chunk's data must end with CRLF"
            if reader._reading_trailer:
                return "Transfer-Encoding: chunked body ended before its final CRLF"
        return f"Transfer-Encoding: chunked body ended or has a chunk-size line over {_MAX_CHUNK_LINE_BYTES:,} bytes"


class _LingeringTransport:
    """A connection's transport that writes each answer in one ``send`` and closes it the
    way RFC 9112 §9.6 asks.

    - An answer's head waits for its first body bytes (uvicorn writes them separately, in
      the same step of the loop) or for the answer's end: one ``send``, one segment and one
      wake-up of the client instead of two (measured: the second send cost about as much
      as the rest of the answer, the client thread taking the GIL in between).
    - ``close`` while the client may still be sending stops writing (FIN), drops what
      still arrives, and closes at the client's FIN or after :data:`LINGER_SECONDS`.
    """

    def __init__(self, transport: asyncio.Transport, protocol: _Protocol):
        self._transport = transport
        self._protocol = protocol
        self._pending: list[bytes] = []
        self.lingering = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)

    def is_closing(self) -> bool:
        return self.lingering or self._transport.is_closing()

    def write(self, data: bytes) -> None:
        if self.lingering or not data:
            return
        cycle = self._protocol.cycle
        if not self._pending and cycle is not None and cycle.response_started and not cycle.response_complete:
            self._pending.append(data)  # an answer's head: it leaves with the body (or at the answer's end)
            return
        self._pending.append(data)
        self.flush()

    def flush(self) -> None:
        """Send what was written so far."""
        if self._pending:
            data = b"".join(self._pending)
            self._pending.clear()
            if not self._transport.is_closing():
                self._transport.write(data)

    def close_now(self) -> None:
        self.flush()
        self._transport.close()

    def close(self) -> None:
        self.flush()
        if self.lingering or self._transport.is_closing() or not self._protocol.client_still_sending():
            self._transport.close()
            return
        self.lingering = True
        self._transport.resume_reading()
        self._transport.write_eof()
        self._protocol.loop.call_later(LINGER_SECONDS, self._transport.close)


class _Protocol(H11Protocol):
    """uvicorn's h11 protocol, answering every request exactly once, as the client can read it:

    - a request h11 refuses is answered in JSON ``{"message"}`` naming the rule
      (:meth:`_H11Connection.refusal`), with ``Connection: close``, and no body for HEAD;
    - a client that half-closes (sends FIN after its request, as ``curl`` and raw-socket
      clients may) still gets its answers, pipelined ones included; a body it cut short is
      a 400 saying how many of how many bytes arrived;
    - refusing a request whose body is still arriving lingers (:class:`_LingeringTransport`);
    - the app gets the request's header names as sent (scope extension ``relay.raw_headers``)
      and whether its whole body had already arrived (``relay.body_received``: no body timer).
    """

    def __init__(self, config: uvicorn.Config, server_state: Any, app_state: dict[str, Any], _loop: Any = None):
        super().__init__(config, server_state, app_state, _loop)
        self.conn: _H11Connection = _H11Connection()
        self.logger = _log
        self.access_log = False
        self._eof = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        # No Nagle delay on loopback: uvicorn writes an answer's head and body separately,
        # and the body must not wait for the peer's delayed ACK (~40 ms per call, measured
        # with bench/bench_engine.py). asyncio sets this only for sockets made with
        # proto=IPPROTO_TCP, so it is set here for every connection.
        transport.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._out = _LingeringTransport(transport, self)
        super().connection_made(self._out)  # type: ignore[arg-type]

    def client_still_sending(self) -> bool:
        """Whether input may still arrive that nobody will read (a body, or a refused request's rest)."""
        return not self._eof and self.conn.their_state in (h11.SEND_BODY, h11.ERROR)

    def data_received(self, data: bytes) -> None:
        if self.transport.is_closing():  # lingering: drop it
            return
        super().data_received(data)

    def handle_events(self) -> None:
        cycle = self.cycle
        super().handle_events()
        if self.cycle is not cycle and self.cycle is not None:
            extensions = {_RAW_HEADERS: self.conn.raw_headers, _BODY_RECEIVED: not self.cycle.more_body}
            self.cycle.scope["extensions"] = extensions  # type: ignore[typeddict-item]

    def eof_received(self) -> bool:  # type: ignore[override]
        if self.transport.is_closing():
            return False  # asyncio closes the transport
        self._eof = True
        started = self.cycle is not None and self.cycle.response_started
        if self.conn.their_state is h11.SEND_BODY and not started and not self.conn.trailing_data[0]:
            self.conn.receive_data(b"")
            self.handle_events()  # the body stopped short: h11 raises, send_400_response answers
        else:
            self._close_if_done()
        return True  # keep writing: answers to what was received still go out

    def on_response_complete(self) -> None:
        self._out.flush()  # the answer leaves now, before the keep-alive bookkeeping
        super().on_response_complete()
        self._close_if_done()

    def _close_if_done(self) -> None:
        """After the client's FIN: close once nothing received is left to answer."""
        if not self._eof or self.transport.is_closing():
            return
        if self.cycle is not None and not self.cycle.response_complete:
            return  # an answer is on its way; on_response_complete comes back here
        if self.conn.their_state is h11.IDLE and self.conn.trailing_data[0]:
            self.conn.error = None
            self._refuse(400, "request: the connection ended before the request line and headers were complete")
        else:
            self.transport.close()

    def send_400_response(self, msg: str) -> None:
        self._refuse(*self.conn.refusal())

    def _refuse(self, status: int, message: str) -> None:
        """Answer a request the protocol refused, in one write, then close."""
        if self.transport.is_closing():
            return
        cycle = self.cycle
        if cycle is not None and not cycle.response_complete:
            if cycle.response_started:  # its answer is being written: close after it
                cycle.keep_alive = False
                return
            cycle.disconnected = True  # the app stops waiting for the body; its answer is dropped
            cycle.message_event.set()
        body = json.dumps({"message": message}).encode()
        head = (
            f"HTTP/1.1 {status} {STATUS_PHRASES[status].decode()}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\nDate: {formatdate(usegmt=True)}\r\n\r\n"
        ).encode("latin-1")
        self.transport.write(head if self.conn.head else head + body)
        self.transport.close()

    def shutdown(self) -> None:
        """The server is stopping: close an idle connection now, a busy one after its answer."""
        if self.cycle is None or self.cycle.response_complete:
            self.transport.close()
        else:
            self.cycle.keep_alive = False

    def close_now(self) -> None:
        self._out.close_now()


class _Uvicorn(uvicorn.Server):
    """uvicorn's server, run in a thread: ready and stopped are thread events, a stop
    wakes the loop at once, and stopping does not wait for answers in flight."""

    def __init__(self, config: uvicorn.Config):
        super().__init__(config)
        self.ready = threading.Event()
        self.stopped = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None

    def run(self, sockets: list[socket.socket] | None = None) -> None:
        try:
            super().run(sockets)
        finally:
            self.ready.set()
            self.stopped.set()

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        await super().startup(sockets)
        self.ready.set()

    def request_stop(self) -> None:
        """Thread-safe: make the loop leave :meth:`main_loop` now."""
        self.should_exit = True
        loop, wake = self._loop, self._wake
        if loop is not None and wake is not None:
            with contextlib.suppress(RuntimeError):  # the loop has already closed
                loop.call_soon_threadsafe(wake.set)

    async def main_loop(self) -> None:
        assert self._wake is not None
        while not await self.on_tick(0):  # tick 0: refresh the Date header every tick
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), _TICK_SECONDS)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        for server in self.servers:
            server.close()
        for connection in list(self.server_state.connections):
            connection.shutdown()
        self.stopped.set()
        # Answers in flight still go out (their callers are waiting for them), then their
        # connections close; the thread is a daemon, so this never holds the process.
        while self.server_state.tasks:
            await asyncio.wait(list(self.server_state.tasks))
        for connection in list(self.server_state.connections):
            if isinstance(connection, _Protocol):
                connection.close_now()


class _Workers:
    """Daemon threads that run one server's synchronous handler calls, at most ``limit`` at once.

    A call takes an idle thread or starts one (up to ``limit``; beyond that it waits for a
    thread to free up), and the loop resumes the caller when it returns. Lighter per call
    than ``anyio.to_thread`` (no checkpoints: fewer turns of the loop, each of which gives
    up the GIL), and unlike ``concurrent.futures`` the threads are daemons, so a handler
    still running at exit (an agent call may take 15 minutes) never holds the process.
    """

    def __init__(self, limit: int, name: str):
        self._limit = limit
        self._name = name
        self._jobs: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._idle = threading.Semaphore(0)
        self._lock = threading.Lock()
        self._threads = 0

    async def run(self, function: Callable[..., Any], *args: Any) -> Any:
        """``function(*args)`` in a worker thread; its result, or its exception raised here."""
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self._jobs.put((loop, future, function, args))
        if not self._idle.acquire(blocking=False):
            with self._lock:
                if self._threads < self._limit:
                    self._threads += 1
                    threading.Thread(target=self._work, name=f"{self._name}-{self._threads}", daemon=True).start()
        return await future

    def _work(self) -> None:
        while (job := self._jobs.get()) is not None:
            loop, future, function, args = job
            del job
            try:
                outcome: tuple[Any, BaseException | None] = (function(*args), None)
            except BaseException as exc:  # handed to the caller, raised there
                outcome = (None, exc)
            del function, args
            self._idle.release()
            # Last, so this thread blocks on the queue (giving up the GIL) right after waking the loop.
            with contextlib.suppress(RuntimeError):  # the loop has closed: nobody waits any more
                loop.call_soon_threadsafe(_settle, future, *outcome)
            del loop, future, outcome

    def close(self) -> None:
        """End the idle threads (a busy one ends after its call)."""
        with self._lock:
            for _ in range(self._threads):
                self._jobs.put(None)
            self._threads = 0


def _settle(future: asyncio.Future[Any], result: Any, exc: BaseException | None) -> None:
    if future.cancelled():
        return
    if exc is not None:
        future.set_exception(exc)
    else:
        future.set_result(result)


class _AnyMethod:
    """An ASGI endpoint for a Starlette route that every method reaches (Starlette
    routes a plain function to GET and HEAD only)."""

    def __init__(self, endpoint: Callable[[Request], Any]):
        self.endpoint = endpoint

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = await self.endpoint(Request(scope, receive))
        await response(scope, receive, send)


class _Answer(Response):
    """A response sent as given: header names keep their case (a Starlette ``Response``
    lowercases them) and the framing headers are already set."""

    def __init__(self, status: int, raw_headers: list[tuple[bytes, bytes]], body: bytes):
        self.status_code = status
        self.raw_headers = raw_headers
        self.body = body
        self.background = None


def _json_answer(status: int, message: str, headers: dict[str, str] | None = None, close: bool = False) -> _Answer:
    out = {"Content-Type": "application/json", **(headers or {})}
    answer = _answer_of(status, out, json.dumps({"message": message}).encode())
    if close:
        answer.raw_headers.append((b"Connection", b"close"))
    return answer


def _answer_of(status: int, headers: dict[str, str], payload: bytes) -> _Answer:
    """The HTTP answer for a handler's ``(status, headers, body)``.

    Framing headers (``Content-Length``, ``Transfer-Encoding``, ``Connection``) are the
    server's: a handler's own values are ignored. 204 and 304 have no body and no
    ``Content-Length``; an answer to HEAD keeps its ``Content-Length`` and drops its body
    (uvicorn). A status outside 200-599, or a header that cannot be sent (not a token
    name, a control character in its value, not Latin-1), makes the answer a 500 naming it.
    """
    try:
        if not 200 <= status <= 599:
            raise ValueError(f"status {status} is not 200-599")
        raw: list[tuple[bytes, bytes]] = []
        for name, value in headers.items():
            if name.lower() in _FRAMING_HEADERS:
                continue
            value = str(value).strip(" \t")
            if not _TOKEN_RE.fullmatch(name) or _BAD_VALUE_RE.search(value):
                raise ValueError(f"header {name!r} holds a character HTTP does not allow")
            raw.append((name.encode("latin-1"), value.encode("latin-1")))
    except (UnicodeEncodeError, ValueError) as exc:
        message = json.dumps({"message": f"internal error: bad response ({exc})"}).encode()
        raw, status, payload = [(b"Content-Type", b"application/json")], 500, message
    if status in (204, 304):
        return _Answer(status, raw, b"")
    raw.append((b"Content-Length", str(len(payload)).encode()))
    return _Answer(status, raw, payload)


def _listening_socket(port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port))
        sock.listen(BACKLOG)
    except OSError:
        sock.close()
        raise
    return sock


class _LocalHttp:
    """A Starlette app under uvicorn on 127.0.0.1, in a daemon thread of its own.

    Every request gets exactly one complete answer:

    - h11 parses the request; a request line that is not ``METHOD target HTTP/x.y``, a
      header h11 refuses, or a request head over :data:`MAX_HEAD_BYTES` (431) is answered
      400/431 JSON. Every method that is an RFC 9110 token reaches the app;
    - the body is framed by ``Content-Length`` (one decimal value of at most 19 digits;
      repeated identical values are one, RFC 9110 §8.6) or ``Transfer-Encoding: chunked``
      (decoded; the handler sees the body and its ``Content-Length``, as API Gateway
      passes it). A malformed or conflicting length is 400 (both headers together too:
      RFC 9112 §6.1), another transfer coding 411, a body over :attr:`max_body_bytes`
      413 (unread when its length says so), a body that stops short 400 and one that
      stalls :attr:`body_timeout_seconds` 408; after any of these the connection closes;
    - errors the server answers itself are JSON ``{"message": …}``; an answer to ``HEAD``
      has no body.

    Subclasses give Starlette routes (:meth:`_routes`); by default every method and path
    goes to :meth:`handle`, run in a worker thread.

    Args:
        port: the port on 127.0.0.1 (0 = any free port). It is bound at construction,
            so :attr:`port` is known before :meth:`start`; ``OSError`` if it is taken.
    """

    max_body_bytes = MAX_BODY_BYTES
    body_timeout_seconds = BODY_TIMEOUT_SECONDS
    #: The JSON ``message`` of the 404 for a path no route serves.
    not_found_message = "Not Found"

    def __init__(self, port: int = 0):
        self._socket = _listening_socket(port)
        self._port = int(self._socket.getsockname()[1])
        self._workers = _Workers(CONCURRENCY, type(self).__name__)
        app = Starlette(routes=self._routes(), exception_handlers={HTTPException: self._unrouted})
        app.router.redirect_slashes = False
        self._app = app
        config = uvicorn.Config(
            self._asgi if self._hot_route() is not None else app, interface="asgi3",
            host="127.0.0.1", port=self._port, http=_Protocol, loop="asyncio", ws="none", lifespan="off",
            log_config=None, log_level="warning", access_log=False, proxy_headers=False, server_header=False,
            backlog=BACKLOG, timeout_keep_alive=KEEP_ALIVE_SECONDS, h11_max_incomplete_event_size=MAX_HEAD_BYTES,
        )
        self._server = _Uvicorn(config)
        self._thread = threading.Thread(target=self._serve, name=type(self).__name__, daemon=True)

    def _serve(self) -> None:
        try:
            self._server.run(sockets=[self._socket])
        finally:
            self._workers.close()

    @property
    def port(self) -> int:
        return self._port

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> Self:
        """Serve in the background; returns once the server accepts connections.

        Raises:
            RuntimeError: the server did not start within ``timeout`` seconds.
        """
        self._thread.start()
        if not self._server.ready.wait(timeout) or not self._server.started:
            self._server.request_stop()
            self._socket.close()
            raise RuntimeError(f"{type(self).__name__} on 127.0.0.1:{self.port} did not start")
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Stop accepting, close idle connections, and return. An answer in flight still
        goes out, then its connection closes (its handler keeps its worker thread until it
        returns, as a Lambda invocation in flight runs to its end)."""
        if not self._thread.is_alive():
            self._socket.close()
            return
        self._server.request_stop()
        self._server.stopped.wait(timeout)

    # ----- the app ---------------------------------------------------------------------
    def _routes(self) -> list[BaseRoute]:
        return [Route("/{path:path}", _AnyMethod(self._handle_request))]

    def _hot_route(self) -> tuple[str, re.Pattern[str], Callable[[Request, str], Any]] | None:
        """``(method, path pattern, endpoint(request, first group))`` of the one request
        this server answers most (an engine's Lambda calls), served without Starlette's
        router and middleware: a quarter of a local Lambda call's server CPU. Every other
        request, and this path with another method, goes through the Starlette app.
        ``None``: every request goes through the app."""
        return None

    async def _asgi(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The ASGI app when :meth:`_hot_route` names one: the hot request straight to its
        endpoint (an exception there is a 500, as Starlette's error middleware answers),
        everything else to the Starlette app."""
        hot = self._hot_route()
        if scope["type"] == "http" and hot is not None and scope["method"] == hot[0]:
            match = hot[1].fullmatch(scope["path"])
            if match is not None:
                request = Request(scope, receive)
                try:
                    response = await hot[2](request, match.group(1))
                except Exception:
                    _log.exception("%s: %s %s failed", type(self).__name__, scope["method"], scope["path"])
                    response = _json_answer(500, "internal error")
                await response(scope, receive, send)
                return
        await self._app(scope, receive, send)

    async def _unrouted(self, request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        if exc.status_code == 405:
            allow = (exc.headers or {}).get("Allow", "")
            return _json_answer(405, f"method: {request.method} is not allowed; allowed: {allow}", {"Allow": allow})
        message = self.not_found_message if exc.status_code == 404 else exc.detail
        return _json_answer(exc.status_code, message, dict(exc.headers or {}))

    async def _run(self, function: Callable[..., tuple[int, dict[str, str], bytes]], *args: Any) -> Response:
        """``function(*args)`` in a worker thread, as an answer; an exception is a 500 with its traceback."""
        try:
            status, headers, payload = await self._workers.run(function, *args)
        except Exception:  # the server must answer, never hang the caller
            status, headers, payload = 500, {"Content-Type": "text/plain"}, traceback.format_exc().encode()
        return _answer_of(status, headers, payload)

    async def _read_body(self, request: Request) -> bytes:
        """The request's body, read within the limits.

        Raises:
            _Refused: the framing or the size breaks a rule, or the body stalled.
            _Gone: the body ended short and the protocol answered, or the client left.
        """
        length = request.headers.get("content-length")
        if length is not None:
            if "transfer-encoding" in request.headers:  # h11 lets only "chunked" through
                raise _Refused(400, "Content-Length and Transfer-Encoding: send one of them, not both (RFC 9112 §6.1)")
            if not _CONTENT_LENGTH_RE.fullmatch(length):
                raise _Refused(400, "Content-Length: must be one decimal number of bytes")
            if int(length) > self.max_body_bytes:
                raise _Refused(413, f"body: larger than {self.max_body_bytes} bytes")
        extensions = request.scope.get("extensions") or {}
        chunks: list[bytes] = []
        total = 0
        receive = request.receive
        while True:
            if extensions.get(_BODY_RECEIVED):  # all there already: no timer needed
                message = await receive()
            else:
                try:
                    async with asyncio.timeout(self.body_timeout_seconds):
                        message = await receive()
                except TimeoutError:
                    raise _Refused(408, "body: not received in time") from None
            if message["type"] != "http.request":
                raise _Gone
            chunk = message.get("body", b"")
            if chunk:
                total += len(chunk)
                if total > self.max_body_bytes:
                    raise _Refused(413, f"body: larger than {self.max_body_bytes} bytes")
                chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    @staticmethod
    def _handler_headers(request: Request, body: bytes) -> dict[str, str]:
        """The request headers as sent (as API Gateway passes them), with the body's
        ``Content-Length`` when there is a body."""
        raw = (request.scope.get("extensions") or {}).get(_RAW_HEADERS) or request.scope["headers"]
        headers = {}
        framed = False
        for name, value in raw:
            text = name.decode("latin-1")
            if text.lower() in ("transfer-encoding", "content-length"):
                framed = True
            else:
                headers[text] = value.decode("latin-1")
        if body or framed:
            headers["Content-Length"] = str(len(body))
        return headers

    async def _body_or_refusal(self, request: Request) -> bytes | Response:
        """The request body, or the answer that refuses it (and closes the connection)."""
        try:
            return await self._read_body(request)
        except _Refused as refused:
            return _json_answer(refused.status, str(refused), close=True)
        except _Gone:
            return Response(status_code=400)  # not sent: the connection has already been answered

    async def _handle_request(self, request: Request) -> Response:
        body = await self._body_or_refusal(request)
        if isinstance(body, Response):
            return body
        target = request.scope["raw_path"].decode("latin-1")
        if request.scope["query_string"]:
            target += "?" + request.scope["query_string"].decode("latin-1")
        return await self._run(self.handle, request.method, target, self._handler_headers(request, body), body)

    def handle(self, method: str, path: str, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, str], bytes]:
        """Answer one request: ``(status, headers, body)``. Runs in a worker thread.

        Args:
            method: the request method. path: the request target (path and query, as sent).
            headers: the request headers as sent, with ``Content-Length`` set to the body's
                length when there is a body. body: the whole body.
        """
        raise NotImplementedError


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


def load_handler(function_dir: Path) -> ModuleType:
    """Import ``{function_dir}/app.py`` as its own module (each folder is a separate Lambda).
    Every call makes a new, independent module instance (one execution environment)."""
    spec = importlib.util.spec_from_file_location(f"relay_functions.{function_dir.name}", function_dir / "app.py")
    if spec is None or spec.loader is None:
        raise FileNotFoundError(f"no handler at {function_dir / 'app.py'}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    _own_resolver_state(module)
    return module


def _own_resolver_state(module: ModuleType) -> None:
    """Give the module's Powertools resolver (``app``) its own current event and context.

    Powertools resolvers keep the request in *class* attributes
    (``BaseRouter.current_event``/``lambda_context``), which is right on Lambda, where an
    execution environment serves one invocation at a time, and wrong here, where
    environments are threads of one process. Setting them on the resolver *instance*
    before it resolves shadows the class attributes for this environment only.
    """
    app = getattr(module, "app", None)
    if app is None or not hasattr(app, "_to_proxy_event") or not hasattr(app, "resolve"):
        return
    resolve = app.resolve

    def resolve_in_this_environment(event: dict[str, Any], context: Any) -> Any:
        app.current_event = app._to_proxy_event(event)
        app.lambda_context = context
        return resolve(event, context)

    app.resolve = resolve_in_this_environment


class Environments:
    """The execution environments of one function, as Lambda runs them: each a separate
    instance of the function's module (its own module-level state: resolver, caches,
    clients), serving **one invocation at a time**. An invocation takes an idle
    environment, or a new one when all are busy (Lambda scales out the same way), and
    gives it back when it returns; warm environments are reused.

    Library state that Powertools keeps per process (the logger's keys) is made
    per-thread by :func:`isolate_powertools`, so no invocation sees another's.
    """

    def __init__(self, function_dir: Path):
        self.function_dir = function_dir
        self._idle: list[ModuleType] = []
        self._lock = threading.Lock()
        #: How many environments were created (cold starts).
        self.created = 0

    @contextlib.contextmanager
    def acquire(self) -> Iterator[ModuleType]:
        with self._lock:
            module = self._idle.pop() if self._idle else None
        if module is None:
            module = load_handler(self.function_dir)
            with self._lock:
                self.created += 1
        try:
            yield module
        finally:
            with self._lock:
                self._idle.append(module)


_isolated = False


def isolate_powertools() -> None:
    """Make the Powertools logger's keys (correlation id, Lambda context, appended keys)
    per thread, so concurrent invocations in one process never log each other's keys.
    On Lambda one environment serves one invocation at a time, so per-process is per-invocation."""
    global _isolated
    if _isolated:
        return
    from aws_lambda_powertools.logging.formatter import LambdaPowertoolsFormatter

    def get(self: Any) -> dict[str, Any]:
        if "_relay_log_format" not in self.__dict__:  # a formatter made before isolation began
            set_(self, self.__dict__.pop("log_format", {}))
        store = self.__dict__["_relay_log_format"]
        value = getattr(store["local"], "value", None)
        if value is None:
            value = dict(store["base"])
            store["local"].value = value
        return value

    def set_(self: Any, value: dict[str, Any]) -> None:
        # The first value (set in __init__, then completed there) is what a new thread starts from;
        # each invocation's clear_state then gives its thread a fresh dict of its own.
        store = self.__dict__.setdefault("_relay_log_format", {"base": value, "local": threading.local()})
        store["local"].value = value

    LambdaPowertoolsFormatter.log_format = property(get, set_)  # type: ignore[assignment]
    _isolated = True


class LambdaServer(_LocalHttp):
    """The Lambda Invoke API over the folders in ``functions/``.

    Args:
        account_id, region: used to build the ARNs handed to the state machine.
        functions_dir: the folder holding one sub-folder per function.
    """

    def __init__(self, account_id: str, region: str, functions_dir: Path = FUNCTIONS_DIR, port: int = 0):
        self.account_id = account_id
        self.region = region
        self.functions_dir = functions_dir
        self._environments: dict[str, Environments] = {}
        self._import_lock = threading.Lock()
        self._faults = _Faults()
        self.invocations: deque[tuple[str, float]] = deque(maxlen=10_000)
        super().__init__(port)

    def inject(self, fault: Fault) -> None:
        """Make matching invocations fail as if the handler raised ``fault.error``."""
        self._faults.add(fault)

    def arn(self, name: str) -> str:
        return f"arn:aws:lambda:{self.region}:{self.account_id}:function:{name}"

    def environments(self, name: str) -> Environments:
        """The execution environments of function ``name``. Raises ``KeyError`` for an unknown function."""
        with self._import_lock:
            if name not in self._environments:
                folder = self.functions_dir / name
                if not (folder / "app.py").is_file():
                    raise KeyError(name)
                self._environments[name] = Environments(folder)
            return self._environments[name]

    def _routes(self) -> list[BaseRoute]:
        return [Route("/2015-03-31/functions/{name}/invocations", self._invoke_request, methods=["POST"])]

    def _hot_route(self) -> tuple[str, re.Pattern[str], Callable[[Request, str], Any]]:
        return "POST", _INVOKE_PATH, self._invoke

    async def _unrouted(self, request: Request, exc: Exception) -> Response:
        return _json_answer(404, "unknown route")

    async def _invoke_request(self, request: Request) -> Response:
        return await self._invoke(request, request.path_params["name"])

    async def _invoke(self, request: Request, name: str) -> Response:
        body = await self._body_or_refusal(request)
        if isinstance(body, Response):
            return body
        return await self._run(self.invoke, name, body)

    def invoke(self, name: str, body: bytes) -> tuple[int, dict[str, str], bytes]:
        """Invoke function ``name`` (a name or a function ARN) with the JSON event ``body``,
        as Lambda's Invoke API answers: ``(status, headers, payload)``."""
        if name.startswith("arn:"):
            name = name.split(":")[6]
        try:
            environments = self.environments(name)
        except KeyError:
            body_json = {"Type": "User", "Message": f"Function not found: {self.arn(name)}"}
            return 404, {"Content-Type": "application/json", "x-amzn-ErrorType": "ResourceNotFoundException"}, json.dumps(body_json).encode()
        event = json.loads(body or b"null")
        context = FakeLambdaContext(function_name=name, invoked_function_arn=self.arn(name))
        self.invocations.append((name, time.time()))
        response_headers = {
            "Content-Type": "application/json",
            "X-Amz-Executed-Version": "$LATEST",
            "x-amzn-RequestId": context.aws_request_id,
        }
        fault = self._faults.take(name)
        try:
            if fault is not None:
                time.sleep(fault.delay_seconds)
                if fault.error:
                    raise type(fault.error, (Exception,), {})(fault.message)
            with environments.acquire() as module:
                result = module.handler(event, context)
        except Exception as exc:
            error = {
                "errorMessage": str(exc),
                "errorType": type(exc).__name__,
                "stackTrace": traceback.format_tb(exc.__traceback__),
            }
            response_headers["X-Amz-Function-Error"] = "Unhandled"
            return 200, response_headers, json.dumps(error).encode()
        return 200, response_headers, json.dumps(result).encode()


@dataclass
class Fault:
    """A scripted failure a local endpoint answers with instead of doing the work (tests, demos).

    For :class:`AgentCoreGateway`, ``status`` is the HTTP status, ``error`` the AWS
    error code and ``match`` a payload ``question_id``. For :class:`LambdaServer`,
    ``error`` is the handler's ``errorType`` and ``match`` a function name. ``None``
    matches every call; ``times`` is how many calls it answers.
    """

    error: str = ""
    message: str = "injected fault"
    status: int = 500
    match: str | None = None
    times: int = 1
    #: Seconds the endpoint waits first (a slow call). With no ``error``, the call then
    #: proceeds normally: a delay alone holds the work in flight (crash drills).
    delay_seconds: float = 0.0


class _Faults:
    def __init__(self) -> None:
        self._faults: list[Fault] = []
        self._lock = threading.Lock()

    def add(self, fault: Fault) -> None:
        with self._lock:
            self._faults.append(fault)

    def take(self, key: str | None) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.times > 0 and fault.match in (None, key):
                    fault.times -= 1
                    return fault
        return None


class AgentCoreGateway(_LocalHttp):
    """InvokeAgentRuntime over HTTP, forwarding to agent apps registered by runtime ARN."""

    SESSION_HEADER = "X-Amzn-Bedrock-AgentCore-Runtime-Session-Id"

    def __init__(self, port: int = 0):
        self._runtimes: dict[str, str] = {}
        self._faults = _Faults()
        self.calls: list[dict[str, Any]] = []
        super().__init__(port)

    def register(self, runtime_arn: str, app_url: str) -> None:
        """Route ``runtime_arn`` to the agent app at ``app_url`` (``/invocations``, ``/ping``)."""
        self._runtimes[runtime_arn] = app_url.rstrip("/")

    def inject(self, fault: Fault) -> None:
        """Answer matching calls with ``fault`` (consumed ``fault.times`` times)."""
        self._faults.add(fault)

    @staticmethod
    def _error(status: int, error: str, message: str) -> tuple[int, dict[str, str], bytes]:
        headers = {"Content-Type": "application/json", "x-amzn-ErrorType": error, "x-amzn-RequestId": str(uuid.uuid4())}
        return status, headers, json.dumps({"message": message}).encode()

    def _routes(self) -> list[BaseRoute]:
        return [Route("/runtimes/{arn:path}/invocations", self._invoke_request, methods=["POST"])]

    async def _unrouted(self, request: Request, exc: Exception) -> Response:
        return _answer_of(*self._error(404, "ResourceNotFoundException", "unknown route"))

    async def _invoke_request(self, request: Request) -> Response:
        body = await self._body_or_refusal(request)
        if isinstance(body, Response):
            return body
        session = request.headers.get(self.SESSION_HEADER, "")
        return await self._run(self.invoke, request.path_params["arn"], session, body)

    def invoke(self, arn: str, session: str, body: bytes) -> tuple[int, dict[str, str], bytes]:
        """InvokeAgentRuntime on ``arn`` with session id ``session`` and payload ``body``,
        forwarded to the registered agent app: ``(status, headers, payload)``."""
        if len(session) < 33:
            return self._error(400, "ValidationException", "runtimeSessionId must be at least 33 characters")
        if arn not in self._runtimes:
            return self._error(404, "ResourceNotFoundException", f"no agent runtime {arn}")
        try:
            payload = json.loads(body or b"null")
        except ValueError:
            payload = None
        self.calls.append({"arn": arn, "session": session, "payload": payload})
        fault = self._faults.take(payload.get("question_id") if isinstance(payload, dict) else None)
        if fault is not None:
            time.sleep(fault.delay_seconds)
            if fault.error:
                return self._error(fault.status, fault.error, fault.message)
        request = urllib.request.Request(
            f"{self._runtimes[arn]}/invocations",
            data=body,
            method="POST",
            headers={"Content-Type": "application/json", "Accept": "application/json", self.SESSION_HEADER: session},
        )
        try:
            with urllib.request.urlopen(request, timeout=900) as answer:  # AgentCore sync limit: 15 min
                data = answer.read()
                content_type = answer.headers.get("Content-Type", "application/json")
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode("utf-8", "replace")[:1000]
            if exc.code == 429:
                return self._error(429, "ThrottlingException", detail)
            if exc.code in (400, 422):
                return self._error(400, "ValidationException", detail)
            return self._error(424, "RuntimeClientError", detail)
        return 200, {"Content-Type": content_type, self.SESSION_HEADER: session, "x-amzn-RequestId": str(uuid.uuid4())}, data


def proxy_event(
    method: str,
    path: str,
    headers: dict[str, str],
    body: bytes,
    stage: str = "local",
    identity: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """An API Gateway REST proxy event (payload format 1.0), as API Gateway builds it.

    Args:
        method, path: the request line; ``path`` may carry a query string.
        headers: request headers. body: raw body (base64-encoded in the event unless UTF-8).
        stage: the stage name. identity: ``requestContext.identity`` extras, e.g. ``userArn``
            for IAM-authorised callers.
    """
    split = urlsplit(path)
    multi: dict[str, list[str]] = {}
    for key, value in parse_qsl(split.query, keep_blank_values=True):
        multi.setdefault(key, []).append(value)
    try:
        text, is_b64 = body.decode("utf-8"), False
    except UnicodeDecodeError:
        text, is_b64 = base64.b64encode(body).decode("ascii"), True
    return {
        "resource": split.path,
        "path": split.path,
        "httpMethod": method,
        "headers": headers,
        "multiValueHeaders": {k: [v] for k, v in headers.items()},
        "queryStringParameters": {k: v[-1] for k, v in multi.items()} or None,
        "multiValueQueryStringParameters": multi or None,
        "pathParameters": None,
        "stageVariables": None,
        "requestContext": {
            "resourcePath": split.path,
            "httpMethod": method,
            "path": f"/{stage}{split.path}",
            "stage": stage,
            "requestId": str(uuid.uuid4()),
            "identity": {"sourceIp": "127.0.0.1", "userAgent": headers.get("User-Agent", ""), **(identity or {})},
        },
        "body": text or None,
        "isBase64Encoded": is_b64,
    }


class ApiServer(_LocalHttp):
    """API Gateway (REST, proxy integration) in front of the API handler modules.

    Args:
        routes: ``[(path_prefix, function folder)]``; the first prefix that matches wins.
            Each function runs in its own :class:`Environments` (one request at a time each).
        stage: the stage name put in ``requestContext``.
    """

    def __init__(self, routes: list[tuple[str, Path]], port: int = 0, stage: str = "local"):
        self.routes = [(prefix, Environments(folder)) for prefix, folder in routes]
        self.stage = stage
        super().__init__(port)

    def event(self, method: str, path: str, headers: dict[str, str], body: bytes) -> dict[str, Any]:
        """The API Gateway proxy event for one request (no IAM identity: local callers)."""
        return proxy_event(method, path, headers, body, stage=self.stage)

    def handle(self, method: str, path: str, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, str], bytes]:
        route_path = urlsplit(path).path
        environments = next((e for prefix, e in self.routes if route_path.startswith(prefix)), None)
        if environments is None:
            return 404, {"Content-Type": "application/json"}, b'{"message":"Not Found"}'
        name = environments.function_dir.name
        context = FakeLambdaContext(function_name=name, invoked_function_arn=f"arn:aws:lambda:local:000000000000:function:{name}")
        with environments.acquire() as module:
            result = module.handler(self.event(method, path, headers, body), context)
        out_headers = {k: str(v) for k, v in (result.get("headers") or {}).items()}
        for key, values in (result.get("multiValueHeaders") or {}).items():
            out_headers[key] = ", ".join(str(v) for v in values)
        payload = result.get("body") or ""
        data = base64.b64decode(payload) if result.get("isBase64Encoded") else str(payload).encode("utf-8")
        return int(result.get("statusCode", 200)), out_headers, data
