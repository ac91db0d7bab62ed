"""The local stand-in for S3 presigned GET URLs: artifacts served by the local API.

Deployed, a report link is an S3 presigned URL (:meth:`relay_core.adapters.artifact_store.S3ArtifactStore.presigned_url`).
Locally S3 is moto's, in this process, and a presigned URL would point at real S3 with a
fake key. So the local runtime sets ``RELAY_ARTIFACT_BASE_URL`` to ``{api}/artifacts``
(the artifact store then links ``{api}/artifacts/{key}``) and attaches :func:`artifact_app`
to its API server there. Only keys under ``workflows/`` are served, ``GET`` and ``HEAD``.

The local API is reached only from this machine (loopback, its own ``Host`` names
only) and already answers ``GET /workflows/{id}`` to any local caller, so the links are
not signed. Each answer is sandboxed (``Content-Security-Policy: sandbox``, ``nosniff``):
an artifact holds text from the research corpus and must never run as a page of the API's
origin, where the approval forms are.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

#: The key prefix of every artifact (:func:`relay_core.contracts.artifact_key`).
ARTIFACT_PREFIX = "workflows/"
_HEADERS = {
    "Content-Security-Policy": "sandbox",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
}


def artifact_app(s3: Any, bucket: str) -> Starlette:
    """The app answering ``GET /{key}`` with the object ``key`` of ``bucket`` (its bytes and
    Content-Type), 404 JSON ``{"message"}`` for a key that is not an artifact or does not
    exist.

    Args:
        s3: an S3 client (the runtime's, on moto's in-process S3).
        bucket: the artifact bucket.
    """

    async def artifact(request: Request) -> Response:
        key = request.path_params["key"]
        if not key.startswith(ARTIFACT_PREFIX) or ".." in key.split("/"):
            return JSONResponse({"message": "artifact not found"}, status_code=404, headers=_HEADERS)
        try:
            found = await run_in_threadpool(s3.get_object, Bucket=bucket, Key=key)
            body = await run_in_threadpool(found["Body"].read)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in {"NoSuchKey", "404"}:
                return JSONResponse({"message": "artifact not found"}, status_code=404, headers=_HEADERS)
            raise
        media_type = str(found.get("ContentType") or "application/octet-stream")
        return Response(body, media_type=media_type, headers=_HEADERS)

    return Starlette(routes=[Route("/{key:path}", artifact, methods=["GET", "HEAD"])])
