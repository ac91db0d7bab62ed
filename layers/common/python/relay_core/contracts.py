"""Facts shared by the stack, the local runtime and the handlers, defined once.

- The statuses of workflow records, approvals and executions (:class:`RecordStatus`,
  :class:`ApprovalRecordStatus`, :class:`ExecutionStatus`).
- The workflow table's key, TTL and index names, and the artifact key layout.
- The state machine's Task functions (:data:`TASK_FUNCTIONS`): which states each
  ``functions/`` folder implements, the ASL substitution that names its ARN, and its
  timeout and memory. The stack deploys from this table; the local runtime fills the
  same substitutions from it.
- Each function's environment variables (:func:`function_environment`): the stack and
  the local runtime both build every function's environment with it.
- The EventBridge rules that deliver *Step Functions Execution Status Change*
  events to the record-failure function (the stack creates them; the local
  runtime matches the same patterns with :func:`matches`).
- Which execution statuses can be redriven (Step Functions API reference,
  RedriveExecution: FAILED, TIMED_OUT or ABORTED Standard executions).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class RecordStatus(StrEnum):
    """``status`` of a workflow record (the workflow table's item ``WORKFLOW#{id}``)."""

    RUNNING = "RUNNING"
    AWAITING_APPROVAL = "AWAITING_APPROVAL"
    COMPLETED = "COMPLETED"
    REJECTED = "REJECTED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"


#: Outcomes of a succeeded execution: nothing moves a record out of them.
FINAL_STATUSES = frozenset({RecordStatus.COMPLETED, RecordStatus.REJECTED})
#: Terminal until the next redrive: a write with a higher ``redrive_count`` moves them on.
STOPPED_STATUSES = frozenset({RecordStatus.FAILED, RecordStatus.CANCELLED})
#: Statuses no further state changes before the next redrive.
TERMINAL_STATUSES = FINAL_STATUSES | STOPPED_STATUSES


class ApprovalRecordStatus(StrEnum):
    """``approval_status`` of an approval record (``APPROVAL#{id}``)."""

    PENDING = "PENDING"
    APPROVED = "APPROVED"
    REJECTED = "REJECTED"
    EXPIRED = "EXPIRED"
    SUPERSEDED = "SUPERSEDED"


class ExecutionStatus(StrEnum):
    """A Step Functions execution's ``status`` (Step Functions API reference, DescribeExecution)."""

    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    TIMED_OUT = "TIMED_OUT"
    ABORTED = "ABORTED"
    PENDING_REDRIVE = "PENDING_REDRIVE"


#: The workflow table's partition key (type S): ``WORKFLOW#{id}`` or ``APPROVAL#{id}``.
TABLE_PARTITION_KEY = "pk"
#: The workflow table's TTL attribute (epoch seconds).
TABLE_TTL_ATTRIBUTE = "ttl"
#: The GSI listing workflows by ``status``, newest ``created_at`` first.
STATUS_INDEX = "status-created_at-index"
#: Records are kept this long after they are written, then DynamoDB TTL removes them (seconds).
RETENTION_SECONDS = 90 * 24 * 3600
#: Every artifact of a workflow lives under ``workflows/{workflow_id}/``.
ARTIFACT_PREFIX = "workflows/"


def artifact_key(workflow_id: str, name: str) -> str:
    """``workflows/{workflow_id}/{name}``: where a workflow's artifact ``name`` lives."""
    return f"{ARTIFACT_PREFIX}{workflow_id}/{name}"


@dataclass(frozen=True)
class TaskFunction:
    """One Lambda function the state machine invokes.

    Attributes:
        name: its folder in ``functions/``.
        states: the Task states that invoke it, in workflow order.
        description: shown in the Lambda console.
        timeout_seconds: the function timeout; agent steps wait on the model.
        memory_mb: memory (and so CPU) size, in MB; also what Lambda bills GB-seconds on.
        runs_agent: whether it runs an agent (and so calls the model).
        variables: the environment variables this function gets beyond the ones every
            function gets (:func:`function_environment`); no other function has them.
    """

    name: str
    states: tuple[str, ...]
    description: str
    timeout_seconds: int = 30
    memory_mb: int = 512
    runs_agent: bool = False
    variables: tuple[str, ...] = ()

    @property
    def substitution_key(self) -> str:
        """The ASL ``${…}`` substitution naming this function's ARN (``PlanResearchFunctionArn``)."""
        return "".join(part.title() for part in self.name.split("_")) + "FunctionArn"


#: The Lambdas the state machine invokes, in workflow order.
TASK_FUNCTIONS: tuple[TaskFunction, ...] = (
    TaskFunction(
        "plan_research", ("PlanResearch",), "PlanResearch: validate input, record the workflow, plan questions", 300, 1024, True
    ),
    TaskFunction("compile_research", ("CompileResearch",), "CompileResearch: merge findings into research.json and research.md", 120, 1024),
    TaskFunction("analyze", ("AnalyzeResearch",), "AnalyzeResearch: the analyst agent", 600, 1024, True),
    TaskFunction("request_approval", ("RequestApproval",), "RequestApproval: store the task token, email the signed link", 30, 512),
    TaskFunction("write_report", ("WriteReport",), "WriteReport: the writer agent's final report", 600, 1024, True),
    TaskFunction(
        "finalize", ("FinalizeWorkflow", "RecordRejection"), "FinalizeWorkflow/RecordRejection: record the outcome, notify", 30, 512
    ),
)
#: The ASL substitution naming the researcher AgentCore runtime's ARN.
RUNTIME_SUBSTITUTION = "ResearcherRuntimeArn"
#: The Distributed Map's ``Label``: its child executions are ``execution:<StateMachine>/<Label>:<id>``.
MAP_RUN_LABEL = "ResearchQuestions"

#: ``source`` and ``detail-type`` of execution status change events (Step Functions
#: developer guide, "Automating Step Functions event delivery with EventBridge").
STATUS_CHANGE_SOURCE = "aws.states"
STATUS_CHANGE_DETAIL_TYPE = "Step Functions Execution Status Change"
#: Executions RedriveExecution accepts.
REDRIVABLE_STATUSES = frozenset({ExecutionStatus.FAILED, ExecutionStatus.TIMED_OUT, ExecutionStatus.ABORTED})
#: The function (folder in ``functions/``) the status-change rules target. Not a Task
#: of the state machine.
STATUS_CHANGE_FUNCTION = TaskFunction(
    "record_failure", (), "Record which state failed and why, and redrives (EventBridge status changes)", 60, 512
)


#: The variable naming the state machine: only the functions that start, stop or read
#: its executions get it (:data:`API_FUNCTIONS`, :data:`RECONCILE_FUNCTION`).
STATE_MACHINE_VARIABLE = "RELAY_STATE_MACHINE_ARN"

#: The scheduled function that records what lost status-change events missed
#: (:mod:`relay_core.reconcile`). Not a Task of the state machine.
RECONCILE_FUNCTION = TaskFunction(
    "reconcile", (), "Record status changes whose events were lost (RUNNING records vs DescribeExecution)", 300, 512,
    variables=(STATE_MACHINE_VARIABLE,),
)
#: The REST API's functions (API Gateway proxy integration). Not Tasks of the state machine.
API_FUNCTIONS: tuple[TaskFunction, ...] = (
    TaskFunction("api", (), "HTTP API: start, list, describe and cancel workflows", 30, 512, variables=(STATE_MACHINE_VARIABLE,)),
    TaskFunction("approvals", (), "Approval page and decision (SendTaskSuccess)", 30, 512),
)
#: Every function in ``functions/``, by name.
ALL_FUNCTIONS: dict[str, TaskFunction] = {
    spec.name: spec for spec in (*TASK_FUNCTIONS, STATUS_CHANGE_FUNCTION, RECONCILE_FUNCTION, *API_FUNCTIONS)
}
#: Powertools' settings, the same for every function.
POWERTOOLS_ENVIRONMENT: dict[str, str] = {
    "POWERTOOLS_SERVICE_NAME": "relay",
    "POWERTOOLS_METRICS_NAMESPACE": "Relay",
    "POWERTOOLS_LOG_LEVEL": "INFO",
    # Never log event payloads: they carry task tokens (RequestApproval) and documents.
    "POWERTOOLS_LOGGER_LOG_EVENT": "false",
}


def function_environment(spec: TaskFunction, shared: dict[str, str], own: dict[str, str] | None = None) -> dict[str, str]:
    """The environment variables function ``spec`` gets: Powertools' settings, the ``shared``
    variables every function gets, and the function's own :attr:`TaskFunction.variables`
    taken from ``own`` (the stack passes its resources' names and settings; the local
    runtime its local stand-ins). A variable in ``own`` that the function does not name
    is left out: only the functions that name a variable get it.

    Raises:
        KeyError: ``own`` lacks a variable the function names.
    """
    own = own or {}
    return {**POWERTOOLS_ENVIRONMENT, **shared, **{name: own[name] for name in spec.variables}}
#: How often the reconcile function runs, in minutes.
RECONCILE_EVERY_MINUTES = 15


def status_change_rules(state_machine_arn: str) -> dict[str, dict[str, Any]]:
    """The EventBridge event patterns, by rule name, for one state machine:

    - ``ExecutionStopped``: the execution FAILED, TIMED_OUT or was ABORTED;
    - ``ExecutionRedriven``: RUNNING again after a redrive (``redriveCount`` > 0).
    """
    base = {"source": [STATUS_CHANGE_SOURCE], "detail-type": [STATUS_CHANGE_DETAIL_TYPE]}
    return {
        "ExecutionStopped": base | {"detail": {"stateMachineArn": [state_machine_arn], "status": sorted(REDRIVABLE_STATUSES)}},
        "ExecutionRedriven": base
        | {"detail": {"stateMachineArn": [state_machine_arn], "status": ["RUNNING"], "redriveCount": [{"numeric": [">", 0]}]}},
    }


def _match_value(rule: list[Any], value: Any) -> bool:
    for option in rule:
        if isinstance(option, dict):
            if set(option) != {"numeric"}:
                raise ValueError(f"event pattern operator {sorted(option)} is not supported here")
            op, bound = option["numeric"]
            if not isinstance(value, int | float) or isinstance(value, bool):
                continue
            if {">": value > bound, ">=": value >= bound, "<": value < bound, "<=": value <= bound, "=": value == bound}[op]:
                return True
        elif option == value:
            return True
    return False


def matches(pattern: dict[str, Any], event: dict[str, Any]) -> bool:
    """Whether ``event`` matches an EventBridge ``pattern`` that uses exact values and
    ``{"numeric": [op, n]}`` only (the operators the rules above use).

    Raises:
        ValueError: the pattern uses another operator.
    """
    for key, rule in pattern.items():
        value = event.get(key)
        if isinstance(rule, dict):
            if not isinstance(value, dict) or not matches(rule, value):
                return False
        elif not _match_value(rule, value):
            return False
    return True


#: StopExecution ``error`` of a cancellation through the API (at most 256 characters).
CANCEL_ERROR = "Relay.Cancelled"


def cancel_cause(who: str, reason: str) -> str:
    """StopExecution ``cause`` of a cancellation: ``cancelled by {who}: {reason}`` (≤ 32,768 chars)."""
    return f"cancelled by {who}: {reason}"[:32768]


def canceller(cause: str | None) -> str | None:
    """``cancelled by {who}`` from a :func:`cancel_cause`, or ``None`` for another cause."""
    if not cause or not cause.startswith("cancelled by "):
        return None
    return cause.split(": ", 1)[0]


#: ``ExecutionAborted`` error the local runtime gives an execution that was running when
#: its process died (a failure to redrive, not a cancellation).
RUNTIME_STOPPED_ERROR = "Relay.RuntimeStopped"


#: Headers of the approval email that identify it (the body carries user text, so no
#: program may find an approval by reading the body).
WORKFLOW_ID_HEADER = "X-Relay-Workflow-Id"
APPROVAL_ID_HEADER = "X-Relay-Approval-Id"
