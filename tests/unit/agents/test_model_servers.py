"""The llama.cpp and OpenAI-compatible providers' configuration and start-up check, with
``httpx.MockTransport`` standing in for the server (no sockets; the real embedded server is
in tests/e2e/test_local_model.py)."""

from __future__ import annotations

import httpx
import pytest
from relay_agents.model_factory import DEFAULT_MODEL_IDS, build_model, describe_model
from relay_agents.offline import OfflineModel
from relay_agents.providers import ModelCallTimeout, check_endpoint, models_url
from relay_agents.runner import map_model_error, wants_structured_output
from relay_agents.settings import AgentSettings
from relay_core.cost import PRICES
from relay_core.errors import AgentFailed, ConfigurationError, ModelUnavailable

from tests.support.scripted_model import ScriptedModel

pytestmark = pytest.mark.unit

URL = "http://127.0.0.1:8080"


def settings(**env: str) -> AgentSettings:
    return AgentSettings.from_env({"RELAY_MODEL_PROVIDER": "llamacpp", "RELAY_MODEL_URL": URL} | env)


def serving(*ids: str, status: int = 200, body: object = None) -> httpx.MockTransport:
    """A server answering ``GET …/models`` with ``ids`` (or ``status``/``body``); it records the requests."""
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        payload = body if body is not None else {"object": "list", "data": [{"id": i, "object": "model"} for i in ids]}
        return httpx.Response(status, json=payload)

    transport = httpx.MockTransport(answer)
    transport.seen = seen  # type: ignore[attr-defined]
    return transport


# ----------------------------------------------------------------- settings


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"RELAY_MODEL_PROVIDER": "llamacpp"}, "RELAY_MODEL_URL: required for llamacpp (a llama.cpp server, e.g. http://127.0.0.1:8080)"),
        ({"RELAY_MODEL_PROVIDER": "llamacpp", "RELAY_MODEL_URL": "127.0.0.1:8080"}, "RELAY_MODEL_URL: '127.0.0.1:8080' is not an http:// or https:// URL"),
        ({"RELAY_MODEL_PROVIDER": "bedrock", "RELAY_MODEL_URL": URL}, "RELAY_MODEL_URL: used only by llamacpp and openai, not bedrock (unset it, or set RELAY_MODEL_PROVIDER)"),
        ({"RELAY_MODEL_MAX_TOKENS": "lots"}, "RELAY_MODEL_MAX_TOKENS: 'lots' is not a whole number of tokens"),
        ({"RELAY_MODEL_TIMEOUT": "0"}, "RELAY_MODEL_TIMEOUT: 0 is not between 1 and 900 seconds"),
    ],
)
def test_a_bad_model_setting_is_one_line_naming_its_variable(env, message):
    with pytest.raises(ConfigurationError) as raised:
        AgentSettings.from_env(env)
    assert str(raised.value) == message


def test_the_url_is_kept_without_its_trailing_slash_and_llamacpp_lists_models_at_its_root():
    assert models_url(settings(RELAY_MODEL_URL=URL + "/")) == URL + "/v1/models"
    assert models_url(settings(RELAY_MODEL_URL=URL + "/v1")) == URL + "/v1/models"
    openai = AgentSettings.from_env({"RELAY_MODEL_PROVIDER": "openai", "RELAY_MODEL_URL": "http://127.0.0.1:11434/v1"})
    assert models_url(openai) == "http://127.0.0.1:11434/v1/models"


# ----------------------------------------------------------------- the start-up check


def test_the_check_answers_the_model_id_and_sends_the_key():
    transport = serving("SmolLM2", "other")
    assert check_endpoint(settings(RELAY_MODEL_API_KEY="k1"), transport) == "SmolLM2"
    assert check_endpoint(settings(RELAY_MODEL_ID="other"), transport) == "other"
    assert transport.seen[0].headers["Authorization"] == "Bearer k1"
    assert "Authorization" not in transport.seen[1].headers


def test_ollama_serves_a_model_by_its_name_without_the_latest_tag():
    openai = AgentSettings.from_env({"RELAY_MODEL_PROVIDER": "openai", "RELAY_MODEL_URL": "http://127.0.0.1:11434/v1", "RELAY_MODEL_ID": "llama3.1"})
    assert check_endpoint(openai, serving("llama3.1:latest")) == "llama3.1"


def test_an_unreachable_server_is_one_line_naming_relay_model_url():
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("[Errno 111] Connection refused")

    with pytest.raises(ConfigurationError) as raised:
        check_endpoint(settings(), httpx.MockTransport(refuse))
    assert str(raised.value) == f"RELAY_MODEL_URL: cannot reach {URL}: Connection refused"


@pytest.mark.parametrize(
    ("transport", "message"),
    [
        (serving("SmolLM2"), "RELAY_MODEL_ID: 'gpt-4o' is not served by http://127.0.0.1:8080 (it serves: SmolLM2)"),
        (serving(status=401, body={"error": "no"}), "RELAY_MODEL_API_KEY: http://127.0.0.1:8080 wants a key (HTTP 401)"),
        (serving(status=404, body={"error": "no"}), "RELAY_MODEL_URL: http://127.0.0.1:8080 answers HTTP 404 to GET http://127.0.0.1:8080/v1/models: not a llama.cpp server"),
        (serving(body={"models": []}), "RELAY_MODEL_URL: http://127.0.0.1:8080 answers GET http://127.0.0.1:8080/v1/models without a model list: not an OpenAI-compatible server"),
    ],
)
def test_a_server_that_cannot_serve_is_one_line_naming_the_variable(transport, message):
    with pytest.raises(ConfigurationError) as raised:
        check_endpoint(settings(RELAY_MODEL_ID="gpt-4o"), transport)
    assert str(raised.value) == message


def test_a_server_listing_no_model_is_named():
    with pytest.raises(ConfigurationError, match=r"^RELAY_MODEL_URL: http://127.0.0.1:8080 serves no model$"):
        check_endpoint(settings(), serving())


# ----------------------------------------------------------------- the models


def test_llamacpp_is_strands_llamacpp_model_with_a_token_cap_and_a_time_limit():
    model = build_model(settings(RELAY_MODEL_ID="SmolLM2-135M-Instruct-Q4_1", RELAY_MODEL_MAX_TOKENS="300", RELAY_MODEL_TIMEOUT="30"))
    from strands.models.llamacpp import LlamaCppModel

    assert isinstance(model, LlamaCppModel)
    assert model.get_config()["params"] == {"max_tokens": 300}
    assert model.call_seconds == 30  # type: ignore[attr-defined]
    assert describe_model(model) == "llama.cpp server SmolLM2-135M-Instruct-Q4_1"
    assert DEFAULT_MODEL_IDS["llamacpp"] is None  # the server's own


def test_openai_with_a_url_is_an_openai_compatible_server_and_without_one_openai():
    pytest.importorskip("openai")
    local = build_model(AgentSettings.from_env({"RELAY_MODEL_PROVIDER": "openai", "RELAY_MODEL_URL": URL + "/v1", "RELAY_MODEL_ID": "m1"}))
    assert local.client_args["base_url"] == URL + "/v1" and local.client_args["api_key"] == "none"  # type: ignore[attr-defined]
    assert local.get_config()["params"] == {"max_tokens": 1024}
    assert describe_model(local) == "OpenAI-compatible server m1"
    hosted = build_model(AgentSettings.from_env({"RELAY_MODEL_PROVIDER": "openai"}))
    assert "base_url" not in hosted.client_args  # type: ignore[attr-defined]
    assert describe_model(hosted) == "OpenAI API gpt-4o"


def test_who_is_asked_for_json():
    assert wants_structured_output(build_model(settings(RELAY_MODEL_ID="m")))
    assert not wants_structured_output(OfflineModel())
    assert not wants_structured_output(ScriptedModel([]))
    assert wants_structured_output(ScriptedModel([], structured=True))


def test_the_embedded_model_costs_nothing():
    from relay.local.llm import EMBEDDED_MODEL_ID

    assert PRICES.model_tokens[EMBEDDED_MODEL_ID] == (0.0, 0.0)


# ----------------------------------------------------------------- errors at call time


def test_call_time_errors_become_named_relay_errors():
    request = httpx.Request("POST", URL + "/v1/chat/completions")
    not_found = httpx.HTTPStatusError("404", request=request, response=httpx.Response(404, request=request))
    refused = httpx.HTTPStatusError("401", request=request, response=httpx.Response(401, request=request))
    assert isinstance(map_model_error(not_found, "writer"), ConfigurationError)
    assert str(map_model_error(not_found, "writer")).startswith("RELAY_MODEL_ID: the model server does not serve it (HTTP 404")
    assert str(map_model_error(refused, "writer")) == "RELAY_MODEL_API_KEY: the model server refused the key (HTTP 401)"
    bad = httpx.Response(400, request=request, json={"error": {"code": 400, "message": "Cannot use custom grammar constraints with tools."}})
    malformed = map_model_error(httpx.HTTPStatusError("400", request=request, response=bad), "writer")
    assert isinstance(malformed, AgentFailed)  # not retried: the same request is refused again
    assert str(malformed) == "writer: the model server refused the request (HTTP 400: Cannot use custom grammar constraints with tools.)"
    slow = map_model_error(ModelCallTimeout("no answer within 30 s (RELAY_MODEL_TIMEOUT)"), "writer")
    assert isinstance(slow, ModelUnavailable)
    assert str(slow) == "writer: model call failed: ModelCallTimeout: no answer within 30 s (RELAY_MODEL_TIMEOUT)"
