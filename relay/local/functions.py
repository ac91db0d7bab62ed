"""The local runtime's functions as the stack deploys them: each function's
:class:`relay.local.servers.FunctionConfig` (environment, timeout, memory) from the
contracts, and the workers started ahead of the first invocations."""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from relay_core.contracts import (
    ALL_FUNCTIONS,
    STATE_MACHINE_VARIABLE,
    TASK_FUNCTIONS,
    TaskFunction,
    function_environment,
)

#: Variables only the functions that name them get (:attr:`relay_core.contracts.TaskFunction.variables`).
OWN_VARIABLES = frozenset(name for spec in ALL_FUNCTIONS.values() for name in spec.variables)
#: Variables of the runtime's environment a worker also gets, as Lambda gives its own
#: (``PATH``, ``LANG``, ``TZ``, …): the system's, not Relay's settings.
SYSTEM_VARIABLES = ("PATH", "LANG", "LC_ALL", "HOME", "TMPDIR", "SSL_CERT_FILE", "REQUESTS_CA_BUNDLE")
#: Credentials (fake) and Region, as Lambda gives them to every function.
AWS_VARIABLES = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_REGION", "AWS_DEFAULT_REGION")
#: The functions a worker is started for as the runtime starts, in the order a workflow
#: first invokes them (``reconcile`` runs every 15 minutes: its first run starts its own).
PRESTART_ORDER = (*(spec.name for spec in TASK_FUNCTIONS[:4]), "approvals", *(spec.name for spec in TASK_FUNCTIONS[4:]),
                  "record_failure", "api")


def function_config(spec: TaskFunction, folder: Path, aws_url: str, arn: str, state_machine_arn: str, log_level: str) -> Any:
    """How function ``spec`` runs locally (:class:`relay.local.servers.FunctionConfig`): its
    timeout and memory from the contract, and exactly the environment the stack gives it
    (:func:`relay_core.contracts.function_environment`) with local values: the shared
    variables are this process's ``RELAY_*`` settings (the runtime's stores, links,
    outbox, model and corpus: what the stack's resources and settings are when deployed;
    not ``RELAY_LOCAL_*``, the runtime's own), the function's own are the local state
    machine's; then what Lambda sets itself (the function's name, memory, log group,
    Region, credentials) and the endpoints of the in-memory AWS (``aws_url``). Powertools
    logs at ``log_level``; tracing and metrics are off (no X-Ray or CloudWatch here)."""
    from relay.local.servers import FunctionConfig
    from relay.local.servers.aws_endpoint import SERVICE_IDS

    shared = {
        key: value
        for key, value in os.environ.items()
        if key.startswith("RELAY_") and key not in OWN_VARIABLES and not key.startswith("RELAY_LOCAL_")
    }
    lambda_variables = {
        "AWS_LAMBDA_FUNCTION_NAME": spec.name,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory_mb),
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{spec.name}",
        "LAMBDA_TASK_ROOT": str(folder),
        "_HANDLER": "app.handler",
        "TZ": ":UTC",
        **{key: os.environ[key] for key in (*SYSTEM_VARIABLES, *AWS_VARIABLES) if key in os.environ},
        **{f"AWS_ENDPOINT_URL_{service}": aws_url for service in SERVICE_IDS},
        **{key: value for key, value in os.environ.items() if key.startswith("AWS_ENDPOINT_URL_")},
    }
    environment = {
        **lambda_variables,
        **function_environment(spec, shared, {STATE_MACHINE_VARIABLE: state_machine_arn}),
        "POWERTOOLS_LOG_LEVEL": log_level,
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_METRICS_DISABLED": "true",
    }
    prime = f"{__name__}:prime_agent" if spec.runs_agent else ""
    return FunctionConfig(spec.name, folder, environment, spec.timeout_seconds, spec.memory_mb, arn, prime)


def prime_agent() -> None:
    """An agent function's priming, in its worker's init phase (with its environment): the
    corpus index loaded and, with the offline model, its sentence ranking made, which the
    agents' first invocation would otherwise do (a second of CPU and more)."""
    from relay_agents.corpus import corpus_from_settings
    from relay_agents.settings import AgentSettings

    settings = AgentSettings.from_env()
    if settings.model_provider == "offline":
        from relay_agents.text import rank_sentences

        rank_sentences(["Warm up the sentence ranking.", "It builds its models on first use."])
    if not (settings.knowledge_base_id or (settings.corpus or "").startswith("s3://")):
        corpus_from_settings(settings).search("warm up", k=1)


def prestart_in_background(pools: Mapping[str, Any], after: threading.Thread) -> threading.Thread:
    """Start one worker per function in :data:`PRESTART_ORDER`, one at a time (so the first
    is ready soonest), once ``after`` (the fork server's start) has finished."""

    def prestart() -> None:
        after.join()
        for name in PRESTART_ORDER:
            if name in pools:
                with contextlib.suppress(Exception):  # the first invocation starts one and reports why
                    pools[name].prestart(1, wait=True)

    thread = threading.Thread(target=prestart, name="prestart-workers", daemon=True)
    thread.start()
    return thread
