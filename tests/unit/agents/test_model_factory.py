from __future__ import annotations

import importlib.util

import pytest
from relay_agents.model_factory import build_model, describe_model
from relay_agents.offline import OfflineModel
from relay_agents.settings import AgentSettings
from relay_core.errors import ConfigurationError

pytestmark = pytest.mark.unit


def test_offline_is_the_default():
    model = build_model()
    assert isinstance(model, OfflineModel)
    assert "offline extractive model" in describe_model(model)


def test_bedrock_model_with_explicit_id(aws_credentials):
    model = build_model(AgentSettings(model_provider="bedrock", model_id="anthropic.claude-test-v1"))
    assert type(model).__name__ == "BedrockModel"
    assert describe_model(model) == "Amazon Bedrock anthropic.claude-test-v1"


def test_bedrock_default_model_id(aws_credentials):
    model = build_model(AgentSettings(model_provider="bedrock"))
    assert "claude" in model.get_config()["model_id"]


@pytest.mark.parametrize(
    ("provider", "module"), [("anthropic", "anthropic"), ("openai", "openai"), ("ollama", "ollama")]
)
def test_missing_optional_extra_is_a_clear_error(provider, module):
    if importlib.util.find_spec(module) is not None:
        pytest.skip(f"{module} is installed")
    with pytest.raises(ConfigurationError, match=rf"relay\[{provider}\]"):
        build_model(AgentSettings(model_provider=provider))


def test_litellm_needs_a_model_id():
    with pytest.raises(ConfigurationError, match="RELAY_MODEL_ID"):
        build_model(AgentSettings(model_provider="litellm"))
