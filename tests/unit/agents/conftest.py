"""Fixtures for the agent unit tests: an isolated index cache and a tiny folder corpus.
Fake AWS credentials come from the root conftest (``aws_credentials``); no sockets: moto
intercepts boto3 in-process."""

from __future__ import annotations

from pathlib import Path

import pytest

DOCS = {
    "task-tokens.md": (
        "# Callback task tokens\n\n"
        "A task token is a unique string that Step Functions passes to a callback task. "
        "The workflow pauses until a worker calls SendTaskSuccess or SendTaskFailure with the task token. "
        "Heartbeat timeouts fail the task when the worker stops calling SendTaskHeartbeat.\n\n"
        "A task token expires when the execution times out, after at most one year."
    ),
    "notes/map-state.txt": (
        "The Map state runs a set of steps for each item of an input array. "
        "MaxConcurrency limits how many iterations run at the same time. "
        "ToleratedFailurePercentage lets the Map state succeed when some iterations fail."
    ),
    "guide/approvals.html": (
        "<html><head><title>Human approval pattern</title><style>p{}</style></head><body>"
        "<h1>Human approval</h1><p>An approval email carries a signed link, never the task token itself.</p>"
        "<p>The approver decides on a web page, and the page's handler calls SendTaskSuccess with the decision.</p>"
        "<script>var ignored = 'script text';</script></body></html>"
    ),
}


@pytest.fixture(autouse=True)
def isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Offline provider, a per-test index cache, no corpus configured, caches cleared."""
    from relay_agents.corpus import corpus_from_settings

    for name in ("RELAY_MODEL_PROVIDER", "RELAY_MODEL_ID", "RELAY_CORPUS", "RELAY_KNOWLEDGE_BASE_ID"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("RELAY_CACHE_DIR", str(tmp_path / "cache"))
    corpus_from_settings.cache_clear()
    yield
    corpus_from_settings.cache_clear()


@pytest.fixture
def docs_folder(tmp_path: Path) -> Path:
    """A folder corpus of one .md, one .txt (in a subfolder) and one .html file."""
    root = tmp_path / "docs"
    for name, text in DOCS.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


@pytest.fixture
def folder_corpus(docs_folder: Path, tmp_path: Path):
    from relay_agents.corpus import FolderCorpus

    return FolderCorpus(docs_folder, cache_dir=tmp_path / "cache")


@pytest.fixture(scope="session")
def botocore_corpus(tmp_path_factory: pytest.TempPathFactory):
    """The default corpus, built once per test session (~5 s on 2 cores)."""
    from relay_agents.corpus import BotocoreDocsCorpus

    return BotocoreDocsCorpus(cache_dir=tmp_path_factory.mktemp("botocore-cache"))



@pytest.fixture
def memory_store():
    """The artifact store port, in memory (tests/support/fakes.py)."""
    from tests.support.fakes import InMemoryArtifactStore

    return InMemoryArtifactStore()


#: The artifact bucket of the researcher app's tests (:func:`s3`).
ARTIFACT_BUCKET = "relay-artifacts-test"


@pytest.fixture
def s3(aws_credentials, monkeypatch, docs_folder):
    """moto's S3 with the artifact bucket, and the researcher settings pointing at it and
    at the tiny folder corpus (the artifact store's cached client cleared around it)."""
    import boto3
    from moto import mock_aws
    from relay_core.adapters.artifact_store import artifact_store

    monkeypatch.setenv("RELAY_ARTIFACT_BUCKET", ARTIFACT_BUCKET)
    monkeypatch.setenv("RELAY_CORPUS", str(docs_folder))
    artifact_store.cache_clear()
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=ARTIFACT_BUCKET)
        yield client
    artifact_store.cache_clear()
