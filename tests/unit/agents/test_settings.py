from __future__ import annotations

import pytest
from relay_agents.settings import AgentSettings, parse_s3_uri
from relay_core.errors import InvalidInput

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
    with pytest.raises(InvalidInput, match=variable):
        AgentSettings.from_env(env)


def test_settings_are_hashable_for_caching():
    assert hash(AgentSettings.from_env({})) == hash(AgentSettings.from_env({}))
