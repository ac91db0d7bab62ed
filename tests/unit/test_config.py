"""relay_core.config: the functions' settings come from their environment variables,
by exact name, and a missing or malformed one is a ConfigurationError naming it."""

from __future__ import annotations

import pytest
from relay_core.config import ApiSettings, ApprovalSettings, RequestDefaults, StoreSettings, load
from relay_core.errors import ConfigurationError, InvalidInput, http_status_for

pytestmark = pytest.mark.unit

STORE = {"RELAY_ARTIFACT_BUCKET": "bucket-1", "RELAY_TABLE_NAME": "table-1"}
RELAY_VARIABLES = (
    *STORE,
    "RELAY_API_BASE_URL",
    "RELAY_STATE_MACHINE_ARN",
    "RELAY_MAIL_FROM",
    "RELAY_APPROVER_EMAIL",
    "RELAY_DEFAULT_MAX_REVISIONS",
    "RELAY_DEFAULT_MAX_CONCURRENCY",
)


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in RELAY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_settings_are_read_from_the_environment_with_their_defaults(clean_env):
    for name, value in STORE.items():
        clean_env.setenv(name, value)
    clean_env.setenv("RELAY_API_BASE_URL", "http://127.0.0.1:9")
    settings = load(ApprovalSettings)
    assert (settings.artifact_bucket, settings.table_name, settings.api_base_url) == ("bucket-1", "table-1", "http://127.0.0.1:9")
    assert (settings.mail_from, settings.default_approver, settings.topic_arn) == ("relay@localhost", "approver@example.com", None)


def test_a_missing_or_malformed_variable_is_a_configuration_error_naming_it(clean_env):
    clean_env.setenv("RELAY_ARTIFACT_BUCKET", "b")
    with pytest.raises(ConfigurationError) as raised:
        load(StoreSettings)
    message = str(raised.value)
    assert message.startswith("configuration: ")
    assert "RELAY_ARTIFACT_BUCKET: String should have at least 3 characters" in message
    assert "RELAY_TABLE_NAME: Field required" in message
    # the operator's problem (500), not a bad request (InvalidInput, 400)
    assert not isinstance(raised.value, InvalidInput) and http_status_for(raised.value) == 500


def test_names_are_matched_exactly(clean_env):
    clean_env.setenv("relay_artifact_bucket", "bucket-1")
    clean_env.setenv("RELAY_TABLE_NAME", "table-1")
    with pytest.raises(ConfigurationError, match="RELAY_ARTIFACT_BUCKET: Field required"):
        load(StoreSettings)


def test_the_api_settings_need_the_state_machine(clean_env):
    for name, value in STORE.items():
        clean_env.setenv(name, value)
    clean_env.setenv("RELAY_API_BASE_URL", "http://127.0.0.1:9")
    with pytest.raises(ConfigurationError, match="RELAY_STATE_MACHINE_ARN: Field required"):
        load(ApiSettings)
    clean_env.setenv("RELAY_STATE_MACHINE_ARN", "arn:aws:states:us-east-1:000000000000:stateMachine:x")
    assert load(ApiSettings).state_machine_arn.endswith(":x")


def test_request_defaults_fill_only_what_the_caller_left_out(clean_env):
    clean_env.setenv("RELAY_DEFAULT_MAX_REVISIONS", "5")
    defaults = load(RequestDefaults)
    assert defaults.apply({"topic": "t"}) == {"topic": "t", "max_revisions": "5"}
    assert defaults.apply({"topic": "t", "max_revisions": 1}) == {"topic": "t", "max_revisions": 1}


def test_a_mapping_keyed_by_variable_names_validates_too(clean_env):
    settings = StoreSettings.model_validate(STORE)
    assert (settings.artifact_bucket, settings.table_name) == ("bucket-1", "table-1")
