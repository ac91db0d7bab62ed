"""The AgentCore data plane's InvokeAgentRuntime (``POST /runtimes/{agentRuntimeArn}/invocations``),
forwarding to agent apps served on loopback with the
``X-Amzn-Bedrock-AgentCore-Runtime-Session-Id`` header. Agent answers of 429 become
``ThrottlingException``, 400/422 ``ValidationException``, others ``RuntimeClientError``.

The gateway answers as soon as the agent app does. For ``AskResearcher``'s callback
envelope ``[request, task token]`` the researcher app answers at once and calls Step
Functions back itself (``SendTaskHeartbeat``/``SendTaskSuccess``/``SendTaskFailure``,
:mod:`relay_agents.callbacks`) through the local engine; the gateway never sees the
result. :attr:`AgentCoreGateway.calls` records each call's request (the envelope's first
item), never its task token.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
import uuid
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from relay.local.servers.faults import Fault, _Faults
from relay.local.servers.http_server import _answer_of, _LocalHttp


class AgentCoreGateway(_LocalHttp):
    """InvokeAgentRuntime over HTTP, forwarding to agent apps registered by runtime ARN."""

    SESSION_HEADER = "X-Amzn-Bedrock-AgentCore-Runtime-Session-Id"

    def __init__(self, port: int = 0):
        self._runtimes: dict[str, str] = {}
        self._faults = _Faults()
        self.calls: list[dict[str, Any]] = []
        super().__init__(port)

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

    def _routes(self) -> list[BaseRoute]:
        return [Route("/runtimes/{arn:path}/invocations", self._invoke_request, methods=["POST"])]

    async def _unrouted(self, request: Request, exc: Exception) -> Response:
        return _answer_of(*self._error(404, "ResourceNotFoundException", "unknown route"))

    async def _invoke_request(self, request: Request) -> Response:
        body = await self._body_or_refusal(request)
        if isinstance(body, Response):
            return body
        session = request.headers.get(self.SESSION_HEADER, "")
        return await self._run(self.invoke, request.path_params["arn"], session, body)

    def invoke(self, arn: str, session: str, body: bytes) -> tuple[int, dict[str, str], bytes]:
        """InvokeAgentRuntime on ``arn`` with session id ``session`` and payload ``body``,
        forwarded to the registered agent app: ``(status, headers, payload)``."""
        if len(session) < 33:
            return self._error(400, "ValidationException", "runtimeSessionId must be at least 33 characters")
        if arn not in self._runtimes:
            return self._error(404, "ResourceNotFoundException", f"no agent runtime {arn}")
        try:
            payload = json.loads(body or b"null")
        except ValueError:
            payload = None
        callback = isinstance(payload, list) and len(payload) == 2 and isinstance(payload[1], str)
        request_payload = payload[0] if callback else payload
        self.calls.append({"arn": arn, "session": session, "payload": request_payload, "callback": callback})
        fault = self._faults.take(request_payload.get("question_id") if isinstance(request_payload, dict) else None)
        if fault is not None:
            time.sleep(fault.delay_seconds)
            if fault.error:
                return self._error(fault.status, fault.error, fault.message)
            if fault.lost:  # accepted, then the session died: no callback will ever come
                accepted = json.dumps({"status": "accepted"}).encode()
                return 200, {"Content-Type": "application/json", self.SESSION_HEADER: session}, accepted
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

