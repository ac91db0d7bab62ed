"""Request and response models of the workflows HTTP API (``functions/api``).

The request side parses untrusted input: every parser here raises
:class:`relay_core.errors.InvalidInput` (or a subclass with its own status) whose
message names the field and the rule (``questions: Input should be less than or
equal to 40``), so the handler answers 4xx ``{"message": …}`` and never 5xx on bad
input. Request bodies are strict: only ``application/json`` (415 otherwise), each key
given once, JSON types are not coerced (``"3"``, ``true`` and ``3.0`` are not
integers), and text fields refuse control characters other than tab and newline.
The handler declares these models to Powertools' request validation, which also
generates the API's OpenAPI document (``docs/openapi.json``); the ``parse_*``
functions apply the same rules to raw text. The response side is what the handler
returns (serialised as ``model_dump(mode="json")``); none of it ever carries a task
token (see relay_core.approvals).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from .contracts import ApprovalRecordStatus, RecordStatus
from .cost import ExecutionCost
from .errors import InvalidInput
from .models import EXECUTION_NAME_RE, ArtifactQuality, PlainText, WorkflowRequest

#: Workflow record statuses, the partition key of the status index, in listing order.
RECORD_STATUSES: tuple[RecordStatus, ...] = tuple(RecordStatus)
#: Longest Idempotency-Key accepted (the IETF httpapi Idempotency-Key draft sets no
#: limit; 255 matches common practice and keeps keys out of the way of header limits).
IDEMPOTENCY_KEY_MAX_CHARS = 255
IDEMPOTENCY_KEY_RE = re.compile(r"^[\x21-\x7e](?:[\x20-\x7e]{0,253}[\x21-\x7e])?$")
#: The rule an ``Idempotency-Key`` breaks, as the 400 message states it.
IDEMPOTENCY_KEY_RULE = (
    f"Idempotency-Key: must be 1-{IDEMPOTENCY_KEY_MAX_CHARS} printable ASCII characters, not starting or ending with a space"
)
#: The rule a workflow id in the path breaks, as the 400 message states it.
WORKFLOW_ID_RULE = "workflow_id: must be 1-80 characters of letters, digits, '-' or '_' (an execution name)"
#: The 400 message for a request without the body its route requires.
BODY_REQUIRED = "body: required, a JSON object"
#: Longest cancel reason kept, in characters (StopExecution's cause allows 32,768).
REASON_MAX_CHARS = 1000
#: Page size bounds for GET /workflows (DynamoDB Query returns at most 1 MB per page).
LIST_MAX_LIMIT = 100
LIST_DEFAULT_LIMIT = 20
#: Events per page of GET /workflows/{id}/history (GetExecutionHistory's maxResults is at most 1,000).
HISTORY_MAX_LIMIT = 1000
HISTORY_DEFAULT_LIMIT = 100
NEXT_TOKEN_MAX_CHARS = 4096
_CREATED_AT_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")
_PK_RE = re.compile(r"^WORKFLOW#[A-Za-z0-9_-]{1,80}$")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


# ----- requests ------------------------------------------------------------------------
class UnsupportedMediaType(InvalidInput):
    """A request body that is not ``application/json`` (RFC 9110 §15.5.16)."""

    http_status = 415


class MethodNotAllowed(InvalidInput):
    """The path exists but not for this method (RFC 9110 §15.5.6); the answer carries
    ``Allow`` with :attr:`allowed`, the methods the path has."""

    http_status = 405

    def __init__(self, method: str, path: str, allowed: list[str]):
        shown = method if re.fullmatch(r"[A-Za-z]{1,20}", method) else "this method"
        super().__init__(f"method: {shown} is not allowed on {path[:200]}; allowed: {', '.join(allowed)}")
        self.allowed = allowed


#: The only media type request bodies may have. Parameters are allowed except a
#: ``charset`` other than UTF-8 (RFC 8259 §8.1: JSON exchanged between systems is UTF-8).
JSON_MEDIA_TYPE = "application/json"
#: Plain-language rules for the type errors of strict validation (pydantic's
#: ``int_type`` says only "Input should be a valid integer").
_STRICT_TYPE_RULES = {
    "int_type": 'must be a JSON integer such as 3 (not a string "3", a boolean, or a number with a fraction or exponent such as 3.0)',
    "float_type": "must be a JSON number (not a string or a boolean)",
    "string_type": "must be a JSON string",
}


def describe_errors(errors: Sequence[Mapping[str, Any]]) -> str:
    """One line naming each failing field and its rule, from pydantic's error dicts
    (``ValidationError.errors()``, or Powertools' ``RequestValidationError.errors()`` with
    the location kind taken off ``loc``). When every error is a strict type error the
    rule is spelled out (``questions: must be a JSON integer such as 3 …``); otherwise
    each error gives pydantic's message, as :func:`relay_core.errors.describe_validation_error`.
    """
    named = [(".".join(str(p) for p in item.get("loc", ())) or "input", item) for item in errors]
    if named and all(item.get("type") in _STRICT_TYPE_RULES for _, item in named):
        return "; ".join(f"{field}: {_STRICT_TYPE_RULES[str(item['type'])]}" for field, item in named)
    return "; ".join(f"{field}: {item.get('msg', 'invalid')}" for field, item in named)


def _invalid(exc: ValidationError, prefix: str = "") -> InvalidInput:
    return InvalidInput(prefix + describe_errors(exc.errors()))


def check_json_content_type(content_type: str | None) -> None:
    """A request body's ``Content-Type`` must be ``application/json``, optionally with
    parameters (``; charset=utf-8``); the media type is case-insensitive (RFC 9110 §8.3.1).

    Raises:
        UnsupportedMediaType: 415, naming the header and what it held.
    """
    media, _, params = (content_type or "").partition(";")
    charset = next(
        (v.strip().strip('"').lower() for k, _, v in (p.partition("=") for p in params.split(";")) if k.strip().lower() == "charset"),
        "utf-8",
    )
    if media.strip().lower() != JSON_MEDIA_TYPE or charset not in {"utf-8", "utf8"}:
        got = "no Content-Type" if not (content_type or "").strip() else repr(content_type[:100])  # type: ignore[index]
        raise UnsupportedMediaType(f"Content-Type: must be {JSON_MEDIA_TYPE} (UTF-8) for a request body; got {got}")


def _refuse_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """``json.loads`` object hook: a key given twice is refused rather than the last one
    silently winning (RFC 8259 §4: names SHOULD be unique; receivers differ on duplicates)."""
    value: dict[str, Any] = {}
    for key, item in pairs:
        if key in value:
            raise InvalidInput(f"body: key {key[:100]!r} appears more than once in a JSON object; give each key once")
        value[key] = item
    return value


def parse_json_object(text: str | None) -> dict[str, Any]:
    """A request body that must be one JSON object, each key given once. The workflows
    API's ``json_body_deserializer`` (Powertools calls it with the decoded body).

    Raises:
        InvalidInput: empty body, not JSON, a duplicate key, or JSON that is not an object.
    """
    if text is None or not text.strip():
        raise InvalidInput(BODY_REQUIRED)
    try:
        value = json.loads(text, object_pairs_hook=_refuse_duplicate_keys)
    except (ValueError, RecursionError):
        raise InvalidInput("body: not valid JSON") from None
    if not isinstance(value, dict):
        raise InvalidInput(f"body: must be a JSON object, not {type(value).__name__}")
    return value


def parse_workflow_request(text: str | None) -> WorkflowRequest:
    """``POST /workflows``: the body as a :class:`WorkflowRequest`, validated strictly:
    unknown fields are refused and JSON types are not coerced (``"questions": "3"``,
    ``true`` or ``3.0`` is a 400; ``tolerated_failure_percentage`` takes any JSON number).

    Raises:
        InvalidInput: naming each bad field and its rule.
    """
    try:
        return WorkflowRequest.model_validate(parse_json_object(text), strict=True)
    except ValidationError as exc:
        raise _invalid(exc) from None


def parse_idempotency_key(value: str | None) -> str | None:
    """The ``Idempotency-Key`` header: absent, or 1-255 printable ASCII characters
    without leading or trailing spaces.

    Raises:
        InvalidInput: naming the header and the rule.
    """
    if value is None:
        return None
    if not IDEMPOTENCY_KEY_RE.fullmatch(value):
        raise InvalidInput(IDEMPOTENCY_KEY_RULE)
    return value


def parse_workflow_id(value: str) -> str:
    """A workflow id from the path: an execution name (1-80 of ``A-Z a-z 0-9 - _``)."""
    if not EXECUTION_NAME_RE.fullmatch(value):
        raise InvalidInput(WORKFLOW_ID_RULE)
    return value


class StartWorkflowRequest(WorkflowRequest):
    """The body of POST /workflows: a workflow request (relay_core.models.WorkflowRequest)
    validated strictly. JSON types are not coerced ("3", true and 3.0 are not integers; a
    number field takes any JSON number) and unknown fields are refused."""

    model_config = ConfigDict(extra="forbid", strict=True)


class CancelRequest(_Model):
    """The body of POST /workflows/{id}/cancel: why the workflow is being stopped, validated
    strictly as the start request is."""

    model_config = ConfigDict(extra="forbid", strict=True)
    reason: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=REASON_MAX_CHARS), PlainText]


def parse_cancel_request(text: str | None) -> CancelRequest:
    """``POST /workflows/{id}/cancel``: the body as a :class:`CancelRequest` (strict, as above)."""
    try:
        return CancelRequest.model_validate(parse_json_object(text), strict=True)
    except ValidationError as exc:
        raise _invalid(exc) from None


class ListQuery(_Model):
    """``GET /workflows`` query string.

    Attributes:
        status: one record status, or ``None`` for every status (merged, newest first).
        limit: page size, 1-100 (default 20).
        next_token: the opaque token from the previous page.
    """

    status: RecordStatus | None = None
    limit: int = Field(default=LIST_DEFAULT_LIMIT, ge=1, le=LIST_MAX_LIMIT)
    next_token: Annotated[str, StringConstraints(min_length=1, max_length=NEXT_TOKEN_MAX_CHARS)] | None = None


QueryT = TypeVar("QueryT", bound=BaseModel)


def _parse_query(model: type[QueryT], single: dict[str, str] | None, multi: dict[str, list[str]] | None) -> QueryT:
    """A query string as ``model``; a parameter given twice is refused rather than guessed.

    Raises:
        InvalidInput: naming the parameter and the rule.
    """
    for key, values in (multi or {}).items():
        if len(values) > 1:
            raise InvalidInput(f"{key}: give this query parameter once")
    try:
        return model.model_validate(dict(single or {}))
    except ValidationError as exc:
        raise _invalid(exc) from None


def parse_list_query(single: dict[str, str] | None, multi: dict[str, list[str]] | None = None) -> ListQuery:
    """``GET /workflows`` query string (see :func:`_parse_query`)."""
    return _parse_query(ListQuery, single, multi)


class IndexKey(_Model):
    """A position in the status index (DynamoDB ``ExclusiveStartKey`` of the GSI)."""

    pk: Annotated[str, StringConstraints(pattern=_PK_RE.pattern)]
    status: RecordStatus
    created_at: Annotated[str, StringConstraints(pattern=_CREATED_AT_RE.pattern)]


class PageToken(_Model):
    """What an opaque ``next_token`` holds: the status filter (``*`` = all) and, per
    status, where to resume (``None`` = from the newest) or that it is exhausted."""

    filter: RecordStatus | Literal["*"]
    keys: dict[RecordStatus, IndexKey | None]
    done: list[RecordStatus] = Field(default_factory=list)

    def encode(self) -> str:
        raw = self.model_dump_json(exclude_defaults=False).encode("utf-8")
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")

    @classmethod
    def decode(cls, token: str, status: str | None) -> PageToken:
        """Raises :class:`InvalidInput` for anything but a token this API issued for ``status``."""
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
            parsed = cls.model_validate_json(raw)
        except (ValueError, binascii.Error, ValidationError, UnicodeError):
            raise InvalidInput("next_token: not a token this API issued; start again without it") from None
        if parsed.filter != (status or "*"):
            raise InvalidInput("next_token: was issued for a different status filter")
        for name, key in parsed.keys.items():
            if key is not None and key.status != name:
                raise InvalidInput("next_token: not a token this API issued; start again without it")
        return parsed


def allowed_methods(routes: list[tuple[str, re.Pattern[str]]], path: str) -> list[str]:
    """The methods that have a route matching ``path``, sorted, for an ``Allow`` header.

    Args:
        routes: ``(method, compiled path rule)`` pairs, e.g. a Powertools resolver's routes.
        path: the request path (no query string).
    """
    return sorted({method.upper() for method, rule in routes if rule.match(path)})


# ----- responses ------------------------------------------------------------------------
class StartedWorkflow(_Model):
    """202 answer of ``POST /workflows``."""

    workflow_id: str
    status_url: str


class ApprovalStatus(_Model):
    """The workflow's newest approval. Never the task token, never the link."""

    approval_id: str | None = Field(default=None, description="identifies the approval (not a credential: links are signed)")
    status: ApprovalRecordStatus
    revision: int = Field(ge=0)
    expires_at: datetime
    decided_by: str | None = None
    decided_at: str | None = None
    feedback: str | None = None


class ReportLocation(_Model):
    """Where the finished report is: ``s3://bucket/key`` plus a presigned GET URL (1 hour)."""

    location: str
    bytes: int = Field(ge=0)
    sha256: str
    url: str | None = None


class QualityStatus(_Model):
    """The quality check of the workflow's newest assessed artifact: the report's once it
    exists, else the newest analysis's (:class:`relay_core.models.QualityCheck`; the
    figures are lexical: grounding and coverage, not truth)."""

    artifact: str = Field(description="the assessed artifact: report.md, or analysis-r{n}.md before the report exists")
    headline: str = Field(description="e.g. '3 of 3 questions answered · 100 % of sentences grounded · 0 repeated'")
    sentences: int = Field(ge=0, description="body sentences")
    cited: int = Field(ge=0, description="body sentences citing a source")
    grounded: int = Field(ge=0, description="cited body sentences found in a source they cite")
    grounded_percent: int = Field(ge=0, le=100, description="grounded / sentences, rounded down")
    repeated: int = Field(ge=0, description="body sentences repeating an earlier one")
    fragments: int = Field(ge=0, description="body sentences that are not prose (code, grammar lines)")
    questions: int = Field(ge=0, description="planned research questions")
    answered: int = Field(ge=0, description="planned questions the artifact answers")
    unanswered: list[str] = Field(description="the unanswered questions by name (at most 10)")
    assessment: str | None = Field(default=None, description="s3://… of the full assessment (*.quality.json)")

    @classmethod
    def of(cls, check: ArtifactQuality) -> QualityStatus:
        ref = check.assessment
        return cls(
            artifact=check.artifact,
            headline=check.headline(),
            sentences=check.sentences,
            cited=check.cited,
            grounded=check.grounded,
            grounded_percent=check.grounded_percent,
            repeated=check.repeated,
            fragments=check.fragments,
            questions=check.questions,
            answered=check.answered,
            unanswered=check.unanswered,
            assessment=f"s3://{ref.bucket}/{ref.key}" if ref else None,
        )


class FailureInfo(_Model):
    """Which state failed, its error and cause, and when it was recorded."""

    state: str
    error: str
    cause: str = ""
    at: str | None = None


class CancelInfo(_Model):
    by: str
    reason: str
    at: str


class WorkflowStatus(_Model):
    """``GET /workflows/{id}``.

    ``status`` is the execution status from DescribeExecution (RUNNING, SUCCEEDED,
    FAILED, TIMED_OUT, ABORTED, PENDING_REDRIVE); ``record_status`` the workflow
    record's (RUNNING, AWAITING_APPROVAL, COMPLETED, REJECTED, FAILED, CANCELLED, or
    ``None`` before PlanResearch wrote it); ``current_state`` the state most
    recently entered according to the execution history.
    """

    workflow_id: str
    status: str
    record_status: str | None = None
    current_state: str | None = None
    topic: str | None = None
    started_at: datetime | None = None
    stopped_at: datetime | None = None
    approval: ApprovalStatus | None = None
    revisions: int = 0
    report: ReportLocation | None = None
    failure: FailureInfo | None = None
    cancel: CancelInfo | None = None
    redrive_count: int = Field(default=0, ge=0, description="how many times the execution was redriven")
    redriven_from: str | None = Field(default=None, description="the state the last redrive resumed from")
    redrive_date: datetime | None = None
    console_url: str
    cost: ExecutionCost | None = Field(default=None, description="what the execution cost so far, priced from its history (relay_core.cost)")
    quality: QualityStatus | None = Field(
        default=None, description="the quality check of the report once it exists, else of the newest analysis; null before the first analysis"
    )


class WorkflowSummary(_Model):
    workflow_id: str
    status: str
    topic: str | None = None
    created_at: str
    updated_at: str | None = None
    revisions: int = 0


class WorkflowList(_Model):
    """``GET /workflows``: one page, newest first; pass ``next_token`` back for the next."""

    items: list[WorkflowSummary]
    next_token: str | None = None


class CancelledWorkflow(_Model):
    """``POST /workflows/{id}/cancel``."""

    workflow_id: str
    status: str
    cancel: CancelInfo


class RedrivenWorkflow(_Model):
    """202 answer of ``POST /workflows/{id}/redrive``: the execution runs again from
    ``redriven_from`` (the state that failed); nothing that succeeded runs again."""

    workflow_id: str
    status: str
    redrive_count: int = Field(ge=1)
    redriven_from: str | None = None
    redrive_date: datetime
    status_url: str


class HistoryQuery(_Model):
    """``GET /workflows/{id}/history`` query: ``limit`` events per page (1-1,000,
    GetExecutionHistory's maximum; default 100), ``next_token``, ``reverse`` (newest first)."""

    limit: int = Field(default=HISTORY_DEFAULT_LIMIT, ge=1, le=HISTORY_MAX_LIMIT)
    next_token: Annotated[str, StringConstraints(min_length=1, max_length=NEXT_TOKEN_MAX_CHARS)] | None = None
    reverse: bool = False


def parse_history_query(single: dict[str, str] | None, multi: dict[str, list[str]] | None = None) -> HistoryQuery:
    """``GET /workflows/{id}/history`` query string (see :func:`_parse_query`)."""
    return _parse_query(HistoryQuery, single, multi)


class HistoryPage(_Model):
    """``GET /workflows/{id}/history``: GetExecutionHistory events (``id``, ``type``,
    ``timestamp``, ``previousEventId`` and one ``…EventDetails``), with every task
    token replaced by ``"<redacted>"``; ``next_token`` fetches the next page."""

    workflow_id: str
    events: list[dict[str, Any]]
    next_token: str | None = None


class ErrorBody(_Model):
    """Every 4xx/5xx answer of the API: one line naming the problem."""

    message: str
