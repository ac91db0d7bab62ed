"""The local servers' lifecycle over real loopback sockets: stopping, and refusing a large
body while the client is still sending it."""

from __future__ import annotations

import http.client
import json
import socket
import threading
from typing import Any

import pytest

from relay.local.servers import _LocalHttp
from tests.support.rawhttp import request

#: Safety net so a server bug fails the test instead of hanging it (not an assertion on time).
WAIT_SECONDS = 60


class Gate(_LocalHttp):
    """``/slow`` waits until the test opens the gate; everything else answers at once."""

    def __init__(self) -> None:
        super().__init__(public_urls=["http://x"])  # the raw requests below say Host: x
        self.entered = threading.Event()
        self.gate = threading.Event()

    def handle(self, method: str, path: str, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, str], bytes]:
        if path == "/slow":
            self.entered.set()
            assert self.gate.wait(WAIT_SECONDS)
        return 200, {"Content-Type": "application/json"}, json.dumps({"path": path}).encode()


def test_stop_closes_the_listener_at_once_and_an_answer_in_flight_still_arrives() -> None:
    # Given a request in flight
    server = Gate().start()
    answers: dict[str, Any] = {}

    def slow() -> None:
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=WAIT_SECONDS)
        connection.request("GET", "/slow")
        response = connection.getresponse()
        answers["slow"] = (response.status, json.loads(response.read()))

    caller = threading.Thread(target=slow)
    caller.start()
    assert server.entered.wait(WAIT_SECONDS)
    # When the server stops while it is in flight
    server.stop()
    # Then nothing new is accepted, and the answer in flight still arrives whole
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", server.port), timeout=WAIT_SECONDS).close()
    server.gate.set()
    caller.join(WAIT_SECONDS)
    assert answers["slow"] == (200, {"path": "/slow"})


def test_a_body_far_over_the_limit_is_answered_413_while_the_client_is_still_sending() -> None:
    # Given a server that reads at most 1,000 bytes of body
    server = Gate().start()
    server.max_body_bytes = 1000
    try:
        # When a client announces and sends 4 MB (more than the kernel buffers hold)
        (answer,) = request(server.port, b"POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 4000000\r\n\r\n" + b"x" * 4_000_000)
        # Then it reads the whole 413 answer, and the connection closes after it
        assert answer.status == 413 and json.loads(answer.body) == {"message": "body: larger than 1000 bytes"}
    finally:
        server.stop()
