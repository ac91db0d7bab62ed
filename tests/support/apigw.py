"""API Gateway REST proxy events (payload format 1.0) for calling API handlers in-process,
and the moto-backed stores and state machine those handlers need."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
STATE_MACHINE_NAME = "relay-api-test"
#: The smallest valid definition: the API only starts, describes and stops executions.
DEFINITION = json.dumps({"StartAt": "Wait", "States": {"Wait": {"Type": "Pass", "End": True}}})


def event(
    method: str,
    path: str,
    body: str | bytes | dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
    user_arn: str | None = "arn:aws:iam::123456789012:user/tester",
    is_base64: bool = False,
) -> dict[str, Any]:
    """One API Gateway REST proxy event (``relay.local.servers.proxy_event``, stage ``v1``).
    ``path`` may carry a query string; ``user_arn`` is the IAM caller (None: unsigned).
    A body without a ``Content-Type`` header is sent as ``application/json``."""
    from relay.local.servers import proxy_event

    if isinstance(body, dict):
        body = json.dumps(body)
    headers = dict(headers or {})
    if body is not None and not any(k.lower() == "content-type" for k in headers):
        headers["Content-Type"] = "application/json"  # what the relay client sends with a body
    raw = body if isinstance(body, bytes) else base64.b64decode(body) if (body and is_base64) else (body or "").encode("utf-8")
    identity = {"userArn": user_arn, "caller": "AIDAEXAMPLE", "accountId": "123456789012"} if user_arn else None
    return proxy_event(method, path, headers, raw, stage="v1", identity=identity)


def load_function(name: str) -> Any:
    """Import ``functions/{name}/app.py`` as its own module, as Lambda would."""
    from relay.local.servers import load_handler

    return load_handler(ROOT / "functions" / name)


def create_state_machine() -> str:
    """A state machine in moto (which, by default, records executions without running them)."""
    import boto3

    sfn = boto3.client("stepfunctions", region_name="us-east-1")
    return str(
        sfn.create_state_machine(
            name=STATE_MACHINE_NAME, definition=DEFINITION, roleArn="arn:aws:iam::123456789012:role/sfn", type="STANDARD"
        )["stateMachineArn"]
    )


def call(module: Any, context: Any, *args: Any, **kwargs: Any) -> tuple[int, dict[str, str], Any]:
    """Invoke ``module.handler`` with :func:`event`; returns ``(status, headers, body)``,
    the body parsed as JSON when it is JSON."""
    result = module.handler(event(*args, **kwargs), context)
    headers = {k: str(v) for k, v in (result.get("headers") or {}).items()}
    for key, values in (result.get("multiValueHeaders") or {}).items():
        headers[key] = ", ".join(str(v) for v in values)
    raw = result.get("body") or ""
    if result.get("isBase64Encoded"):
        raw = base64.b64decode(raw).decode("utf-8")
    content_type = next((v for k, v in headers.items() if k.lower() == "content-type"), "")
    parsed = json.loads(raw) if content_type.startswith("application/json") and raw else raw
    return int(result["statusCode"]), headers, parsed


class MotoStores:
    """moto's in-memory AWS with the artifact bucket, the workflow table and the API's
    environment, started once (per test module: starting moto costs ~0.3 s) and
    :meth:`reset` between tests."""

    def __init__(self, data_dir: Path):
        self.data_dir = data_dir
        self._names = iter(range(1, 1_000_000))

    def __enter__(self) -> MotoStores:
        import os

        import pytest
        from moto import mock_aws

        self._patch = pytest.MonkeyPatch()
        for key in [k for k in os.environ if k.startswith("AWS_ENDPOINT_URL") or k == "AWS_PROFILE"]:
            self._patch.delenv(key)
        env = {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_SESSION_TOKEN": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_REGION": "us-east-1",
            "RELAY_ARTIFACT_BUCKET": "relay-artifacts-local",
            "RELAY_TABLE_NAME": "relay-workflows-local",
            "RELAY_API_BASE_URL": "https://abc123.execute-api.us-east-1.amazonaws.com/v1",
            "RELAY_SIGNING_SECRET_FILE": str(self.data_dir / "signing.key"),
            "RELAY_OUTBOX_DIR": str(self.data_dir / "outbox"),
        }
        for key, value in env.items():
            self._patch.setenv(key, value)
        self._mock = mock_aws()
        self._mock.start()
        import boto3

        from relay.local import runtime

        runtime.create_stores(boto3.client("s3"), boto3.client("dynamodb"))
        self.table = boto3.resource("dynamodb").Table(runtime.TABLE)
        self.sfn = boto3.client("stepfunctions")
        self.reset()
        return self

    def reset(self) -> str:
        """Empty the table, point the API at a fresh state machine (so no executions), clear
        the cached adapters. Returns the new state machine's ARN."""
        from relay_core.adapters.artifact_store import artifact_store
        from relay_core.adapters.step_functions import executions_for
        from relay_core.adapters.workflow_records import workflow_records

        with self.table.batch_writer() as batch:
            for item in self.table.scan(ProjectionExpression="pk").get("Items", []):
                batch.delete_item(Key={"pk": item["pk"]})
        self.state_machine_arn = str(
            self.sfn.create_state_machine(
                name=f"{STATE_MACHINE_NAME}-{next(self._names)}",
                definition=DEFINITION,
                roleArn="arn:aws:iam::123456789012:role/sfn",
                type="STANDARD",
            )["stateMachineArn"]
        )
        self._patch.setenv("RELAY_STATE_MACHINE_ARN", self.state_machine_arn)
        for cache in (executions_for, workflow_records, artifact_store):
            cache.cache_clear()
        return self.state_machine_arn

    def table_items(self) -> dict[str, dict[str, Any]]:
        """Every item of the workflow table by partition key, in DynamoDB JSON, read from
        moto's in-memory backend: the same data a consistent scan returns, without a request
        (a fuzz example compares the table before and after; through boto3 each read costs
        ~15 ms). Deep copies, so a later write cannot change a snapshot taken before it."""
        import copy

        from moto.core import DEFAULT_ACCOUNT_ID
        from moto.dynamodb.models import dynamodb_backends

        table = dynamodb_backends[DEFAULT_ACCOUNT_ID]["us-east-1"].get_table(self.table.name)
        return {str(item.hash_key.value): copy.deepcopy(item.to_json()["Attributes"]) for item in table.all_items()}

    def executions(self) -> list[dict[str, Any]]:
        return list(self.sfn.list_executions(stateMachineArn=self.state_machine_arn)["executions"])

    def __exit__(self, *exc: Any) -> None:
        self._mock.stop()
        self._patch.undo()
