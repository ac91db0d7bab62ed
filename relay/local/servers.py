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
        # Responses go out in more than one write; on a kept-alive loopback connection
        # Nagle's algorithm then holds the last one until the peer's delayed ACK (~40 ms).
        connection, address = super().get_request()
        connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return connection, address


class _LocalHttp:
    """A threaded stdlib HTTP server on 127.0.0.1 running ``handle(method, path, headers, body)``."""

    def __init__(self, port: int = 0):
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                try:
                    status, headers, payload = owner.handle(self.command, self.path, dict(self.headers.items()), body)
                except Exception:  # the server must answer, never hang the caller
                    status, headers, payload = 500, {"Content-Type": "text/plain"}, traceback.format_exc().encode()
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _serve

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
