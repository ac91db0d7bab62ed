"""Deployment settings read from CDK context (``cdk.json`` defaults, ``-c key=value`` overrides).

Every key and its default lives in ``cdk.json`` under ``context``; :func:`from_context`
validates them so a typo fails the synth instead of the deploy.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from aws_cdk import aws_logs as logs
from constructs import Construct

#: Geographic prefixes of Bedrock cross-region inference profile ids (``us.``, ``eu.``, ...).
_PROFILE_PREFIXES = ("us", "eu", "apac", "us-gov", "jp", "au", "ca", "global")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
#: CloudWatch Logs retention values accepted by ``AWS::Logs::LogGroup``.
_RETENTIONS = (
    1,
    3,
    5,
    7,
    14,
    30,
    60,
    90,
    120,
    150,
    180,
    365,
    400,
    545,
    731,
    1096,
    1827,
    2192,
    2557,
    2922,
    3288,
    3653,
)


@dataclass(frozen=True)
class Settings:
    """Validated deployment settings.

    Attributes:
        model_id: Bedrock model id or cross-region inference profile id (``us.…``).
        approver_email: the SNS email subscription; empty means no subscription.
        mail_from: the sender name shown in the approval email body.
        approval_timeout_seconds: default RequestApproval TimeoutSeconds.
        research_concurrency: default Map MaxConcurrency.
        tolerated_failure_percentage: default Map ToleratedFailurePercentage.
        max_revisions: default rejections sent back for revision.
        guardrail_id / guardrail_version: optional Bedrock guardrail.
        knowledge_base_id: optional Bedrock Knowledge Base for the researcher.
        log_retention_days: retention of every log group the stack creates.
        api_throttle_rate / api_throttle_burst: REST API stage throttling (requests/s).
    """

    model_id: str
    approver_email: str
    mail_from: str
    approval_timeout_seconds: int
    research_concurrency: int
    tolerated_failure_percentage: float
    max_revisions: int
    guardrail_id: str
    guardrail_version: str
    knowledge_base_id: str
    log_retention_days: int
    api_throttle_rate: float
    api_throttle_burst: int

    @property
    def log_retention(self) -> logs.RetentionDays:
        """:attr:`log_retention_days` as the CDK enum (same order as ``_RETENTIONS``)."""
        return list(logs.RetentionDays)[_RETENTIONS.index(self.log_retention_days)]

    @property
    def is_inference_profile(self) -> bool:
        return self.model_id.split(".", 1)[0] in _PROFILE_PREFIXES

    @property
    def foundation_model_id(self) -> str:
        """The model id without an inference profile's geographic prefix."""
        return self.model_id.split(".", 1)[1] if self.is_inference_profile else self.model_id


def _get(scope: Construct, key: str, default: object) -> object:
    value = scope.node.try_get_context(key)
    return default if value is None else value


def from_context(scope: Construct) -> Settings:
    """Read and validate the settings.

    Raises:
        ValueError: a value is out of range or malformed; the message names the key.
    """
    s = Settings(
        model_id=str(_get(scope, "modelId", "us.amazon.nova-pro-v1:0")).strip(),
        approver_email=str(_get(scope, "approverEmail", "")).strip(),
        mail_from=str(_get(scope, "mailFrom", "Relay")).strip(),
        approval_timeout_seconds=int(_get(scope, "approvalTimeoutSeconds", 86400)),  # type: ignore[call-overload]
        research_concurrency=int(_get(scope, "researchConcurrency", 3)),  # type: ignore[call-overload]
        tolerated_failure_percentage=float(_get(scope, "toleratedFailurePercentage", 34)),  # type: ignore[arg-type]
        max_revisions=int(_get(scope, "maxRevisions", 2)),  # type: ignore[call-overload]
        guardrail_id=str(_get(scope, "guardrailId", "")).strip(),
        guardrail_version=str(_get(scope, "guardrailVersion", "")).strip(),
        knowledge_base_id=str(_get(scope, "knowledgeBaseId", "")).strip(),
        log_retention_days=int(_get(scope, "logRetentionDays", 30)),  # type: ignore[call-overload]
        api_throttle_rate=float(_get(scope, "apiThrottleRate", 10)),  # type: ignore[arg-type]
        api_throttle_burst=int(_get(scope, "apiThrottleBurst", 20)),  # type: ignore[call-overload]
    )
    problems = []
    if not re.fullmatch(r"[A-Za-z0-9.:_-]{3,200}", s.model_id):
        problems.append(f"modelId {s.model_id!r} is not a Bedrock model or inference profile id")
    if s.approver_email and not _EMAIL.match(s.approver_email):
        problems.append(f"approverEmail {s.approver_email!r} is not an email address")
    # Step Functions caps a Task's TimeoutSeconds at one year (99999999 s is the schema maximum).
    if not 60 <= s.approval_timeout_seconds <= 31_536_000:
        problems.append("approvalTimeoutSeconds must be between 60 and 31536000 (one year)")
    if not 1 <= s.research_concurrency <= 1000:
        problems.append("researchConcurrency must be between 1 and 1000")
    if not 0 <= s.tolerated_failure_percentage <= 100:
        problems.append("toleratedFailurePercentage must be between 0 and 100")
    if not 0 <= s.max_revisions <= 10:
        problems.append("maxRevisions must be between 0 and 10")
    if bool(s.guardrail_id) != bool(s.guardrail_version):
        problems.append("guardrailId and guardrailVersion go together: set both or neither")
    if s.log_retention_days not in _RETENTIONS:
        problems.append(f"logRetentionDays must be one of {_RETENTIONS}")
    if s.api_throttle_rate <= 0 or s.api_throttle_burst <= 0:
        problems.append("apiThrottleRate and apiThrottleBurst must be positive")
    if problems:
        raise ValueError("invalid context: " + "; ".join(problems))
    return s
