"""API Gateway (REST API, proxy integration) in front of the API handler modules: each
request becomes a proxy event (payload format 1.0), as API Gateway builds it, for the
handler of the first route prefix that matches.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from relay.local.servers.environments import FunctionConfig, InProcessEnvironment, Runner
from relay.local.servers.http_server import _LocalHttp


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
        routes: ``[(path_prefix, function)]``; the first prefix that matches wins. A
            function is its execution environments (:class:`relay.local.servers.Environments`,
            worker processes, as the local runtime serves them) or a folder, run in this
            process (:class:`InProcessEnvironment`: tests of the HTTP layer).
        stage: the stage name put in ``requestContext``.
        public_urls: addresses the API is also reached at (its ``Host`` is answered too).
    """

    def __init__(
        self, routes: list[tuple[str, Runner | Path]], port: int = 0, stage: str = "local", public_urls: Iterable[str] = ()
    ):
        self.routes: list[tuple[str, Runner]] = [
            (prefix, InProcessEnvironment(FunctionConfig(fn.name, fn, {})) if isinstance(fn, Path) else fn) for prefix, fn in routes
        ]
        self.stage = stage
        super().__init__(port, public_urls)

    def event(self, method: str, path: str, headers: dict[str, str], body: bytes) -> dict[str, Any]:
        """The API Gateway proxy event for one request (no IAM identity: local callers)."""
        return proxy_event(method, path, headers, body, stage=self.stage)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop serving, then stop the functions' workers."""
        try:
            super().stop(timeout)
        finally:
            for _, runner in self.routes:
                runner.close()

    def handle(self, method: str, path: str, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, str], bytes]:
        route_path = urlsplit(path).path
        runner = next((r for prefix, r in self.routes if route_path.startswith(prefix)), None)
        if runner is None:
            return 404, {"Content-Type": "application/json"}, b'{"message":"Not Found"}'
        outcome = runner.invoke(json.dumps(self.event(method, path, headers, body)).encode())
        if outcome.function_error:  # API Gateway answers a failed (or timed-out) integration so
            status = 504 if b"Sandbox.Timedout" in outcome.payload else 502
            message = "Endpoint request timed out" if status == 504 else "Internal server error"
            return status, {"Content-Type": "application/json"}, json.dumps({"message": message}).encode()
        result = json.loads(outcome.payload)
        out_headers = {k: str(v) for k, v in (result.get("headers") or {}).items()}
        for key, values in (result.get("multiValueHeaders") or {}).items():
            out_headers[key] = ", ".join(str(v) for v in values)
        payload = result.get("body") or ""
        data = base64.b64decode(payload) if result.get("isBase64Encoded") else str(payload).encode("utf-8")
        return int(result.get("statusCode", 200)), out_headers, data
