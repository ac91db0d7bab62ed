"""The HTTP layer of the local servers that stand in for AWS service front doors.

Each server is a Starlette app served by uvicorn (HTTP/1.1 parsed by h11, see
:mod:`relay.local.servers.protocol`) on an asyncio loop in a daemon thread of its own,
bound to 127.0.0.1 only, with a listen backlog of :data:`BACKLOG` (moto's clients do
not retry). Every accepted connection has ``TCP_NODELAY``, so an answer on a
kept-alive connection never waits for the peer's delayed ACK (~40 ms per call
otherwise, measured with ``bench/bench_engine.py``). The handlers are synchronous:
each call runs in a worker thread, at most :data:`CONCURRENCY` at once per server.

A server answers only its own names (:class:`TrustedHosts`): a request whose ``Host`` is
not ``127.0.0.1``, ``localhost`` or ``[::1]`` with the server's port (or the host of a
public URL it was given) is refused with 421 Misdirected Request before anything else
reads it, so a web page that rebinds a DNS name to 127.0.0.1 (DNS rebinding) cannot use
it. Other ASGI apps can be served under a path prefix of a server (:meth:`_LocalHttp.attach`):
the local console is served that way beside the API.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import queue
import re
import socket
import threading
import traceback
from collections.abc import Callable, Iterable
from typing import Any, Self
from urllib.parse import urlsplit

import uvicorn
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from relay.local.servers.protocol import (
    _BODY_RECEIVED,
    _RAW_HEADERS,
    MAX_HEAD_BYTES,
    _log,
    _Protocol,
    _Uvicorn,
)

#: Listen backlog for every local server.
BACKLOG = 1024
#: Largest request body a local server reads, in bytes: API Gateway's payload quota
#: (10 MB, "Amazon API Gateway quotas"); larger bodies are refused with 413.
MAX_BODY_BYTES = 10 * 1024 * 1024
#: Seconds a client may take to send each part of the body it announced (Content-Length
#: or chunks) before the answer is 408 and the connection closes. Idle keep-alive waits
#: are limited by :data:`KEEP_ALIVE_SECONDS` instead.
BODY_TIMEOUT_SECONDS = 30.0
#: Handler calls one server runs at once, each in a worker thread: Lambda's default
#: concurrent-executions quota ("Lambda quotas": 1,000 per Region). Lambda gives each
#: concurrent invocation its own execution environment, and so do the servers here.
CONCURRENCY = 1000
#: Seconds an idle kept-alive connection stays open. Long, because a server closing a
#: pooled connection just as a client reuses it fails that call, and moto's clients do
#: not retry; an idle connection costs no thread here.
KEEP_ALIVE_SECONDS = 3600
_CONTENT_LENGTH_RE = re.compile(r"[0-9]{1,19}")
#: A header name is a token (RFC 9110 §5.1, §5.6.2).
_TOKEN_RE = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
#: Characters h11 refuses in a header value (RFC 9110 §5.5), but tab.
_BAD_VALUE_RE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
#: Headers the server writes itself; a handler's own values for them are ignored.
_FRAMING_HEADERS = {"content-length", "transfer-encoding", "connection"}


class _Refused(Exception):
    """A request the server answers itself, without calling the handler, then closes."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


class _Gone(Exception):
    """The request ended without a complete body and was already answered (or the client left)."""



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


#: The loopback names a local server answers to, with its port.
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")
#: The status of a request to a name that is not the server's (RFC 9110 §15.5.20).
MISDIRECTED = 421


class TrustedHosts:
    """The ``Host`` header values a loopback server answers: each of :data:`LOOPBACK_NAMES`
    with the server's port (and without it on port 80, where clients leave it out), and
    the host of each public URL given (with and without its scheme's default port).
    Names compare case-insensitively; a request with no ``Host``, or with two, is refused.

    Args:
        port: the server's port.
        public_urls: addresses the server is also reached at (a reverse proxy, a tunnel),
            e.g. ``https://relay.example.internal``.

    Raises:
        ValueError: a public URL without a host.
    """

    def __init__(self, port: int, public_urls: Iterable[str] = ()):
        allowed = {f"{name}:{port}" for name in LOOPBACK_NAMES}
        if port == 80:
            allowed.update(LOOPBACK_NAMES)
        for url in public_urls:
            parts = urlsplit(url)
            if not parts.hostname:
                raise ValueError(f"public URL {url!r}: no host")
            host = parts.netloc.rpartition("@")[2].lower()
            allowed.add(host)
            default = {"http": 80, "https": 443}.get(parts.scheme)
            if default is not None and parts.port is None:
                allowed.add(f"{host}:{default}")
            elif default is not None and parts.port == default:
                allowed.add(host.rsplit(":", 1)[0])
        self.allowed = frozenset(host.encode("latin-1") for host in allowed)

    def admits(self, scope: Scope) -> bool:
        """Whether the request's one ``Host`` header names this server."""
        hosts = [value for name, value in scope["headers"] if name == b"host"]
        return len(hosts) == 1 and hosts[0].lower() in self.allowed

    async def refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer 421, naming the rule (the refused name is not echoed)."""
        await _json_answer(MISDIRECTED, "Host: not a name of this server; use http://127.0.0.1:PORT")(scope, receive, send)

    def guard(self, app: ASGIApp) -> ASGIApp:
        """``app`` answering only the names this admits (every other request: 421)."""

        async def guarded(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] == "http" and not self.admits(scope):
                await self.refuse(scope, receive, send)
                return
            await app(scope, receive, send)

        return guarded


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
        public_urls: addresses the server is also reached at (:class:`TrustedHosts`).
    """

    max_body_bytes = MAX_BODY_BYTES
    body_timeout_seconds = BODY_TIMEOUT_SECONDS
    #: The JSON ``message`` of the 404 for a path no route serves.
    not_found_message = "Not Found"

    def __init__(self, port: int = 0, public_urls: Iterable[str] = ()):
        self._socket = _listening_socket(port)
        self._port = int(self._socket.getsockname()[1])
        self.trusted_hosts = TrustedHosts(self._port, public_urls)
        self._attached: dict[str, ASGIApp] = {}
        self._workers = _Workers(CONCURRENCY, type(self).__name__)
        app = Starlette(routes=self._routes(), exception_handlers={HTTPException: self._unrouted})
        app.router.redirect_slashes = False
        self._app = app
        config = uvicorn.Config(
            self._asgi, interface="asgi3",
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

    def attach(self, prefix: str, app: ASGIApp) -> None:
        """Serve ``app`` under ``prefix`` (``"/console"``: every path ``/console/…``; the
        bare prefix redirects to ``prefix + "/"``), as an app mounted there sees it: its
        ``root_path`` is the prefix. The server's own routes no longer see that path; the
        ``Host`` check still applies.

        Raises:
            ValueError: ``prefix`` does not start with ``/``, or ends with one.
        """
        if not prefix.startswith("/") or prefix.endswith("/"):
            raise ValueError(f"prefix {prefix!r}: must start with '/' and not end with one")
        self._attached = {**self._attached, prefix: app}

    def detach(self, prefix: str) -> None:
        """Stop serving what :meth:`attach` put at ``prefix`` (its paths are the server's again)."""
        self._attached = {p: a for p, a in self._attached.items() if p != prefix}

    async def _asgi(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The server's ASGI app: a request to a name not the server's is refused (421);
        an attached app's path goes to that app; the hot request (:meth:`_hot_route`)
        straight to its endpoint (an exception there is a 500, as Starlette's error
        middleware answers); everything else to the Starlette app."""
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        if not self.trusted_hosts.admits(scope):
            await self.trusted_hosts.refuse(scope, receive, send)
            return
        path = scope["path"]
        for prefix, app in self._attached.items():
            if path == prefix:
                query = scope["query_string"].decode("latin-1")
                location = prefix + "/" + (f"?{query}" if query else "")
                await _answer_of(308, {"Location": location}, b"")(scope, receive, send)
                return
            if path.startswith(prefix + "/"):
                await app({**scope, "root_path": scope.get("root_path", "") + prefix}, receive, send)
                return
        hot = self._hot_route()
        if hot is not None and scope["method"] == hot[0]:
            match = hot[1].fullmatch(path)
            if match is not None:
                request = Request(scope, receive)
                try:
                    response = await hot[2](request, match.group(1))
                except Exception:
                    _log.exception("%s: %s %s failed", type(self).__name__, scope["method"], path)
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

