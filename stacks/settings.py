"""Deployment settings read from CDK context (``cdk.json`` defaults, ``-c key=value`` overrides).

Every key and its default lives in ``cdk.json`` under ``context`` (the defaults of
:class:`Settings` are the same values, for a context that leaves a key out);
:func:`from_context` validates them so a typo fails the synth instead of the deploy.
"""

from __future__ import annotations

import os
import re
from typing import Any

from aws_cdk import Stack, Token
from aws_cdk import aws_logs as logs
from constructs import Construct
from email_validator import EmailNotValidError, validate_email
from pydantic import Field, ValidationError, ValidationInfo, field_validator, model_validator
from pydantic.fields import FieldInfo
from pydantic_core import PydanticCustomError
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict
from relay_core.models import MAX_EXECUTION_SECONDS, WORK_BUDGET_SECONDS, execution_seconds_needed

from .regions import region_problem

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


class ContextError(ValueError):
    """A context value is malformed or out of range; ``str()`` is one line naming the key(s)."""


def _rule(message: str) -> PydanticCustomError:
    """A validation error whose text is exactly ``message`` (it names the key itself)."""
    return PydanticCustomError("context", "{message}", {"message": message})


def _key(info: ValidationInfo) -> str:
    """The context key of the field being validated (its alias)."""
    return str(Settings.model_fields[str(info.field_name)].validation_alias)


class CdkContextSource(PydanticBaseSettingsSource):
    """A pydantic-settings source reading each field's context key (its alias) from a
    construct's CDK context: ``cdk.json``'s ``context`` and ``-c key=value`` overrides.
    Keys that are not set are left out, so the field's default applies."""

    def __init__(self, settings_cls: type[BaseSettings], scope: Construct):
        super().__init__(settings_cls)
        self.scope = scope

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        key = str(field.validation_alias or field_name)
        return self.scope.node.try_get_context(key), key, False

    def __call__(self) -> dict[str, Any]:
        values = {}
        for name, field in self.settings_cls.model_fields.items():
            value, key, _complex = self.get_field_value(field, name)
            if value is not None:
                values[key] = value
        return values


class Settings(BaseSettings):
    """Validated deployment settings, one field per ``cdk.json`` context key (the alias).

    Read with :func:`from_context`; only CDK context is a source (never the process
    environment or a dotenv file), so a synth depends on ``cdk.json`` and ``-c`` alone.

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
        stack_name: the CloudFormation stack name.
    """

    model_config = SettingsConfigDict(frozen=True, populate_by_name=True, extra="ignore")

    model_id: str = Field(default="us.amazon.nova-pro-v1:0", validation_alias="modelId")
    approver_email: str = Field(default="", validation_alias="approverEmail")
    mail_from: str = Field(default="Relay", validation_alias="mailFrom")
    approval_timeout_seconds: int = Field(default=86400, validation_alias="approvalTimeoutSeconds")
    research_concurrency: int = Field(default=3, validation_alias="researchConcurrency")
    tolerated_failure_percentage: float = Field(default=34, validation_alias="toleratedFailurePercentage")
    max_revisions: int = Field(default=2, validation_alias="maxRevisions")
    guardrail_id: str = Field(default="", validation_alias="guardrailId")
    guardrail_version: str = Field(default="", validation_alias="guardrailVersion")
    knowledge_base_id: str = Field(default="", validation_alias="knowledgeBaseId")
    log_retention_days: int = Field(default=30, validation_alias="logRetentionDays")
    api_throttle_rate: float = Field(default=10, validation_alias="apiThrottleRate")
    api_throttle_burst: int = Field(default=20, validation_alias="apiThrottleBurst")
    api_gateway_cloudwatch_role: bool = Field(default=True, validation_alias="apiGatewayCloudWatchRole")
    stack_name: str = Field(default="Relay", validation_alias="stackName")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Only the values passed in (:func:`from_context` passes the CDK context)."""
        return (init_settings,)

    # ----- types: context values arrive as JSON values or, from ``-c``, as strings -----
    @field_validator("model_id", "approver_email", "mail_from", "guardrail_id", "guardrail_version",
                     "knowledge_base_id", "stack_name", mode="before")  # fmt: skip
    @classmethod
    def _text(cls, value: Any) -> str:
        return str(value).strip()

    @field_validator("approval_timeout_seconds", "research_concurrency", "max_revisions",
                     "log_retention_days", "api_throttle_burst", mode="before")  # fmt: skip
    @classmethod
    def _whole_number(cls, value: Any, info: ValidationInfo) -> int:
        try:
            return int(value)
        except (TypeError, ValueError):
            raise _rule(f"{_key(info)} must be a number, not {value!r}") from None

    @field_validator("tolerated_failure_percentage", "api_throttle_rate", mode="before")
    @classmethod
    def _number(cls, value: Any, info: ValidationInfo) -> float:
        try:
            return float(value)
        except (TypeError, ValueError):
            raise _rule(f"{_key(info)} must be a number, not {value!r}") from None

    @field_validator("api_gateway_cloudwatch_role", mode="before")
    @classmethod
    def _true_or_false(cls, value: Any, info: ValidationInfo) -> bool:
        if isinstance(value, bool):
            return value
        if str(value).strip().lower() in ("true", "false"):
            return str(value).strip().lower() == "true"
        raise _rule(f"{_key(info)} must be true or false, not {value!r}")

    # ----- rules ---------------------------------------------------------------------
    @field_validator("model_id")
    @classmethod
    def _model_id(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9.:_-]{3,200}", value):
            raise _rule(f"modelId {value!r} is not a Bedrock model or inference profile id")
        return value

    @field_validator("approver_email")
    @classmethod
    def _approver_email(cls, value: str) -> str:
        if value:
            try:
                validate_email(value, check_deliverability=False)
            except EmailNotValidError as exc:
                raise _rule(f"approverEmail {value!r} is not an email address ({exc})") from None
        return value

    @field_validator("guardrail_id")
    @classmethod
    def _guardrail_id(cls, value: str) -> str:
        if value and not _GUARDRAIL_ID.fullmatch(value):
            raise _rule(f"guardrailId {value!r} must be 1-64 lowercase letters or digits")
        return value

    @field_validator("guardrail_version")
    @classmethod
    def _guardrail_version(cls, value: str) -> str:
        if value and not _GUARDRAIL_VERSION.fullmatch(value):
            raise _rule(f"guardrailVersion {value!r} must be a version number or DRAFT")
        return value

    @field_validator("knowledge_base_id")
    @classmethod
    def _knowledge_base_id(cls, value: str) -> str:
        if value and not _KNOWLEDGE_BASE_ID.fullmatch(value):
            raise _rule(f"knowledgeBaseId {value!r} must be 10 letters or digits")
        return value

    @field_validator("stack_name")
    @classmethod
    def _stack_name(cls, value: str) -> str:
        if not _STACK_NAME.fullmatch(value):
            raise _rule(f"stackName {value!r} must start with a letter and hold only letters, digits and '-'")
        return value

    @field_validator("approval_timeout_seconds")
    @classmethod
    def _approval_timeout(cls, value: int) -> int:
        # Step Functions caps a Task's TimeoutSeconds at one year (99999999 s is the schema maximum).
        if not 60 <= value <= 31_536_000:
            raise _rule("approvalTimeoutSeconds must be between 60 and 31536000 (one year)")
        return value

    @field_validator("research_concurrency")
    @classmethod
    def _research_concurrency(cls, value: int) -> int:
        if not 1 <= value <= 1000:
            raise _rule("researchConcurrency must be between 1 and 1000")
        return value

    @field_validator("tolerated_failure_percentage")
    @classmethod
    def _tolerated_failure_percentage(cls, value: float) -> float:
        if not 0 <= value <= 100:
            raise _rule("toleratedFailurePercentage must be between 0 and 100")
        return value

    @field_validator("max_revisions")
    @classmethod
    def _max_revisions(cls, value: int) -> int:
        if not 0 <= value <= 10:
            raise _rule("maxRevisions must be between 0 and 10")
        return value

    @field_validator("log_retention_days")
    @classmethod
    def _log_retention_days(cls, value: int) -> int:
        if value not in _RETENTIONS:
            raise _rule(f"logRetentionDays must be one of {_RETENTIONS}")
        return value

    @field_validator("api_throttle_rate", "api_throttle_burst")
    @classmethod
    def _positive(cls, value: float) -> float:
        if value <= 0:
            raise _rule("apiThrottleRate and apiThrottleBurst must be positive")
        return value

    @model_validator(mode="after")
    def _defaults_fit_an_execution(self) -> Settings:
        # The execution timeout is sized for a request with these defaults; if they cannot
        # fit a Standard execution's year, every request left at its defaults would be refused.
        needed = execution_seconds_needed(self.approval_timeout_seconds, self.max_revisions)
        if needed > MAX_EXECUTION_SECONDS:
            raise _rule(
                f"approvalTimeoutSeconds {self.approval_timeout_seconds} × (maxRevisions {self.max_revisions} + 1)"
                f" + {WORK_BUDGET_SECONDS} s = {needed} s exceeds a Standard execution's {MAX_EXECUTION_SECONDS} s (one year)"
            )
        return self

    @model_validator(mode="after")
    def _guardrail_pair(self) -> Settings:
        if bool(self.guardrail_id) != bool(self.guardrail_version):
            raise _rule("guardrailId and guardrailVersion go together: set both or neither")
        return self

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
    """Read and validate the settings from ``scope``'s CDK context (:class:`CdkContextSource`).

    Raises:
        ContextError: values are out of range or malformed, the deploy Region is not one
            where AgentCore Runtime is documented (:mod:`stacks.regions`), or the model's
            inference-profile prefix does not serve the deploy Region; one line naming every such key
            (``invalid context: maxRevisions must be between 0 and 10; …``).
    """
    values = CdkContextSource(Settings, scope)()
    settings: Settings | None = None
    problems: list[str] = []
    try:
        settings = Settings(**values)
    except ValidationError as exc:
        problems = [_problem(item) for item in exc.errors()]
    model_id = str(values.get("modelId", Settings.model_fields["model_id"].default)).strip()
    region = deploy_region(scope)
    if (agentcore_problem := region_problem(region)) is not None:
        problems.append(agentcore_problem)
    if (profile := profile_problem(model_id, region)) is not None:
        problems.append(profile)
    if problems or settings is None:
        raise ContextError("invalid context: " + "; ".join(dict.fromkeys(problems)))
    return settings


def _problem(error: Any) -> str:
    """One validation error as the key and its rule (the rules above name their key)."""
    if error["type"] == "context":
        return str(error["msg"])
    key = ".".join(str(part) for part in error.get("loc", ())) or "context"
    return f"{key}: {error['msg']}"
