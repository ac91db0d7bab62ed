"""Every loopback server of the local runtime answers only its own names, and the report
link of the local status answer is a loopback URL that serves the report.

A web page can rebind a DNS name it controls to 127.0.0.1 (DNS rebinding): the browser
then sends ``Host: evil.example:PORT`` to a local server. Each server refuses that name
(421) and answers ``127.0.0.1``, ``localhost`` and ``[::1]`` with its port, so a page can
neither read the local workflows nor start one. The botocore clients inside the runtime
send ``Host: 127.0.0.1:PORT`` and still reach their endpoints.
"""

from __future__ import annotations

import http.client
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest

EVIL = "evil.example"
OWN_NAMES = ("127.0.0.1", "localhost", "[::1]")


@pytest.fixture(scope="module")
def served(relay: Any) -> Iterator[Any]:
    """The module's runtime with its console attached to the API server."""
    from relay.local.console import serve_console

    console = serve_console(relay)
    try:
        yield relay
    finally:
        console.stop()


@dataclass
class Answer:
    status: int
    headers: dict[str, str]  # names lowercased
    body: bytes


def _ask(port: int, host: str, method: str, path: str, body: bytes = b"", headers: str = "") -> Answer:
    """One request to 127.0.0.1:``port`` naming ``host`` in its ``Host`` header."""
    sent = {"Host": host, "Connection": "close"}
    for line in filter(None, headers.split("\r\n")):
        name, _, value = line.partition(": ")
        sent[name] = value
    if body:
        sent["Content-Type"] = "application/json"
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        connection.request(method, path, body=body or None, headers=sent)
        answer = connection.getresponse()
        return Answer(answer.status, {k.lower(): v for k, v in answer.getheaders()}, answer.read())
    finally:
        connection.close()


#: Per server: (how to find its port, a request it answers, what its answer must be).
SERVERS: dict[str, tuple[Callable[[Any], int], tuple[str, str, bytes, str], Callable[[Any], bool]]] = {
    "API": (lambda r: r.api.port, ("GET", "/workflows?limit=1", b"", ""), lambda a: a.status == 200 and "items" in json.loads(a.body)),
    "console": (
        lambda r: r.api.port, ("GET", "/console/executions", b"", ""), lambda a: a.status == 200 and b"Executions" in a.body
    ),
    "Lambda endpoint": (
        lambda r: r.lambdas.port,
        ("POST", "/2015-03-31/functions/no_such_function/invocations", b"{}", ""),
        lambda a: a.status == 404 and a.headers.get("x-amzn-errortype") == "ResourceNotFoundException",
    ),
    "AgentCore gateway": (
        lambda r: r.gateway.port,
        ("POST", "/runtimes/arn%3Anone/invocations", b"{}", "X-Amzn-Bedrock-AgentCore-Runtime-Session-Id: " + "s" * 40 + "\r\n"),
        lambda a: a.status == 404 and a.headers.get("x-amzn-errortype") == "ResourceNotFoundException",
    ),
    "researcher agent app": (lambda r: r.researcher.port, ("GET", "/ping", b"", ""), lambda a: a.status == 200),
}


@pytest.mark.parametrize("server", list(SERVERS))
def test_a_foreign_host_is_refused_and_the_servers_own_names_are_answered(served, server):
    port_of, (method, path, body, headers), answered = SERVERS[server]
    port = port_of(served)
    # Given a request such as a rebound web page would send: Host names another site, with the port
    refused = _ask(port, f"{EVIL}:{port}", method, path, body, headers)
    # Then it is refused before anything reads it
    assert 400 <= refused.status < 500 and refused.status == 421, (server, refused)
    assert b"Host" in refused.body and EVIL.encode() not in refused.body
    # And the same request to each of the server's own names is answered
    for name in OWN_NAMES:
        answer = _ask(port, f"{name}:{port}", method, path, body, headers)
        assert answered(answer), (server, name, answer)
    # And its own name on another port, or no port, is another server's name
    assert _ask(port, f"127.0.0.1:{port + 1}", method, path, body, headers).status == 421
    assert _ask(port, "127.0.0.1", method, path, body, headers).status == 421


def test_a_rebound_page_cannot_start_or_list_workflows(served):
    # Given the requests of the report: a page on evil.example rebound to 127.0.0.1, with a matching Origin
    port = served.api.port
    origin = f"Origin: http://{EVIL}:{port}\r\n"
    start = json.dumps({"topic": "spend the user's money", "questions": 1}).encode()

    def executions() -> list[str]:
        return [e["name"] for e in served.sfn.list_executions(stateMachineArn=served.state_machine_arn)["executions"]]

    before = executions()
    # Then neither the list nor the start reaches the API, and nothing was started
    assert _ask(port, f"{EVIL}:{port}", "GET", "/workflows", headers=origin).status == 421
    assert _ask(port, f"{EVIL}:{port}", "POST", "/workflows", start, headers=origin).status == 421
    assert executions() == before


def test_the_botocore_clients_inside_the_runtime_reach_their_endpoints(served):
    # Given plain boto3 clients on the runtime's service endpoints (they send Host: 127.0.0.1:PORT)
    lambdas = boto3.client("lambda", region_name="us-east-1")
    agentcore = boto3.client("bedrock-agentcore", region_name="us-east-1")
    # Then the Lambda endpoint runs a handler (here refusing an empty event, as Lambda reports it)
    answer = lambdas.invoke(FunctionName=served.lambdas.arn("finalize"), Payload=b"{}")
    assert answer["StatusCode"] == 200 and answer.get("FunctionError") == "Unhandled"
    # And the AgentCore gateway answers with its own validation
    with pytest.raises(agentcore.exceptions.ValidationException):
        agentcore.invoke_agent_runtime(agentRuntimeArn=served.researcher_arn, runtimeSessionId="s" * 33, payload=b"not json")
    assert any(call["arn"] == served.researcher_arn for call in served.gateway.calls)


def test_the_local_report_link_is_a_loopback_url_that_serves_the_report(served):
    # Given a report stored through the artifact store the handlers build in the local runtime
    from relay_core.adapters.artifact_store import artifact_store
    from relay_core.config import StoreSettings, load

    settings = load(StoreSettings)
    store = artifact_store(settings.artifact_bucket, settings.artifact_base_url)
    text = "# Report\n\nTask tokens resume a waiting workflow [task-tokens.md].\n"
    ref = store.put_text("workflows/link-check/report.md", text)
    # When it is presigned (what GET /workflows/{id} answers as report.url)
    url = store.presigned_url(ref, expires_in=3600)
    # Then the link is the local API's, and it answers the report's Markdown
    assert url == f"{served.api_url}/artifacts/workflows/link-check/report.md"
    assert os.environ["RELAY_ARTIFACT_BASE_URL"] == f"{served.api_url}/artifacts"
    answer = _ask(served.api.port, f"127.0.0.1:{served.api.port}", "GET", "/artifacts/workflows/link-check/report.md")
    assert answer.status == 200 and answer.body.decode("utf-8") == text
    assert answer.headers["content-type"].startswith("text/markdown") and answer.headers["content-security-policy"] == "sandbox"
    # And nothing outside the workflows' artifacts, nor a missing one, is served
    for path in ("/artifacts/signing.key", "/artifacts/workflows/link-check/missing.md", "/artifacts/workflows/../x"):
        assert _ask(served.api.port, f"localhost:{served.api.port}", "GET", path).status == 404, path
