"""The Lambda Invoke API (``POST /2015-03-31/functions/{FunctionName}/invocations``)
running the real handlers from ``functions/``.

A handler exception answers 200 with ``X-Amz-Function-Error: Unhandled`` and
``{errorMessage, errorType, stackTrace}``, as Lambda does (Lambda API reference, Invoke),
so Step Functions sees the exception class name as the error.
"""

from __future__ import annotations

import json
import re
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from relay.local.servers.environments import FUNCTIONS_DIR, Environments, FakeLambdaContext
from relay.local.servers.faults import Fault, _Faults
from relay.local.servers.http_server import _json_answer, _LocalHttp

#: The Invoke API's path, as Starlette's ``{name}`` path parameter matches it (one segment).
_INVOKE_PATH = re.compile(r"/2015-03-31/functions/([^/]+)/invocations")


class LambdaServer(_LocalHttp):
    """The Lambda Invoke API over the folders in ``functions/``.

    Args:
        account_id, region: used to build the ARNs handed to the state machine.
        functions_dir: the folder holding one sub-folder per function.
    """

    def __init__(self, account_id: str, region: str, functions_dir: Path = FUNCTIONS_DIR, port: int = 0):
        self.account_id = account_id
        self.region = region
        self.functions_dir = functions_dir
        self._environments: dict[str, Environments] = {}
        self._import_lock = threading.Lock()
        self._faults = _Faults()
        self.invocations: deque[tuple[str, float]] = deque(maxlen=10_000)
        super().__init__(port)

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
        return await self._run(self.invoke, name, body)

    def invoke(self, name: str, body: bytes) -> tuple[int, dict[str, str], bytes]:
        """Invoke function ``name`` (a name or a function ARN) with the JSON event ``body``,
        as Lambda's Invoke API answers: ``(status, headers, payload)``."""
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

