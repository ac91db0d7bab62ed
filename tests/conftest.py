"""Shared fixtures: fake AWS credentials, moto, a Lambda context, the local runtime.

Tiers are folders with strict markers (see pyproject.toml): a test module in
``tests/<tier>/`` gets the ``<tier>`` marker automatically.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TIERS = {"unit", "statemachine", "infra", "e2e", "property"}


#: Modules whose tests share no costly fixture and no module-level tally: pytest-xdist may
#: send each of their tests to any worker (each is a long end-to-end run of its own).
SPLIT_MODULES = {"e2e/test_durable.py", "e2e/test_cli_run.py", "e2e/test_local_model_runs.py"}
#: The modules whose tests use the session's CDK synth (``tests/infra/conftest.py``): one
#: worker runs them all, so the app is synthesized once per run.
SYNTH_MODULES = {"infra/test_infra_stack.py", "infra/test_infra_lint.py"}
#: The longest groups first (measured with ``--durations``), so that no long one starts
#: last while the other worker idles.
LONGEST_FIRST = (
    "e2e/test_durable.py",
    "e2e/test_local_model_runs.py",
    "property/test_api_properties.py",
    "e2e/test_cli_serve.py",
    "e2e/test_cli_run.py",
    "property/test_cli_properties.py",
    "e2e/",
    "unit/agents/test_corpus.py",
    "statemachine/",
    "unit/test_ports.py",
    "infra/",
)


def _module(nodeid: str) -> str:
    """``tests/e2e/test_x.py::test_y[z]`` → ``e2e/test_x.py``."""
    return nodeid.split("::", 1)[0].removeprefix("tests/")


def xdist_group(nodeid: str) -> str:
    """The work unit of a test under ``make test`` (``--dist loadgroup``): the synth modules
    together, a test of :data:`SPLIT_MODULES` alone, any other test with its module (so
    module-scoped fixtures are set up once, and module-level tallies see every example)."""
    module = _module(nodeid)
    if module in SYNTH_MODULES:
        return "infra-synth"
    return nodeid if module in SPLIT_MODULES else module


def _rank(nodeid: str) -> int:
    module = _module(nodeid)
    if module in SYNTH_MODULES:
        return -1
    return next((i for i, p in enumerate(LONGEST_FIRST) if module.startswith(p)), len(LONGEST_FIRST))


def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object | None:
    """``--dist loadgroup``: pytest-xdist's scope scheduling with :func:`xdist_group` as the
    scope. (pytest-xdist 3.8 groups by renaming node ids, which pytest 9.2's node ids no
    longer allow, so the groups are given to the scheduler here instead.)"""
    if config.getoption("dist") != "loadgroup":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class ModuleGroups(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return xdist_group(nodeid)

    return ModuleGroups(config, log)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tier markers (the first folder under tests/); under ``--dist loadgroup`` the tests in
    :data:`LONGEST_FIRST` order (pytest-xdist hands out the groups in collection order)."""
    for item in items:
        parts = Path(str(item.fspath)).relative_to(ROOT / "tests").parts
        if parts and parts[0] in TIERS:
            item.add_marker(getattr(pytest.mark, parts[0]))
    # pytest-xdist's workers have ``loadgroup`` set (their ``dist`` reads "no")
    if getattr(config.option, "loadgroup", False):
        items.sort(key=lambda item: _rank(item.nodeid))  # stable: a module keeps its own order


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """What the fuzz tests tried (:mod:`tests.support.tally`), whichever of them ran."""
    from tests.support.tally import REPORTS

    for title, lines in REPORTS.items():
        terminalreporter.write_sep("-", title)
        for line in lines:
            terminalreporter.write_line(f"  {line}")


@pytest.fixture(autouse=True)
def fresh_metrics():
    """Each test starts with Powertools' metric set empty, as each Lambda invocation does.

    Powertools keeps one metric set per process, shared by every ``Metrics`` instance, and
    only a handler decorated with ``log_metrics`` flushes it. A test that calls a step
    directly (no handler) leaves its metrics behind, and the next handler that flushes
    would print them as its own (a shuffled run counted 14 WorkflowsRedriven for one)."""
    import sys

    observability = sys.modules.get("relay_core.observability")
    if observability is not None:
        observability.metrics.clear_metrics()
    yield


@pytest.fixture
def aws_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fake credentials and region so no test can reach a real account."""
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SECURITY_TOKEN": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(key, value)
    for key in list(os.environ):
        if key.startswith("AWS_ENDPOINT_URL") or key == "AWS_PROFILE":
            monkeypatch.delenv(key, raising=False)


@pytest.fixture
def aws(aws_credentials: None):
    """moto's in-memory AWS for one test."""
    from moto import mock_aws

    with mock_aws():
        yield


@pytest.fixture
def lambda_context():
    """A Lambda context object with the fields Powertools reads."""
    from relay.local.servers import FakeLambdaContext

    return FakeLambdaContext(function_name="test", invoked_function_arn="arn:aws:lambda:us-east-1:123456789012:function:test")


@pytest.fixture
def stores(aws: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    """The artifact bucket, the workflow table and the local approval settings, in moto."""
    import boto3

    from relay.local import runtime

    runtime.create_stores(boto3.client("s3"), boto3.client("dynamodb"))
    env = {
        "RELAY_ARTIFACT_BUCKET": runtime.BUCKET,
        "RELAY_TABLE_NAME": runtime.TABLE,
        "RELAY_API_BASE_URL": "http://127.0.0.1:9",
        "RELAY_SIGNING_SECRET_FILE": str(tmp_path / "signing.key"),
        "RELAY_OUTBOX_DIR": str(tmp_path / "outbox"),
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    from relay_core.adapters.artifact_store import artifact_store
    from relay_core.adapters.workflow_records import workflow_records

    artifact_store.cache_clear()
    workflow_records.cache_clear()
    yield env
    artifact_store.cache_clear()
    workflow_records.cache_clear()
