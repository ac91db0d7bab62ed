"""The engine's clients: one boto3 client per service and endpoint (the ``client-cache``
patch), and for Relay's own loopback servers a lighter client sending through
:class:`LoopbackTransport`.

moto makes a new boto3 client for every Task (a quarter of a no-op workflow's time,
measured with ``bench/bench_engine.py``). The Lambda and AgentCore Tasks of the local
runtime go to loopback HTTP servers (:mod:`relay.local.servers`) that check no
signature: their clients are unsigned and send with ``http.client`` over kept-alive
connections. The ``Host`` they send is ``127.0.0.1:PORT``, a name those servers answer.
"""

from __future__ import annotations

import http.client
import importlib
import io
import os
import socket
import threading
from collections.abc import Iterator
from typing import Any

from relay.local.moto_patches.framework import _P, _STS, Patch, Target

#: Every module holding moto's ``boto_client_for``: where it is defined, then every importer.
_BOTO_CLIENT_MODULES = (
    _P + "asl.utils.boto_client",
    _P + "asl.component.state.exec.state_map.item_reader.eval.resource_eval_s3",
    _P + "asl.component.state.exec.state_map.result_writer.resource_eval.resource_eval_s3",
    _P + "asl.component.state.exec.state_task.lambda_eval_utils",
    *(
        f"{_STS}_{service}"
        for service in ("aws_sdk", "batch", "dynamodb", "ecs", "events", "glue", "sfn", "sns", "sqs", "unsupported")
    ),
)
_client_cache: dict[tuple[Any, ...], Any] = {}
_client_lock = threading.Lock()


def _one_boto_client_for() -> str | None:
    """Every module that imported ``boto_client_for`` holds the same function (else the
    cached one would stand in for a different function)."""
    values = {id(importlib.import_module(m).boto_client_for): m for m in _BOTO_CLIENT_MODULES}
    if len(values) > 1:
        return "the modules of the client-cache patch no longer share one boto_client_for: " + ", ".join(values.values())
    return None


#: Endpoints of Relay's own loopback servers (relay.local.servers), which check no signature.
_LOOPBACK_ENDPOINTS = ("http://127.0.0.1:", "http://localhost:")


class _Body(io.BytesIO):
    """A response body read whole, as botocore reads a raw body (``read`` and ``stream``)."""

    def stream(self, amt: int = 65536, **_: Any) -> Iterator[bytes]:
        while chunk := self.read(amt):
            yield chunk


class _NoDelayConnection(http.client.HTTPConnection):
    def connect(self) -> None:
        super().connect()
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class LoopbackTransport:
    """Sends a loopback client's requests with ``http.client`` over kept-alive connections.

    It is the client's HTTP session (botocore's ``Endpoint.http_session``, whose
    interface is ``send(request) -> AWSResponse`` and ``close()``, as its
    ``URLLib3Session``), so ``before-send`` handlers still answer first. It does what
    botocore's urllib3 session does for a plain-HTTP endpoint with retries off, as moto's
    clients are: up to
    :data:`IDLE_CONNECTIONS` idle connections kept (botocore's ``max_pool_connections``
    default), a kept connection the server has closed is replaced before use, not
    resent (``urllib3.util.wait.wait_for_read``, as urllib3 checks), ``TCP_NODELAY``,
    and the same botocore errors: ``EndpointConnectionError`` (connection refused),
    ``ConnectTimeoutError``/``ReadTimeoutError``, ``ConnectionClosedError`` (the server
    closed or reset the connection mid-request), ``HTTPClientError`` (anything else).
    The body is read whole (a loopback Lambda answer is at most 6 MB). About a fifth
    less CPU per Lambda call than urllib3 through botocore (``bench/bench_engine.py``).
    Thread-safe: a connection serves one request at a time.
    """

    IDLE_CONNECTIONS = 10

    def __init__(self, connect_timeout: float, read_timeout: float):
        self._connect_timeout = connect_timeout
        self._read_timeout = read_timeout
        self._idle: list[_NoDelayConnection] = []
        self._lock = threading.Lock()

    def _take(self, host: str, port: int) -> _NoDelayConnection:
        from urllib3.util.wait import wait_for_read

        with self._lock:
            for index in range(len(self._idle) - 1, -1, -1):
                connection = self._idle[index]
                if (connection.host, connection.port) != (host, port):
                    continue
                del self._idle[index]
                if connection.sock is not None and not wait_for_read(connection.sock, timeout=0.0):
                    return connection
                connection.close()  # the server closed it (or sent what nobody asked for)
        return _NoDelayConnection(host, port, timeout=self._connect_timeout)

    def _keep(self, connection: _NoDelayConnection) -> None:
        with self._lock:
            if len(self._idle) < self.IDLE_CONNECTIONS:
                self._idle.append(connection)
                return
        connection.close()

    def close(self) -> None:
        """Close the idle connections (botocore calls this from ``client.close()``)."""
        with self._lock:
            idle, self._idle = self._idle, []
        for connection in idle:
            connection.close()

    def send(self, request: Any) -> Any:
        """Send botocore's prepared ``request``; returns an ``AWSResponse`` (errors above)."""
        from urllib.parse import urlsplit

        from botocore.awsrequest import AWSResponse
        from botocore.exceptions import (
            ConnectionClosedError,
            ConnectTimeoutError,
            EndpointConnectionError,
            HTTPClientError,
            ReadTimeoutError,
        )

        url = urlsplit(request.url)
        connection = self._take(url.hostname or "127.0.0.1", url.port or 80)
        connected = connection.sock is not None
        target = url.path + (f"?{url.query}" if url.query else "")
        try:
            if not connected:
                connection.connect()
                connected = True
            connection.sock.settimeout(self._read_timeout)
            connection.request(request.method, target or "/", body=request.body, headers=dict(request.headers.items()))
            response = connection.getresponse()
            body = response.read()
        except BaseException as exc:
            connection.close()
            if not isinstance(exc, Exception):
                raise
            if isinstance(exc, (ConnectionRefusedError, socket.gaierror)):
                raise EndpointConnectionError(endpoint_url=request.url, error=exc) from exc
            if isinstance(exc, TimeoutError):
                error = ReadTimeoutError if connected else ConnectTimeoutError
                raise error(endpoint_url=request.url, error=exc) from exc
            if isinstance(exc, (ConnectionError, http.client.HTTPException)):
                raise ConnectionClosedError(endpoint_url=request.url) from exc
            raise HTTPClientError(error=exc) from exc
        if response.will_close:
            connection.close()
        else:
            self._keep(connection)
        return AWSResponse(request.url, response.status, dict(response.getheaders()), _Body(body))


def _loopback_client(moto_client: Any, stubber: Any) -> Any:
    """moto's client for a service answered by one of Relay's loopback servers, made
    lighter: unsigned (the servers check no signature), with a fixed User-Agent
    (botocore otherwise builds it twice per call), without moto's stubber (no moto
    backend answers there, and it matches the URL against every moto service's
    patterns), and sending through a :class:`LoopbackTransport`. Together about half a
    Lambda call's client CPU, measured with ``bench/bench_engine.py``. Only while moto
    intercepts boto calls (``mock_aws``, as the local runtime runs it); the endpoint
    comes from ``AWS_ENDPOINT_URL_<SERVICE>``, as for moto's client then; its other
    settings (no retries, timeouts, no parameter validation) are moto's.
    """
    import boto3
    from botocore import UNSIGNED
    from botocore.config import Config

    config = moto_client.meta.config.merge(Config(signature_version=UNSIGNED, user_agent="relay-local-engine"))
    client = boto3.client(moto_client.meta.service_model.service_name, region_name=moto_client.meta.region_name, config=config)
    client.meta.events.unregister("before-send", stubber)
    endpoint = client._endpoint  # botocore keeps the endpoint private; its http_session is the hook
    endpoint.http_session.close()
    endpoint.http_session = LoopbackTransport(config.connect_timeout, config.read_timeout)
    return client


def _build_client_cache(original_client: Any, *importers: Any) -> tuple[Any, ...]:
    """A boto3 client per service, Region, that service's endpoint variable
    (``AWS_ENDPOINT_URL_<SERVICE>``, read when the client is made) and stubber state,
    made under a lock (boto3 sessions are not thread-safe; its clients are)."""
    from moto.stepfunctions.parser.asl.utils import boto_client as boto_client_mod

    def boto_client_for(region: str, service: str, state_credentials: Any = None) -> Any:
        # moto's own function ignores state_credentials (every client uses fixed fake keys)
        endpoint = os.environ.get("AWS_ENDPOINT_URL_" + service.upper().replace("-", "_"))
        key = (region, service, endpoint, boto_client_mod.botocore_stubber.enabled)
        with _client_lock:
            client = _client_cache.get(key)
            if client is None:
                client = original_client(region, service)
                if key[3] and endpoint is not None and endpoint.startswith(_LOOPBACK_ENDPOINTS):
                    client = _loopback_client(client, boto_client_mod.botocore_stubber)
                _client_cache[key] = client
        return client

    return (boto_client_for,) * (1 + len(importers))



PATCHES: tuple[Patch, ...] = (
    Patch(
        name="client-cache",
        corrects="moto makes a new boto3 client for every Task (a quarter of a no-op workflow's time).",
        targets=tuple(Target(module, "boto_client_for") for module in _BOTO_CLIENT_MODULES),
        uses=(Target(_P + "asl.utils.boto_client", "botocore_stubber"),),
        check=_one_boto_client_for,
        build=_build_client_cache,
    ),
)
