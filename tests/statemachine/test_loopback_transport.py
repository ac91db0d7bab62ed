"""The HTTP session of the engine's loopback clients (``relay.local.moto_patches.transport.LoopbackTransport``):
kept-alive connections, a connection the server closed is replaced rather than failing
the call, and botocore's own errors for a refused, reset or slow call.

Nothing here waits by sleeping: the test server tells the tests when it has closed a
connection, and holds a slow answer until the test has seen the client time out (each
wait bounded by :data:`WAIT_SECONDS`, a safety net, not a timing assumption)."""

from __future__ import annotations

import json
import select
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from botocore.awsrequest import AWSRequest
from botocore.exceptions import ConnectionClosedError, EndpointConnectionError, ReadTimeoutError

from relay.local.moto_patches import LoopbackTransport

#: The longest any wait below may take before the test fails (it never takes that long).
WAIT_SECONDS = 30


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    connections = 0

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        #: Set when the server has closed a connection (after its idle timeout, or at once).
        self.closed = threading.Event()
        #: What a ``/slow`` answer waits for.
        self.release = threading.Event()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # kept-alive connections
    timeout = 0.3  # the server closes a connection idle this long

    def setup(self) -> None:
        super().setup()
        self.server.connections += 1  # type: ignore[attr-defined]

    def finish(self) -> None:
        super().finish()
        self.connection.close()
        self.server.closed.set()  # type: ignore[attr-defined]

    def log_message(self, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if self.path == "/reset":
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            self.close_connection = True
            return
        if self.path == "/slow":  # answers only once the test has seen the client give up
            self.server.release.wait(WAIT_SECONDS)  # type: ignore[attr-defined]
        answer = json.dumps({"path": self.path, "body": body.decode(), "agent": self.headers["User-Agent"]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        if self.path == "/close":
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(answer)


@pytest.fixture()
def server() -> Iterator[_Server]:
    httpd = _Server(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def _request(server: _Server, path: str, body: bytes = b"{}") -> Any:
    url = f"http://127.0.0.1:{server.server_address[1]}{path}"
    return AWSRequest(method="POST", url=url, data=body, headers={"User-Agent": "test"}).prepare()


def test_calls_share_one_kept_alive_connection_and_read_the_whole_answer(server):
    transport = LoopbackTransport(connect_timeout=5, read_timeout=5)
    answers = [transport.send(_request(server, "/ok", f'{{"n": {n}}}'.encode())) for n in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 200]
    assert json.loads(answers[2].content) == {"path": "/ok", "body": '{"n": 2}', "agent": "test"}
    assert json.loads(b"".join(answers[0].raw.stream()))["body"] == '{"n": 0}'  # as botocore streams it
    assert answers[1].headers["content-type"] == "application/json"
    assert server.connections == 1
    transport.close()


def test_a_connection_the_server_closed_is_replaced_not_failed(server):
    # Given a kept connection the server then closes (idle timeout), and one it closes at once
    transport = LoopbackTransport(connect_timeout=5, read_timeout=5)
    assert transport.send(_request(server, "/ok")).status_code == 200
    assert server.closed.wait(WAIT_SECONDS), "the server closes the idle connection"
    (kept,) = transport._idle
    assert select.select([kept.sock], [], [], WAIT_SECONDS)[0], "the client sees the close (end of stream)"
    # When the next calls go out, Then each succeeds on a new connection
    assert json.loads(transport.send(_request(server, "/close")).content)["path"] == "/close"
    assert transport.send(_request(server, "/ok")).status_code == 200
    assert server.connections == 3


def test_refused_reset_and_slow_calls_raise_botocores_errors(server):
    transport = LoopbackTransport(connect_timeout=5, read_timeout=0.2)
    with pytest.raises(ConnectionClosedError):
        transport.send(_request(server, "/reset"))
    with pytest.raises(ReadTimeoutError):
        transport.send(_request(server, "/slow"))
    server.release.set()
    # a failed connection is not kept: the next call works
    assert transport.send(_request(server, "/ok")).status_code == 200
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()
    request = AWSRequest(method="POST", url=f"http://127.0.0.1:{port}/", data=b"{}").prepare()
    with pytest.raises(EndpointConnectionError):
        transport.send(request)


def test_at_most_the_idle_limit_is_kept(server):
    transport = LoopbackTransport(connect_timeout=5, read_timeout=5)
    barrier = threading.Barrier(LoopbackTransport.IDLE_CONNECTIONS + 2)

    def call() -> None:
        barrier.wait()
        transport.send(_request(server, "/ok"))

    threads = [threading.Thread(target=call) for _ in range(barrier.parties)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(transport._idle) <= LoopbackTransport.IDLE_CONNECTIONS
    assert all(connection.sock is not None for connection in transport._idle)
