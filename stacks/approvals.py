"""Approvals: the notification topic (approval emails, completion notices, alarms) and the
link-signing secret.

The topic is encrypted with a customer-managed KMS key because CloudWatch alarms and
EventBridge cannot publish to a topic encrypted with the AWS-managed ``alias/aws/sns``
key (its key policy cannot grant them ``kms:GenerateDataKey*``).
"""

from __future__ import annotations

from aws_cdk import Annotations, Aws, Duration, RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subs
from constructs import Construct

#: Characters in the generated HMAC signing secret (alphanumeric: ~380 bits).
SECRET_LENGTH = 64


def alarm_publish_statement(topic_arn: str) -> iam.PolicyStatement:
    """The topic-policy statement letting this account's CloudWatch alarms publish.

    ``cloudwatch.amazonaws.com`` may ``sns:Publish`` to ``topic_arn`` only on behalf of an
    alarm of this account and Region (``aws:SourceArn`` like
    ``arn:{partition}:cloudwatch:{region}:{account}:alarm:*``) and this account
    (``aws:SourceAccount``), per the SNS developer guide's confused-deputy guidance.
    """
    return iam.PolicyStatement(
        sid="AllowThisAccountsAlarmsToPublish",
        principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
        actions=["sns:Publish"],
        resources=[topic_arn],
        conditions={
            "ArnLike": {
                "aws:SourceArn": f"arn:{Aws.PARTITION}:cloudwatch:{Aws.REGION}:{Aws.ACCOUNT_ID}:alarm:*"
            },
            "StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID},
        },
    )


class Approvals(Construct):
    """SNS topic + email subscription from context, and the signing secret."""

    def __init__(self, scope: Construct, construct_id: str, *, approver_email: str) -> None:
        super().__init__(scope, construct_id)

        self.key = kms.Key(
            self,
            "TopicKey",
            description="Relay notification topic encryption",
            enable_key_rotation=True,
            removal_policy=RemovalPolicy.DESTROY,
            pending_window=Duration.days(7),
        )
        for service in ("cloudwatch.amazonaws.com", "events.amazonaws.com"):
            self.key.add_to_resource_policy(
                iam.PolicyStatement(
                    sid=f"PublishFrom{service.split('.')[0].title()}",
                    principals=[iam.ServicePrincipal(service)],
                    actions=["kms:Decrypt", "kms:GenerateDataKey*"],
                    resources=["*"],  # in a key policy "*" means this key
                )
            )

        self.topic = sns.Topic(
            self,
            "Notifications",
            display_name="Relay",
            master_key=self.key,
            enforce_ssl=True,
        )
        # enforce_ssl and the EventBridge target make CDK write an AWS::SNS::TopicPolicy, and a
        # topic policy *replaces* SNS's default one: without this statement only
        # events.amazonaws.com may publish and every alarm action fails with "not authorized
        # to perform: SNS:Publish" (SNS developer guide, "Example cases for Amazon SNS access
        # control": CloudWatch alarms publishing to a topic; confused-deputy conditions from
        # "Cross-service confused deputy prevention").
        self.topic.add_to_resource_policy(alarm_publish_statement(self.topic.topic_arn))
        if approver_email:
            self.topic.add_subscription(subs.EmailSubscription(approver_email))
        else:
            Annotations.of(self).add_warning_v2(
                "relay:no-approver",
                "approverEmail is empty: no email subscription; pass -c approverEmail=you@example.com",
            )

        self.signing_secret = secretsmanager.Secret(
            self,
            "SigningSecret",
            description="Relay approval-link HMAC key (rotate by putting a new value; open links stop working)",
            generate_secret_string=secretsmanager.SecretStringGenerator(
                password_length=SECRET_LENGTH, exclude_punctuation=True, include_space=False
            ),
            removal_policy=RemovalPolicy.DESTROY,
        )

    def grant_notify(self, role: iam.IGrantable) -> None:
        """``sns:Publish`` on the topic, and the two KMS calls publishing to an encrypted topic
        needs on its key (SNS developer guide, "Encryption at rest": kms:GenerateDataKey and
        kms:Decrypt); explicit actions instead of ``grant_publish``'s ``GenerateDataKey*``."""
        role.grant_principal.add_to_principal_policy(
            iam.PolicyStatement(
                sid="PublishNotifications", actions=["sns:Publish"], resources=[self.topic.topic_arn]
            )
        )
        role.grant_principal.add_to_principal_policy(
            iam.PolicyStatement(
                sid="EncryptNotifications",
                actions=["kms:GenerateDataKey", "kms:Decrypt"],
                resources=[self.key.key_arn],
            )
        )

    def grant_secret(self, role: iam.IGrantable) -> None:
        """``secretsmanager:GetSecretValue``/``DescribeSecret`` on the signing secret only."""
        self.signing_secret.grant_read(role)
