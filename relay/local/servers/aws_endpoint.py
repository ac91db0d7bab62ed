"""The in-memory AWS over HTTP: one loopback endpoint through which the local Lambda
workers (separate processes) reach the runtime's moto backends, as deployed handlers reach
AWS. The worker's ``AWS_ENDPOINT_URL_<SERVICE>`` variables point here.

A request is signed by botocore as for AWS: the service and Region are read from its
SigV4 credential scope (``Authorization`` header, or ``X-Amz-Credential`` of a presigned
URL), the request is given the AWS URL of that service (S3 path-style), and moto's own
request dispatch (the one ``mock_aws`` uses for boto3 calls in this process) answers it,
so the backends, and the durable store's hooks on them, see every write as if the
runtime had made it.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qs, urlsplit

from relay.local.servers.http_server import _LocalHttp

#: SigV4 credential scope: ``<key>/<date>/<region>/<service>/aws4_request``.
_SCOPE = re.compile(r"Credential=[^/,\s]+/\d{8}/([a-z0-9-]+)/([a-z0-9-]+)/aws4_request")
#: The AWS services the worker endpoint variables name (service id as in
#: ``AWS_ENDPOINT_URL_<ID>``, botocore's "Service-specific endpoints" table).
SERVICE_IDS = ("S3", "DYNAMODB", "SFN", "SNS", "SECRETS_MANAGER", "STS")


def _scope(headers: dict[str, str], path: str) -> tuple[str, str] | None:
    auth = next((v for k, v in headers.items() if k.lower() == "authorization"), "")
    match = _SCOPE.search(auth)
    if match:
        return match.group(1), match.group(2)
    credential = parse_qs(urlsplit(path).query).get("X-Amz-Credential", [""])[0]
    parts = credential.split("/")
    if len(parts) == 5:
        return parts[2], parts[3]
    return None


def aws_url(service: str, region: str, path: str) -> str:
    """The AWS URL a request for ``service`` in ``region`` goes to (S3: path-style, global host)."""
    if service == "s3":
        return f"https://s3.amazonaws.com{path}"
    return f"https://{service}.{region}.amazonaws.com{path}"


class AwsEndpoint(_LocalHttp):
    """Every AWS API call of the local workers, answered by the runtime's moto backends."""

    def handle(self, method: str, path: str, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, str], bytes]:
        from botocore.awsrequest import AWSPreparedRequest
        from botocore.compat import HTTPHeaders
        from moto.core.models import botocore_stubber

        scope = _scope(headers, path)
        if scope is None:
            return 403, {"Content-Type": "application/json"}, b'{"message":"request is not signed with SigV4"}'
        region, service = scope
        url = aws_url(service, region, path)
        request_headers = HTTPHeaders()
        for name, value in headers.items():
            if name.lower() != "host":
                request_headers[name] = value
        request_headers["Host"] = urlsplit(url).netloc
        request = AWSPreparedRequest(method=method, url=url, headers=request_headers, body=body, stream_output=False)
        answer = botocore_stubber.process_request(request)
        if answer is None:
            return 404, {"Content-Type": "application/json"}, b'{"message":"no local service answers this request"}'
        status, response_headers, response_body = answer
        return int(status), {str(k): str(v) for k, v in dict(response_headers).items()}, _bytes(response_body)


def _bytes(body: Any) -> bytes:
    if body is None:
        return b""
    if isinstance(body, bytes):
        return body
    if isinstance(body, str):
        return body.encode("utf-8")
    return b"".join(part if isinstance(part, bytes) else str(part).encode("utf-8") for part in body)
