from __future__ import annotations

import hashlib

import pytest
from relay_core.errors import ModelThrottled
from relay_core.models import Finding
from starlette.testclient import TestClient

pytestmark = pytest.mark.unit

BUCKET = "relay-artifacts-test"
SESSION = "s" * 40
PAYLOAD = {
    "workflow_id": "wf-123",
    "question_id": "q01",
    "question": "How do heartbeat timeouts and task tokens work?",
}


def test_entrypoint_stores_the_finding_and_returns_it(s3, docs_folder):
    from relay_agents.agentcore_app import invoke

    # When the entrypoint handles a ResearcherRequest
    body = invoke(dict(PAYLOAD))
    # Then it answers a Finding as plain JSON
    finding = Finding.model_validate(body)
    assert finding.question_id == "q01"
    assert finding.finding.key == "workflows/wf-123/findings/q01.md"
    assert (docs_folder / "task-tokens.md").as_uri() in [s.uri for s in finding.sources]
    # And the S3 object is the full answer, matching the reference's sha256
    stored = s3.get_object(Bucket=BUCKET, Key=finding.finding.key)["Body"].read()
    assert hashlib.sha256(stored).hexdigest() == finding.finding.sha256
    assert len(stored) == finding.finding.bytes
    assert b"**Sources**" in stored and b"task-tokens.md" in stored


def test_invalid_payload_is_a_400_naming_the_field(s3):
    from relay_agents.agentcore_app import invoke

    response = invoke({"workflow_id": "wf-123", "question_id": "question-1", "question": "x"})
    assert response.status_code == 400
    assert b"ValidationException" in response.body and b"question_id" in response.body


def test_throttling_is_a_429_throttling_exception(s3, monkeypatch):
    import relay_agents.researcher as researcher
    from relay_agents.agentcore_app import invoke

    def throttled(question, **kwargs):
        raise ModelThrottled("researcher: model throttled: ThrottlingException")

    monkeypatch.setattr(researcher, "research", throttled)
    response = invoke(dict(PAYLOAD))
    assert response.status_code == 429
    assert b'"error":"ThrottlingException"' in response.body


def test_http_contract_through_the_asgi_app(s3, monkeypatch):
    from relay_agents.agentcore_app import app

    with TestClient(app) as client:  # in-process ASGI: no sockets
        assert client.get("/ping").json()["status"] == "Healthy"
        ok = client.post(
            "/invocations", json=PAYLOAD, headers={"X-Amzn-Bedrock-AgentCore-Runtime-Session-Id": SESSION}
        )
        assert ok.status_code == 200 and ok.headers["content-type"].startswith("application/json")
        assert Finding.model_validate(ok.json()).question_id == "q01"
        bad = client.post("/invocations", json={"question": "no ids"})
        assert bad.status_code == 400 and "workflow_id" in bad.json()["message"]


def test_agent_card_describes_name_version_schemas_auth_and_tools():
    from relay_agents.agentcore_app import AGENT_CARD_PATH, app
    from relay_core import __version__
    from relay_core.models import ResearcherRequest

    # Given the runtime app, When a client fetches the well-known agent card
    with TestClient(app) as client:
        response = client.get(AGENT_CARD_PATH)
    # Then it is JSON naming the agent, its version and what it takes
    assert AGENT_CARD_PATH == "/.well-known/agent-card.json"
    assert response.status_code == 200 and response.headers["content-type"].startswith("application/json")
    card = response.json()
    assert card["name"] == "relay-researcher" and card["version"] == __version__
    assert len(card["description"]) > 40
    assert card["inputSchema"] == ResearcherRequest.model_json_schema()
    assert set(card["inputSchema"]["required"]) == {"workflow_id", "question_id", "question"}
    assert card["outputSchema"]["title"] == "Finding"
    assert (
        card["auth"]["type"] == "aws-sigv4"
        and card["auth"]["action"] == "bedrock-agentcore:InvokeAgentRuntime"
    )
    # And the tools are the agent's real Strands tool specs
    (tool,) = card["tools"]
    assert tool["name"] == "search_documents"
    assert "query" in tool["inputSchema"]["properties"]
    assert card["errors"]["ThrottlingException"] == 429


def test_importing_the_runtime_defers_the_agent_and_heavy_libraries():
    import subprocess
    import sys

    # Given a fresh interpreter, When it imports the runtime app (what AgentCore's main.py does)
    code = (
        "import sys, relay_agents.agentcore_app as r; "
        "heavy = [m for m in ('strands', 'bm25s', 'numpy', 'relay_agents.researcher', 'relay_core.adapters.artifact_store', "
        "'relay_core.observability', 'aws_xray_sdk') if m in sys.modules]; "
        "print(','.join(heavy))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    # Then none of the agent's heavy modules is loaded before the first invocation
    assert out.stdout.strip() == "", out.stdout


def test_deployed_agent_code_runs_without_the_offline_model_libraries(docs_folder, tmp_path):
    import subprocess
    import sys

    # Given an interpreter where scikit-learn, scipy and yake cannot be imported (the
    # deployed layers and bundle leave them out: they serve only the offline model)
    code = (
        "import sys\n"
        "for m in ('sklearn', 'scipy', 'yake'): sys.modules[m] = None\n"
        "import relay_agents.planner, relay_agents.analyst, relay_agents.writer, relay_agents.researcher\n"
        "import relay_agents.agentcore_app\n"
        "from relay_agents.corpus import FolderCorpus\n"
        "from relay_agents.text import markdown_to_text, split_sentences\n"
        "from relay_agents.model_factory import build_model\n"
        "hits = FolderCorpus(sys.argv[1], cache_dir=sys.argv[2]).search('task token heartbeat', 3)\n"
        "assert hits, 'no hits'\n"
        "assert split_sentences(markdown_to_text('# T\\n\\nOne sentence here. Another one there.'))\n"
        "print(type(build_model()).__name__)\n"
    )
    env = {**__import__("os").environ, "RELAY_MODEL_PROVIDER": "bedrock", "AWS_DEFAULT_REGION": "us-east-1",
           "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}  # fmt: skip
    # When the agents are imported, the corpus is searched (bm25s) and the Bedrock model built
    out = subprocess.run([sys.executable, "-c", code, str(docs_folder), str(tmp_path / "cache")],
                         capture_output=True, text=True, timeout=120, env=env)  # fmt: skip
    # Then everything the deployed (Bedrock) path uses works
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "BedrockModel"
