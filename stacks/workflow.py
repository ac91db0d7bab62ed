"""Workflow: the state machine's Lambdas, the shared layers, the state machine itself,
and the EventBridge rules that record failures and redrives from outside it.

The definition is the file ``statemachines/research_report.asl.json`` (path anchored
on ``__file__``) with ``definition_substitutions``; the substitution keys are the
contract with the file (see :data:`TASK_FUNCTIONS` and :data:`RUNTIME_KEY`;
``tests/infra`` checks both sides name the same set). The file is read here and
given to ``DefinitionBody.from_string`` with the execution-level ``TimeoutSeconds``
added from the settings: ``StateMachine(timeout=…)`` is silently ignored when the
definition comes from ``DefinitionBody.from_file`` (measured with aws-cdk-lib 2.275:
the synthesized definition had no ``TimeoutSeconds``).
"""

from __future__ import annotations

import json

from aws_cdk import Aws, Duration, RemovalPolicy, Stack
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct
from relay_core.contracts import (
    MAP_RUN_LABEL,
    RECONCILE_EVERY_MINUTES,
    RECONCILE_FUNCTION,
    RUNTIME_SUBSTITUTION,
    STATE_MACHINE_VARIABLE,
    STATUS_CHANGE_FUNCTION,
    TASK_FUNCTIONS,
    status_change_rules,
)
from relay_core.models import MAX_EXECUTION_SECONDS, execution_seconds_needed

from .agents import Agents, model_environment, model_statements
from .approvals import Approvals
from .functions import ARCHITECTURE, RUNTIME, RelayFunction
from .layer_build import ROOT, Artifacts
from .settings import Settings
from .storage import Storage

ASL_FILE = ROOT / "statemachines" / "research_report.asl.json"
#: The ASL substitution naming the researcher runtime ARN.
RUNTIME_KEY = RUNTIME_SUBSTITUTION
#: Not a Task of the state machine: the target of the execution status-change rules.
STATUS_FUNCTION = STATUS_CHANGE_FUNCTION
#: Functions that run an agent (planner, analyst, writer) and so call the model.
MODEL_FUNCTIONS = frozenset(spec.name for spec in TASK_FUNCTIONS if spec.runs_agent)
#: State machine execution history logging level. Level ALL records every event type
#: with ``includeExecutionData=False``: state inputs/outputs (which carry the task token
#: in RequestApproval's parameters, and artifact summaries) are never written to logs.
LOG_LEVEL = sfn.LogLevel.ALL
INCLUDE_EXECUTION_DATA = False


def state_machine_name(stack: Stack) -> str:
    """A fixed name, so the role can name the state machine's own ARN without a cycle."""
    return f"{stack.stack_name}-research-report"[:80]


def execution_timeout(settings: Settings) -> Duration:
    """Every approval round of a request with the deployment defaults may wait its full
    timeout, plus a day for the work itself (``relay_core.models.execution_seconds_needed``);
    Standard executions can run at most one year. A request that asks for more is refused
    at the API and in PlanResearch (``RELAY_EXECUTION_TIMEOUT_SECONDS``)."""
    seconds = execution_seconds_needed(settings.approval_timeout_seconds, settings.max_revisions)
    return Duration.seconds(min(seconds, MAX_EXECUTION_SECONDS))


def definition_with_timeout(timeout: Duration) -> str:
    """The ASL file's text with the execution-level ``TimeoutSeconds`` set."""
    definition = json.loads(ASL_FILE.read_text())
    definition["TimeoutSeconds"] = int(timeout.to_seconds())
    return json.dumps(definition, indent=2)


class Workflow(Construct):
    """Task Lambdas, layers, and the Standard state machine with logging and X-Ray."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: Settings,
        storage: Storage,
        approvals: Approvals,
        agents: Agents,
        artifacts: Artifacts,
        api_base_url: str,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        retention = settings.log_retention

        def layer(construct_id: str, description: str, path: str, asset_hash: str | None = None):
            return lambda_.LayerVersion(
                self,
                construct_id,
                description=description,
                code=lambda_.Code.from_asset(path, asset_hash=asset_hash),
                compatible_runtimes=[RUNTIME],
                compatible_architectures=[ARCHITECTURE],
                removal_policy=RemovalPolicy.DESTROY,
            )

        # Agent functions get the agent deps (Strands, bm25s/numpy) and relay_agents; every
        # other function only pydantic/Powertools and relay_core (stacks/layer_build.py).
        self.deps_layer = layer("DepsLayer", "Relay agent packages: Strands, bm25s, numpy, pydantic, Powertools (locked)",
                                str(artifacts.deps_layer_zip), artifacts.deps_key)  # fmt: skip
        self.slim_layer = layer("SlimDepsLayer", "Relay function packages: pydantic, Powertools (locked)",
                                str(artifacts.slim_layer_zip), artifacts.slim_key)  # fmt: skip
        self.code_layer = layer("CodeLayer", "Relay relay_core package", str(artifacts.code_layer_dir))
        self.agents_code_layer = layer("AgentsCodeLayer", "Relay relay_agents package", str(artifacts.agents_code_dir))
        #: Layers of a function that runs no agent (the default for any new function).
        self.layers = [self.slim_layer, self.code_layer]
        #: Layers of a function in :data:`MODEL_FUNCTIONS` (runs the planner, analyst or writer).
        self.agent_layers = [self.deps_layer, self.code_layer, self.agents_code_layer]
        self.environment = {
            "RELAY_ARTIFACT_BUCKET": storage.bucket.bucket_name,
            "RELAY_TABLE_NAME": storage.table.table_name,
            "RELAY_API_BASE_URL": api_base_url,
            "RELAY_SIGNING_SECRET_ARN": approvals.signing_secret.secret_arn,
            "RELAY_TOPIC_ARN": approvals.topic.topic_arn,
            "RELAY_APPROVER_EMAIL": settings.approver_email or "approver@example.com",
            "RELAY_MAIL_FROM": settings.mail_from,
            # Defaults applied to execution input that leaves them out (WorkflowRequest).
            "RELAY_DEFAULT_MAX_CONCURRENCY": str(settings.research_concurrency),
            "RELAY_DEFAULT_TOLERATED_FAILURE_PERCENTAGE": f"{settings.tolerated_failure_percentage:g}",
            "RELAY_DEFAULT_APPROVAL_TIMEOUT_SECONDS": str(settings.approval_timeout_seconds),
            "RELAY_DEFAULT_MAX_REVISIONS": str(settings.max_revisions),
            # Requests that cannot finish within it are refused (relay_core.config.ExecutionLimits).
            "RELAY_EXECUTION_TIMEOUT_SECONDS": str(int(execution_timeout(settings).to_seconds())),
            **model_environment(settings),
        }
        self.retention = retention

        self.functions: dict[str, RelayFunction] = {}
        for spec in (*TASK_FUNCTIONS, STATUS_FUNCTION):
            fn = RelayFunction(
                self,
                "".join(p.title() for p in spec.name.split("_")),
                spec=spec,
                layers=self.layers_for(spec.name),
                environment=self.environment,
                log_retention=retention,
            )
            self.functions[spec.name] = fn
            if spec.name in MODEL_FUNCTIONS:
                for statement in model_statements(settings):
                    fn.role.add_to_policy(statement)
        f = self.functions
        storage.grant_records(f["plan_research"].role)
        storage.grant_artifacts(f["compile_research"].role, read=True, write=True)
        storage.grant_artifacts(f["analyze"].role, read=True, write=True)
        storage.grant_records(f["analyze"].role)
        storage.grant_records(f["request_approval"].role)
        approvals.grant_secret(f["request_approval"].role)
        approvals.grant_notify(f["request_approval"].role)
        storage.grant_artifacts(f["write_report"].role, read=True, write=True)
        storage.grant_artifacts(f["finalize"].role, read=True)  # presigned report URL
        storage.grant_records(f["finalize"].role)
        approvals.grant_notify(f["finalize"].role)
        storage.grant_records(f["record_failure"].role)

        # --- the state machine ---------------------------------------------------------------
        self.name = state_machine_name(stack)
        arn_base = f"arn:{Aws.PARTITION}:states:{Aws.REGION}:{Aws.ACCOUNT_ID}"
        self.state_machine_arn = f"{arn_base}:stateMachine:{self.name}"
        self.execution_arn_pattern = f"{arn_base}:execution:{self.name}:*"
        self.log_group = logs.LogGroup(
            self,
            "ExecutionLogs",
            log_group_name=f"/aws/vendedlogs/states/{self.name}",
            retention=retention,
            removal_policy=RemovalPolicy.DESTROY,
        )
        self.role = iam.Role(
            self,
            "StateMachineRole",
            assumed_by=iam.ServicePrincipal(
                "states.amazonaws.com",
                conditions={"StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID}},
            ),
            description="Relay research-report state machine",
        )
        function_arns = [self.functions[spec.name].function.function_arn for spec in TASK_FUNCTIONS]
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="InvokeTaskFunctions",
                actions=["lambda:InvokeFunction"],
                resources=[*function_arns, *(f"{arn}:*" for arn in function_arns)],
            )
        )
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="InvokeResearcherRuntime",
                actions=["bedrock-agentcore:InvokeAgentRuntime"],
                resources=[agents.runtime_arn, f"{agents.runtime_arn}/*"],
            )
        )
        # Distributed Map: the state machine starts child executions of itself
        # (Step Functions developer guide, "IAM policies for using Distributed Map states").
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="DistributedMapStart",
                actions=["states:StartExecution"],
                resources=[self.state_machine_arn],
            )
        )
        # Redrive of the parent redrives the Map Run's failed child executions: the role
        # needs these actions on the children (Step Functions developer guide, "IAM
        # policies for using Distributed Map states" and "Redriving Map Runs").
        self.map_children_arn = f"{arn_base}:execution:{self.name}/{MAP_RUN_LABEL}:*"
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="DistributedMapChildren",
                actions=["states:DescribeExecution", "states:StopExecution", "states:RedriveExecution"],
                resources=[self.map_children_arn],
            )
        )

        substitutions = {spec.substitution_key: self.functions[spec.name].arn for spec in TASK_FUNCTIONS}
        substitutions[RUNTIME_KEY] = agents.runtime_arn
        self.substitutions = substitutions
        self.state_machine = sfn.StateMachine(
            self,
            "ResearchReport",
            state_machine_name=self.name,
            state_machine_type=sfn.StateMachineType.STANDARD,
            definition_body=sfn.DefinitionBody.from_string(definition_with_timeout(execution_timeout(settings))),
            definition_substitutions=substitutions,
            role=self.role,
            tracing_enabled=True,
            logs=sfn.LogOptions(
                destination=self.log_group, level=LOG_LEVEL, include_execution_data=INCLUDE_EXECUTION_DATA
            ),
            comment="Relay: research topic -> approved report",
        )
        # The role's policies must exist before the state machine validates its definition.
        self.state_machine.node.add_dependency(self.role)

        # --- failures and redrives are recorded from outside the execution --------------------
        recorder = self.functions[STATUS_FUNCTION.name]
        self._grant_read_executions(recorder, arn_base)
        # Status-change events are delivered best effort (EventBridge events reference, "Step
        # Functions events"), and a target can fail after its retries: what is not delivered
        # lands here (alarmed in Monitoring), and the reconcile function records it anyway.
        self.dead_letters = sqs.Queue(
            self,
            "StatusEventDeadLetters",
            retention_period=Duration.days(14),
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
        )
        self.status_rules: dict[str, events.Rule] = {}
        for rule_name, pattern in status_change_rules(self.state_machine.state_machine_arn).items():
            rule = events.Rule(
                self,
                rule_name,
                description=f"Relay: {rule_name} status changes -> {STATUS_FUNCTION.name}",
                event_pattern=events.EventPattern(
                    source=pattern["source"], detail_type=pattern["detail-type"], detail=pattern["detail"]
                ),
            )
            rule.add_target(
                targets.LambdaFunction(
                    recorder.function, retry_attempts=10, max_event_age=Duration.hours(24), dead_letter_queue=self.dead_letters
                )
            )
            self.status_rules[rule_name] = rule

        # --- reconcile: what lost events missed, on a schedule (relay_core.reconcile) ------------
        reconciler = RelayFunction(
            self,
            "Reconcile",
            spec=RECONCILE_FUNCTION,
            layers=self.layers_for(RECONCILE_FUNCTION.name),
            environment=self.environment,
            own_environment={STATE_MACHINE_VARIABLE: self.state_machine_arn},
            log_retention=retention,
        )
        self.functions[RECONCILE_FUNCTION.name] = reconciler
        self._grant_read_executions(reconciler, arn_base)
        storage.grant_records(reconciler.role)
        self.reconcile_schedule = events.Rule(
            self,
            "ReconcileSchedule",
            description=f"Relay: every {RECONCILE_EVERY_MINUTES} min, record status changes whose events were lost",
            schedule=events.Schedule.rate(Duration.minutes(RECONCILE_EVERY_MINUTES)),
        )
        self.reconcile_schedule.add_target(
            targets.LambdaFunction(reconciler.function, retry_attempts=2, dead_letter_queue=self.dead_letters)
        )

    def _grant_read_executions(self, fn: RelayFunction, arn_base: str) -> None:
        """What recording a status change reads: DescribeExecution and the history of this
        state machine's executions and Map children, and ListExecutions of a Map Run."""
        fn.role.add_to_policy(
            iam.PolicyStatement(
                sid="ReadExecutions",
                actions=["states:GetExecutionHistory", "states:DescribeExecution"],
                resources=[self.execution_arn_pattern, self.map_children_arn],
            )
        )
        fn.role.add_to_policy(
            iam.PolicyStatement(
                sid="ListMapRunChildren",
                actions=["states:ListExecutions"],
                # ListExecutions by mapRunArn: granted on the Map Run and on the state machine,
                # since the authorised resource of that form is not settled in the public docs.
                resources=[self.state_machine_arn, f"{arn_base}:mapRun:{self.name}/{MAP_RUN_LABEL}:*"],
            )
        )

    def layers_for(self, function_name: str) -> list[lambda_.ILayerVersion]:
        """The agent layers for a function in :data:`MODEL_FUNCTIONS`, else the slim ones."""
        return list(self.agent_layers if function_name in MODEL_FUNCTIONS else self.layers)
