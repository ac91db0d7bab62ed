"""Agent configuration, read from the environment when asked for (never at import).

Environment variables:

``RELAY_MODEL_PROVIDER``
    ``offline`` (default when unset), ``bedrock``, ``anthropic``, ``openai``, ``ollama`` or
    ``litellm``. Deployed stacks set ``bedrock`` explicitly.
``RELAY_MODEL_ID``
    The provider's model id; unset means the provider default in
    :data:`relay_agents.model_factory.DEFAULT_MODEL_IDS`.
``RELAY_CORPUS``
    What ``search_documents`` searches: a local folder path or ``s3://bucket/prefix``.
    Unset means the AWS service documentation shipped inside botocore.
``RELAY_KNOWLEDGE_BASE_ID``
    A Bedrock Knowledge Base id; when set, retrieval goes to the Knowledge Base and
    ``RELAY_CORPUS`` is ignored.
``RELAY_CACHE_DIR``
    Where search indexes are cached (default ``~/.cache/relay``).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, ValidationError
from relay_core.errors import InvalidInput

Provider = Literal["offline", "bedrock", "anthropic", "openai", "ollama", "litellm"]
PROVIDERS: tuple[str, ...] = ("offline", "bedrock", "anthropic", "openai", "ollama", "litellm")

#: Bedrock Knowledge Base ids are 10 upper-case letters or digits (Bedrock API reference,
#: ``Retrieve``: ``knowledgeBaseId`` pattern ``[0-9a-zA-Z]{10}``).
_KB_ID_RE = re.compile(r"^[0-9a-zA-Z]{10}$")
_S3_URI_RE = re.compile(r"^s3://([a-z0-9][a-z0-9.\-]{1,61}[a-z0-9])(?:/(.*))?$")


class AgentSettings(BaseModel):
    """The agents' configuration (frozen, hashable).

    Attributes:
        model_provider: one of :data:`PROVIDERS`.
        model_id: provider model id, or ``None`` for the provider default.
        corpus: a folder path or ``s3://bucket/prefix``; ``None`` = botocore documentation.
        knowledge_base_id: Bedrock Knowledge Base id, or ``None``.
        cache_dir: index cache directory.
        guardrail_id, guardrail_version: an Amazon Bedrock guardrail applied to every
            Bedrock model call (``RELAY_GUARDRAIL_ID``/``RELAY_GUARDRAIL_VERSION``; both or neither).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    model_provider: Provider = "offline"
    model_id: str | None = None
    corpus: str | None = None
    knowledge_base_id: str | None = None
    cache_dir: Path = Path("~/.cache/relay").expanduser()
    guardrail_id: str | None = None
    guardrail_version: str | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> AgentSettings:
        """Read the settings from ``env`` (default ``os.environ``).

        Raises:
            InvalidInput: a variable holds an invalid value; the message names the variable.
        """
        env = os.environ if env is None else env

        def get(name: str) -> str | None:
            value = env.get(name, "").strip()
            return value or None

        provider = (get("RELAY_MODEL_PROVIDER") or "offline").lower()
        if provider not in PROVIDERS:
            raise InvalidInput(f"RELAY_MODEL_PROVIDER: {provider!r} is not one of {', '.join(PROVIDERS)}")
        corpus = get("RELAY_CORPUS")
        if corpus and corpus.startswith("s3://") and not _S3_URI_RE.match(corpus):
            raise InvalidInput(f"RELAY_CORPUS: {corpus!r} is not a valid s3://bucket/prefix URI")
        kb_id = get("RELAY_KNOWLEDGE_BASE_ID")
        if kb_id and not _KB_ID_RE.match(kb_id):
            raise InvalidInput(
                f"RELAY_KNOWLEDGE_BASE_ID: {kb_id!r} is not a Knowledge Base id (10 letters or digits)"
            )
        cache_dir = Path(get("RELAY_CACHE_DIR") or "~/.cache/relay").expanduser()
        guardrail_id, guardrail_version = get("RELAY_GUARDRAIL_ID"), get("RELAY_GUARDRAIL_VERSION")
        if bool(guardrail_id) != bool(guardrail_version):
            raise InvalidInput("RELAY_GUARDRAIL_ID/RELAY_GUARDRAIL_VERSION: set both or neither")
        try:
            return cls(
                model_provider=provider,  # type: ignore[arg-type]
                model_id=get("RELAY_MODEL_ID"),
                corpus=corpus,
                knowledge_base_id=kb_id,
                cache_dir=cache_dir,
                guardrail_id=guardrail_id,
                guardrail_version=guardrail_version,
            )
        except ValidationError as exc:  # pragma: no cover - every field is checked above
            raise InvalidInput(f"agent settings: {exc}") from exc


def parse_s3_uri(uri: str) -> tuple[str, str]:
    """Split ``s3://bucket/prefix`` into ``(bucket, prefix)``; the prefix may be empty.

    Raises:
        InvalidInput: not an S3 URI.
    """
    match = _S3_URI_RE.match(uri)
    if not match:
        raise InvalidInput(f"RELAY_CORPUS: {uri!r} is not a valid s3://bucket/prefix URI")
    return match.group(1), match.group(2) or ""
