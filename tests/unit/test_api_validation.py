"""The workflows API (functions/api) validates requests with Powertools' data
validation (declared body models, path, query and header parameters) plus the strict
pre-checks Powertools cannot express, and answers in its own words: in-process on API
Gateway events against moto. The status codes and messages the API had before are pinned
by test_api_handler.py and test_api_strict.py; these tests pin what the move added."""

from __future__ import annotations

import json
from typing import Any

import pytest
from relay_core import api_models

from tests.support.apigw import MotoStores, call, load_function


@pytest.fixture(scope="module")
def api() -> Any:
    return load_function("api")


@pytest.fixture(scope="module")
def moto_stores(tmp_path_factory) -> Any:
    with MotoStores(tmp_path_factory.mktemp("validation")) as stores:
        yield stores


@pytest.fixture
def stores(moto_stores) -> MotoStores:
    moto_stores.reset()
    return moto_stores


# ----- the strict pre-checks run before Powertools' validation ----------------------------------------
def test_the_strict_request_validation_replaces_powertools_own(api):
    # Powertools keeps its request validation middleware in a private attribute; this fails
    # loudly if an upgrade moves it (the 415 and query-name rules would silently stop).
    assert type(api.app._request_validation_middleware) is api.StrictRequestValidation


@pytest.mark.parametrize(("content_type", "body"), [
    ("multipart/form-data; boundary=b", '--b\r\nContent-Disposition: form-data; name="topic"\r\n\r\nTask tokens\r\n--b--\r\n'),
    ("application/x-www-form-urlencoded", "topic=Task+tokens"),
    ("multipart/form-data", "topic=Task+tokens"),
])
def test_a_form_body_that_powertools_would_read_is_still_a_415(api, stores, lambda_context, content_type, body):
    # Given a form that, read as Powertools reads forms, holds a valid request
    status, _, answer = call(api, lambda_context, "POST", "/workflows", body, {"Content-Type": content_type})
    # Then it is refused as not JSON, and nothing starts
    assert status == 415 and answer["message"].startswith("Content-Type: must be application/json (UTF-8) for a request body")
    assert stores.executions() == []


@pytest.mark.parametrize(("body", "message"), [
    ('{"topic": "a", "topic": "b"}', "body: key 'topic' appears more than once in a JSON object; give each key once"),
    ('{"topic": "t", "approver": null, "approver": null}', "body: key 'approver' appears more than once"),
    ('{"topic": "t", "x": {"k": 1, "k": 2}}', "body: key 'k' appears more than once"),
    ("   ", "body: required, a JSON object"),
])
def test_a_body_is_one_json_object_with_each_key_once(api, stores, lambda_context, body, message):
    status, _, answer = call(api, lambda_context, "POST", "/workflows", body)
    assert status == 400 and answer["message"].startswith(message), answer
    assert stores.executions() == []


def test_routes_without_query_parameters_still_ignore_a_query_string(api, stores, lambda_context):
    started = call(api, lambda_context, "POST", "/workflows?trace=1", {"topic": "t"})
    assert started[0] == 202, started
    described = call(api, lambda_context, "GET", f"/workflows/{started[2]['workflow_id']}?x=1&x=2")
    assert described[0] == 200 and described[2]["workflow_id"] == started[2]["workflow_id"]
    # and an unknown path with a query string is still a 404, not a 400 about its parameters
    assert call(api, lambda_context, "GET", "/nothing?x=1")[0] == 404
    assert call(api, lambda_context, "PATCH", "/workflows?x=1")[0] == 405


@pytest.mark.parametrize(("query", "message"), [
    ("limt=5", "limt: Extra inputs are not permitted"),
    ("reverse=true", "reverse: Extra inputs are not permitted"),  # a history parameter, not a list one
    ("limit=5&limit=5", "limit: give this query parameter once"),
])
def test_a_list_query_names_only_its_own_parameters_once(api, stores, lambda_context, query, message):
    status, _, answer = call(api, lambda_context, "GET", "/workflows?" + query)
    assert (status, answer["message"]) == (400, message)


def test_an_idempotency_key_sent_twice_is_refused_rather_than_guessed(api, stores, lambda_context):
    from tests.support.apigw import event

    raw = event("POST", "/workflows", {"topic": "t"}, {"Idempotency-Key": "k-2"})
    raw["multiValueHeaders"]["Idempotency-Key"] = ["k-1", "k-2"]  # as API Gateway passes a repeated header
    result = api.handler(raw, lambda_context)
    assert (result["statusCode"], json.loads(result["body"])) == (400, {"message": "Idempotency-Key: give this header once"})
    assert stores.executions() == []


# ----- one location's problems per answer, in the order the handlers used to check them -----------------
def test_a_bad_body_is_reported_before_a_bad_idempotency_key(api, stores, lambda_context):
    status, _, answer = call(api, lambda_context, "POST", "/workflows", {"topic": 3}, {"Idempotency-Key": " bad"})
    assert (status, answer["message"]) == (400, "topic: must be a JSON string")


def test_a_bad_workflow_id_is_reported_before_the_cancel_bodys_fields(api, stores, lambda_context):
    status, _, answer = call(api, lambda_context, "POST", "/workflows/no%20good/cancel", {})
    assert (status, answer["message"]) == (400, api_models.WORKFLOW_ID_RULE)


def test_a_bad_workflow_id_is_reported_before_the_history_query_values(api, stores, lambda_context):
    status, _, answer = call(api, lambda_context, "GET", "/workflows/" + "a" * 81 + "/history?limit=0")
    assert (status, answer["message"]) == (400, api_models.WORKFLOW_ID_RULE)


def test_every_bad_query_value_is_named(api, stores, lambda_context):
    status, _, answer = call(api, lambda_context, "GET", "/workflows/wf-1/history?limit=0&reverse=maybe")
    assert status == 400
    assert answer["message"].startswith("limit: Input should be greater than or equal to 1; reverse: Input should be a valid boolean")


@pytest.mark.parametrize(("errors", "message"), [
    ([{"type": "missing", "loc": ("body",), "msg": "Field required"}, {"type": "string_pattern_mismatch", "loc": ("header", "idempotency-key"), "msg": "x"}],
     "body: required, a JSON object"),
    ([{"type": "string_pattern_mismatch", "loc": ("header", "idempotency-key"), "msg": "String should match pattern"}], api_models.IDEMPOTENCY_KEY_RULE),
    ([{"type": "int_type", "loc": ("body", "questions"), "msg": "Input should be a valid integer"},
      {"type": "string_pattern_mismatch", "loc": ("path", "workflow_id"), "msg": "x"}], api_models.WORKFLOW_ID_RULE),
    ([{"type": "int_type", "loc": ("body", "questions"), "msg": "Input should be a valid integer"}], "questions: must be a JSON integer such as 3"),
    ([{"type": "int_type", "loc": ("body", "questions"), "msg": "Input should be a valid integer"},
      {"type": "less_than_equal", "loc": ("body", "max_revisions"), "msg": "Input should be less than or equal to 10"}],
     "questions: Input should be a valid integer; max_revisions: Input should be less than or equal to 10"),
    ([{"type": "model_type", "loc": ("body",), "msg": "Input should be an object"}], "body: Input should be an object"),
])
def test_request_validation_errors_are_said_in_the_apis_words(api, errors, message):
    assert api.describe_request_errors(errors).startswith(message)


# ----- answers are checked against their declared models ----------------------------------------------
def test_an_answer_that_does_not_match_its_declared_model_is_our_fault(api, stores, lambda_context, monkeypatch):
    # Given a list that (by a bug of ours) answers something other than a WorkflowList
    monkeypatch.setattr(api.workflows_api, "list_workflows", lambda *args: api_models.ErrorBody(message="not a list"))
    # Then the caller gets a 500 that blames nobody else, not a 400
    status, _, answer = call(api, lambda_context, "GET", "/workflows")
    assert (status, answer) == (500, {"message": "internal error"})


def test_a_json_object_that_repeats_a_key_is_refused_and_starts_nothing(api, stores, lambda_context):
    from tests.support.apigw import event

    result = api.handler(event("POST", "/workflows", '{"topic": "first", "topic": "second"}'), lambda_context)
    assert result["statusCode"] == 400
    assert json.loads(result["body"])["message"].startswith("body: key 'topic' appears more than once")
    assert stores.executions() == []
