"""One place that picks the model provider from :class:`~relay_agents.settings.AgentSettings`.

Bedrock uses ``strands.models.BedrockModel`` (boto3 credentials and ``AWS_REGION``).
Anthropic, OpenAI, Ollama and LiteLLM are optional extras (``pip install 'relay[anthropic]'``
etc.) imported only when chosen; their API keys come from the providers' own variables
(``ANTHROPIC_API_KEY``, ``OPENAI_API_KEY``; Ollama's host from ``OLLAMA_HOST``). A llama.cpp
server (``llamacpp``) and an OpenAI-compatible server (``openai`` with ``RELAY_MODEL_URL``)
are reached through :mod:`relay_agents.providers`, with a token cap and a time limit per call.
"""

from __future__ import annotations

import os
from typing import Any

from relay_core.errors import ConfigurationError
from strands.models import Model

from .provenance import OFFLINE_MODEL_ID
from .settings import AgentSettings

#: Model ids used when ``RELAY_MODEL_ID`` is unset. Bedrock's is the Strands SDK default
#: (a cross-region inference profile of Claude Sonnet 4.6); LiteLLM has none (it needs a
#: ``provider/model`` id).
DEFAULT_MODEL_IDS: dict[str, str | None] = {
    "offline": OFFLINE_MODEL_ID,
    "bedrock": "global.anthropic.claude-sonnet-4-6",
    "anthropic": "claude-sonnet-4-6",
    "openai": "gpt-4o",
    "ollama": "llama3.1",
    "litellm": None,
    # the server's own: RELAY_MODEL_ID, else the first model it lists (relay_agents.providers)
    "llamacpp": None,
}
#: Output token cap for providers that require one (Anthropic's Messages API does).
MAX_OUTPUT_TOKENS = 4096


def _optional(provider: str, module: str, cls: str) -> Any:
    import importlib

    try:
        return getattr(importlib.import_module(module), cls)
    except ImportError as exc:
        raise ConfigurationError(
            f"RELAY_MODEL_PROVIDER: {provider} needs the optional extra: pip install 'relay[{provider}]' ({exc})"
        ) from exc


def build_model(settings: AgentSettings | None = None) -> Model:
    """The Strands model the settings ask for.

    Args:
        settings: defaults to :meth:`AgentSettings.from_env`.

    Raises:
        ConfigurationError: the provider's optional package is not installed, LiteLLM has no
            ``RELAY_MODEL_ID``, or (``llamacpp``, ``openai`` with ``RELAY_MODEL_URL`` and no
            ``RELAY_MODEL_ID``) the server cannot tell which model it serves
            (:func:`relay_agents.providers.check_endpoint`, asked once per process).
    """
    settings = settings or AgentSettings.from_env()
    provider = settings.model_provider
    model_id = settings.model_id or DEFAULT_MODEL_IDS[provider]
    if provider == "offline":
        # Imported here only: production code paths never load the offline package.
        from .offline import OfflineModel

        return OfflineModel(model_id=model_id or OFFLINE_MODEL_ID)
    if provider == "bedrock":
        from strands.models import BedrockModel

        bedrock_id = model_id or str(DEFAULT_MODEL_IDS["bedrock"])
        if settings.guardrail_id:
            return BedrockModel(
                model_id=bedrock_id, guardrail_id=settings.guardrail_id, guardrail_version=settings.guardrail_version
            )
        return BedrockModel(model_id=bedrock_id)
    if provider == "anthropic":
        cls = _optional(provider, "strands.models.anthropic", "AnthropicModel")
        return cls(model_id=model_id, max_tokens=MAX_OUTPUT_TOKENS)  # type: ignore[no-any-return]
    if provider == "llamacpp":
        from .providers import llamacpp_model

        return llamacpp_model(settings)
    if provider == "openai":
        _optional(provider, "strands.models.openai", "OpenAIModel")
        from .providers import openai_model

        return openai_model(settings, str(model_id))  # type: ignore[no-any-return]
    if provider == "ollama":
        cls = _optional(provider, "strands.models.ollama", "OllamaModel")
        return cls(os.environ.get("OLLAMA_HOST", "http://127.0.0.1:11434"), model_id=model_id)  # type: ignore[no-any-return]
    if provider == "litellm":
        if not model_id:
            raise ConfigurationError("RELAY_MODEL_ID: required for litellm (e.g. 'bedrock/anthropic.claude-…')")
        cls = _optional(provider, "strands.models.litellm", "LiteLLMModel")
        return cls(model_id=model_id)  # type: ignore[no-any-return]
    raise ConfigurationError(f"RELAY_MODEL_PROVIDER: {provider!r} is not supported")  # pragma: no cover


_PROVIDER_NAMES = {
    "BedrockModel": "Amazon Bedrock",
    "AnthropicModel": "Anthropic API",
    "OpenAIModel": "OpenAI API",
    "LlamaCppModel": "llama.cpp server",
    "LlamaCppServerModel": "llama.cpp server",
    "OllamaModel": "Ollama",
    "LiteLLMModel": "LiteLLM",
}


def describe_model(model: Model) -> str:
    """A human-readable name for provenance lines, e.g. ``"Relay's offline extractive model
    (relay-offline-extractive; no LLM)"`` or ``"Amazon Bedrock global.anthropic.claude-sonnet-4-6"``.

    A model with a ``provenance()`` method (the offline model) names itself; others are
    named by provider and model id.
    """
    own = getattr(model, "provenance", None)
    if callable(own):
        return str(own())
    try:
        config = model.get_config()
    except Exception:  # a provider without config: name it by class
        config = {}
    model_id = config.get("model_id") if isinstance(config, dict) else getattr(config, "model_id", None)
    name = getattr(model, "relay_provider_name", None) or _PROVIDER_NAMES.get(type(model).__name__, type(model).__name__)
    return f"{name} {model_id}" if model_id else name
