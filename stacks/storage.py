"""Storage: the artifact bucket (findings, research, analyses, reports) and the workflow table."""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from constructs import Construct
from relay_core.contracts import ARTIFACT_PREFIX, STATUS_INDEX, TABLE_PARTITION_KEY, TABLE_TTL_ATTRIBUTE

#: Days a noncurrent (overwritten or deleted) artifact version is kept.
NONCURRENT_VERSION_DAYS = 30


class Storage(Construct):
    """The artifact bucket, its access-log bucket, and the workflow table.

    Both data stores are retained when the stack is deleted (they hold users'
    reports); README.md (Deployment, Tear down) explains how to remove them.
    """

    def __init__(self, scope: Construct, construct_id: str) -> None:
        super().__init__(scope, construct_id)

        self.access_logs = s3.Bucket(
            self,
            "AccessLogs",
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_PREFERRED,
            lifecycle_rules=[s3.LifecycleRule(id="expire-access-logs", expiration=Duration.days(90))],
            removal_policy=RemovalPolicy.RETAIN,
        )
        self.bucket = s3.Bucket(
            self,
            "Artifacts",
            versioned=True,
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            minimum_tls_version=1.2,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            server_access_logs_bucket=self.access_logs,
            server_access_logs_prefix="artifacts/",
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="expire-old-versions",
                    noncurrent_version_expiration=Duration.days(NONCURRENT_VERSION_DAYS),
                    abort_incomplete_multipart_upload_after=Duration.days(7),
                    expired_object_delete_marker=True,
                )
            ],
            removal_policy=RemovalPolicy.RETAIN,
        )

        self.table = dynamodb.Table(
            self,
            "Workflows",
            partition_key=dynamodb.Attribute(name=TABLE_PARTITION_KEY, type=dynamodb.AttributeType.STRING),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            time_to_live_attribute=TABLE_TTL_ATTRIBUTE,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            encryption=dynamodb.TableEncryption.AWS_MANAGED,
            removal_policy=RemovalPolicy.RETAIN,
        )
        self.table.add_global_secondary_index(
            index_name=STATUS_INDEX,
            partition_key=dynamodb.Attribute(name="status", type=dynamodb.AttributeType.STRING),
            sort_key=dynamodb.Attribute(name="created_at", type=dynamodb.AttributeType.STRING),
            projection_type=dynamodb.ProjectionType.ALL,
        )

    # -- least-privilege grants -------------------------------------------------------------
    def artifacts_arn(self) -> str:
        """ARN pattern of every artifact object (``workflows/*``)."""
        return self.bucket.arn_for_objects(f"{ARTIFACT_PREFIX}*")

    def grant_artifacts(self, role: iam.IGrantable, *, read: bool = False, write: bool = False) -> None:
        """Allow ``s3:GetObject`` and/or ``s3:PutObject`` on ``workflows/*`` only."""
        actions = (["s3:GetObject"] if read else []) + (["s3:PutObject"] if write else [])
        role.grant_principal.add_to_principal_policy(
            iam.PolicyStatement(actions=actions, resources=[self.artifacts_arn()])
        )

    def grant_records(self, role: iam.IGrantable, *, write: bool = True) -> None:
        """Allow the item calls relay_core.records makes: Get/Query (and Put/Update)."""
        actions = ["dynamodb:GetItem", "dynamodb:Query"] + (
            ["dynamodb:PutItem", "dynamodb:UpdateItem"] if write else []
        )
        role.grant_principal.add_to_principal_policy(
            iam.PolicyStatement(
                actions=actions,
                resources=[self.table.table_arn, f"{self.table.table_arn}/index/{STATUS_INDEX}"],
            )
        )
