"""The Lambda Invoke API (``POST /2015-03-31/functions/{FunctionName}/invocations``)
running the real handlers from ``functions/``, each function in its own execution
environments (worker processes, :mod:`relay.local.servers.environments`).

A handler exception answers 200 with ``X-Amz-Function-Error: Unhandled`` and
``{errorMessage, errorType, stackTrace}``, as Lambda does (Lambda API reference, Invoke),
so Step Functions sees the exception class name as the error; so do a timeout
(``Sandbox.Timedout``) and a worker that dies (``Runtime.ExitError``). With
``X-Amz-Log-Type: Tail`` the answer carries the invocation's ``REPORT`` line, base64, in
``X-Amz-Log-Result``, as Lambda returns the end of its log.
"""

from __future__ import annotations

import base64
import json
import re
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from relay.local.servers.environments import Report, Runner
from relay.local.servers.faults import Fault, _Faults
from relay.local.servers.http_server import _json_answer, _LocalHttp

#: The Invoke API's path, as Starlette's ``{name}`` path parameter matches it (one segment).
_INVOKE_PATH = re.compile(r"/2015-03-31/functions/([^/]+)/invocations")


class LambdaServer(_LocalHttp):
    """The Lambda Invoke API over the local functions.

    Args:
        account_id, region: used to build the ARNs handed to the state machine.
        functions: each function's runner by name (a pool of worker processes,
            :class:`relay.local.servers.Environments`, or an in-process environment);
            more can be added with :meth:`add`.
    """

    def __init__(self, account_id: str, region: str, functions: Mapping[str, Runner] | None = None, port: int = 0):
        self.account_id = account_id
        self.region = region
        self._functions: dict[str, Runner] = dict(functions or {})
        self._lock = threading.Lock()
        self._faults = _Faults()
        self.invocations: deque[tuple[str, float]] = deque(maxlen=10_000)
        super().__init__(port)

    def add(self, name: str, runner: Runner) -> None:
        """Serve function ``name`` with ``runner`` (replacing one of that name)."""
        with self._lock:
            self._functions[name] = runner

    def inject(self, fault: Fault) -> None:
        """Make matching invocations fail as if the handler raised ``fault.error``."""
        self._faults.add(fault)

    def arn(self, name: str) -> str:
        return f"arn:aws:lambda:{self.region}:{self.account_id}:function:{name}"

    def environments(self, name: str) -> Runner:
        """The execution environments of function ``name``. Raises ``KeyError`` for an unknown function."""
        with self._lock:
            return self._functions[name]

    def functions(self) -> dict[str, Runner]:
        with self._lock:
            return dict(self._functions)

    def reports(self) -> list[Report]:
        """The REPORT figures of every function's recent invocations, oldest first per function."""
        return [report for runner in self.functions().values() for report in list(getattr(runner, "reports", ()))]

    def logs(self) -> list[str]:
        """The log lines of every function's recent invocations (one text per invocation)."""
        return [text for runner in self.functions().values() for text in list(getattr(runner, "logs", ()))]

    def stop(self, timeout: float = 10.0) -> None:
        """Stop serving, then stop every function's workers."""
        try:
            super().stop(timeout)
        finally:
            for runner in self.functions().values():
                runner.close()

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
        tail = request.headers.get("x-amz-log-type", "").lower() == "tail"
        return await self._run(self.invoke, name, body, tail)

    def invoke(self, name: str, body: bytes, tail: bool = False) -> tuple[int, dict[str, str], bytes]:
        """Invoke function ``name`` (a name or a function ARN) with the JSON event ``body``,
        as Lambda's Invoke API answers: ``(status, headers, payload)``."""
        if name.startswith("arn:"):
            name = name.split(":")[6]
        try:
            runner = self.environments(name)
        except KeyError:
            body_json = {"Type": "User", "Message": f"Function not found: {self.arn(name)}"}
            return 404, {"Content-Type": "application/json", "x-amzn-ErrorType": "ResourceNotFoundException"}, json.dumps(body_json).encode()
        request_id = str(uuid.uuid4())
        self.invocations.append((name, time.time()))
        response_headers = {
            "Content-Type": "application/json",
            "X-Amz-Executed-Version": "$LATEST",
            "x-amzn-RequestId": request_id,
        }
        fault = self._faults.take(name)
        if fault is not None:
            time.sleep(fault.delay_seconds)
            if fault.error:
                error = {"errorMessage": fault.message, "errorType": fault.error, "stackTrace": []}
                response_headers["X-Amz-Function-Error"] = "Unhandled"
                return 200, response_headers, json.dumps(error).encode()
        outcome = runner.invoke(body, request_id)
        if outcome.function_error:
            response_headers["X-Amz-Function-Error"] = outcome.function_error
        if tail:
            response_headers["X-Amz-Log-Result"] = base64.b64encode(outcome.tail().encode()).decode()
        return 200, response_headers, outcome.payload
