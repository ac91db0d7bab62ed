"""Model servers Relay reaches over HTTP: a llama.cpp server (``llamacpp``, Strands'
``LlamaCppModel``) and any OpenAI-compatible endpoint (``openai`` with ``RELAY_MODEL_URL``:
Ollama's, vLLM's or llama.cpp's ``/v1``, Strands' ``OpenAIModel``).

Both get, from :class:`~relay_agents.settings.AgentSettings`:

* **a bound per call**: at most ``RELAY_MODEL_MAX_TOKENS`` generated tokens (``max_tokens``
  in the request) and at most ``RELAY_MODEL_TIMEOUT`` seconds, waiting in the server's
  queue included; a call still going then is cancelled (the connection is closed, so
  llama.cpp stops generating) and raises :class:`ModelCallTimeout`, which
  :func:`relay_agents.runner.map_model_error` answers as ``ModelUnavailable`` (retried by
  the state machine);
* **structured output by JSON schema**: ``structured_output`` sends the pydantic model's
  JSON schema with the request (llama.cpp's ``json_schema``, which it compiles to a
  grammar, and OpenAI's ``response_format``), so a small model's answer is JSON of that
  shape or is cut at the token cap; the call's token usage is reported like any other;
* **the key** ``RELAY_MODEL_API_KEY`` as ``Authorization: Bearer`` (``openai``: else
  ``OPENAI_API_KEY``).

:func:`check_endpoint` is the start-up check: one ``GET …/models`` that names the variable
at fault in one line (the server cannot be reached, refuses the key, is not such a server,
or does not serve ``RELAY_MODEL_ID``) and answers the model id to use (the server's first
when ``RELAY_MODEL_ID`` is unset). llama.cpp answers any ``model`` in a request with the
model it loaded, so a wrong id would otherwise go unnoticed; Ollama answers 404.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import os
from collections.abc import AsyncGenerator, Callable
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel
from relay_core.errors import ConfigurationError
from strands.models.llamacpp import LlamaCppModel
from strands.types.content import Messages
from strands.types.streaming import StreamEvent

from .settings import AgentSettings

T = TypeVar("T", bound=BaseModel)

#: Seconds the start-up check waits for ``GET …/models``.
CHECK_TIMEOUT_SECONDS = 5.0
#: Seconds a model call waits to connect (the rest of ``RELAY_MODEL_TIMEOUT`` is for the answer).
CONNECT_TIMEOUT_SECONDS = 10.0
#: Model ids listed in a "does not serve" error.
LISTED_MODELS = 5


class ModelCallTimeout(TimeoutError):
    """A model call took longer than ``RELAY_MODEL_TIMEOUT`` (see the module docstring)."""


def server_root(settings: AgentSettings) -> str:
    """``RELAY_MODEL_URL`` as the llama.cpp server's root (a trailing ``/v1`` dropped:
    Strands' ``LlamaCppModel`` adds ``/v1/chat/completions`` itself)."""
    url = str(settings.model_url or "")
    return url[: -len("/v1")] if url.endswith("/v1") else url


def models_url(settings: AgentSettings) -> str:
    """Where the server lists its models: ``<root>/v1/models`` (llamacpp) or ``<base>/models`` (openai)."""
    if settings.model_provider == "llamacpp":
        return server_root(settings) + "/v1/models"
    return str(settings.model_url) + "/models"


def api_key(settings: AgentSettings) -> str | None:
    """The key sent to the server: ``RELAY_MODEL_API_KEY``, else (``openai``) ``OPENAI_API_KEY``."""
    if settings.model_api_key:
        return settings.model_api_key
    if settings.model_provider == "openai":
        return os.environ.get("OPENAI_API_KEY", "").strip() or None
    return None


def _reason(error: httpx.HTTPError) -> str:
    if isinstance(error, httpx.TimeoutException):
        return f"no answer within {CHECK_TIMEOUT_SECONDS:g} s"
    cause: BaseException = error
    while cause.__cause__ is not None or cause.__context__ is not None:
        cause = cause.__cause__ or cause.__context__  # type: ignore[assignment]
    text = str(getattr(cause, "strerror", None) or cause or error)
    return text.split("] ", 1)[-1].strip() or type(error).__name__


def served_models(settings: AgentSettings, transport: httpx.BaseTransport | None = None) -> list[str]:
    """The model ids (and aliases) the server lists, in its order.

    Args:
        settings: an ``llamacpp`` or ``openai`` provider with ``RELAY_MODEL_URL``.
        transport: for tests (``httpx.MockTransport``); default: the network.

    Raises:
        ConfigurationError: one line naming the variable at fault: ``RELAY_MODEL_URL``
            (cannot be reached, answers an HTTP error, is not a model server) or
            ``RELAY_MODEL_API_KEY`` (the key is refused or missing).
    """
    url = models_url(settings)
    key = api_key(settings)
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    try:
        with httpx.Client(timeout=CHECK_TIMEOUT_SECONDS, transport=transport, headers=headers) as client:
            response = client.get(url)
    except httpx.HTTPError as exc:
        raise ConfigurationError(f"RELAY_MODEL_URL: cannot reach {settings.model_url}: {_reason(exc)}") from None
    if response.status_code in (401, 403):
        said = "refuses the key" if key else "wants a key"
        raise ConfigurationError(f"RELAY_MODEL_API_KEY: {settings.model_url} {said} (HTTP {response.status_code})")
    if response.status_code != 200:
        raise ConfigurationError(
            f"RELAY_MODEL_URL: {settings.model_url} answers HTTP {response.status_code} to GET {url}: "
            f"not a {'llama.cpp' if settings.model_provider == 'llamacpp' else 'OpenAI-compatible'} server"
        )
    try:
        listed = response.json()["data"]
        ids: list[str] = []
        for entry in listed:
            for name in [entry["id"], *(entry.get("aliases") or [])]:
                if isinstance(name, str) and name not in ids:
                    ids.append(name)
    except (ValueError, KeyError, TypeError):
        raise ConfigurationError(
            f"RELAY_MODEL_URL: {settings.model_url} answers GET {url} without a model list: not an OpenAI-compatible server"
        ) from None
    return ids


def check_endpoint(settings: AgentSettings, transport: httpx.BaseTransport | None = None) -> str:
    """Check the server at ``RELAY_MODEL_URL`` answers and serves the model; return the
    model id to use (``RELAY_MODEL_ID``, else the first model the server lists).

    Raises:
        ConfigurationError: as :func:`served_models`, or ``RELAY_MODEL_ID: 'x' is not served
            by <url> (it serves: …)``, or the server lists no model.
    """
    ids = served_models(settings, transport)
    wanted = settings.model_id
    if wanted:
        if wanted in ids or f"{wanted}:latest" in ids:  # Ollama lists "llama3.1:latest" and serves "llama3.1"
            return wanted
        listed = ", ".join(ids[:LISTED_MODELS]) + (", …" if len(ids) > LISTED_MODELS else "")
        raise ConfigurationError(f"RELAY_MODEL_ID: {wanted!r} is not served by {settings.model_url} (it serves: {listed or 'nothing'})")
    if not ids:
        raise ConfigurationError(f"RELAY_MODEL_URL: {settings.model_url} serves no model")
    return ids[0]


@functools.lru_cache(maxsize=8)
def _checked_model_id(settings: AgentSettings) -> str:
    return check_endpoint(settings)


def resolved_model_id(settings: AgentSettings) -> str:
    """``RELAY_MODEL_ID``, else the server's first model, asked once per process and settings."""
    return settings.model_id or _checked_model_id(settings)


@functools.lru_cache(maxsize=8)
def template_supports_tools(root: str, key: str | None) -> bool:
    """Whether the llama.cpp server at ``root`` says its chat template renders tools
    (``GET /props``: ``chat_template_caps.supports_tools``); ``True`` when it does not say
    (an older server, or no answer): only a server that says no is taken at its word."""
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    try:
        with httpx.Client(timeout=CHECK_TIMEOUT_SECONDS, headers=headers) as client:
            caps = client.get(root + "/props").json().get("chat_template_caps") or {}
    except (httpx.HTTPError, ValueError, AttributeError):
        return True
    return caps.get("supports_tools") is not False


async def _within(seconds: float, collect: Callable[[], Any]) -> Any:
    """``await collect()`` in a task of its own, cancelled after ``seconds`` (the caller's
    task is never cancelled: Strands reads a cancelled one as its own cancellation).

    Raises:
        ModelCallTimeout: it took longer.
    """
    task = asyncio.ensure_future(collect())
    done, _ = await asyncio.wait({task}, timeout=seconds)
    if task not in done:
        task.cancel()
        with contextlib.suppress(BaseException):
            await task
        raise ModelCallTimeout(f"no answer within {seconds:g} s (RELAY_MODEL_TIMEOUT)")
    return task.result()


class LlamaCppServerModel(LlamaCppModel):
    """Strands' ``LlamaCppModel`` with the bounds of the module docstring, the key, and a new
    HTTP client for each call (each agent call runs on an event loop of its own, and an
    ``httpx.AsyncClient``'s connections belong to the loop that opened them).

    Args:
        base_url: the server's root.
        call_seconds: ``RELAY_MODEL_TIMEOUT``.
        api_key: sent as ``Authorization: Bearer``, or ``None``.
        **config: ``LlamaCppModel`` configuration (``model_id``, ``params``).
    """

    #: The planner and the analyst ask this model for JSON (relay_agents.runner.wants_structured_output).
    relay_structured_output = True

    def __init__(self, base_url: str, call_seconds: float, api_key: str | None = None, **config: Any):
        super().__init__(base_url=base_url, timeout=(CONNECT_TIMEOUT_SECONDS, call_seconds), **config)
        self.call_seconds = call_seconds
        self._key = api_key
        self._headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._timeout = httpx.Timeout(call_seconds, connect=CONNECT_TIMEOUT_SECONDS)

    @property
    def relay_calls_tools(self) -> bool:
        """Whether the model can be given tools: ``False`` when the server says its chat
        template has none (:func:`template_supports_tools`; the embedded model's), and then
        the agents do the tool calls that must happen for it (relay_agents.runner.calls_tools)."""
        return template_supports_tools(self.base_url, self._key)

    async def stream(  # type: ignore[override]
        self, messages: Messages, tool_specs: Any = None, system_prompt: str | None = None, **kwargs: Any
    ) -> AsyncGenerator[StreamEvent, None]:
        """``LlamaCppModel.stream`` within ``call_seconds``. It reads the whole answer before its
        first event anyway (``client.post``), so collecting the events first loses nothing."""

        async def collect() -> list[StreamEvent]:
            self.client = httpx.AsyncClient(base_url=self.base_url, timeout=self._timeout, headers=self._headers)
            try:
                parent = super(LlamaCppServerModel, self).stream(messages, tool_specs, system_prompt, **kwargs)
                return [event async for event in parent]
            finally:
                await self.client.aclose()

        for event in await _within(self.call_seconds, collect):
            yield event


@functools.cache
def openai_compatible_class() -> type[Any]:
    """``OpenAICompatibleModel``, defined on first use (the ``openai`` package is an optional extra).

    Raises:
        ImportError: the ``openai`` extra is not installed.
    """
    from strands.models.openai import OpenAIModel

    class OpenAICompatibleModel(OpenAIModel):  # type: ignore[misc]
        """Strands' ``OpenAIModel`` with the bounds of the module docstring; its structured
        output goes through the streaming call with a ``response_format`` JSON schema, so
        its token usage is reported like any other call's (Strands' own uses a parse call
        that reports none)."""

        relay_structured_output = True

        def __init__(self, call_seconds: float, **kwargs: Any):
            super().__init__(**kwargs)
            self.call_seconds = call_seconds

        async def stream(  # type: ignore[override]
            self, messages: Messages, tool_specs: Any = None, system_prompt: str | None = None, **kwargs: Any
        ) -> AsyncGenerator[StreamEvent, None]:
            async def collect() -> list[StreamEvent]:
                parent = super(OpenAICompatibleModel, self).stream(messages, tool_specs, system_prompt, **kwargs)
                return [event async for event in parent]

            for event in await _within(self.call_seconds, collect):
                yield event

        async def structured_output(  # type: ignore[override]
            self, output_model: type[T], prompt: Messages, system_prompt: str | None = None, **kwargs: Any
        ) -> AsyncGenerator[dict[str, Any], None]:
            schema = output_model.model_json_schema()
            saved: Any = self.config.get("params")
            response_format = {"type": "json_schema", "json_schema": {"name": output_model.__name__, "schema": schema}}
            self.config["params"] = {**(saved or {}), "response_format": response_format}
            text = ""
            try:
                async for event in self.stream(prompt, system_prompt=system_prompt):
                    delta = event.get("contentBlockDelta", {}).get("delta", {})
                    text += delta.get("text", "")
                    yield dict(event)
            finally:
                self.config["params"] = saved
            yield {"output": output_model.model_validate(json.loads(text.strip()))}

    return OpenAICompatibleModel


def llamacpp_model(settings: AgentSettings) -> LlamaCppServerModel:
    """The ``llamacpp`` provider's model (see the module docstring)."""
    return LlamaCppServerModel(
        base_url=server_root(settings),
        call_seconds=settings.timeout_seconds,
        api_key=api_key(settings),
        model_id=resolved_model_id(settings),
        params={"max_tokens": settings.max_tokens},
    )


def openai_model(settings: AgentSettings, model_id: str) -> Any:
    """The ``openai`` provider's model: OpenAI's API, or the server at ``RELAY_MODEL_URL``.

    Raises:
        ImportError: the ``openai`` extra is not installed.
    """
    cls = openai_compatible_class()
    # a number: openai 3 builds its own client (on httpx2), which takes no httpx.Timeout
    client_args: dict[str, Any] = {"max_retries": 0, "timeout": settings.timeout_seconds}
    if settings.model_url:
        client_args["base_url"] = settings.model_url
        # the client insists on a key; a local server takes any
        client_args["api_key"] = api_key(settings) or "none"
        model_id = resolved_model_id(settings)
    elif settings.model_api_key:
        client_args["api_key"] = settings.model_api_key
    model = cls(
        call_seconds=settings.timeout_seconds,
        client_args=client_args,
        model_id=model_id,
        params={"max_tokens": settings.max_tokens},
    )
    model.relay_provider_name = "OpenAI-compatible server" if settings.model_url else "OpenAI API"
    return model
