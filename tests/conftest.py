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


#: The test files that take longest here (``pytest --durations``), run first: with two
#: workers taking whole files (``make test``: ``-n 2 --dist loadfile``), starting the long
#: ones first lets both workers finish together instead of one waiting for the other.
LONGEST_FIRST = (
    "e2e/test_durable.py",
    "property/test_api_properties.py",
    "infra/test_infra_lint.py",
    "e2e/test_cli_run.py",
    "e2e/test_console.py",
    "e2e/test_cli_serve.py",
    "infra/test_infra_build.py",
    "property/test_cli_properties.py",
    "unit/agents/test_corpus.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    rank = {name: n for n, name in enumerate(LONGEST_FIRST)}
    paths = {}
    for item in items:
        parts = Path(str(item.fspath)).relative_to(ROOT / "tests").parts
        if parts and parts[0] in TIERS:
            item.add_marker(getattr(pytest.mark, parts[0]))
        paths[item.nodeid] = "/".join(parts)
    # a stable sort: the order inside each file, and of the other files, is unchanged
    items.sort(key=lambda item: rank.get(paths[item.nodeid], len(rank)))


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
