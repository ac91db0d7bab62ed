"""The connection layer of the local servers: uvicorn's h11 protocol, answering every
request exactly once and closing as RFC 9112 asks.

- :class:`_H11Connection`: h11's server side of a connection, plus the rules and the
  words of the answers to requests it refuses;
- :class:`_LingeringTransport`: an answer leaves in one ``send``; a close while the
  client may still be sending lingers (RFC 9112 §9.6);
- :class:`_Protocol`: uvicorn's h11 protocol with those answers, ``TCP_NODELAY`` on every
  connection, and the request's header names as sent (scope extension ``relay.raw_headers``);
- :class:`_Uvicorn`: uvicorn's server run in a thread, ready and stopped as thread events.

:mod:`relay.local.servers.http_server` builds the servers on it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import socket
import threading
from email.utils import formatdate
from typing import Any

import h11
import uvicorn
from h11._readers import ChunkedReader
from uvicorn.protocols.http.h11_impl import STATUS_PHRASES, H11Protocol

#: Largest request line plus headers, in bytes (h11's ``max_incomplete_event_size``);
#: a larger request head is refused with 431.
MAX_HEAD_BYTES = 65_536
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
#: The scope extension holding the request's header names as the client sent them.
_RAW_HEADERS = "relay.raw_headers"
#: The scope extension saying the whole body had arrived when the request was handed on.
_BODY_RECEIVED = "relay.body_received"
#: Client mistakes are answered, not logged; errors in the servers' own code are logged.
_log = logging.getLogger("relay.local.servers")
_log.setLevel(logging.ERROR)


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
      as the rest of the answer, the client thread taking the GIL in between). Only the
      head waits: each later part of a streamed body (the console's event stream) leaves
      as it is written.
    - ``close`` while the client may still be sending stops writing (FIN), drops what
      still arrives, and closes at the client's FIN or after :data:`LINGER_SECONDS`.
    """

    def __init__(self, transport: asyncio.Transport, protocol: _Protocol):
        self._transport = transport
        self._protocol = protocol
        self._pending: list[bytes] = []
        self.lingering = False
        self._head_of: Any = None  # the cycle whose head was last written

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)

    def is_closing(self) -> bool:
        return self.lingering or self._transport.is_closing()

    def write(self, data: bytes) -> None:
        if self.lingering or not data:
            return
        cycle = self._protocol.cycle
        head = cycle is not None and cycle.response_started and not cycle.response_complete and cycle is not self._head_of
        if head and not self._pending:
            self._head_of = cycle
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

