"""The API is strict: the workflows API handler (functions/api) in-process on
API Gateway events against moto. Only ``application/json`` bodies (415 otherwise), JSON
types not coerced, control characters refused in text, and 405 with ``Allow`` for a
method the path does not have."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from relay_core import api_models
from relay_core.errors import InvalidInput, http_status_for

from tests.support.apigw import MotoStores, call, load_function


@pytest.fixture(scope="module")
def api() -> Any:
    return load_function("api")


@pytest.fixture(scope="module")
def moto_stores(tmp_path_factory) -> Any:
    with MotoStores(tmp_path_factory.mktemp("strict")) as stores:
        yield stores


@pytest.fixture
def stores(moto_stores) -> MotoStores:
    moto_stores.reset()
    return moto_stores


# ----- 415: only application/json bodies --------------------------------------------------------------
@pytest.mark.parametrize("content_type", [
    "text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "application/jsonp",
    "application/json; charset=latin-1", "json", " ", "application/ld+json",
])
def test_a_body_that_is_not_application_json_is_a_415_naming_the_header(api, stores, lambda_context, content_type):
    # Given a valid JSON request sent with another media type
    status, headers, answer = call(api, lambda_context, "POST", "/workflows", '{"topic": "Task tokens"}', {"Content-Type": content_type})
    # Then it is refused as 415 naming the header, and nothing starts
    assert status == 415 and headers["Content-Type"] == "application/json"
    assert answer["message"].startswith("Content-Type: must be application/json (UTF-8) for a request body; got ")
    assert stores.executions() == []


def test_a_body_without_content_type_is_a_415(api, stores, lambda_context):
    from tests.support.apigw import event

    raw = event("POST", "/workflows", '{"topic": "t"}', {"X-Other": "1"})
    raw["headers"].pop("Content-Type")
    raw["multiValueHeaders"].pop("Content-Type")
    result = api.handler(raw, lambda_context)
    assert result["statusCode"] == 415
    assert json.loads(result["body"])["message"] == "Content-Type: must be application/json (UTF-8) for a request body; got no Content-Type"
    assert stores.executions() == []


@pytest.mark.parametrize("content_type", ["application/json", "Application/JSON", "application/json; charset=utf-8", 'application/json;charset="UTF-8"'])
def test_application_json_in_any_case_with_utf8_charset_is_accepted(api, stores, lambda_context, content_type):
    status, _, answer = call(api, lambda_context, "POST", "/workflows", '{"topic": "Task tokens"}', {"content-type": content_type})
    assert status == 202, answer
    assert len(stores.executions()) == 1


def test_a_cancel_body_must_be_json_too(api, stores, lambda_context):
    wid = call(api, lambda_context, "POST", "/workflows", {"topic": "t"})[2]["workflow_id"]
    status, _, answer = call(api, lambda_context, "POST", f"/workflows/{wid}/cancel", "reason=r", {"Content-Type": "application/x-www-form-urlencoded"})
    assert status == 415 and answer["message"].startswith("Content-Type: must be application/json")
    assert stores.executions()[0]["status"] == "RUNNING"


# ----- strict JSON types and plain text -------------------------------------------------------------
@pytest.mark.parametrize("reason", ["stop\u0000now", "\u001b[2J", "cr\ronly", "del\u007f"])
def test_control_characters_in_a_cancel_reason_are_a_400(api, stores, lambda_context, reason):
    wid = call(api, lambda_context, "POST", "/workflows", {"topic": "t"})[2]["workflow_id"]
    status, _, answer = call(api, lambda_context, "POST", f"/workflows/{wid}/cancel", {"reason": reason})
    assert (status, answer["message"]) == (400, "reason: must not contain control characters (only tab and newline are allowed)")
    assert stores.executions()[0]["status"] == "RUNNING"


def test_tab_newline_and_crlf_are_kept_as_text(api, stores, lambda_context):
    status, _, answer = call(api, lambda_context, "POST", "/workflows", {"topic": "line one\r\n\tline two"})
    assert status == 202, answer
    request = api_models.parse_workflow_request(json.dumps({"topic": "line one\r\n\tline two"}))
    assert request.topic == "line one\n\tline two"


@pytest.mark.parametrize(("body", "message"), [
    ('{"topic": "t", "questions": "3"}', "questions: must be a JSON integer"),
    ('{"topic": "t", "questions": true}', "questions: must be a JSON integer"),
    ('{"topic": "t", "questions": 1.0}', "questions: must be a JSON integer"),
    ('{"topic": "t", "questions": 2, "max_concurrency": "2", "max_revisions": false}',
     "max_concurrency: must be a JSON integer such as 3 (not a string \"3\", a boolean, or a number with a fraction or exponent such as 3.0); "
     "max_revisions: must be a JSON integer"),
    ('{"topic": ["t"]}', "topic: must be a JSON string"),
])
def test_json_types_are_not_coerced(body, message):
    with pytest.raises(InvalidInput) as caught:
        api_models.parse_workflow_request(body)
    assert str(caught.value).startswith(message) and http_status_for(caught.value) == 400


def test_a_json_number_is_a_percentage_and_an_integer_is_an_integer():
    request = api_models.parse_workflow_request('{"topic": "t", "questions": 4, "tolerated_failure_percentage": 12.5}')
    assert (request.questions, request.tolerated_failure_percentage) == (4, 12.5)
    assert api_models.parse_workflow_request('{"topic": "t", "tolerated_failure_percentage": 50}').tolerated_failure_percentage == 50.0


# ----- 405 with Allow ---------------------------------------------------------------------------------
@pytest.mark.parametrize(("method", "path", "allow"), [
    ("PATCH", "/workflows", "GET, POST"),
    ("OPTIONS", "/workflows", "GET, POST"),
    ("TRACE", "/workflows", "GET, POST"),
    ("DELETE", "/workflows/wf-1", "GET"),
    ("PUT", "/workflows/wf-1", "GET"),
    ("GET", "/workflows/wf-1/cancel", "POST"),
    ("PATCH", "/workflows/wf-1/redrive", "POST"),
    ("POST", "/workflows/wf-1/history", "GET"),
    ("HEAD", "/workflows/wf-1/history", "GET"),
])
def test_a_method_the_path_does_not_have_is_405_json_with_allow(api, stores, lambda_context, method, path, allow):
    status, headers, answer = call(api, lambda_context, method, path)
    assert status == 405 and headers["Allow"] == allow and headers["Content-Type"] == "application/json"
    assert answer["message"] == f"method: {method} is not allowed on {path}; allowed: {allow}"
    assert stores.executions() == []


def test_an_unknown_path_is_still_404_whatever_the_method(api, stores, lambda_context):
    for method in ("GET", "PATCH", "TRACE"):
        status, headers, answer = call(api, lambda_context, method, "/nothing/here")
        assert status == 404 and "Allow" not in headers and answer["message"].startswith(f"no route {method} /nothing/here")


def test_a_method_name_that_is_not_a_plain_word_is_not_echoed(api, stores, lambda_context):
    status, _, answer = call(api, lambda_context, "<SCRIPT>", "/workflows")
    assert status == 405 and answer["message"] == "method: this method is not allowed on /workflows; allowed: GET, POST"


def test_the_resolver_still_exposes_its_routes_where_405_reads_them(api):
    # Powertools keeps routes in private attributes; this fails loudly if an upgrade moves them.
    table = {(method, rule.pattern) for method, rule in api.routes()}
    assert len(table) == 6 and all(isinstance(rule, re.Pattern) for _, rule in api.routes())
    assert {m for m, _ in table} == {"GET", "POST"}
    assert api_models.allowed_methods(api.routes(), "/workflows/x/cancel") == ["POST"]
