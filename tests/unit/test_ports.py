"""The ports, their AWS adapters and the in-memory fakes keep one contract.

- Every adapter and fake has every method of its port, with the port's parameters.
- The record rules: for every stored status and redrive count (all combinations), the DynamoDB adapter's
  conditional writes (moto) and :mod:`relay_core.transitions` (which the fake uses)
  allow the same writes and leave the same status.
- The Step Functions adapter turns service errors into the port's domain errors.
"""

from __future__ import annotations

import inspect
import itertools
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from relay_core import ports
from relay_core.adapters.artifact_store import S3ArtifactStore
from relay_core.adapters.notifiers import OutboxNotifier, SnsNotifier
from relay_core.adapters.step_functions import StepFunctionsExecutions, StepFunctionsTaskTokens
from relay_core.adapters.workflow_records import DynamoDBWorkflowRecords
from relay_core.contracts import RecordStatus
from relay_core.errors import ExecutionExists, ExecutionNotRedrivable, TaskTokenGone, WorkflowNotFound
from relay_core.transitions import RedriveUpdate, may_record_stopped, may_set_status, redriven_update

from tests.support.fakes import (
    InMemoryArtifactStore,
    InMemoryExecutions,
    InMemoryTaskTokens,
    InMemoryWorkflowRecords,
    RecordingNotifier,
)

IMPLEMENTATIONS: list[tuple[type, list[type]]] = [
    (ports.ArtifactStore, [S3ArtifactStore, InMemoryArtifactStore]),
    (ports.WorkflowRecords, [DynamoDBWorkflowRecords, InMemoryWorkflowRecords]),
    (ports.Executions, [StepFunctionsExecutions, InMemoryExecutions]),
    (ports.TaskTokens, [StepFunctionsTaskTokens, InMemoryTaskTokens]),
    (ports.Notifier, [SnsNotifier, OutboxNotifier, RecordingNotifier]),
]


def _port_methods(port: type) -> dict[str, inspect.Signature]:
    methods = {}
    for klass in port.__mro__:
        if klass in (object,) or klass.__name__ in {"Protocol", "Generic"}:
            continue
        for name, value in vars(klass).items():
            if callable(value) and not name.startswith("_") and name not in methods:
                methods[name] = inspect.signature(value)
    return methods


@pytest.mark.parametrize(("port", "implementation"), [(p, i) for p, impls in IMPLEMENTATIONS for i in impls], ids=lambda v: v.__name__)
def test_every_implementation_has_every_method_of_its_port_with_its_parameters(port: type, implementation: type) -> None:
    methods = _port_methods(port)
    assert methods, f"{port.__name__} declares no methods"
    for name, signature in methods.items():
        assert hasattr(implementation, name), f"{implementation.__name__} lacks {port.__name__}.{name}"
        have = list(inspect.signature(getattr(implementation, name)).parameters)
        assert have == list(signature.parameters), f"{implementation.__name__}.{name}{have} != {port.__name__}.{name}{list(signature.parameters)}"


def test_the_signature_check_fails_for_a_class_missing_a_method() -> None:
    # A control: the check above can fail.
    class Partial:
        def put_text(self, key: str, text: str, content_type: str = "") -> None: ...

    with pytest.raises(AssertionError):
        test_every_implementation_has_every_method_of_its_port_with_its_parameters(ports.ArtifactStore, Partial)


# ----- the record rules: DynamoDB conditions == transitions == the fake ------------------
STATUSES = [None, *RecordStatus]
OPERATIONS = ["set_status", "record_stopped", "record_redriven"]


@pytest.fixture(scope="module")
def dynamodb_records():
    from moto import mock_aws

    from relay.local import runtime

    with pytest.MonkeyPatch.context() as patch:
        for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}.items():
            patch.setenv(key, value)
        with mock_aws():
            runtime.create_stores(boto3.client("s3"), boto3.client("dynamodb"))
            yield DynamoDBWorkflowRecords(runtime.TABLE), boto3.resource("dynamodb").Table(runtime.TABLE)


def _apply(records: Any, operation: str, redrive_count: int) -> bool:
    if operation == "set_status":
        return bool(records.set_status("wf-rule", RecordStatus.AWAITING_APPROVAL, redrive_count=redrive_count))
    if operation == "record_stopped":
        return bool(records.record_stopped("wf-rule", RecordStatus.FAILED, redrive_count, failure={"state": "S"}))
    return bool(records.record_redriven("wf-rule", redrive_count, "WriteReport"))


def _expected(operation: str, stored: dict[str, Any] | None, redrive_count: int) -> bool:
    if operation == "set_status":
        return may_set_status(stored, redrive_count)
    if operation == "record_stopped":
        return may_record_stopped(stored, redrive_count)
    return redriven_update(stored, redrive_count) is not RedriveUpdate.NONE


def _stored_records() -> list[dict[str, Any] | None]:
    """No record, and every status (or none) with every stored redrive count (or none)."""
    records: list[dict[str, Any] | None] = [None]
    for status in STATUSES:
        for redrive_count in (None, 0, 1, 2):
            records.append({k: v for k, v in {"status": status, "redrive_count": redrive_count}.items() if v is not None})
    return records


def test_dynamodb_conditions_the_transition_rules_and_the_fake_agree(dynamodb_records) -> None:
    adapter, table = dynamodb_records
    checked = 0
    for stored, redrive_count, operation in itertools.product(_stored_records(), (0, 1, 2, 3), OPERATIONS):
        table.delete_item(Key={"pk": "WORKFLOW#wf-rule"})
        fake = InMemoryWorkflowRecords()
        if stored is not None:
            table.put_item(Item={"pk": "WORKFLOW#wf-rule", "workflow_id": "wf-rule", "created_at": "2026-01-01T00:00:00Z", **stored})
            fake.workflows["wf-rule"] = {"workflow_id": "wf-rule", "created_at": "2026-01-01T00:00:00Z", **stored}
        case = f"{operation} at redrive count {redrive_count} on {stored}"
        # When the same write is made through the DynamoDB adapter and through the fake
        wrote_dynamodb = _apply(adapter, operation, redrive_count)
        wrote_fake = _apply(fake, operation, redrive_count)
        # Then both did what the rule says, and left the same status and redrive count
        assert wrote_dynamodb == _expected(operation, stored, redrive_count) == wrote_fake, case
        after = table.get_item(Key={"pk": "WORKFLOW#wf-rule"}).get("Item") or {}
        faked = fake.workflows.get("wf-rule", {})
        assert (after.get("status"), after.get("redrive_count")) == (faked.get("status"), faked.get("redrive_count")), case
        checked += 1
    assert checked == len(_stored_records()) * 4 * len(OPERATIONS)


def test_a_list_page_with_fields_holds_only_those_fields_in_dynamodb_and_the_fake(dynamodb_records) -> None:
    # Given one COMPLETED workflow with more attributes than a list shows
    adapter, table = dynamodb_records
    record = {"workflow_id": "wf-list", "status": "COMPLETED", "created_at": "2026-01-02T00:00:00Z", "topic": "t",
              "report": {"bucket": "b", "key": "k"}, "execution_arn": "arn:x", "revisions": 1}  # fmt: skip
    table.put_item(Item={"pk": "WORKFLOW#wf-list", **record})
    fake = InMemoryWorkflowRecords()
    fake.workflows["wf-list"] = dict(record)
    fields = ("pk", "workflow_id", "status", "created_at", "revisions")
    for store in (adapter, fake):
        # When a page is read with and without fields
        [narrow] = [i for i in store.list_workflows("COMPLETED", fields=fields)[0] if i["workflow_id"] == "wf-list"]
        [whole] = [i for i in store.list_workflows("COMPLETED")[0] if i["workflow_id"] == "wf-list"]
        # Then the narrow one has exactly those fields, with the same values as the whole one
        assert set(narrow) == set(fields), type(store).__name__
        assert narrow == {k: whole[k] for k in fields} and "report" in whole
    table.delete_item(Key={"pk": "WORKFLOW#wf-list"})


def test_the_rules_hold_their_promises() -> None:
    # Final outcomes never move; a stop is final for its own redrive count; no write overwrites a later redrive's.
    assert not may_set_status({"status": "COMPLETED", "redrive_count": 0}, 5)
    assert not may_set_status({"status": "FAILED", "redrive_count": 1}, 1)
    assert may_set_status({"status": "FAILED", "redrive_count": 1}, 2)
    assert not may_set_status({"status": "RUNNING", "redrive_count": 2}, 1)
    assert not may_record_stopped({"status": "REJECTED"}, 0)
    assert redriven_update({"status": "CANCELLED", "redrive_count": 0}, 1) is RedriveUpdate.RESUME
    assert redriven_update({"status": "AWAITING_APPROVAL", "redrive_count": 1}, 1) is RedriveUpdate.ANNOTATE
    assert redriven_update(None, 1) is RedriveUpdate.NONE


# ----- the Step Functions adapter's error translation -------------------------------------
ARN = "arn:aws:states:us-east-1:123456789012:stateMachine:relay"


@pytest.fixture
def sfn(aws_credentials):
    client = boto3.client("stepfunctions", region_name="us-east-1")
    with Stubber(client) as stubber:
        yield client, stubber


@pytest.mark.parametrize(
    ("method", "args", "operation", "code", "error"),
    [
        ("start", ("wf-1", "{}"), "start_execution", "ExecutionAlreadyExists", ExecutionExists),
        ("redrive", ("wf-1",), "redrive_execution", "ExecutionNotRedrivable", ExecutionNotRedrivable),
        ("describe", ("wf-1",), "describe_execution", "ExecutionDoesNotExist", WorkflowNotFound),
    ],
)
def test_step_functions_errors_become_domain_errors(sfn, method, args, operation, code, error) -> None:
    client, stubber = sfn
    stubber.add_client_error(operation, service_error_code=code, service_message="the reason")
    with pytest.raises(error):
        getattr(StepFunctionsExecutions(ARN, client), method)(*args)


@pytest.mark.parametrize(("code", "error"), [("TaskTimedOut", TaskTokenGone), ("InvalidToken", TaskTokenGone)])
def test_a_dead_task_token_is_task_token_gone(sfn, code, error) -> None:
    client, stubber = sfn
    stubber.add_client_error("send_task_success", service_error_code=code)
    with pytest.raises(error):
        StepFunctionsTaskTokens(client).send_success("token", "{}")


def test_other_step_functions_errors_propagate_unchanged(sfn) -> None:
    from botocore.exceptions import ClientError

    client, stubber = sfn
    stubber.add_client_error("send_task_success", service_error_code="ServiceUnavailable", http_status_code=503)
    with pytest.raises(ClientError):
        StepFunctionsTaskTokens(client).send_success("token", "{}")
