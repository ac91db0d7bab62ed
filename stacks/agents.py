"""Agents: the researcher AgentCore runtime (direct code deployment) and its execution role.

Deployment path: **direct code deployment** with the stable L1
``aws_cdk.aws_bedrockagentcore.CfnRuntime``. A zip built here without Docker
(``stacks/layer_build.py``) is uploaded as a CDK file asset and AgentCore runs
``main.py`` on its managed Python runtime: no container image, no ECR repository, no
Docker on the build machine. We use the L1 rather than the L2 ``Runtime`` (or the
deprecated alpha package) because the L2 adds statements of its own to the execution
role (``logs:DescribeLogGroups`` on every log group, all ``/aws/bedrock-agentcore/*`` log
groups, workload-identity tokens, ``s3:List*``/``GetObject*`` on the whole CDK asset
bucket) that this agent does not need; with the L1 the role holds what AWS documents for
an execution role ("IAM Permissions for AgentCore Runtime", execution role: log groups
and streams under ``/aws/bedrock-agentcore/runtimes/``, ``logs:DescribeLogGroups``, X-Ray
segments, telemetry and sampling, metrics in the ``bedrock-agentcore`` namespace) narrowed
to this runtime, plus what the researcher uses (the model, ``workflows/*`` writes). Left
out: ECR (no container image) and workload-identity tokens (no AgentCore Identity).
``Runtime.from_agent_runtime_attributes`` still gives us the L2's
metric helpers for the dashboard.
"""

from __future__ import annotations

import re

from aws_cdk import Aws, Stack
from aws_cdk import aws_bedrockagentcore as agentcore
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3_assets as s3_assets
from constructs import Construct

from .layer_build import AGENT_ENTRYPOINT, Artifacts
from .settings import Settings
from .storage import Storage

#: What the researcher runtime calls on Step Functions to answer AskResearcher's task token.
CALLBACK_ACTIONS = ["states:SendTaskHeartbeat", "states:SendTaskSuccess", "states:SendTaskFailure"]
#: AgentCore managed runtime (same Python as the Lambda layer was built for).
AGENT_RUNTIME = "PYTHON_3_14"


def model_statements(settings: Settings) -> list[iam.PolicyStatement]:
    """Least-privilege Bedrock statements for the configured model (and guardrail).

    A cross-region inference profile (``us.…``) needs ``InvokeModel*`` on the profile
    *and* on the foundation model in every Region the profile routes to
    (`Bedrock inference profiles prerequisites
    <https://docs.aws.amazon.com/bedrock/latest/userguide/inference-profiles-prereq.html>`_),
    hence the Region wildcard on the foundation-model ARN only.
    """
    part = Aws.PARTITION
    if settings.is_inference_profile:
        resources = [
            f"arn:{part}:bedrock:{Aws.REGION}:{Aws.ACCOUNT_ID}:inference-profile/{settings.model_id}",
            f"arn:{part}:bedrock:*::foundation-model/{settings.foundation_model_id}",
        ]
    else:
        resources = [f"arn:{part}:bedrock:{Aws.REGION}::foundation-model/{settings.model_id}"]
    out = [
        iam.PolicyStatement(
            sid="InvokeConfiguredModel",
            actions=["bedrock:InvokeModel", "bedrock:InvokeModelWithResponseStream"],
            resources=resources,
        )
    ]
    if settings.guardrail_id:
        out.append(
            iam.PolicyStatement(
                sid="ApplyConfiguredGuardrail",
                actions=["bedrock:ApplyGuardrail"],
                resources=[
                    f"arn:{part}:bedrock:{Aws.REGION}:{Aws.ACCOUNT_ID}:guardrail/{settings.guardrail_id}"
                ],
            )
        )
    return out


def model_environment(settings: Settings) -> dict[str, str]:
    """The model settings every agent reads (relay_agents model factory)."""
    env = {
        "RELAY_MODEL_PROVIDER": "bedrock",
        "RELAY_MODEL_ID": settings.model_id,
        # Search indexes are cached on disk; /tmp is the writable place in Lambda and AgentCore.
        "RELAY_CACHE_DIR": "/tmp/relay-cache",
    }
    if settings.guardrail_id:
        env |= {
            "RELAY_GUARDRAIL_ID": settings.guardrail_id,
            "RELAY_GUARDRAIL_VERSION": settings.guardrail_version,
        }
    if settings.knowledge_base_id:
        env["RELAY_KNOWLEDGE_BASE_ID"] = settings.knowledge_base_id
    return env


class Agents(Construct):
    """The researcher runtime; ``runtime_arn`` is what the state machine invokes."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: Settings,
        storage: Storage,
        artifacts: Artifacts,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        name = re.sub(r"[^A-Za-z0-9_]", "_", f"{stack.stack_name}_researcher")[:48]
        if not name[0].isalpha():
            name = f"r{name[:47]}"

        # The runtime writes its logs under this prefix (AgentCore runtime observability docs).
        log_prefix = f"/aws/bedrock-agentcore/runtimes/{name}-"
        self.role = iam.Role(
            self,
            "ResearcherRole",
            description="AgentCore execution role of the Relay researcher runtime",
            assumed_by=iam.ServicePrincipal(
                "bedrock-agentcore.amazonaws.com",
                conditions={
                    "StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID},
                    "ArnLike": {
                        "aws:SourceArn": f"arn:{Aws.PARTITION}:bedrock-agentcore:{Aws.REGION}:{Aws.ACCOUNT_ID}:*"
                    },
                },
            ),
        )
        for statement in model_statements(settings):
            self.role.add_to_policy(statement)
        if settings.knowledge_base_id:
            self.role.add_to_policy(
                iam.PolicyStatement(
                    sid="RetrieveFromKnowledgeBase",
                    actions=["bedrock:Retrieve"],
                    resources=[
                        f"arn:{Aws.PARTITION}:bedrock:{Aws.REGION}:{Aws.ACCOUNT_ID}:knowledge-base/{settings.knowledge_base_id}"
                    ],
                )
            )
        # Findings are written to workflows/{workflow_id}/findings/...; nothing else.
        storage.grant_artifacts(self.role, write=True)
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="RuntimeLogs",
                actions=[
                    "logs:CreateLogGroup",
                    "logs:CreateLogStream",
                    "logs:PutLogEvents",
                    "logs:DescribeLogStreams",
                ],
                resources=[
                    f"arn:{Aws.PARTITION}:logs:{Aws.REGION}:{Aws.ACCOUNT_ID}:log-group:{log_prefix}*",
                    f"arn:{Aws.PARTITION}:logs:{Aws.REGION}:{Aws.ACCOUNT_ID}:log-group:{log_prefix}*:log-stream:*",
                ],
            )
        )
        # AgentCore's documented execution role lists DescribeLogGroups on every log group of
        # the account and Region (the action cannot be scoped to one group's ARN).
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="RuntimeLogGroupsDescribe",
                actions=["logs:DescribeLogGroups"],
                resources=[f"arn:{Aws.PARTITION}:logs:{Aws.REGION}:{Aws.ACCOUNT_ID}:log-group:*"],
            )
        )
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="RuntimeMetrics",
                actions=["cloudwatch:PutMetricData"],
                resources=["*"],
                conditions={"StringEquals": {"cloudwatch:namespace": "bedrock-agentcore"}},
            )
        )
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="RuntimeTraces",
                actions=[
                    "xray:PutTraceSegments",
                    "xray:PutTelemetryRecords",
                    "xray:GetSamplingRules",
                    "xray:GetSamplingTargets",
                ],
                resources=["*"],
            )
        )

        # AskResearcher waits for the researcher's callback (invokeAgentRuntime.waitForTaskToken):
        # the runtime heartbeats and ends the task itself. SendTask* act on a task token, not
        # on a resource ARN: they support no resource-level permissions ("Actions, resources,
        # and condition keys for AWS Step Functions"), hence "*" (acknowledged in relay_stack.py).
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="ResearcherCallbacks",
                actions=CALLBACK_ACTIONS,
                resources=["*"],
            )
        )

        self.code = s3_assets.Asset(
            self,
            "ResearcherCode",
            path=str(artifacts.agent_bundle_zip),
            asset_hash=artifacts.agent_bundle_zip.stem,
            display_name="Relay researcher runtime code",
        )
        # No s3:GetObject on the code object here: AgentCore fetches direct-deployment code
        # with the credentials of the principal calling CreateAgentRuntime/UpdateAgentRuntime
        # (the CloudFormation deploy role), not with the execution role.
        self.cfn_runtime = agentcore.CfnRuntime(
            self,
            "Researcher",
            agent_runtime_name=name,
            description="Relay researcher: answers one research question, writes the finding to S3",
            role_arn=self.role.role_arn,
            agent_runtime_artifact=agentcore.CfnRuntime.AgentRuntimeArtifactProperty(
                code_configuration=agentcore.CfnRuntime.CodeConfigurationProperty(
                    code=agentcore.CfnRuntime.CodeProperty(
                        s3=agentcore.CfnRuntime.S3LocationProperty(
                            bucket=self.code.s3_bucket_name, prefix=self.code.s3_object_key
                        )
                    ),
                    entry_point=[AGENT_ENTRYPOINT],
                    runtime=AGENT_RUNTIME,
                )
            ),
            network_configuration=agentcore.CfnRuntime.NetworkConfigurationProperty(network_mode="PUBLIC"),
            protocol_configuration="HTTP",
            environment_variables={
                "RELAY_ARTIFACT_BUCKET": storage.bucket.bucket_name,
                "POWERTOOLS_SERVICE_NAME": "relay",
                "POWERTOOLS_METRICS_NAMESPACE": "Relay",
                **model_environment(settings),
            },
        )
        # The role and its policy must exist before AgentCore validates them.
        self.cfn_runtime.node.add_dependency(self.role)
        self.runtime_arn = self.cfn_runtime.attr_agent_runtime_arn
        self.runtime = agentcore.Runtime.from_agent_runtime_attributes(
            self,
            "ResearcherRef",
            agent_runtime_arn=self.runtime_arn,
            agent_runtime_id=self.cfn_runtime.attr_agent_runtime_id,
            agent_runtime_name=name,
            role_arn=self.role.role_arn,
        )
        self.log_group_prefix = log_prefix
        self.runtime_name = name
