"""The workflows API's OpenAPI document (docs/openapi.json) is what the API handler's
Powertools resolver generates now (relay/openapi.py), and it describes every route: its
parameters, its request body and every answer, each with a schema."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from relay import openapi
from tests.support.apigw import load_function

SAMPLE = {"workflow_id": "wf-1"}
#: The request body model of each operation that takes one.
BODIES = {("POST", "/workflows"): "StartWorkflowRequest", ("POST", "/workflows/{workflow_id}/cancel"): "CancelRequest"}
#: The query parameters of each operation that reads a query string.
QUERIES = {("GET", "/workflows"): ["status", "limit", "next_token"], ("GET", "/workflows/{workflow_id}/history"): ["limit", "next_token", "reverse"]}


@pytest.fixture(scope="module")
def doc() -> dict[str, Any]:
    return openapi.document()


@pytest.fixture(scope="module")
def api() -> Any:
    return load_function("api")


def operations(doc: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(method.upper(), path): op for path, ops in doc["paths"].items() for method, op in ops.items()}


def test_the_published_document_is_what_the_resolver_generates_now(doc):
    published = openapi.PUBLISHED.read_text(encoding="utf-8")
    assert published == openapi.render(doc), "docs/openapi.json is out of date: run `make openapi` (python -m relay.openapi)"


def test_the_check_command_fails_on_a_stale_document_and_passes_on_a_current_one(tmp_path, capsys):
    target = tmp_path / "openapi.json"
    target.write_text(openapi.PUBLISHED.read_text(encoding="utf-8").replace("Start a workflow", "Begin a workflow"), encoding="utf-8")
    assert openapi.main(["--check", "--output", str(target)]) == 1
    assert "out of date: run `make openapi`" in capsys.readouterr().err
    assert openapi.main(["--output", str(target)]) == 0
    assert openapi.main(["--check", "--output", str(target)]) == 0
    assert json.loads(target.read_text(encoding="utf-8"))["info"]["title"] == openapi.TITLE


def test_every_route_of_the_resolver_is_in_the_document_and_nothing_else(api, doc):
    # Given each documented operation's path with its parameters filled in
    documented = {(method, re.sub(r"\{(\w+)\}", lambda m: SAMPLE[m.group(1)], path)): (method, path) for method, path in operations(doc)}
    # Then each route of the resolver matches exactly one operation, and every operation is a route
    matched = set()
    for method, rule in api.routes():
        hits = [key for (m, sample), key in documented.items() if m == method and rule.fullmatch(sample)]
        assert len(hits) == 1, (method, rule.pattern, hits)
        matched.add(hits[0])
    assert matched == set(operations(doc)) and len(api.routes()) == len(matched) == 6


@pytest.mark.parametrize("key", sorted(set(BODIES) | set(QUERIES) | {("GET", "/workflows/{workflow_id}"), ("POST", "/workflows/{workflow_id}/redrive")}))
def test_each_operation_has_its_parameters_body_and_answers_with_schemas(doc, key):
    method, path = key
    op = operations(doc)[key]
    schemas = doc["components"]["schemas"]
    assert op["summary"] and op["operationId"] and op["description"]
    # its path parameters and query parameters, each with a schema
    params = {(p["in"], p["name"]): p for p in op.get("parameters", [])}
    assert {name for where, name in params if where == "path"} == set(re.findall(r"\{(\w+)\}", path))
    assert [name for where, name in params if where == "query"] == QUERIES.get(key, [])
    assert all(p["schema"] and p["description"] for p in params.values())
    # its request body: a JSON object model, required, refusing unknown fields
    if key in BODIES:
        body = op["requestBody"]
        assert body["required"] is True and body["content"]["application/json"]["schema"]["$ref"] == f"#/components/schemas/{BODIES[key]}"
        assert schemas[BODIES[key]]["additionalProperties"] is False
    else:
        assert "requestBody" not in op
    # every answer: one success with its model, errors as {"message"}, each with a JSON schema
    answers = op["responses"]
    successes = [code for code in answers if code.startswith("2")]
    assert len(successes) == 1 and {"400", "500"} <= set(answers) and "422" not in answers
    assert ("415" in answers) == (key in BODIES)
    for code, answer in answers.items():
        ref = answer["content"]["application/json"]["schema"]["$ref"]
        assert answer["description"] and ref.removeprefix("#/components/schemas/") in schemas, (code, ref)
        if not code.startswith("2"):
            assert ref == "#/components/schemas/ErrorBody"


def test_every_reference_resolves_and_every_schema_is_used(doc):
    schemas = doc["components"]["schemas"]
    refs = set(re.findall(r'"#/components/schemas/([^"]+)"', json.dumps(doc)))
    assert refs == set(schemas)
    assert "HTTPValidationError" not in schemas and "ResponseValidationError" not in schemas


def test_the_document_names_how_to_call_the_api(doc):
    from relay.serve import ServeOptions

    assert doc["openapi"].startswith("3.") and doc["info"]["title"] == openapi.TITLE
    assert doc["security"] == [{"sigv4": []}]
    assert doc["components"]["securitySchemes"]["sigv4"] == {
        "type": "apiKey", "in": "header", "name": "Authorization", "x-amazon-apigateway-authtype": "awsSigv4",
        "description": "AWS Signature Version 4 (IAM authorisation, service execute-api)",
    }
    deployed, local = (s["url"] for s in doc["servers"])
    stage = re.search(r'^STAGE = "(\w+)"', (openapi.ROOT / "stacks" / "api.py").read_text(encoding="utf-8"), re.M)
    assert stage and deployed.endswith("/" + stage.group(1))  # the stack's stage (without importing the CDK)
    assert local == f"http://127.0.0.1:{ServeOptions.port}"
