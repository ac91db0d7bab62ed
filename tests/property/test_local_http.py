"""The local servers' HTTP layer (``relay.local.servers._LocalHttp``) over real loopback
sockets: methods, Content-Length, chunked bodies, HEAD, and one complete answer for
every request, however malformed."""

from __future__ import annotations

import json
from typing import Any

import pytest

from relay.local.servers import ApiServer, _LocalHttp
from tests.support.apigw import ROOT
from tests.support.rawhttp import request

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics")


class Echo(_LocalHttp):
    """Answers what it was handed: method, path, Content-Length and body."""

    def handle(self, method: str, path: str, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, str], bytes]:
        seen = {"method": method, "path": path, "length": headers.get("Content-Length"),
                "te": headers.get("Transfer-Encoding"), "body": body.decode("latin-1")}
        return 200, {"Content-Type": "application/json"}, json.dumps(seen).encode()


@pytest.fixture(scope="module")
def echo() -> Any:
    server = Echo(public_urls=["http://x"]).start()  # the raw requests below say Host: x
    server.max_body_bytes = 1000
    server.body_timeout_seconds = 0.5
    yield server
    server.stop()


def seen(port: int, raw: bytes) -> dict[str, Any]:
    (answer,) = request(port, raw)
    assert answer.status == 200, answer
    return json.loads(answer.body)


def refused(port: int, raw: bytes) -> tuple[int, str]:
    (answer,) = request(port, raw)
    assert answer.headers["Content-Type"] == "application/json" and answer.headers["Connection"] == "close"
    return answer.status, json.loads(answer.body)["message"]


@pytest.mark.parametrize("method", ["PATCH", "OPTIONS", "TRACE", "PROPFIND", "X-CUSTOM"])
def test_every_token_method_reaches_the_handler_instead_of_a_501_page(echo, method):
    assert seen(echo.port, f"{method} /any HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())["method"] == method


@pytest.mark.parametrize("line", [b"GE(T /x HTTP/1.1", b"G\x00T /x HTTP/1.1", b"GET /x HTTP/1.x", b"GET /x HTTP/1.1 extra", b"POST /x"])
def test_a_malformed_request_line_is_a_400_json(echo, line):
    status, message = refused(echo.port, line + b"\r\nHost: x\r\n\r\n")
    assert status == 400 and message.startswith("request: ")


@pytest.mark.parametrize("value", [b"abc", b"-1", b"1.5", b"0x10", b"5, 6", b"", b" ", b"99999999999999999999"])
def test_a_malformed_content_length_is_a_400(echo, value):
    status, message = refused(echo.port, b"POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: " + value + b"\r\n\r\nhello")
    assert status == 400 and message.startswith("Content-Length: must be")


def test_two_different_content_lengths_are_a_400_and_two_equal_ones_are_one(echo):
    status, _ = refused(echo.port, b"POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 4\r\n\r\nhello")
    assert status == 400
    same = seen(echo.port, b"POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello")
    assert (same["body"], same["length"]) == ("hello", "5")


def test_a_body_over_the_limit_is_a_413_without_reading_it(echo):
    status, message = refused(echo.port, b"POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 1001\r\n\r\n" + b"x" * 1001)
    assert (status, message) == (413, "body: larger than 1000 bytes")


def test_a_body_that_ends_short_is_a_400(echo):
    status, message = refused(echo.port, b"POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc")
    assert (status, message) == (400, "body: the connection ended after 3 of 10 announced bytes")


def test_a_body_that_stalls_is_a_408_and_the_connection_closes(echo):
    import socket

    with socket.create_connection(("127.0.0.1", echo.port), timeout=60) as sock:
        sock.sendall(b"POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc")  # and nothing more
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    from tests.support.rawhttp import split

    (answer,) = split(received)
    assert answer.status == 408 and json.loads(answer.body)["message"] == "body: not received in time"


def test_a_chunked_body_is_read_with_extensions_and_trailers_and_handed_on_with_its_length(echo):
    raw = (b"POST /x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
           b"5;name=value\r\nhello\r\n1\r\n \r\n6\r\nworld!\r\n0\r\nX-Trailer: 1\r\n\r\n")
    got = seen(echo.port, raw)
    assert (got["body"], got["length"], got["te"]) == ("hello world!", "12", None)


def test_keep_alive_continues_after_a_chunked_body(echo):
    raw = (b"POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
           b"GET /b HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    first, second = request(echo.port, raw)
    assert json.loads(first.body)["body"] == "abc" and json.loads(second.body)["path"] == "/b"


@pytest.mark.parametrize(("chunks", "message"), [
    (b"zz\r\nhello\r\n0\r\n\r\n", "Transfer-Encoding: a chunk size must be 1-16 hexadecimal digits"),
    (b"-5\r\nhello\r\n0\r\n\r\n", "Transfer-Encoding: a chunk size must be 1-16 hexadecimal digits"),
    (b"5\r\nhelloXX0\r\n\r\n", "Transfer-Encoding: a chunk's data must end with CRLF"),
    (b"5\r\nhel", "body: the connection ended after 3 of 5 announced bytes"),
    (b"5\r\nhello\r\n", "Transfer-Encoding: chunked body ended or has a chunk-size line over 1,024 bytes"),
    (b"3e9\r\n" + b"x" * 1001 + b"\r\n0\r\n\r\n", "body: larger than 1000 bytes"),
])
def test_a_malformed_chunked_body_is_a_4xx_naming_the_rule(echo, chunks, message):
    status, said = refused(echo.port, b"POST /x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + chunks)
    assert said == message and status in {400, 413}


@pytest.mark.parametrize(("headers", "status"), [
    (b"Transfer-Encoding: gzip, chunked\r\n", 411),
    (b"Transfer-Encoding: identity\r\n", 411),
    (b"Transfer-Encoding: chunked\r\nContent-Length: 3\r\n", 400),
])
def test_other_transfer_codings_are_411_and_both_framings_400(echo, headers, status):
    assert refused(echo.port, b"POST /x HTTP/1.1\r\nHost: x\r\n" + headers + b"\r\n3\r\nabc\r\n0\r\n\r\n")[0] == status


def test_an_answer_to_head_has_no_body_but_says_its_length(echo):
    (answer,) = request(echo.port, b"HEAD /x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", head=True)
    assert answer.status == 200 and answer.body == b"" and int(answer.headers["Content-Length"]) > 0


def test_a_header_line_too_long_is_answered_in_json(echo):
    status, message = refused(echo.port, b"GET /x HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 70000 + b"\r\n\r\n")
    assert status == 431 and message.startswith("request: ")


@pytest.fixture(scope="module")
def api_server() -> Any:
    routes = [("/workflows", ROOT / "functions" / "api"), ("/approvals", ROOT / "functions" / "approvals")]
    server = ApiServer(routes, public_urls=["http://x"]).start()  # the raw requests below say Host: x
    yield server
    server.stop()


@pytest.mark.parametrize(("method", "path", "allow"), [
    ("PATCH", "/workflows", "GET, POST"), ("OPTIONS", "/workflows/wf-1", "GET"), ("TRACE", "/workflows/wf-1/cancel", "POST"),
    ("DELETE", "/approvals/abc", "GET, POST"), ("PUT", "/workflows/wf-1/history", "GET"),
])
def test_relay_serve_answers_unknown_methods_with_405_json_and_allow(api_server, method, path, allow):
    (answer,) = request(api_server.port, f"{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
    assert answer.status == 405 and answer.headers["Allow"] == allow
    assert answer.headers["Content-Type"] == "application/json" and json.loads(answer.body)["message"].startswith(f"method: {method} is not allowed")
