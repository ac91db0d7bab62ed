"""relay serve copies each finished report out once, told by the record writes, never by polling."""

from __future__ import annotations

import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from relay.local import moto_patches, runtime
from relay.serve import ReportExporter

pytestmark = pytest.mark.unit


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(key, value)
    moto_patches.install()
    with mock_aws():
        s3 = boto3.client("s3")
        runtime.create_stores(s3, boto3.client("dynamodb"))
        yield types.SimpleNamespace(s3=s3, table=boto3.resource("dynamodb").Table(runtime.TABLE))


def _finish(aws: Any, workflow_id: str, text: str) -> None:
    from relay_core.adapters.artifact_store import S3ArtifactStore

    ref = S3ArtifactStore(runtime.BUCKET, client=aws.s3).put_text(f"workflows/{workflow_id}/report.md", text)
    aws.table.put_item(Item={"pk": f"WORKFLOW#{workflow_id}", "workflow_id": workflow_id, "status": "COMPLETED",
                             "created_at": "2026-01-01T00:00:00Z", "report": ref.model_dump()})  # fmt: skip


def test_reports_are_copied_once_from_the_listing_then_as_records_complete(aws, tmp_path: Path) -> None:
    # Given a workflow that finished before the server started
    _finish(aws, "wf-old", "# old")
    exporter = ReportExporter(aws, tmp_path)
    moto_patches.add_persistence(exporter)
    try:
        # When the first pass runs: the listed report is copied
        assert exporter.export_all() == [tmp_path / "wf-old.md"]
        assert (tmp_path / "wf-old.md").read_text() == "# old"
        # And nothing new means nothing to copy
        assert exporter.export() == []
        # When a workflow runs and then completes
        aws.table.put_item(Item={"pk": "WORKFLOW#wf-new", "workflow_id": "wf-new", "status": "RUNNING", "created_at": "2026-01-02T00:00:00Z"})
        assert exporter.export() == []
        _finish(aws, "wf-new", "# new")
        # Then exactly its report is copied, once
        assert exporter.export() == [tmp_path / "wf-new.md"]
        assert (tmp_path / "wf-new.md").read_text() == "# new"
        assert exporter.export() == []
        # And a file already there is left alone
        (tmp_path / "wf-new.md").write_text("edited")
        _finish(aws, "wf-new", "# again")
        assert exporter.export() == [] and (tmp_path / "wf-new.md").read_text() == "edited"
    finally:
        moto_patches.remove_persistence(exporter)


def test_records_of_other_statuses_and_tables_are_ignored(aws, tmp_path: Path) -> None:
    exporter = ReportExporter(aws, tmp_path)
    report = {"M": {"bucket": {"S": runtime.BUCKET}, "key": {"S": "k"}}}
    exporter.item_changed("other-table", {}, {"workflow_id": {"S": "a"}, "status": {"S": "COMPLETED"}, "report": report})
    exporter.item_changed(runtime.TABLE, {}, {"workflow_id": {"S": "b"}, "status": {"S": "REJECTED"}, "report": report})
    exporter.item_changed(runtime.TABLE, {}, None)
    assert exporter.export() == []
