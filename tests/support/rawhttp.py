"""A raw-socket HTTP/1.1 client for testing the local servers' parsing: it sends exactly
the bytes given, half-closes, reads until the server closes, and splits what came back
into complete responses (or says what is incomplete)."""

from __future__ import annotations

import http.client
import io
import socket
from dataclasses import dataclass

#: Safety net so a server bug fails the test instead of hanging it (not an assertion on time).
SOCKET_TIMEOUT_SECONDS = 60


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes


class _Unclosable(io.BytesIO):
    def close(self) -> None:  # http.client closes its file after a Connection: close answer
        return


class _Bytes:
    def __init__(self, stream: io.BytesIO):
        self._stream = stream

    def makefile(self, *args: object, **kwargs: object) -> io.BytesIO:
        return self._stream


def exchange(port: int, data: bytes, head: bool = False) -> bytes:
    """Send ``data`` to 127.0.0.1:``port``, half-close, return every byte received."""
    with socket.create_connection(("127.0.0.1", port), timeout=SOCKET_TIMEOUT_SECONDS) as sock:
        try:
            sock.sendall(data)
            sock.shutdown(socket.SHUT_WR)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered and closed before reading everything: read its answer
        received = b""
        while True:
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            received += chunk
    return received


def split(received: bytes, head: bool = False) -> list[Answer]:
    """Every complete response in ``received``.

    Raises:
        AssertionError: bytes left over that are not a complete response (a dropped or
            truncated answer), or no response at all.
    """
    stream = _Unclosable(received)
    answers: list[Answer] = []
    while stream.tell() < len(received):
        response = http.client.HTTPResponse(_Bytes(stream), method="HEAD" if head else "GET")  # type: ignore[arg-type]
        try:
            response.begin()
            body = response.read()
        except (http.client.HTTPException, ValueError) as exc:
            raise AssertionError(f"incomplete or malformed answer after {len(answers)} complete ones: {received[-300:]!r} ({exc!r})") from None
        length = response.getheader("Content-Length")
        assert length is not None and int(length) == len(body) or head, (length, len(body))
        answers.append(Answer(response.status, {k: v for k, v in response.getheaders()}, body))
        if response.getheader("Connection", "").lower() == "close":
            assert stream.read() == b"", "bytes after an answer that said Connection: close"
            break
    assert answers, "no answer at all: the connection was dropped"
    return answers


def request(port: int, data: bytes, head: bool = False) -> list[Answer]:
    """:func:`exchange` then :func:`split`."""
    return split(exchange(port, data), head=head)
