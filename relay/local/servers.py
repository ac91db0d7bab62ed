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

All bind to 127.0.0.1 only and use a large listen backlog: moto's clients do not retry.
"""

from __future__ import annotations

import base64
import contextlib
import importlib.util
import json
import re
import socket
import threading
import time
import traceback
import urllib.error
import urllib.request
import uuid
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType
from typing import Any, Self
from urllib.parse import parse_qsl, unquote, urlsplit

#: Listen backlog for every local server.
BACKLOG = 1024
#: Where the Lambda handlers live.
FUNCTIONS_DIR = Path(__file__).resolve().parents[2] / "functions"


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = BACKLOG
    allow_reuse_address = True

    def get_request(self) -> tuple[socket.socket, Any]:
        # No Nagle delay on loopback: a small answer on a kept-alive connection must not
        # wait for the peer's delayed ACK (~40 ms per call, measured with bench/bench_engine.py).
        connection, address = super().get_request()
        connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return connection, address


#: Largest request body a local server reads, in bytes: API Gateway's payload quota
#: (10 MB, "Amazon API Gateway quotas"); larger bodies are refused with 413.
MAX_BODY_BYTES = 10 * 1024 * 1024
#: Seconds a client may take to send the body it announced (Content-Length or chunks)
#: before the answer is 408 and the connection closes. Idle keep-alive waits are not limited.
BODY_TIMEOUT_SECONDS = 30.0
#: An HTTP method is a token (RFC 9110 §9.1, §5.6.2).
_METHOD_RE = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]{1,32}")
_CHUNK_SIZE_RE = re.compile(rb"[0-9A-Fa-f]{1,16}")
_CONTENT_LENGTH_RE = re.compile(r"[0-9]{1,19}")
#: Headers the server writes itself; a handler's own values for them are ignored.
_FRAMING_HEADERS = {"content-length", "transfer-encoding", "connection"}


class _Refused(Exception):
    """A request the server answers itself, without calling ``handle``, then closes."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


class _LocalHttp:
    """A threaded stdlib HTTP/1.1 server on 127.0.0.1 running ``handle(method, path, headers, body)``.

    HTTP parsing is strict and every request gets exactly one complete answer, written
    with one ``send``:

    - every method that is an RFC 9110 token reaches ``handle`` (which answers 404/405
      for methods a route does not have); any other request line is 400;
    - the body is framed by ``Content-Length`` (one decimal value; repeated identical
      values are allowed, RFC 9110 §8.6) or ``Transfer-Encoding: chunked`` (decoded
      here; ``handle`` sees the body and its ``Content-Length``, as API Gateway
      passes it). A malformed or conflicting length is 400 (both headers together
      too: RFC 9112 §6.1), another transfer coding 411, a body over
      :data:`MAX_BODY_BYTES` 413, a body that stops short 400 and one that stalls
      :data:`BODY_TIMEOUT_SECONDS` 408; after any of these the connection closes;
    - errors the server answers itself are JSON ``{"message": …}``; an answer to
      ``HEAD`` has no body.
    """

    max_body_bytes = MAX_BODY_BYTES
    body_timeout_seconds = BODY_TIMEOUT_SECONDS

    def __init__(self, port: int = 0):
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def handle_one_request(self) -> None:
                # The stdlib dispatches to do_<METHOD> and answers 501 HTML for any other
                # method; here every method goes to owner.handle.
                self.command = ""
                try:
                    self.raw_requestline = self.rfile.readline(65537)
                except (TimeoutError, ConnectionError):
                    self.close_connection = True
                    return
                if not self.raw_requestline:
                    self.close_connection = True
                    return
                if len(self.raw_requestline) > 65536:
                    self.requestline, self.request_version = "", "HTTP/1.1"
                    self.send_error(414, "the request line is longer than 65,536 bytes")
                    return
                if not self.parse_request():  # it answered through send_error
                    return
                if self.request_version == "HTTP/0.9":
                    self.send_error(400, "HTTP/0.9 requests are not served; send HTTP/1.1")
                    return
                if not _METHOD_RE.fullmatch(self.command):
                    self.send_error(400, "the method is not an HTTP token (RFC 9110 §9.1)")
                    return
                self._serve()

            def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
                """Errors found while parsing the request: JSON, then close (the stdlib sends HTML)."""
                self.close_connection = True
                text = message or HTTPStatus(code).phrase
                self._answer(code, {"Content-Type": "application/json"}, json.dumps({"message": f"request: {text}"}).encode())
                self._linger()

            def _linger(self) -> None:
                """Before closing on a refused request, stop sending and read what the client
                still sends (briefly): closing with unread input makes the kernel send RST,
                which can destroy the answer before the client reads it (RFC 9112 §9.6)."""
                try:
                    self.connection.shutdown(socket.SHUT_WR)
                    self.connection.settimeout(1.0)
                    for _ in range(256):
                        if not self.connection.recv(65536):
                            break
                except OSError:
                    pass

            def _read_exact(self, size: int) -> bytes:
                data = self.rfile.read(size)
                if len(data) != size:
                    raise _Refused(400, f"body: the connection ended after {len(data)} of {size} announced bytes")
                return data

            def _read_chunked(self) -> bytes:
                """RFC 9112 §7.1: chunk-size [; ext] CRLF data CRLF … 0 CRLF [trailers] CRLF."""
                chunks: list[bytes] = []
                total = 0
                while True:
                    line = self.rfile.readline(1024)
                    if not line.endswith(b"\n"):
                        raise _Refused(400, "Transfer-Encoding: chunked body ended or has a chunk-size line over 1,024 bytes")
                    size_text = line.split(b";", 1)[0].strip()
                    if not _CHUNK_SIZE_RE.fullmatch(size_text):
                        raise _Refused(400, "Transfer-Encoding: a chunk size must be 1-16 hexadecimal digits")
                    size = int(size_text, 16)
                    if size == 0:
                        break
                    total += size
                    if total > owner.max_body_bytes:
                        raise _Refused(413, f"body: larger than {owner.max_body_bytes} bytes")
                    chunks.append(self._read_exact(size))
                    if self._read_exact(2) != b"\r\n":
                        raise _Refused(400, "Transfer-Encoding: a chunk's data must end with CRLF")
                for _ in range(100):  # trailer section, ignored
                    line = self.rfile.readline(8192)
                    if line in (b"\r\n", b"\n"):
                        return b"".join(chunks)
                    if not line.endswith(b"\n"):
                        raise _Refused(400, "Transfer-Encoding: chunked body ended before its final CRLF")
                raise _Refused(400, "Transfer-Encoding: more than 100 trailer fields")

            def _read_body(self) -> bytes:
                codings = [c.strip().lower() for v in self.headers.get_all("Transfer-Encoding") or [] for c in v.split(",")]
                lengths = {v.strip() for v in ",".join(self.headers.get_all("Content-Length") or []).split(",")} - {""}
                if self.headers.get_all("Content-Length") and not lengths:
                    raise _Refused(400, "Content-Length: must be a decimal number of bytes")
                if codings:
                    if lengths:
                        raise _Refused(400, "Content-Length and Transfer-Encoding: send one of them, not both (RFC 9112 §6.1)")
                    if codings != ["chunked"]:
                        raise _Refused(411, "Transfer-Encoding: only chunked is read; send Content-Length instead")
                    return self._read_chunked()
                if not lengths:
                    return b""
                if len(lengths) != 1 or not _CONTENT_LENGTH_RE.fullmatch(next(iter(lengths))):
                    raise _Refused(400, "Content-Length: must be one decimal number of bytes")
                size = int(next(iter(lengths)))
                if size > owner.max_body_bytes:
                    raise _Refused(413, f"body: larger than {owner.max_body_bytes} bytes")
                return self._read_exact(size) if size else b""

            def _serve(self) -> None:
                try:
                    self.connection.settimeout(owner.body_timeout_seconds)
                    try:
                        body = self._read_body()
                    finally:
                        self.connection.settimeout(None)
                except (_Refused, TimeoutError, ConnectionError) as exc:
                    self.close_connection = True
                    status, message = (exc.status, str(exc)) if isinstance(exc, _Refused) else (408, "body: not received in time")
                    self._answer(status, {"Content-Type": "application/json"}, json.dumps({"message": message}).encode())
                    self._linger()
                    return
                headers = {k: v for k, v in self.headers.items() if k.lower() not in {"transfer-encoding", "content-length"}}
                if body or self.headers.get("Content-Length") is not None or self.headers.get("Transfer-Encoding"):
                    headers["Content-Length"] = str(len(body))
                try:
                    status, out, payload = owner.handle(self.command, self.path, headers, body)
                except Exception:  # the server must answer, never hang the caller
                    status, out, payload = 500, {"Content-Type": "text/plain"}, traceback.format_exc().encode()
                self._answer(status, out, payload)

            def _answer(self, status: int, headers: dict[str, str], payload: bytes) -> None:
                """Status line, headers and body in one write; no body for HEAD, 204 and 304."""
                try:
                    reason = HTTPStatus(status).phrase
                except ValueError:
                    reason = ""
                lines = [f"HTTP/1.1 {status} {reason}", f"Server: {self.version_string()}", f"Date: {self.date_time_string()}"]
                for key, value in headers.items():
                    if key.lower() not in _FRAMING_HEADERS:
                        lines.append(f"{key}: {value}")
                # Even when the request line did not parse, a client that sent HEAD reads no body.
                method = self.command or (getattr(self, "raw_requestline", b"").split(b" ", 1)[0].decode("latin-1"))
                bodiless = method == "HEAD" or status in (204, 304)
                if status not in (204, 304):
                    lines.append(f"Content-Length: {len(payload)}")
                if self.close_connection:
                    lines.append("Connection: close")
                try:
                    if any(c in line for line in lines for c in "\r\n\0"):
                        raise ValueError("a header holds CR, LF or NUL")
                    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
                except (UnicodeEncodeError, ValueError) as exc:  # a handler's header we cannot send
                    self.close_connection = True
                    payload = json.dumps({"message": f"internal error: bad response header ({exc})"}).encode()
                    lines = [f"HTTP/1.1 500 {HTTPStatus(500).phrase}", "Content-Type: application/json",
                             f"Content-Length: {len(payload)}", "Connection: close"]
                    head, bodiless = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"), method == "HEAD"
                try:
                    self.wfile.write(head if bodiless else head + payload)
                except (ConnectionError, TimeoutError):
                    self.close_connection = True

            def log_message(self, format: str, *args: Any) -> None:  # quiet: the CLI shows progress
                return

        self._httpd = _Server(("127.0.0.1", port), Handler)
        self._thread = threading.Thread(target=self._httpd.serve_forever, name=type(self).__name__, daemon=True)

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Self:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def handle(self, method: str, path: str, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, str], bytes]:
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
        super().__init__(port)
        self.account_id = account_id
        self.region = region
        self.functions_dir = functions_dir
        self._environments: dict[str, Environments] = {}
        self._import_lock = threading.Lock()
        self._faults = _Faults()
        self.invocations: deque[tuple[str, float]] = deque(maxlen=10_000)

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

    def handle(self, method: str, path: str, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, str], bytes]:
        parts = urlsplit(path).path.split("/")
        if method != "POST" or len(parts) != 5 or parts[1] != "2015-03-31" or parts[4] != "invocations":
            return 404, {"Content-Type": "application/json"}, b'{"message":"unknown route"}'
        name = unquote(parts[3])
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
        super().__init__(port)
        self._runtimes: dict[str, str] = {}
        self._faults = _Faults()
        self.calls: list[dict[str, Any]] = []

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

    def handle(self, method: str, path: str, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, str], bytes]:
        parts = urlsplit(path).path.split("/")
        if method != "POST" or len(parts) != 4 or parts[1] != "runtimes" or parts[3] != "invocations":
            return self._error(404, "ResourceNotFoundException", "unknown route")
        arn = unquote(parts[2])
        session = next((v for k, v in headers.items() if k.lower() == self.SESSION_HEADER.lower()), "")
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
        super().__init__(port)
        self.routes = [(prefix, Environments(folder)) for prefix, folder in routes]
        self.stage = stage

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
