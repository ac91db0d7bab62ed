"""The offline model stays out of production code paths: importing the agents (what the
Lambda handlers and the AgentCore runtime do) never loads ``relay_agents.offline``; only
the model factory does, and only when the offline provider is selected."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.unit

#: Every module deployed code imports: the four agents, the model factory, the tools, the
#: AgentCore runtime app and what they share.
PRODUCTION_MODULES = (
    "relay_agents.planner",
    "relay_agents.researcher",
    "relay_agents.analyst",
    "relay_agents.writer",
    "relay_agents.model_factory",
    "relay_agents.tools",
    "relay_agents.agentcore_app",
    "relay_agents.runner",
    "relay_agents.prompts",
    "relay_agents.provenance",
    "relay_agents.corpus",
)

PROBE = """
import importlib, json, sys
for name in sys.argv[1].split(","):
    importlib.import_module(name)
if sys.argv[2] == "build":
    from relay_agents.model_factory import build_model
    build_model()
print(json.dumps(sorted(m for m in sys.modules if m == "relay_agents.offline" or m.startswith("relay_agents.offline."))))
"""


def offline_modules_loaded(modules: tuple[str, ...], provider: str, build: bool) -> list[str]:
    """Import ``modules`` in a fresh interpreter (optionally building the model for
    ``provider``) and return the ``relay_agents.offline`` modules it then holds."""
    env = {**os.environ, "RELAY_MODEL_PROVIDER": provider, "AWS_DEFAULT_REGION": "us-east-1",
           "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}  # fmt: skip
    out = subprocess.run(
        [sys.executable, "-c", PROBE, ",".join(modules), "build" if build else "import"],
        capture_output=True, text=True, timeout=120, env=env,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_importing_the_production_agent_modules_does_not_load_the_offline_model():
    # Given a fresh interpreter / When it imports every production agent module
    loaded = offline_modules_loaded(PRODUCTION_MODULES, "offline", build=False)
    # Then no relay_agents.offline module is in sys.modules
    assert loaded == []


def test_building_a_deployed_provider_model_does_not_load_the_offline_model():
    # Given the provider the stack deploys with / When the factory builds the model
    loaded = offline_modules_loaded(PRODUCTION_MODULES, "bedrock", build=True)
    # Then the offline package was never imported
    assert loaded == []


def test_the_offline_provider_loads_the_offline_model_so_the_probe_can_see_it():
    # Control: the same probe reports the package when the offline provider is selected
    loaded = offline_modules_loaded(("relay_agents.model_factory",), "offline", build=True)
    assert "relay_agents.offline" in loaded and "relay_agents.offline.model" in loaded
