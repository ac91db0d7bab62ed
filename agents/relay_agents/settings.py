"""Agent configuration, read from the environment when asked for (never at import).

Environment variables:

``RELAY_MODEL_PROVIDER``
    ``offline`` (default when unset), ``bedrock``, ``anthropic``, ``openai``, ``ollama``,
    ``litellm`` or ``llamacpp``. Deployed stacks set ``bedrock`` explicitly.
``RELAY_MODEL_ID``
    The provider's model id; unset means the provider default in
    :data:`relay_agents.model_factory.DEFAULT_MODEL_IDS` (for ``llamacpp``, and ``openai``
    with ``RELAY_MODEL_URL``, the first model the server lists).
``RELAY_MODEL_URL``
    The model server: for ``llamacpp`` a llama.cpp server's root (``http://127.0.0.1:8080``,
    required); for ``openai`` an OpenAI-compatible base URL ending in ``/v1`` (Ollama's
    ``http://127.0.0.1:11434/v1``, vLLM's, llama.cpp's), unset meaning OpenAI's API. Used by
    no other provider. :func:`relay_agents.providers.check_endpoint` checks it answers.
``RELAY_MODEL_API_KEY``
    The key sent to ``RELAY_MODEL_URL`` (``Authorization: Bearer``); ``openai`` falls back to
    ``OPENAI_API_KEY``. Unset: none is sent (a local server).
``RELAY_MODEL_MAX_TOKENS``
    The most tokens one model call may generate (``llamacpp`` and ``openai``; default
    :data:`DEFAULT_MAX_TOKENS`): a small model that repeats itself stops there.
``RELAY_MODEL_TIMEOUT``
    The most seconds one model call may take, waiting included (default
    :data:`DEFAULT_MODEL_TIMEOUT_SECONDS`); a call still going is cancelled and answered as
    ``ModelUnavailable`` (the state machine retries it).
``RELAY_CORPUS``
    What ``search_documents`` searches: a local folder path or ``s3://bucket/prefix``.
    Unset means the AWS service documentation shipped inside botocore.
``RELAY_KNOWLEDGE_BASE_ID``
    A Bedrock Knowledge Base id; when set, retrieval goes to the Knowledge Base and
    ``RELAY_CORPUS`` is ignored.
``RELAY_CACHE_DIR``
    Where search indexes are cached (default ``~/.cache/relay``).
``RELAY_GUARDRAIL_ID``, ``RELAY_GUARDRAIL_VERSION``
    An Amazon Bedrock guardrail applied to every Bedrock model call (both or neither).

Names are matched exactly; a value that is empty or only spaces counts as unset. A bad
value raises :class:`relay_core.errors.ConfigurationError` naming the variable and its rule.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_core import PydanticCustomError
from pydantic_settings import BaseSettings, SettingsConfigDict
from relay_core.errors import ConfigurationError, InvalidInput

Provider = Literal["offline", "bedrock", "anthropic", "openai", "ollama", "litellm", "llamacpp"]
PROVIDERS: tuple[str, ...] = ("offline", "bedrock", "anthropic", "openai", "ollama", "litellm", "llamacpp")
#: Providers that talk to the server at ``RELAY_MODEL_URL``.
URL_PROVIDERS: tuple[str, ...] = ("llamacpp", "openai")
#: ``RELAY_MODEL_MAX_TOKENS`` when unset: enough for a report section, and at about 60 generated
#: tokens a second (a 135M model on 2 cores) a runaway answer ends within 20 s.
DEFAULT_MAX_TOKENS = 1024
#: ``RELAY_MODEL_TIMEOUT`` when unset, seconds: below the agent functions' 300-600 s timeouts
#: (relay_core.contracts.TASK_FUNCTIONS), so a slow call fails as a named error, not as a timeout.
DEFAULT_MODEL_TIMEOUT_SECONDS = 240.0

#: Bedrock Knowledge Base ids are 10 upper-case letters or digits (Bedrock API reference,
#: ``Retrieve``: ``knowledgeBaseId`` pattern ``[0-9a-zA-Z]{10}``).
_KB_ID_RE = re.compile(r"^[0-9a-zA-Z]{10}$")
_S3_URI_RE = re.compile(r"^s3://([a-z0-9][a-z0-9.\-]{1,61}[a-z0-9])(?:/(.*))?$")
_HTTP_URL_RE = re.compile(r"^https?://[^\s/?#@]+(?::\d+)?(?:/[^\s?#]*)?$")
DEFAULT_CACHE_DIR = "~/.cache/relay"


def _rule(message: str) -> PydanticCustomError:
    """A validation error whose text is exactly ``message`` (no "Value error, " prefix)."""
    return PydanticCustomError("relay_setting", "{message}", {"message": message})


class AgentSettings(BaseSettings):
    """The agents' configuration (frozen, hashable), read from the environment variables
    in the module docstring by pydantic-settings.

    ``AgentSettings()`` reads ``os.environ``; keyword arguments by field name override it
    (``AgentSettings(model_provider="bedrock")``). :meth:`from_env` is the call that turns a
    bad value into :class:`~relay_core.errors.ConfigurationError`.

    Attributes:
        model_provider: one of :data:`PROVIDERS`.
        model_id: provider model id, or ``None`` for the provider default.
        corpus: a folder path or ``s3://bucket/prefix``; ``None`` = botocore documentation.
        knowledge_base_id: Bedrock Knowledge Base id, or ``None``.
        cache_dir: index cache directory.
        guardrail_id, guardrail_version: an Amazon Bedrock guardrail applied to every
            Bedrock model call (``RELAY_GUARDRAIL_ID``/``RELAY_GUARDRAIL_VERSION``; both or neither).
        model_url: the model server (``llamacpp``, ``openai``), without a trailing ``/``.
        model_api_key: the key sent to ``model_url``, or ``None``.
        max_tokens: the most tokens one call generates (``llamacpp``, ``openai``).
        timeout_seconds: the most seconds one model call takes.
    """

    model_config = SettingsConfigDict(frozen=True, extra="ignore", case_sensitive=True, populate_by_name=True)

    model_provider: Provider = Field(default="offline", validation_alias="RELAY_MODEL_PROVIDER")
    model_id: str | None = Field(default=None, validation_alias="RELAY_MODEL_ID")
    corpus: str | None = Field(default=None, validation_alias="RELAY_CORPUS")
    knowledge_base_id: str | None = Field(default=None, validation_alias="RELAY_KNOWLEDGE_BASE_ID")
    cache_dir: Path = Field(default_factory=lambda: Path(DEFAULT_CACHE_DIR).expanduser(), validation_alias="RELAY_CACHE_DIR")
    guardrail_id: str | None = Field(default=None, validation_alias="RELAY_GUARDRAIL_ID")
    guardrail_version: str | None = Field(default=None, validation_alias="RELAY_GUARDRAIL_VERSION")
    model_url: str | None = Field(default=None, validation_alias="RELAY_MODEL_URL")
    model_api_key: str | None = Field(default=None, validation_alias="RELAY_MODEL_API_KEY", repr=False)
    max_tokens: int = Field(default=DEFAULT_MAX_TOKENS, validation_alias="RELAY_MODEL_MAX_TOKENS")
    timeout_seconds: float = Field(default=DEFAULT_MODEL_TIMEOUT_SECONDS, validation_alias="RELAY_MODEL_TIMEOUT")

    @field_validator(
        "model_id", "corpus", "knowledge_base_id", "guardrail_id", "guardrail_version", "model_url", "model_api_key",
        mode="before",
    )
    @classmethod
    def _blank_is_unset(cls, value: Any) -> Any:
        if isinstance(value, str):
            return value.strip() or None
        return value

    @field_validator("model_provider", mode="before")
    @classmethod
    def _known_provider(cls, value: Any) -> Any:
        provider = (value.strip() if isinstance(value, str) else value) or "offline"
        provider = provider.lower() if isinstance(provider, str) else provider
        if provider not in PROVIDERS:
            raise _rule(f"{provider!r} is not one of {', '.join(PROVIDERS)}")
        return provider

    @field_validator("corpus")
    @classmethod
    def _s3_uri(cls, value: str | None) -> str | None:
        if value and value.startswith("s3://") and not _S3_URI_RE.match(value):
            raise _rule(f"{value!r} is not a valid s3://bucket/prefix URI")
        return value

    @field_validator("model_url")
    @classmethod
    def _model_url(cls, value: str | None) -> str | None:
        if value and not _HTTP_URL_RE.match(value):
            raise _rule(f"{value!r} is not an http:// or https:// URL")
        return value.rstrip("/") if value else value

    @field_validator("max_tokens", mode="before")
    @classmethod
    def _max_tokens(cls, value: Any) -> Any:
        if value is None or (isinstance(value, str) and not value.strip()):
            return DEFAULT_MAX_TOKENS
        try:
            tokens = int(str(value).strip())
        except ValueError:
            raise _rule(f"{value!r} is not a whole number of tokens") from None
        if not 16 <= tokens <= 65536:
            raise _rule(f"{tokens} is not between 16 and 65536")
        return tokens

    @field_validator("timeout_seconds", mode="before")
    @classmethod
    def _timeout(cls, value: Any) -> Any:
        if value is None or (isinstance(value, str) and not value.strip()):
            return DEFAULT_MODEL_TIMEOUT_SECONDS
        try:
            seconds = float(str(value).strip())
        except ValueError:
            raise _rule(f"{value!r} is not a number of seconds") from None
        if not 1 <= seconds <= 900:
            raise _rule(f"{seconds:g} is not between 1 and 900 seconds")
        return seconds

    @field_validator("knowledge_base_id")
    @classmethod
    def _knowledge_base_id(cls, value: str | None) -> str | None:
        if value and not _KB_ID_RE.match(value):
            raise _rule(f"{value!r} is not a Knowledge Base id (10 letters or digits)")
        return value

    @field_validator("cache_dir", mode="before")
    @classmethod
    def _cache_dir(cls, value: Any) -> Any:
        if value is None or isinstance(value, str):
            return Path((value or "").strip() or DEFAULT_CACHE_DIR).expanduser()
        return value

    @model_validator(mode="after")
    def _guardrail_pair(self) -> AgentSettings:
        if bool(self.guardrail_id) != bool(self.guardrail_version):
            raise _rule("RELAY_GUARDRAIL_ID/RELAY_GUARDRAIL_VERSION: set both or neither")
        if self.model_provider == "llamacpp" and not self.model_url:
            raise _rule("RELAY_MODEL_URL: required for llamacpp (a llama.cpp server, e.g. http://127.0.0.1:8080)")
        if self.model_url and self.model_provider not in URL_PROVIDERS:
            raise _rule(
                f"RELAY_MODEL_URL: used only by {' and '.join(URL_PROVIDERS)}, not {self.model_provider} "
                "(unset it, or set RELAY_MODEL_PROVIDER)"
            )
        return self

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> AgentSettings:
        """Read the settings from ``env`` (default ``os.environ``).

        Raises:
            ConfigurationError: a variable holds an invalid value; one line naming each
                such variable and its rule, e.g. ``RELAY_MODEL_PROVIDER: 'gpt' is not one of …``.
        """
        try:
            if env is None:
                return cls()
            # Every variable is passed (None when absent = unset), so nothing comes from os.environ.
            values: dict[str, Any] = {str(field.validation_alias): env.get(str(field.validation_alias)) for field in cls.model_fields.values()}
            return cls(**values)
        except ValidationError as exc:
            raise ConfigurationError(_describe(exc)) from None


def _describe(error: ValidationError) -> str:
    """One line naming each bad variable and its rule: ``RELAY_X: rule; RELAY_Y: rule``
    (a field given by its Python name is still shown by its variable's name)."""
    variables = {name: str(field.validation_alias) for name, field in AgentSettings.model_fields.items()}
    parts = []
    for item in error.errors():
        loc = item.get("loc") or ()
        where = variables.get(str(loc[0]), str(loc[0])) if loc else ""
        parts.append(f"{where}: {item['msg']}" if where else str(item["msg"]))
    return "; ".join(parts)


def parse_s3_uri(uri: str) -> tuple[str, str]:
    """Split ``s3://bucket/prefix`` into ``(bucket, prefix)``; the prefix may be empty.

    Raises:
        InvalidInput: not an S3 URI (the corpus check turns it into its own error).
    """
    match = _S3_URI_RE.match(uri)
    if not match:
        raise InvalidInput(f"RELAY_CORPUS: {uri!r} is not a valid s3://bucket/prefix URI")
    return match.group(1), match.group(2) or ""
