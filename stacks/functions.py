"""One factory for every Lambda in ``functions/``: same runtime, architecture, log format,
tracing and Powertools settings; each function gets its own role and log group.

The role starts empty but for writing to the function's own log group (no
``AWSLambdaBasicExecutionRole``, whose ``logs:*`` statements cover every log group);
constructs add exactly the statements each handler needs.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct
from relay_core.contracts import POWERTOOLS_ENVIRONMENT, TaskFunction, function_environment

from .layer_build import ROOT

FUNCTIONS_DIR = ROOT / "functions"
#: Constants shared by every function.
RUNTIME = lambda_.Runtime.PYTHON_3_14
ARCHITECTURE = lambda_.Architecture.ARM_64
LOG_FORMAT = lambda_.LoggingFormat.JSON
HANDLER = "app.handler"
#: Powertools' settings, the same for every function (defined once, in the contracts).
POWERTOOLS_ENV = POWERTOOLS_ENVIRONMENT


#: How one function in ``functions/<name>/`` is deployed: the shared contract type, so
#: the state machine's Task functions are the very table the local runtime reads.
FunctionSpec = TaskFunction


def code_dir(spec: FunctionSpec) -> Path:
    """``functions/<spec.name>/``: the function's code asset."""
    return FUNCTIONS_DIR / spec.name


def asset_excludes() -> list[str]:
    return ["__pycache__", "*.pyc", "tests", ".pytest_cache"]


class RelayFunction(Construct):
    """A function from ``functions/<spec.name>/app.py`` with its own role and log group."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        spec: FunctionSpec,
        layers: Sequence[lambda_.ILayerVersion],
        environment: dict[str, str],
        log_retention: logs.RetentionDays,
        own_environment: dict[str, str] | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        if not (code_dir(spec) / "app.py").exists():
            raise FileNotFoundError(
                f"{code_dir(spec)}/app.py is missing: every function in the stack needs a handler"
            )
        self.spec = spec
        self.log_group = logs.LogGroup(
            self, "Logs", retention=log_retention, removal_policy=RemovalPolicy.DESTROY
        )
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"Relay {spec.name} function",
        )
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="OwnLogGroup",
                actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                resources=[self.log_group.log_group_arn],
            )
        )
        self.function = lambda_.Function(
            self,
            "Function",
            description=spec.description,
            runtime=RUNTIME,
            architecture=ARCHITECTURE,
            handler=HANDLER,
            code=lambda_.Code.from_asset(str(code_dir(spec)), exclude=asset_excludes()),
            layers=list(layers),
            role=self.role,
            timeout=Duration.seconds(spec.timeout_seconds),
            memory_size=spec.memory_mb,
            tracing=lambda_.Tracing.ACTIVE,
            logging_format=LOG_FORMAT,
            application_log_level_v2=lambda_.ApplicationLogLevel.INFO,
            system_log_level_v2=lambda_.SystemLogLevel.WARN,
            log_group=self.log_group,
            # The one rule for a function's variables, shared with the local runtime.
            environment=function_environment(spec, environment, own_environment),
        )
        self.arn = self.function.function_arn
