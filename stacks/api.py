"""Api: the REST API — ``/workflows*`` behind IAM (SigV4) auth, ``/approvals/{id}`` public
but protected by the HMAC-signed link, stage throttling, access logs and X-Ray.

The API's own URL reaches the functions without a dependency cycle: the stack builds it
from the ``RestApi`` id (``https://{id}.execute-api.{region}.{suffix}/{stage}``), which
depends only on the ``AWS::ApiGateway::RestApi`` resource, not on the deployment and
stage that depend on the methods, which depend on the functions. See :attr:`Api.base_url`.
"""

from __future__ import annotations

from typing import Any

from aws_cdk import Aws, RemovalPolicy
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from constructs import Construct
from relay_core.contracts import API_FUNCTIONS, STATE_MACHINE_VARIABLE

from .approvals import Approvals
from .functions import RelayFunction
from .settings import Settings
from .storage import Storage
from .workflow import Workflow

STAGE = "v1"
__all__ = ["API_FUNCTIONS", "STAGE", "Api"]


class Api(Construct):
    """Create with :meth:`__init__` (the ``RestApi`` and its URL), then :meth:`add_routes`."""

    def __init__(self, scope: Construct, construct_id: str, *, settings: Settings) -> None:
        super().__init__(scope, construct_id)
        self.settings = settings
        self.access_logs = logs.LogGroup(
            self,
            "AccessLogs",
            retention=settings.log_retention,
            removal_policy=RemovalPolicy.DESTROY,
        )
        self.rest_api = apigw.RestApi(
            self,
            "RestApi",
            description="Relay: start and inspect research workflows; approve from the emailed link",
            endpoint_types=[apigw.EndpointType.REGIONAL],
            # API Gateway's CloudWatch Logs role is an account-wide, per-Region setting
            # (AWS::ApiGateway::Account) shared by every REST API of the account: retained on
            # `cdk destroy` so other APIs keep logging; or not created at all with
            # -c apiGatewayCloudWatchRole=false when the account already has one.
            cloud_watch_role=settings.api_gateway_cloudwatch_role,
            cloud_watch_role_removal_policy=RemovalPolicy.RETAIN
            if settings.api_gateway_cloudwatch_role
            else None,
            deploy_options=apigw.StageOptions(
                stage_name=STAGE,
                throttling_rate_limit=settings.api_throttle_rate,
                throttling_burst_limit=settings.api_throttle_burst,
                tracing_enabled=True,
                logging_level=apigw.MethodLoggingLevel.ERROR,
                # Request/response bodies are never logged (approval forms, workflow input).
                data_trace_enabled=False,
                metrics_enabled=True,
                access_log_destination=apigw.LogGroupLogDestination(self.access_logs),
                access_log_format=apigw.AccessLogFormat.json_with_standard_fields(
                    caller=True,
                    http_method=True,
                    ip=True,
                    protocol=True,
                    request_time=True,
                    resource_path=True,
                    response_length=True,
                    status=True,
                    user=True,
                ),  # fmt: skip
            ),
            disable_execute_api_endpoint=False,
        )
        self.validator = self.rest_api.add_request_validator(
            "Validator", validate_request_parameters=True, validate_request_body=True
        )

    @property
    def base_url(self) -> str:
        """``https://{rest-api-id}.execute-api.{region}.{url-suffix}/v1`` (no trailing slash)."""
        return f"https://{self.rest_api.rest_api_id}.execute-api.{Aws.REGION}.{Aws.URL_SUFFIX}/{STAGE}"

    def add_routes(self, *, storage: Storage, approvals: Approvals, workflow: Workflow) -> None:
        """The two API functions, their permissions and their routes."""
        own = {STATE_MACHINE_VARIABLE: workflow.state_machine_arn}  # the functions that name it get it
        self.functions: dict[str, RelayFunction] = {}
        for spec in API_FUNCTIONS:
            self.functions[spec.name] = RelayFunction(
                self,
                spec.name.title() + "Function",
                spec=spec,
                layers=workflow.layers_for(spec.name),
                environment=workflow.environment,
                own_environment=own,
                log_retention=workflow.retention,
            )
        api_fn, approvals_fn = self.functions["api"], self.functions["approvals"]

        # api: start/inspect/cancel executions of this one state machine; workflow records.
        api_fn.role.add_to_policy(
            iam.PolicyStatement(
                sid="StartWorkflows",
                actions=["states:StartExecution"],
                resources=[workflow.state_machine_arn],
            )
        )
        api_fn.role.add_to_policy(
            iam.PolicyStatement(
                sid="InspectWorkflows",
                actions=[
                    "states:DescribeExecution",
                    "states:StopExecution",
                    "states:GetExecutionHistory",
                    "states:RedriveExecution",
                ],
                resources=[workflow.execution_arn_pattern],
            )
        )
        storage.grant_records(api_fn.role)
        storage.grant_artifacts(api_fn.role, read=True)  # presigned report links

        # approvals: read/decide approvals, resume the execution. SendTaskSuccess has no
        # resource-level permissions (Service Authorization Reference, Step Functions),
        # so Resource "*" is the only option; this is the one role that has it.
        approvals_fn.role.add_to_policy(
            iam.PolicyStatement(sid="ResumeExecution", actions=["states:SendTaskSuccess"], resources=["*"])
        )
        storage.grant_records(approvals_fn.role)
        storage.grant_artifacts(approvals_fn.role, read=True)  # the page shows the analysis and its sources
        approvals.grant_secret(approvals_fn.role)

        api_integration = apigw.LambdaIntegration(api_fn.function, allow_test_invoke=False)
        approvals_integration = apigw.LambdaIntegration(approvals_fn.function, allow_test_invoke=False)
        iam_auth: dict[str, Any] = {
            "authorization_type": apigw.AuthorizationType.IAM,
            "request_validator": self.validator,
        }
        id_param = {"method.request.path.id": True}

        workflows = self.rest_api.root.add_resource("workflows")
        workflows.add_method("POST", api_integration, **iam_auth)
        workflows.add_method("GET", api_integration, **iam_auth)
        one = workflows.add_resource("{id}")
        one.add_method("GET", api_integration, request_parameters=id_param, **iam_auth)
        for action in ("cancel", "redrive"):
            one.add_resource(action).add_method("POST", api_integration, request_parameters=id_param, **iam_auth)
        one.add_resource("history").add_method("GET", api_integration, request_parameters=id_param, **iam_auth)

        approval = self.rest_api.root.add_resource("approvals").add_resource("{id}")
        for verb in ("GET", "POST"):
            approval.add_method(
                verb,
                approvals_integration,
                authorization_type=apigw.AuthorizationType.NONE,
                request_validator=self.validator,
                request_parameters=id_param,
            )
