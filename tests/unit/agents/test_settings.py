from __future__ import annotations

import pytest
from relay_agents.settings import AgentSettings, parse_s3_uri
from relay_core.errors import ConfigurationError, InvalidInput

pytestmark = pytest.mark.unit


def test_defaults_to_offline_when_unset():
    # Given an empty environment / When read / Then the offline provider and the default cache
    settings = AgentSettings.from_env({})
    assert settings.model_provider == "offline"
    assert settings.corpus is None and settings.knowledge_base_id is None
    assert str(settings.cache_dir).endswith(".cache/relay")


def test_reads_environment_at_call_time(monkeypatch):
    monkeypatch.setenv("RELAY_MODEL_PROVIDER", "Bedrock")
    monkeypatch.setenv("RELAY_MODEL_ID", "anthropic.claude-x")
    monkeypatch.setenv("RELAY_CORPUS", "s3://my-bucket/docs/")
    settings = AgentSettings.from_env()
    assert (settings.model_provider, settings.model_id, settings.corpus) == (
        "bedrock",
        "anthropic.claude-x",
        "s3://my-bucket/docs/",
    )
    assert parse_s3_uri(settings.corpus) == ("my-bucket", "docs/")


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"RELAY_MODEL_PROVIDER": "gpt"}, "RELAY_MODEL_PROVIDER"),
        ({"RELAY_KNOWLEDGE_BASE_ID": "not a kb"}, "RELAY_KNOWLEDGE_BASE_ID"),
        ({"RELAY_CORPUS": "s3://Bad_Bucket"}, "RELAY_CORPUS"),
    ],
)
def test_invalid_values_name_the_variable(env, variable):
    # a configuration problem, not bad request input (InvalidInput answers 400 to a caller)
    with pytest.raises(ConfigurationError, match=variable) as raised:
        AgentSettings.from_env(env)
    assert not isinstance(raised.value, InvalidInput)


def test_every_bad_variable_is_named_in_one_line():
    env = {"RELAY_MODEL_PROVIDER": "gpt", "RELAY_CORPUS": "s3://Bad_Bucket", "RELAY_GUARDRAIL_ID": "g1"}
    with pytest.raises(ConfigurationError) as raised:
        AgentSettings.from_env(env)
    message = str(raised.value)
    assert "\n" not in message
    assert message.startswith("RELAY_MODEL_PROVIDER: 'gpt' is not one of offline, bedrock, ")
    assert "; RELAY_CORPUS: 's3://Bad_Bucket' is not a valid s3://bucket/prefix URI" in message


def test_an_unpaired_guardrail_is_refused_naming_both_variables():
    with pytest.raises(ConfigurationError, match="RELAY_GUARDRAIL_ID/RELAY_GUARDRAIL_VERSION: set both or neither"):
        AgentSettings.from_env({"RELAY_GUARDRAIL_VERSION": "1"})
    paired = AgentSettings.from_env({"RELAY_GUARDRAIL_ID": "g1", "RELAY_GUARDRAIL_VERSION": "DRAFT"})
    assert (paired.guardrail_id, paired.guardrail_version) == ("g1", "DRAFT")


def test_blank_values_count_as_unset(tmp_path):
    env = {"RELAY_MODEL_PROVIDER": "  ", "RELAY_MODEL_ID": "", "RELAY_CORPUS": " ", "RELAY_CACHE_DIR": ""}
    settings = AgentSettings.from_env(env)
    assert (settings.model_provider, settings.model_id, settings.corpus) == ("offline", None, None)
    assert str(settings.cache_dir).endswith(".cache/relay")
    assert AgentSettings.from_env({"RELAY_CACHE_DIR": str(tmp_path)}).cache_dir == tmp_path


def test_keyword_arguments_override_the_environment(monkeypatch):
    monkeypatch.setenv("RELAY_MODEL_PROVIDER", "ollama")
    monkeypatch.setenv("RELAY_MODEL_ID", "llama3")
    settings = AgentSettings(model_id="qwen3")
    assert (settings.model_provider, settings.model_id) == ("ollama", "qwen3")


def test_settings_are_hashable_for_caching():
    assert hash(AgentSettings.from_env({})) == hash(AgentSettings.from_env({}))
