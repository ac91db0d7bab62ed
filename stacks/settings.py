"""Deployment settings read from CDK context (``cdk.json`` defaults, ``-c key=value`` overrides).

Every key and its default lives in ``cdk.json`` under ``context``; :func:`from_context`
validates them so a typo fails the synth instead of the deploy.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from aws_cdk import Stack, Token
from aws_cdk import aws_logs as logs
from constructs import Construct
from email_validator import EmailNotValidError, validate_email

#: Geographic prefixes of Bedrock cross-region inference profile ids, each with the Region
#: name prefixes it serves as a *source* Region (Bedrock user guide, "Supported Regions and
#: models for inference profiles": a geographic profile is called from a Region of its
#: geography; ``global.`` from commercial Regions). Checked at synth so a ``us.`` profile is
#: never deployed to ``eu-west-1`` (InvokeModel would fail at run time).
PROFILE_REGIONS: dict[str, tuple[str, ...]] = {
    "us": ("us-east-", "us-west-"),
    "us-gov": ("us-gov-",),
    "eu": ("eu-",),
    "apac": ("ap-",),
    "jp": ("ap-northeast-1", "ap-northeast-3"),
    "au": ("ap-southeast-2", "ap-southeast-4"),
    "ca": ("ca-",),
    "global": ("us-east-", "us-west-", "eu-", "ap-", "ca-", "sa-", "me-", "af-", "il-", "mx-"),
}
_PROFILE_PREFIXES = tuple(PROFILE_REGIONS)
#: Bedrock API patterns (Bedrock API reference: GuardrailConfiguration, KnowledgeBase).
_GUARDRAIL_ID = re.compile(r"[a-z0-9]{1,64}")
_GUARDRAIL_VERSION = re.compile(r"[1-9][0-9]{0,7}|DRAFT")
_KNOWLEDGE_BASE_ID = re.compile(r"[0-9a-zA-Z]{10}")
#: CloudFormation stack names (CloudFormation user guide, "Stack name" constraints).
_STACK_NAME = re.compile(r"[A-Za-z][A-Za-z0-9-]{0,127}")
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
        api_gateway_cloudwatch_role: create API Gateway's account-wide CloudWatch Logs role
            (retained on destroy); ``False`` when the account already has one.
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
    api_gateway_cloudwatch_role: bool = True

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


class ContextError(ValueError):
    """A context value is malformed or out of range; ``str()`` is one line naming the key(s)."""


def _get(scope: Construct, key: str, default: object) -> object:
    value = scope.node.try_get_context(key)
    return default if value is None else value


def _bool(scope: Construct, key: str, default: bool) -> bool:
    value = _get(scope, key, default)
    if isinstance(value, bool):
        return value
    if str(value).strip().lower() in ("true", "false"):
        return str(value).strip().lower() == "true"
    raise ContextError(f"invalid context: {key} must be true or false, not {value!r}")


def _number(scope: Construct, key: str, default: object, kind: type) -> object:
    value = _get(scope, key, default)
    try:
        return kind(value)
    except (TypeError, ValueError):
        raise ContextError(f"invalid context: {key} must be a number, not {value!r}") from None


def deploy_region(scope: Construct) -> str | None:
    """The Region the stack deploys to, if known at synth: the stack's own Region, else
    ``CDK_DEFAULT_REGION`` (which the CDK CLI sets from the profile or ``AWS_REGION``)."""
    stacks = [c for c in reversed(scope.node.scopes) if isinstance(c, Stack)]
    if stacks and stacks[0].region and not Token.is_unresolved(stacks[0].region):
        return stacks[0].region
    return os.environ.get("CDK_DEFAULT_REGION") or None


def profile_problem(model_id: str, region: str | None) -> str | None:
    """Why ``model_id``'s inference-profile prefix cannot be called from ``region``, or None
    (a plain model id, an unknown Region, or a matching geography)."""
    prefix = model_id.split(".", 1)[0]
    if "." not in model_id or prefix not in PROFILE_REGIONS or not region:
        return None
    if region.startswith(PROFILE_REGIONS[prefix]):
        return None
    serving = [p for p, regions in PROFILE_REGIONS.items() if p != "global" and region.startswith(regions)]
    hint = f"use the {serving[0]}. or global. profile" if serving else "use a model id offered in that Region"
    return (
        f"modelId {model_id!r}: the {prefix}. inference profile does not serve the deploy Region "
        f"{region} ({hint})"
    )


def from_context(scope: Construct) -> Settings:
    """Read and validate the settings.

    Raises:
        ContextError: a value is out of range or malformed, or the model's inference-profile
            prefix does not serve the deploy Region; the one-line message names the key(s).
    """
    s = Settings(
        model_id=str(_get(scope, "modelId", "us.amazon.nova-pro-v1:0")).strip(),
        approver_email=str(_get(scope, "approverEmail", "")).strip(),
        mail_from=str(_get(scope, "mailFrom", "Relay")).strip(),
        approval_timeout_seconds=_number(scope, "approvalTimeoutSeconds", 86400, int),  # type: ignore[arg-type]
        research_concurrency=_number(scope, "researchConcurrency", 3, int),  # type: ignore[arg-type]
        tolerated_failure_percentage=_number(scope, "toleratedFailurePercentage", 34, float),  # type: ignore[arg-type]
        max_revisions=_number(scope, "maxRevisions", 2, int),  # type: ignore[arg-type]
        guardrail_id=str(_get(scope, "guardrailId", "")).strip(),
        guardrail_version=str(_get(scope, "guardrailVersion", "")).strip(),
        knowledge_base_id=str(_get(scope, "knowledgeBaseId", "")).strip(),
        log_retention_days=_number(scope, "logRetentionDays", 30, int),  # type: ignore[arg-type]
        api_throttle_rate=_number(scope, "apiThrottleRate", 10, float),  # type: ignore[arg-type]
        api_throttle_burst=_number(scope, "apiThrottleBurst", 20, int),  # type: ignore[arg-type]
        api_gateway_cloudwatch_role=_bool(scope, "apiGatewayCloudWatchRole", True),
    )
    problems = []
    if not re.fullmatch(r"[A-Za-z0-9.:_-]{3,200}", s.model_id):
        problems.append(f"modelId {s.model_id!r} is not a Bedrock model or inference profile id")
    if s.approver_email:
        try:
            validate_email(s.approver_email, check_deliverability=False)
        except EmailNotValidError as exc:
            problems.append(f"approverEmail {s.approver_email!r} is not an email address ({exc})")
    if (region_problem := profile_problem(s.model_id, deploy_region(scope))) is not None:
        problems.append(region_problem)
    if s.guardrail_id and not _GUARDRAIL_ID.fullmatch(s.guardrail_id):
        problems.append(f"guardrailId {s.guardrail_id!r} must be 1-64 lowercase letters or digits")
    if s.guardrail_version and not _GUARDRAIL_VERSION.fullmatch(s.guardrail_version):
        problems.append(f"guardrailVersion {s.guardrail_version!r} must be a version number or DRAFT")
    if s.knowledge_base_id and not _KNOWLEDGE_BASE_ID.fullmatch(s.knowledge_base_id):
        problems.append(f"knowledgeBaseId {s.knowledge_base_id!r} must be 10 letters or digits")
    stack_name = str(_get(scope, "stackName", "Relay"))
    if not _STACK_NAME.fullmatch(stack_name):
        problems.append(
            f"stackName {stack_name!r} must start with a letter and hold only letters, digits and '-'"
        )
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
        raise ContextError("invalid context: " + "; ".join(problems))
    return s
