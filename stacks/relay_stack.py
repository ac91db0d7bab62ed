"""The Relay stack: composes one construct per concern and acknowledges, with a
reason each, the cdk-nag AwsSolutions findings that are deliberate."""

from __future__ import annotations

from typing import Any

from aws_cdk import Acknowledgment, CfnOutput, CfnResource, Stack, Validations
from constructs import Construct, IConstruct

from .agents import Agents
from .api import Api
from .approvals import Approvals
from .layer_build import Artifacts, build_all
from .monitoring import Monitoring
from .settings import from_context
from .storage import Storage
from .workflow import Workflow


class RelayStack(Stack):
    """Storage, approvals, agents, workflow, API and monitoring, wired together."""

    def __init__(
        self, scope: Construct, construct_id: str, *, artifacts: Artifacts | None = None, **kwargs: Any
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        settings = from_context(self)
        artifacts = artifacts or build_all()

        self.storage = Storage(self, "Storage")
        self.approvals = Approvals(self, "Approvals", approver_email=settings.approver_email)
        self.agents = Agents(self, "Agents", settings=settings, storage=self.storage, artifacts=artifacts)
        self.api = Api(self, "Api", settings=settings)
        self.workflow = Workflow(
            self,
            "Workflow",
            settings=settings,
            storage=self.storage,
            approvals=self.approvals,
            agents=self.agents,
            artifacts=artifacts,
            api_base_url=self.api.base_url,
        )
        self.api.add_routes(storage=self.storage, approvals=self.approvals, workflow=self.workflow)
        self.monitoring = Monitoring(
            self,
            "Monitoring",
            workflow=self.workflow,
            agents=self.agents,
            api=self.api,
            approvals=self.approvals,
        )

        CfnOutput(self, "ApiUrl", value=self.api.base_url, description="REST API base URL")
        CfnOutput(self, "StateMachineArn", value=self.workflow.state_machine.state_machine_arn)
        CfnOutput(self, "ArtifactBucketName", value=self.storage.bucket.bucket_name)
        CfnOutput(self, "WorkflowTableName", value=self.storage.table.table_name)
        CfnOutput(self, "ResearcherRuntimeArn", value=self.agents.runtime_arn)
        CfnOutput(self, "NotificationTopicArn", value=self.approvals.topic.topic_arn)
        CfnOutput(self, "DashboardName", value=self.monitoring.dashboard.dashboard_name)

        self._acknowledge()

    # -- cdk-nag ------------------------------------------------------------------------------
    def _ref(self, construct: IConstruct, attr: str = "Arn") -> str:
        """How cdk-nag prints ``Fn::GetAtt`` of ``construct``'s resource in a finding id."""
        cfn = construct if isinstance(construct, CfnResource) else construct.node.default_child
        return f"<{self.get_logical_id(cfn)}.{attr}>"  # type: ignore[arg-type]

    @staticmethod
    def _ack(scope: IConstruct, rule: str, reason: str) -> None:
        Validations.of(scope).acknowledge(
            Acknowledgment(id=f"AwsSolutions::AwsSolutions-{rule}", reason=reason)
        )

    def _acknowledge(self) -> None:
        """Every deliberate cdk-nag AwsSolutions finding, each with its reason."""
        ack = self._ack
        part, region, account = "<AWS::Partition>", "<AWS::Region>", "<AWS::AccountId>"
        xray = (
            "Resource::* here is X-Ray's PutTraceSegments/PutTelemetryRecords (added by Lambda/Step "
            "Functions active tracing), which support no resource-level permissions "
            "(Service Authorization Reference, AWS X-Ray)."
        )
        artifacts = (
            f"{self._ref(self.storage.bucket)}/workflows/*: artifacts are keyed by execution "
            "(workflows/{workflow_id}/...); the grant is limited to that prefix and to Get/PutObject."
        )
        model = (
            "The configured Bedrock model is a cross-region inference profile: InvokeModel must be allowed on the "
            "foundation model in every Region the profile routes to (Bedrock user guide, inference profile "
            "prerequisites); only the Region is wildcarded, the model id is fixed."
        )
        settings = from_context(self)
        fm_any_region = f"Resource::arn:{part}:bedrock:*::foundation-model/{settings.foundation_model_id}"

        # Storage: the access-log bucket cannot log to itself.
        ack(
            self.storage.access_logs,
            "S1",
            "This is the server access log bucket of the artifact bucket; logging it to itself would loop.",
        )

        # Approvals: the HMAC link-signing key.
        ack(
            self.approvals.signing_secret,
            "SMG4",
            "The secret is an HMAC key for approval links, not a credential of another service; rotating it "
            "invalidates every open approval link, so it is rotated by hand (README.md, Deployment: rotate with `aws secretsmanager put-secret-value`).",
        )

        # Lambda roles: X-Ray, artifact prefix, model.
        fns = {**self.workflow.functions, **self.api.functions}
        for name, fn in fns.items():
            reason = xray
            if name == "approvals":
                reason += (
                    " It also covers states:SendTaskSuccess, which supports no resource-level permissions; "
                    "the approvals function is the only role with it, and it only resumes a token it read "
                    "from a PENDING approval record after checking the signed link."
                )
            ack(fn, "IAM5[Resource::*]", reason)
        for name in ("compile_research", "analyze", "write_report", "finalize"):
            ack(fns[name], f"IAM5[Resource::{self._ref(self.storage.bucket)}/workflows/*]", artifacts)
        for name in ("api", "approvals"):  # the report link; the approval page's analysis and sources
            ack(fns[name], f"IAM5[Resource::{self._ref(self.storage.bucket)}/workflows/*]", artifacts)
        if settings.is_inference_profile:
            for name in ("plan_research", "analyze", "write_report"):
                ack(fns[name], f"IAM5[{fm_any_region}]", model)
        sm_name = self.workflow.name
        ack(
            fns["api"],
            f"IAM5[Resource::arn:{part}:states:{region}:{account}:execution:{sm_name}:*]",
            "The API describes, stops and reads the history of executions of this one state machine; "
            "execution ARNs are only known at run time, so the grant is every execution of it.",
        )

        # Researcher runtime role.
        researcher = self.agents.role
        ack(researcher, f"IAM5[Resource::{self._ref(self.storage.bucket)}/workflows/*]", artifacts)
        ack(
            researcher,
            "IAM5[Resource::*]",
            xray + " cloudwatch:PutMetricData has no resource-level permissions either and is limited by the "
            "cloudwatch:namespace condition to bedrock-agentcore. Nor have states:SendTaskHeartbeat/Success/Failure "
            "(they act on a task token): the researcher answers only the tokens AskResearcher sends it.",
        )
        prefix = self.agents.log_group_prefix
        ack(
            researcher,
            f"IAM5[Resource::arn:{part}:logs:{region}:{account}:log-group:{prefix}*]",
            "AgentCore names the runtime's log groups after the runtime id it generates "
            "(/aws/bedrock-agentcore/runtimes/{runtime-id}-{endpoint}); the grant covers only this runtime's prefix.",
        )
        ack(
            researcher,
            f"IAM5[Resource::arn:{part}:logs:{region}:{account}:log-group:{prefix}*:log-stream:*]",
            "Log streams of this runtime's log groups only (see the log-group acknowledgement).",
        )
        ack(
            researcher,
            f"IAM5[Resource::arn:{part}:logs:{region}:{account}:log-group:*]",
            "logs:DescribeLogGroups is listed on every log group of the account and Region in AWS's "
            "documented AgentCore execution role (IAM Permissions for AgentCore Runtime); it only lists names.",
        )
        if settings.is_inference_profile:
            ack(researcher, f"IAM5[{fm_any_region}]", model)

        # State machine role.
        sm_role = self.workflow.role
        ack(
            sm_role,
            "IAM5[Resource::*]",
            xray + " It also covers the CloudWatch Logs vended-log delivery actions (logs:CreateLogDelivery, "
            "logs:PutResourcePolicy, ...) that Step Functions logging requires on Resource * "
            "(Step Functions developer guide, IAM policies for CloudWatch Logs).",
        )
        from .workflow import MAP_RUN_LABEL, RECONCILE_FUNCTION, STATUS_FUNCTION, TASK_FUNCTIONS

        for spec in TASK_FUNCTIONS:
            ack(
                sm_role,
                f"IAM5[Resource::{self._ref(self.workflow.functions[spec.name].function)}:*]",
                "Versions and aliases of a task function the definition invokes (lambda:InvokeFunction on "
                "function-arn:*), as CDK's LambdaInvoke grants; no other function.",
            )
        ack(
            sm_role,
            f"IAM5[Resource::{self._ref(self.agents.cfn_runtime, 'AgentRuntimeArn')}/*]",
            "InvokeAgentRuntime is authorised on the runtime ARN and on its endpoints (ARN/runtime-endpoint/...); "
            "this is the one runtime the definition invokes.",
        )
        children = f"arn:{part}:states:{region}:{account}:execution:{sm_name}/{MAP_RUN_LABEL}:*"
        ack(
            sm_role,
            f"IAM5[Resource::{children}]",
            "Distributed Map child executions are named {state-machine}/{map-run-label}:{id} at run time; "
            "DescribeExecution/StopExecution/RedriveExecution are limited to the children of this state machine's "
            "one Map (Step Functions developer guide, IAM policies for Distributed Map states; redriving Map Runs).",
        )

        # Record-failure and reconcile functions: read the histories they name failed states from.
        for recorder in (fns[STATUS_FUNCTION.name], fns[RECONCILE_FUNCTION.name]):
            ack(
                recorder,
                f"IAM5[Resource::arn:{part}:states:{region}:{account}:execution:{sm_name}:*]",
                "It reads the history of the execution a status-change event names (or a RUNNING workflow "
                "record does, for reconcile); execution ARNs are only known at run time, so the grant is every "
                "execution of this one state machine.",
            )
            ack(
                recorder,
                f"IAM5[Resource::{children}]",
                "DescribeExecution of a failed Map child, to record the child's error and cause (see above).",
            )
            ack(
                recorder,
                f"IAM5[Resource::arn:{part}:states:{region}:{account}:mapRun:{sm_name}/{MAP_RUN_LABEL}:*]",
                "ListExecutions of one Map Run's children (by mapRunArn); Map Run ids are generated at run time.",
            )
        ack(
            self.workflow.dead_letters,
            "SQS3",
            "This queue is itself the dead-letter queue of the status-change rules' and the reconcile schedule's "
            "EventBridge targets (cdk-nag only recognises SQS redrive policies as DLQ use); it is alarmed, and "
            "what it holds is recorded by the reconcile function anyway.",
        )

        # API.
        rest_api = self.api.rest_api
        if settings.api_gateway_cloudwatch_role:
            ack(
                rest_api,
                "IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs]",
                "API Gateway needs an account-level role to write execution and access logs; AWS provides "
                "AmazonAPIGatewayPushToCloudWatchLogs for exactly that role and nothing else assumes it.",
            )
        ack(
            rest_api,
            "APIG3",
            "No WAF web ACL: /workflows* requires SigV4 (IAM) auth, the approval routes only act on a valid "
            "HMAC-signed, expiring link plus a CSRF token, and the stage is throttled. Attach a web ACL in "
            "front if the API is exposed to untrusted traffic at scale (costs ~$5/month plus requests).",
        )
        ack(
            rest_api,
            "COG4",
            "No Cognito: /workflows* uses IAM (SigV4) authorization, which callers with AWS credentials already "
            "have; the approval routes are opened from an email by a person without AWS credentials and are "
            "protected by the signed link.",
        )
        ack(
            rest_api,
            "APIG4",
            "Only GET/POST /approvals/{id} are unauthenticated, by design: the approver follows an emailed link. "
            "The handler rejects any request whose HMAC signature over id and expiry does not verify, and the "
            "decision is a conditional write that succeeds once.",
        )
