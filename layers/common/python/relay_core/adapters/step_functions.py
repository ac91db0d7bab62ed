"""Step Functions adapters: :class:`StepFunctionsExecutions` (port
:class:`relay_core.ports.Executions`) and :class:`StepFunctionsTaskTokens` (port
:class:`relay_core.ports.TaskTokens`).

Service errors the domain acts on become :mod:`relay_core.errors`:
``ExecutionDoesNotExist``/``InvalidArn`` → ``WorkflowNotFound``,
``ExecutionAlreadyExists`` → ``ExecutionExists``, ``ExecutionNotRedrivable`` →
``ExecutionNotRedrivable``, a dead task token → ``TaskTokenGone``, a foreign history
``nextToken`` → ``InvalidInput``. Any other ``ClientError`` propagates.
"""

from __future__ import annotations

import time
from functools import lru_cache
from typing import Any

import boto3
from botocore.exceptions import ClientError

from ..errors import ExecutionExists, ExecutionNotRedrivable, InvalidInput, TaskTokenGone, WorkflowNotFound
from ..observability import logger

#: SendTaskSuccess errors meaning the task token can no longer be used (Step Functions
#: API reference, SendTaskSuccess).
DEAD_TOKEN_ERRORS = frozenset({"TaskTimedOut", "TaskDoesNotExist", "InvalidToken"})


class StepFunctionsExecutions:
    """Executions of one state machine (the adapter that owns the Step Functions client).

    Args:
        state_machine_arn: ``arn:aws:states:{region}:{account}:stateMachine:{name}``.
        client: a boto3 ``stepfunctions`` client (default: a new one).
    """

    def __init__(self, state_machine_arn: str, client: Any | None = None):
        self.state_machine_arn = state_machine_arn
        self._sfn = client or boto3.client("stepfunctions")

    def arn(self, name: str) -> str:
        """The execution ARN for execution ``name`` of this state machine."""
        prefix, _, machine = self.state_machine_arn.rpartition(":stateMachine:")
        return f"{prefix}:execution:{machine}:{name}"

    def start(self, name: str, input_json: str) -> str:
        """StartExecution; the execution ARN. Raises :class:`ExecutionExists`."""
        try:
            return str(self._sfn.start_execution(stateMachineArn=self.state_machine_arn, name=name, input=input_json)["executionArn"])
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ExecutionAlreadyExists":
                raise ExecutionExists(f"execution {name!r} already exists") from None
            raise

    def describe(self, name: str) -> dict[str, Any]:
        """DescribeExecution. Raises :class:`WorkflowNotFound`."""
        try:
            return dict(self._sfn.describe_execution(executionArn=self.arn(name)))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in {"ExecutionDoesNotExist", "InvalidArn"}:
                raise WorkflowNotFound(f"workflow {name!r} not found") from None
            raise

    def history_page(self, name: str, limit: int, next_token: str | None = None, reverse: bool = False) -> tuple[list[dict[str, Any]], str | None]:
        """One GetExecutionHistory page: ``(events, next_token)``.

        Raises:
            WorkflowNotFound: no such execution.
            InvalidInput: ``next_token`` was not issued by Step Functions for this history.
        """
        kwargs: dict[str, Any] = {"executionArn": self.arn(name), "maxResults": limit, "reverseOrder": reverse}
        if next_token:
            kwargs["nextToken"] = next_token
        try:
            page = self._sfn.get_execution_history(**kwargs)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code")
            if code in {"ExecutionDoesNotExist", "InvalidArn"}:
                raise WorkflowNotFound(f"workflow {name!r} not found") from None
            if code == "InvalidToken":
                raise InvalidInput("next_token: not a token this API issued; start again without it") from None
            raise
        return list(page.get("events", [])), page.get("nextToken")

    def events(self, execution_arn: str) -> list[dict[str, Any]]:
        """Every history event of ``execution_arn``, oldest first (at most 25,000 by the
        Step Functions quota; read in pages of 1,000)."""
        events: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {"executionArn": execution_arn, "maxResults": 1000}
        while True:
            page = self._sfn.get_execution_history(**kwargs)
            events.extend(page.get("events", []))
            if not page.get("nextToken"):
                return events
            kwargs["nextToken"] = page["nextToken"]

    def map_run_failure(self, map_run_arn: str) -> tuple[str, str] | None:
        """``(error, cause)`` of one FAILED child execution of a Distributed Map Run
        (ListExecutions with ``mapRunArn``, then DescribeExecution), or ``None`` when
        none can be read (the local engine runs Map iterations without child
        executions and puts the first failure in the MapRunFailed cause instead)."""
        try:
            page = self._sfn.list_executions(mapRunArn=map_run_arn, statusFilter="FAILED", maxResults=1)
            children = page.get("executions", [])
            if not children:
                return None
            child = self._sfn.describe_execution(executionArn=children[0]["executionArn"])
        except ClientError as exc:
            logger.warning("could not read the Map Run's child executions", extra={"error": str(exc)})
            return None
        return str(child.get("error") or ""), str(child.get("cause") or "")

    def redrive(self, name: str) -> dict[str, Any]:
        """RedriveExecution. Raises :class:`ExecutionNotRedrivable` with Step Functions' reason."""
        try:
            return dict(self._sfn.redrive_execution(executionArn=self.arn(name)))
        except ClientError as exc:
            error = exc.response.get("Error", {})
            if error.get("Code") == "ExecutionNotRedrivable":
                raise ExecutionNotRedrivable(str(error.get("Message") or "not redrivable")) from None
            raise

    def stop(self, name: str, error: str, cause: str, settle_seconds: float = 3.0) -> dict[str, Any]:
        """StopExecution, then DescribeExecution until it is no longer RUNNING (at most
        ``settle_seconds``: Step Functions reports ABORTED at once, emulators may lag)."""
        self._sfn.stop_execution(executionArn=self.arn(name), error=error, cause=cause)
        deadline = time.monotonic() + settle_seconds
        while True:
            described = self.describe(name)
            if described["status"] != "RUNNING" or time.monotonic() >= deadline:
                return described
            time.sleep(0.05)


@lru_cache(maxsize=4)
def executions_for(state_machine_arn: str) -> StepFunctionsExecutions:
    """The cached adapter for ``state_machine_arn`` (one client per warm Lambda environment)."""
    return StepFunctionsExecutions(state_machine_arn)


class StepFunctionsTaskTokens:
    """SendTaskSuccess on a Step Functions client.

    Args:
        client: a boto3 ``stepfunctions`` client (default: a new one).
    """

    def __init__(self, client: Any | None = None):
        self._sfn = client or boto3.client("stepfunctions")

    def send_success(self, task_token: str, output: str) -> None:
        """SendTaskSuccess. Raises :class:`TaskTokenGone` for a dead token."""
        try:
            self._sfn.send_task_success(taskToken=task_token, output=output)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code in DEAD_TOKEN_ERRORS:
                raise TaskTokenGone(f"SendTaskSuccess refused the task token: {code}") from exc
            raise


@lru_cache(maxsize=1)
def task_tokens() -> StepFunctionsTaskTokens:
    """The cached task-token adapter (one client per warm Lambda environment)."""
    return StepFunctionsTaskTokens()
