"""The Step Functions API of the local runtime, over HTTP: ``POST {console}/sfn``.

The AWS CLI, boto3 and other tools talk to it unchanged with
``--endpoint-url http://127.0.0.1:PORT/sfn`` (any credentials, a region set): the
request (AWS JSON 1.0, ``X-Amz-Target: AWSStepFunctions.<Action>``) is handed to moto's
own Step Functions response layer (``StepFunctionResponse.dispatch`` on a
``moto.core.request.Request``, the path moto's in-process mock takes for boto3 calls),
so it reaches the same backend the local runtime's engine runs in — every action the
engine implements, including Relay's RedriveExecution (:mod:`relay.local.moto_patches`).

Two differences from the service, both for safety on a developer machine:

- **Task tokens are redacted** in GetExecutionHistory answers
  (:func:`relay_core.workflows_api.redact_event`): approvals are decided only through
  the signed email link. Every other answer is moto's, byte for byte.
- **No browser may call it**: a request without ``X-Amz-Target`` (a plain form post)
  or with an ``Origin`` header (only browsers send one; SDKs and the CLI never do) is
  refused with 403, so a web page cannot start or stop executions through it.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

#: The ``X-Amz-Target`` prefix of the Step Functions JSON protocol (botocore's service model).
TARGET_PREFIX = "AWSStepFunctions."
#: Largest request body accepted, bytes: Step Functions' maximum request size (1 MB, "Step Functions service quotas").
MAX_REQUEST_BYTES = 1024 * 1024
_HOP_HEADERS = {"status", "content-length", "transfer-encoding", "connection"}


def _refuse(status: int, code: str, message: str) -> Response:
    return JSONResponse({"__type": code, "message": message}, status_code=status, media_type="application/x-amz-json-1.0")


def dispatch(method: str, url: str, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, str], bytes]:
    """Run one Step Functions API request through moto's response layer; returns
    ``(status, headers, body)`` as moto answers it."""
    from moto.core.request import Request as MotoRequest
    from moto.stepfunctions.responses import StepFunctionResponse

    request = MotoRequest.from_primitives(method, url, headers, body)
    status, answer_headers, payload = StepFunctionResponse.dispatch(request)
    out = {str(k): str(v) for k, v in dict(answer_headers).items() if str(k).lower() not in _HOP_HEADERS}
    data = payload if isinstance(payload, bytes) else str(payload or "").encode()
    return int(status), out, data


def redact_history_answer(payload: bytes) -> bytes:
    """A GetExecutionHistory answer with every task token replaced by ``"<redacted>"``
    (an answer that is not a JSON object with ``events`` is returned unchanged)."""
    from relay_core.workflows_api import redact_event

    try:
        body = json.loads(payload)
    except ValueError:
        return payload
    if not isinstance(body, dict) or not isinstance(body.get("events"), list):
        return payload
    body["events"] = [redact_event(e) if isinstance(e, dict) else e for e in body["events"]]
    return json.dumps(body, separators=(",", ":")).encode()


async def sfn_endpoint(request: Request) -> Response:
    """The Starlette endpoint (POST only; see the module docstring)."""
    target = request.headers.get("x-amz-target", "")
    if request.method != "POST":
        return _refuse(405, "UnknownOperationException", "the Step Functions API takes POST requests (AWS JSON 1.0)")
    if not target.startswith(TARGET_PREFIX):
        return _refuse(403, "AccessDeniedException", f"X-Amz-Target: required, {TARGET_PREFIX}<Action> (AWS JSON 1.0)")
    if "origin" in request.headers:
        return _refuse(403, "AccessDeniedException", "requests from web pages are refused: use the AWS CLI or an SDK")
    body = await request.body()
    if len(body) > MAX_REQUEST_BYTES:
        return _refuse(413, "ValidationException", f"request body: at most {MAX_REQUEST_BYTES} bytes")
    headers: dict[str, Any] = {k: v for k, v in request.headers.items()}
    status, answer_headers, payload = await run_in_threadpool(dispatch, request.method, str(request.url), headers, body)
    if target == TARGET_PREFIX + "GetExecutionHistory" and status == 200:
        payload = redact_history_answer(payload)
    return Response(payload, status_code=status, headers=answer_headers)
