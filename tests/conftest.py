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
SPLIT_MODULES = {"e2e/test_durable.py", "e2e/test_cli_run.py"}
#: Tests that use the session's CDK synth all go to one worker, so it is made once per run.
SYNTH_FIXTURES = {"synth", "cli_synth", "synth_outdir_for_budget"}
#: Under ``--dist loadgroup`` the longest groups are handed out first (measured with
#: ``--durations``), so that no long one starts last while the other worker idles.
LONGEST_FIRST = (
    "infra-synth",
    "e2e/test_durable.py",
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


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist reads the xdist_group marks
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tier markers; and, under ``--dist loadgroup``, one xdist group per test module (so its
    module-scoped fixtures are set up once and its module-level tallies see every example),
    except :data:`SPLIT_MODULES`, and one group for every test of the CDK synth; the groups
    ordered by :data:`LONGEST_FIRST`."""
    grouped = getattr(config.option, "dist", "no") == "loadgroup"
    rank: dict[str, int] = {}
    for item in items:
        parts = Path(str(item.fspath)).relative_to(ROOT / "tests").parts
        if parts and parts[0] in TIERS:
            item.add_marker(getattr(pytest.mark, parts[0]))
        if not grouped:
            continue
        module = "/".join(parts)
        if SYNTH_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.xdist_group("infra-synth"))
            rank[item.nodeid] = 0
        else:
            if module not in SPLIT_MODULES:
                item.add_marker(pytest.mark.xdist_group(module))
            rank[item.nodeid] = next((i for i, p in enumerate(LONGEST_FIRST) if module.startswith(p)), len(LONGEST_FIRST))
    if grouped:
        items.sort(key=lambda item: rank[item.nodeid])  # stable: a module keeps its own order


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
