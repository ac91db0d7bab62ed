"""The agents against the embedded model's real llama.cpp server (relay.local.llm): the
start-up check, the OpenAI-compatible provider, and each fault of relay_agents.runner's list
made real. A GBNF grammar (llama.cpp's ``grammar`` request field) makes the real server
produce exactly the fault (a runaway, a refusal, a tool call cut mid-way), so each test
makes one or two short calls and cannot pass by luck.

Needs ``make setup-llm``: without it the module is skipped, unless
``RELAY_REQUIRE_LOCAL_MODEL=1`` (CI, ``.ci/run``), which makes a missing model a failure.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

RELAY = str(Path(sys.executable).with_name("relay"))
TOPIC = "How do Step Functions task tokens pause a workflow?"


def require_local_model() -> None:
    """Skip (or, with ``RELAY_REQUIRE_LOCAL_MODEL=1``, fail) when the embedded model is not installed."""
    from relay.local.llm import LocalModelMissing, gguf_path

    try:
        gguf_path()
    except LocalModelMissing as exc:
        if os.environ.get("RELAY_REQUIRE_LOCAL_MODEL") == "1":
            pytest.fail(str(exc))
        pytest.skip(str(exc))


@pytest.fixture(scope="module")
def server() -> Iterator[object]:
    require_local_model()
    from relay.local.llm import EmbeddedModel

    with EmbeddedModel() as model:
        yield model


@pytest.fixture
def env(server, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The agents pointed at the embedded server (``llamacpp``), fresh per test."""
    from relay_agents.corpus import corpus_from_settings

    environment = server.environment()  # type: ignore[attr-defined]
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("RELAY_CACHE_DIR", str(Path(os.environ.get("TMPDIR", "/tmp")) / "relay-e2e-cache"))
    corpus_from_settings.cache_clear()
    return dict(environment)


def llamacpp(max_tokens: int = 64, timeout: float = 120, **params: object):
    """The ``llamacpp`` provider's model for the server in the environment, with request ``params``."""
    from relay_agents.model_factory import build_model
    from relay_agents.settings import AgentSettings

    settings = AgentSettings.from_env(dict(os.environ) | {"RELAY_MODEL_MAX_TOKENS": str(max_tokens), "RELAY_MODEL_TIMEOUT": str(timeout)})
    model = build_model(settings)
    model.update_config(params={"max_tokens": max_tokens, **params})
    return model


def grammar(literal: str, then: str = "") -> str:
    """A GBNF grammar: the text ``literal``, then the GBNF expression ``then``."""
    return f"root ::= {json.dumps(literal)} {then}".strip()


@pytest.fixture
def document(tmp_path: Path):
    from relay_core.models import CitedSource, ResearchDocument, ResearchFinding, ResearchSource

    uri = (tmp_path / "callbacks.md").as_uri()
    return ResearchDocument(
        workflow_id="wf-e2e",
        topic=TOPIC,
        findings=[
            ResearchFinding(
                question_id="q01",
                question="How do task tokens pause a workflow?",
                status="answered",
                summary="The workflow waits until a worker calls SendTaskSuccess with the task token.",
                answer_markdown="The workflow waits until a worker calls SendTaskSuccess with the task token [1].",
                sources=[CitedSource(number=1, ref=1)],
            )
        ],
        sources=[ResearchSource(number=1, title="Callbacks", uri=uri)],
    )


def metered_call(call):  # type: ignore[no-untyped-def]
    from relay_agents.runner import metered

    with metered() as tokens:
        result = call()
    return result, tokens.usage()


# ----------------------------------------------------------------- the start-up check


def test_the_check_names_an_unknown_model_and_an_unreachable_url(env):
    from relay_agents.providers import check_endpoint
    from relay_agents.settings import AgentSettings
    from relay_core.errors import ConfigurationError

    settings = AgentSettings.from_env(env)
    assert check_endpoint(settings) == "SmolLM2-135M-Instruct-Q4_1"
    with pytest.raises(ConfigurationError) as raised:
        check_endpoint(AgentSettings.from_env(env | {"RELAY_MODEL_ID": "llama3.1"}))
    assert str(raised.value) == f"RELAY_MODEL_ID: 'llama3.1' is not served by {env['RELAY_MODEL_URL']} (it serves: SmolLM2-135M-Instruct-Q4_1)"
    with pytest.raises(ConfigurationError, match=r"^RELAY_MODEL_API_KEY: http://127\.0\.0\.1:\d+ refuses the key \(HTTP 401\)$"):
        check_endpoint(AgentSettings.from_env(env | {"RELAY_MODEL_API_KEY": "wrong"}))
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{sock.getsockname()[1]}"
    with pytest.raises(ConfigurationError) as raised:
        check_endpoint(AgentSettings.from_env(env | {"RELAY_MODEL_URL": closed}))
    assert str(raised.value) == f"RELAY_MODEL_URL: cannot reach {closed}: Connection refused"


def test_relay_run_refuses_an_unreachable_model_server_in_one_line_before_starting(tmp_path):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{sock.getsockname()[1]}"
    environment = {k: v for k, v in os.environ.items() if not k.startswith("RELAY_")}
    environment |= {"RELAY_MODEL_PROVIDER": "llamacpp", "RELAY_MODEL_URL": closed}
    result = subprocess.run(
        [RELAY, "run", TOPIC, "--runs-dir", str(tmp_path)], capture_output=True, text=True, timeout=60, env=environment
    )
    assert result.returncode == 2
    assert result.stderr == f"relay: error: RELAY_MODEL_URL: cannot reach {closed}: Connection refused\n"
    assert not any(tmp_path.iterdir())  # nothing started


# ----------------------------------------------------------------- the OpenAI-compatible provider


def test_the_openai_provider_plans_through_the_same_server_with_real_token_counts(env, monkeypatch, docs_folder):
    pytest.importorskip("openai")
    from relay_agents.corpus import FolderCorpus
    from relay_agents.planner import QUESTION_PATTERN, plan_questions

    monkeypatch.setenv("RELAY_MODEL_PROVIDER", "openai")
    monkeypatch.setenv("RELAY_MODEL_URL", env["RELAY_MODEL_URL"] + "/v1")
    monkeypatch.setenv("RELAY_MODEL_MAX_TOKENS", "160")
    # When the planner plans 2 questions through /v1 (a prose turn, then JSON under the schema)
    questions, usage = metered_call(lambda: plan_questions(TOPIC, 2, corpus=FolderCorpus(docs_folder, cache_dir=docs_folder.parent / "c")))
    # Then both are questions of the schema, and the server's token counts were recorded
    import re

    assert len(questions) == 2 and all(re.match(QUESTION_PATTERN, q) for q in questions), questions
    assert usage is not None and usage.model == "SmolLM2-135M-Instruct-Q4_1"
    assert usage.input_tokens > 100 and usage.output_tokens > 10


@pytest.fixture
def docs_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "callbacks.md").write_text(
        "# Callbacks\n\nA Task state can pause with waitForTaskToken until an external system calls SendTaskSuccess "
        "with the task token. A heartbeat keeps long tasks alive.\n"
    )
    return folder


def test_a_structured_answer_cut_at_the_token_cap_is_named_and_its_tokens_counted(env, monkeypatch):
    pytest.importorskip("openai")
    from relay_agents.analyst import AnalysisSections
    from relay_agents.model_factory import build_model
    from relay_agents.runner import StructuredOutputFailed, make_agent, run_structured

    monkeypatch.setenv("RELAY_MODEL_PROVIDER", "openai")
    monkeypatch.setenv("RELAY_MODEL_URL", env["RELAY_MODEL_URL"] + "/v1")
    monkeypatch.setenv("RELAY_MODEL_MAX_TOKENS", "16")
    agent = make_agent(build_model(), "You analyse research.")
    with pytest.raises(StructuredOutputFailed, match=r"^analyst: the structured answer is not of the schema: "):
        metered_call(lambda: run_structured(agent, "Analyse: task tokens pause workflows [1].", AnalysisSections, "analyst"))
    from relay_agents.runner import metered

    with metered() as tokens, pytest.raises(StructuredOutputFailed):
        run_structured(agent, "Analyse: task tokens pause workflows [1].", AnalysisSections, "analyst")
    usage = tokens.usage()
    assert usage is not None and usage.output_tokens == 16  # cut at the cap, and counted


# ----------------------------------------------------------------- faults, made real


def test_a_runaway_answer_is_cut_at_the_token_cap_and_keeps_one_copy_of_each_sentence(env, document):
    from relay_agents.writer import write_report

    # Given a model that repeats one sentence for ever (the grammar allows nothing else)
    model = llamacpp(max_tokens=40, grammar=grammar("Task tokens pause a workflow [1]. ", "root"))
    report, usage = metered_call(lambda: write_report(TOPIC, document, "## Executive summary\n\nA summary [1].", model=model))
    # Then the cut answer keeps the sentence once, and the call's real tokens are counted
    assert report.startswith(f"# {TOPIC}\n\nTask tokens pause a workflow [1].\n\n## Sources")
    assert "_Provenance: written by llama.cpp server SmolLM2-135M-Instruct-Q4_1 for Relay._" in report
    assert usage is not None and usage.output_tokens == 40 and usage.input_tokens > 100


def test_a_tool_call_cut_mid_way_is_agent_failed_not_a_hang(env, document):
    from relay_agents.writer import write_report
    from relay_core.errors import AgentFailed

    cut_call = grammar('<tool_call>\n{"name": "search_documents", "arguments": {"query": "task', "[a-z ]*")
    model = llamacpp(max_tokens=24, grammar=cut_call)
    with pytest.raises(AgentFailed, match=r"^writer: the model reached its token cap without finishing a sentence$"):
        write_report(TOPIC, document, "## Executive summary\n\nA summary [1].", model=model)


def test_a_refusal_is_agent_failed(env, document):
    from relay_agents.writer import write_report
    from relay_core.errors import AgentFailed

    model = llamacpp(grammar=grammar("I'm sorry, but I can't help with that request."))
    with pytest.raises(AgentFailed, match=r"^writer: the model declined to answer: \"I'm sorry, but I can't help with that request.\"$"):
        write_report(TOPIC, document, "## Executive summary\n\nA summary [1].", model=model)


def test_an_empty_answer_is_agent_failed(env, document):
    from relay_agents.writer import write_report
    from relay_core.errors import AgentFailed

    model = llamacpp(grammar=grammar(" "))
    with pytest.raises(AgentFailed, match=r"^writer: the agent returned no text \(stop reason end_turn\)$"):
        write_report(TOPIC, document, "## Executive summary\n\nA summary [1].", model=model)


def test_a_prompt_over_the_context_window_is_sent_again_with_the_findings_summaries(env, document):
    from relay_agents.writer import write_report

    # Given research whose answer alone is more than the 8,192-token context
    long = document.findings[0].model_copy(update={"answer_markdown": "A task token pauses the workflow [1]. " * 1400})
    research = document.model_copy(update={"findings": [long]})
    model = llamacpp(max_tokens=24, grammar=grammar("The workflow waits for SendTaskSuccess [1]."))
    # When the writer writes: the server refuses the first prompt (HTTP 400, over the context)
    report, usage = metered_call(lambda: write_report(TOPIC, research, "## Executive summary\n\nA summary [1].", model=model))
    # Then the second prompt, with the finding's summary, fits and is answered
    assert report.startswith(f"# {TOPIC}\n\nThe workflow waits for SendTaskSuccess [1].")
    assert usage is not None and usage.input_tokens < 8192


def test_a_call_past_its_time_limit_is_model_unavailable_which_the_state_machine_retries(env, document):
    from relay_agents.writer import write_report
    from relay_core.errors import RETRYABLE_ERRORS, ModelUnavailable

    long = document.findings[0].model_copy(update={"answer_markdown": "A task token pauses the workflow [1]. " * 300})
    research = document.model_copy(update={"findings": [long]})
    model = llamacpp(max_tokens=16, timeout=1)
    with pytest.raises(ModelUnavailable, match=r"^writer: model call failed: ModelCallTimeout: no answer within 1 s \(RELAY_MODEL_TIMEOUT\)$"):
        write_report(TOPIC, research, "## Executive summary\n\nA summary [1].", model=model)
    assert "ModelUnavailable" in RETRYABLE_ERRORS
