"""The artifact store on S3 (port :class:`relay_core.ports.ArtifactStore`): large text
in S3, small :class:`~relay_core.models.ArtifactRef` values in state data.

Keys are laid out per workflow: :func:`relay_core.contracts.artifact_key`. Writes are
single ``PutObject`` calls (atomic per object); reads verify the SHA-256 recorded
in the reference so a reference can never silently point at other bytes.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache
from typing import Any
from urllib.parse import quote

import boto3
from botocore.exceptions import ClientError

from ..errors import ArtifactIntegrityError, ArtifactNotFound
from ..models import ArtifactRef


class S3ArtifactStore:
    """Reads and writes workflow artifacts in one S3 bucket.

    Args:
        bucket: the artifact bucket name.
        client: an S3 client (defaults to ``boto3.client("s3")``).
        base_url: where links point instead of S3 presigned URLs (``{base_url}/{key}``):
            the local runtime's API server, whose S3 is in-process. ``None`` when deployed.
    """

    def __init__(self, bucket: str, client: Any | None = None, base_url: str | None = None):
        self.bucket = bucket
        self._s3 = client or boto3.client("s3")
        self._base_url = base_url.rstrip("/") if base_url else None

    def put_text(self, key: str, text: str, content_type: str = "text/markdown; charset=utf-8") -> ArtifactRef:
        """Write ``text`` (UTF-8) at ``key`` and return its reference (size in bytes, sha256)."""
        body = text.encode("utf-8")
        digest = hashlib.sha256(body).hexdigest()
        self._s3.put_object(
            Bucket=self.bucket,
            Key=key,
            Body=body,
            ContentType=content_type,
            Metadata={"sha256": digest},
        )
        return ArtifactRef(bucket=self.bucket, key=key, bytes=len(body), sha256=digest)

    def get_text(self, ref: ArtifactRef) -> str:
        """Read the object ``ref`` points at.

        Raises:
            ArtifactNotFound: no such object.
            ArtifactIntegrityError: the bytes' sha256 differs from ``ref.sha256``.
        """
        try:
            body = self._s3.get_object(Bucket=ref.bucket, Key=ref.key)["Body"].read()
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in {"NoSuchKey", "404", "NoSuchBucket"}:
                raise ArtifactNotFound(f"artifact s3://{ref.bucket}/{ref.key} does not exist") from exc
            raise
        digest = hashlib.sha256(body).hexdigest()
        if digest != ref.sha256:
            raise ArtifactIntegrityError(
                f"artifact s3://{ref.bucket}/{ref.key}: sha256 {digest} does not match reference {ref.sha256}"
            )
        return body.decode("utf-8")

    def presigned_url(self, ref: ArtifactRef, expires_in: int = 7 * 24 * 3600) -> str:
        """A GET URL for ``ref``, valid ``expires_in`` seconds (SigV4 presigned URLs last at
        most 7 days); with a ``base_url``, ``{base_url}/{key}`` (served by the local API)."""
        if self._base_url is not None:
            return f"{self._base_url}/{quote(ref.key)}"
        return str(
            self._s3.generate_presigned_url(
                "get_object", Params={"Bucket": ref.bucket, "Key": ref.key}, ExpiresIn=expires_in
            )
        )


@lru_cache(maxsize=8)
def artifact_store(bucket: str, base_url: str | None = None) -> S3ArtifactStore:
    """The cached store for ``bucket`` (one S3 client per warm Lambda environment);
    ``base_url``: :class:`S3ArtifactStore`'s (``StoreSettings.artifact_base_url``)."""
    return S3ArtifactStore(bucket, base_url=base_url)
