"""Typed configuration read from the environment inside handlers, never at import time.

Each function reads only the settings it needs via :func:`load`, which builds one of the
pydantic-settings classes below from ``os.environ``; a missing or malformed variable
raises :class:`relay_core.errors.ConfigurationError` naming the variable and its rule.

Variable names are matched exactly (case-sensitive): the name in each field's alias is
the name the stack sets. The classes also validate a plain mapping keyed by those names
(``ApprovalSettings.model_validate({...})``), which reads no environment.
"""

from __future__ import annotations

from typing import TypeVar

from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from .errors import ConfigurationError, describe_validation_error

T = TypeVar("T", bound=BaseSettings)

#: Shared by every settings class: exact variable names, unrelated variables ignored,
#: fields also settable by their Python names (``StoreSettings(table_name=...)``).
_FROM_ENVIRONMENT = SettingsConfigDict(case_sensitive=True, populate_by_name=True, extra="ignore")


class StoreSettings(BaseSettings):
    """Where artifacts and records live.

    Environment: ``RELAY_ARTIFACT_BUCKET``, ``RELAY_TABLE_NAME`` (both required, at least
    3 characters: the S3 and DynamoDB minimum name lengths), and ``RELAY_ARTIFACT_BASE_URL``
    (optional): where artifact links point instead of S3 presigned URLs, set by the local
    runtime to its API server's ``/artifacts`` (S3 there is in-process); unset when deployed.
    """

    model_config = _FROM_ENVIRONMENT
    artifact_bucket: str = Field(alias="RELAY_ARTIFACT_BUCKET", min_length=3)
    table_name: str = Field(alias="RELAY_TABLE_NAME", min_length=3)
    artifact_base_url: str | None = Field(default=None, alias="RELAY_ARTIFACT_BASE_URL")


class ReconcileSettings(StoreSettings):
    """Settings of the reconcile function. ``RELAY_STATE_MACHINE_ARN`` is the workflow."""

    state_machine_arn: str = Field(alias="RELAY_STATE_MACHINE_ARN", min_length=1)


class ApprovalSettings(StoreSettings):
    """Settings of the functions that create or decide approvals.

    Environment: ``RELAY_API_BASE_URL`` (links point here), ``RELAY_SIGNING_SECRET_ARN``
    (Secrets Manager, deployed) or ``RELAY_SIGNING_SECRET_FILE`` (local), and
    ``RELAY_TOPIC_ARN`` (SNS, deployed) or ``RELAY_OUTBOX_DIR`` (local .eml outbox).
    """

    api_base_url: str = Field(alias="RELAY_API_BASE_URL", min_length=1)
    signing_secret_arn: str | None = Field(default=None, alias="RELAY_SIGNING_SECRET_ARN")
    signing_secret_file: str | None = Field(default=None, alias="RELAY_SIGNING_SECRET_FILE")
    topic_arn: str | None = Field(default=None, alias="RELAY_TOPIC_ARN")
    outbox_dir: str | None = Field(default=None, alias="RELAY_OUTBOX_DIR")
    mail_from: str = Field(default="relay@localhost", alias="RELAY_MAIL_FROM")
    default_approver: str = Field(default="approver@example.com", alias="RELAY_APPROVER_EMAIL")


class ApiSettings(ApprovalSettings):
    """Settings of the HTTP API function. ``RELAY_STATE_MACHINE_ARN`` is the workflow."""

    state_machine_arn: str = Field(alias="RELAY_STATE_MACHINE_ARN", min_length=1)
    console_region: str = Field(default="us-east-1", alias="AWS_REGION")


class RequestDefaults(BaseSettings):
    """Deployment-wide defaults for execution input fields the caller leaves out.

    Environment (set by the stack from ``cdk.json`` context): ``RELAY_DEFAULT_MAX_CONCURRENCY``,
    ``RELAY_DEFAULT_TOLERATED_FAILURE_PERCENTAGE``, ``RELAY_DEFAULT_APPROVAL_TIMEOUT_SECONDS``,
    ``RELAY_DEFAULT_MAX_REVISIONS``. Unset means the :class:`~relay_core.models.WorkflowRequest`
    default. Values are validated with the request itself.
    """

    model_config = _FROM_ENVIRONMENT
    max_concurrency: str | None = Field(default=None, alias="RELAY_DEFAULT_MAX_CONCURRENCY")
    tolerated_failure_percentage: str | None = Field(default=None, alias="RELAY_DEFAULT_TOLERATED_FAILURE_PERCENTAGE")
    approval_timeout_seconds: str | None = Field(default=None, alias="RELAY_DEFAULT_APPROVAL_TIMEOUT_SECONDS")
    max_revisions: str | None = Field(default=None, alias="RELAY_DEFAULT_MAX_REVISIONS")

    def apply(self, raw: dict[str, object]) -> dict[str, object]:
        """``raw`` with each unset field filled from the deployment default."""
        filled = dict(raw)
        for field, value in self.model_dump(exclude_none=True).items():
            filled.setdefault(field, value)
        return filled


class ExecutionLimits(BaseSettings):
    """The deployed execution timeout, which every request must fit.

    Environment (set by the stack): ``RELAY_EXECUTION_TIMEOUT_SECONDS``, the state
    machine's ``TimeoutSeconds``. Unset (the local runtime, whose executions have no
    timeout) means nothing is refused.
    """

    model_config = _FROM_ENVIRONMENT
    execution_timeout_seconds: int | None = Field(default=None, gt=0, alias="RELAY_EXECUTION_TIMEOUT_SECONDS")


def load(model: type[T]) -> T:
    """Read ``model`` from ``os.environ`` (pydantic-settings' environment source).

    Raises:
        ConfigurationError: a required variable is missing or malformed; one line naming
            each such variable and its rule, e.g. ``configuration: RELAY_TABLE_NAME: Field required``.
    """
    try:
        return model()
    except ValidationError as exc:
        raise ConfigurationError(f"configuration: {describe_validation_error(exc)}") from exc
