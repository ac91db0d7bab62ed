"""The workflows API's OpenAPI document, generated from its Powertools resolver.

``python -m relay.openapi`` (``make openapi``) writes ``docs/openapi.json``;
``python -m relay.openapi --check`` exits 1 when that file differs from what the resolver
generates now. ``tests/unit/test_openapi.py`` runs the check, so the published document
cannot drift from the handler.

The document is ``app.get_openapi_json_schema(...)`` of ``functions/api/app.py`` (every
route's summary, parameters, request body and answers, each with its JSON schema), each
operation's answers listed in status order, with one correction: with data validation
on, Powertools lists a ``422 Validation Error`` answer (and its ``HTTPValidationError``
schema) on every operation, but this API answers validation errors as
``400 {"message": …}`` (its ``RequestValidationError`` handler), so those entries are
removed, with any schema nothing refers to any more.
"""

from __future__ import annotations

import argparse
import json
import sys
from importlib.metadata import version
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
#: Where the document is published.
PUBLISHED = ROOT / "docs" / "openapi.json"
TITLE = "Relay workflows API"
#: The deployed stage (``stacks/api.py``: ``STAGE``; a test checks they agree).
STAGE = "v1"
DESCRIPTION = """\
Start research workflows, follow them, cancel and redrive them, and read their execution history.

Deployed, the API is an Amazon API Gateway REST API with IAM authorisation: sign every request with \
AWS Signature Version 4 (service `execute-api`). Locally, `relay serve` answers the same requests \
on 127.0.0.1 without authentication.

Request bodies must be `application/json` (UTF-8) and are validated strictly: unknown fields are \
refused, each key may appear once, JSON types are not coerced (`"3"`, `true` and `3.0` are not \
integers) and text refuses control characters other than tab and newline. Every error is JSON \
`{"message": "…"}` naming the field and the rule. A method a path does not have is `405` with an \
`Allow` header; an unknown path is `404`. The approval pages (`/approvals/{id}`, HTML behind a \
signed link) are not part of this document.
"""


def document() -> dict[str, Any]:
    """The OpenAPI 3 document of ``functions/api/app.py``, as a JSON object.

    Raises:
        FileNotFoundError: the handler is not where this repository keeps it.
    """
    from aws_lambda_powertools.event_handler.openapi.models import APIKey, Server, ServerVariable

    from relay.local.servers import load_handler
    from relay.serve import ServeOptions

    api = load_handler(ROOT / "functions" / "api")
    text = api.app.get_openapi_json_schema(
        title=TITLE,
        version=version("relay"),
        description=DESCRIPTION,
        servers=[
            Server(
                url=f"https://{{restApiId}}.execute-api.{{region}}.amazonaws.com/{STAGE}",
                description="deployed (API Gateway, IAM authorisation)",
                variables={
                    "restApiId": ServerVariable(default="abc123", description="the RestApi id (stack output)"),
                    "region": ServerVariable(default="us-east-1", description="the stack's AWS Region"),
                },
            ),
            Server(url=f"http://127.0.0.1:{ServeOptions.port}", description="relay serve (no authentication)"),
        ],
        security_schemes={
            # API Gateway's way to say "IAM authorisation" in OpenAPI (x-amazon-apigateway-authtype)
            "sigv4": APIKey.model_validate({
                "type": "apiKey",
                "in": "header",
                "name": "Authorization",
                "description": "AWS Signature Version 4 (IAM authorisation, service execute-api)",
                "openapi_extensions": {"x-amazon-apigateway-authtype": "awsSigv4"},
            })
        },
        security=[{"sigv4": []}],
    )
    doc: dict[str, Any] = json.loads(text)
    _drop_powertools_422(doc)
    for operations in doc.get("paths", {}).values():  # answers in status order, for readers
        for operation in operations.values():
            operation["responses"] = dict(sorted(operation.get("responses", {}).items()))
    return doc


def _drop_powertools_422(doc: dict[str, Any]) -> None:
    """Remove the ``422 Validation Error`` answers Powertools adds to every operation (this
    API answers 400 for them), then every component schema no longer referred to."""
    for operations in doc.get("paths", {}).values():
        for operation in operations.values():
            responses = operation.get("responses", {})
            if "HTTPValidationError" in json.dumps(responses.get("422", {})):
                del responses["422"]
    schemas = doc.get("components", {}).get("schemas", {})
    used: set[str] = set()
    pending = _refs({k: v for k, v in doc.items() if k != "components"})
    while pending:
        name = pending.pop()
        if name not in used and name in schemas:
            used.add(name)
            pending |= _refs(schemas[name])
    for name in [n for n in schemas if n not in used]:
        del schemas[name]


def _refs(value: Any) -> set[str]:
    """Names of the component schemas ``value`` refers to (``#/components/schemas/NAME``)."""
    prefix = "#/components/schemas/"
    if isinstance(value, dict):
        found = {value["$ref"][len(prefix):]} if str(value.get("$ref", "")).startswith(prefix) else set()
        for item in value.values():
            found |= _refs(item)
        return found
    if isinstance(value, list):
        return set().union(*(_refs(item) for item in value)) if value else set()
    return set()


def render(doc: dict[str, Any]) -> str:
    """The document as published: indented JSON, keys in the order Powertools gives them, one trailing newline."""
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m relay.openapi", description="Write (or check) docs/openapi.json.")
    parser.add_argument("--check", action="store_true", help="exit 1 if the published document differs from the generated one")
    parser.add_argument("--output", type=Path, default=PUBLISHED, help="where to write it (default docs/openapi.json)")
    options = parser.parse_args(argv)
    text = render(document())
    if options.check:
        current = options.output.read_text(encoding="utf-8") if options.output.exists() else ""
        if current != text:
            print(f"{options.output} is out of date: run `make openapi` (python -m relay.openapi)", file=sys.stderr)
            return 1
        print(f"{options.output} is up to date")
        return 0
    options.output.parent.mkdir(parents=True, exist_ok=True)
    options.output.write_text(text, encoding="utf-8")
    print(f"wrote {options.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
