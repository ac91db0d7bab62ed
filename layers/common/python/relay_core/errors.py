"""Relay's domain errors and the one place that maps them to Step Functions and HTTP.

A Lambda handler that raises surfaces to Step Functions as an error whose name is
the exception class name (``errorType`` in the Lambda Invoke API). The ASL file
retries only the names in :data:`RETRYABLE_ERRORS`; every other name fails the
execution at that state (there is no Catch, so a redrive resumes there). The names
are therefore part of the contract with ``statemachines/research_report.asl.json``
and must not be renamed lightly (``tests/unit/test_contracts.py`` checks both sides
agree).
"""

from __future__ import annotations


class RelayError(Exception):
    """Base class of every error Relay raises on purpose.

    Attributes:
        http_status: the status the HTTP API answers with when this error
            reaches it (see :func:`http_status_for`).
    """

    http_status = 500


class InvalidInput(RelayError):
    """Input failed validation. Never retried: the same input fails again."""

    http_status = 400


class ConfigurationError(RelayError):
    """The deployment's configuration is missing or malformed (an environment variable
    of a function or agent): the operator's problem, not the caller's, so it answers 500
    rather than :class:`InvalidInput`'s 400. The message names the variable and its rule.
    Never retried: the same configuration fails again."""

    http_status = 500


class ArtifactNotFound(RelayError):
    """An artifact reference points at an object that does not exist."""

    http_status = 404


class ArtifactIntegrityError(RelayError):
    """An artifact's bytes do not match the sha256 recorded in its reference."""

    http_status = 500


class WorkflowNotFound(RelayError):
    """No workflow record with that id."""

    http_status = 404


class ApprovalNotFound(RelayError):
    """No approval with that id, or the link's signature does not verify.

    Both cases answer the same way so that a forged link learns nothing.
    """

    http_status = 404


class ApprovalExpired(RelayError):
    """The approval link's expiry has passed (the task token timed out too)."""

    http_status = 410


#: What a superseded approval link says (410).
SUPERSEDED_MESSAGE = (
    "A newer approval request was sent for this workflow (it was resumed after it stopped). "
    "Use the link in the newest email."
)


class ApprovalSuperseded(RelayError):
    """A newer approval request replaced this one (the workflow was redriven and asked
    again); only the newest link can decide."""

    http_status = 410


class ApprovalAlreadyDecided(RelayError):
    """A decision was already recorded for this approval (conditional write lost)."""

    http_status = 409

    def __init__(self, message: str, *, decided_by: str | None = None, decided_at: str | None = None):
        super().__init__(message)
        self.decided_by = decided_by
        self.decided_at = decided_at


class WorkflowConflict(RelayError):
    """The request conflicts with the workflow's state: an Idempotency-Key reused with a
    different body, or a cancel of a workflow that is no longer running."""

    http_status = 409


class ExecutionExists(RelayError):
    """StartExecution found an execution with that name (Step Functions API reference,
    StartExecution: ``ExecutionAlreadyExists``)."""

    http_status = 409


class ExecutionNotRedrivable(RelayError):
    """RedriveExecution refused; the message is Step Functions' reason (API reference,
    RedriveExecution: ``ExecutionNotRedrivable``)."""

    http_status = 409


class TaskTokenGone(RelayError):
    """SendTaskSuccess refused the task token: it timed out, its execution ended, or it
    is not a token (``TaskTimedOut``, ``TaskDoesNotExist``, ``InvalidToken``)."""

    http_status = 410


class ModelThrottled(RelayError):
    """The model provider throttled the request. Retried by the state machine with backoff."""

    http_status = 503


class ModelUnavailable(RelayError):
    """The model provider failed transiently (5xx, timeout). Retried by the state machine."""

    http_status = 503


class KnowledgeBaseThrottled(RelayError):
    """The Bedrock Knowledge Base throttled a Retrieve call. Retried by the state machine
    with backoff, like :class:`ModelThrottled`."""

    http_status = 503


class KnowledgeBaseUnavailable(RelayError):
    """The Bedrock Knowledge Base failed transiently (5xx, timeout). Retried by the state machine."""

    http_status = 503


class AgentFailed(RelayError):
    """An agent finished without a usable answer. Not retried."""

    http_status = 502


#: Error names the state machine retries (Lambda service faults are added in the ASL file).
RETRYABLE_ERRORS: tuple[str, ...] = tuple(
    e.__name__ for e in (ModelThrottled, ModelUnavailable, KnowledgeBaseThrottled, KnowledgeBaseUnavailable)
)


def http_status_for(error: BaseException) -> int:
    """Map an exception to the HTTP status the API answers with.

    Args:
        error: any exception.

    Returns:
        The error's ``http_status`` for a :class:`RelayError`, 400 for a pydantic
        ``ValidationError``, else 500.
    """
    from pydantic import ValidationError

    if isinstance(error, RelayError):
        return error.http_status
    if isinstance(error, ValidationError):
        return 400
    return 500


def describe_validation_error(error: BaseException) -> str:
    """One line naming each failing field and its rule, e.g. ``topic: String should have at most 2000 characters``.

    Args:
        error: a pydantic ``ValidationError`` (anything else is rendered with ``str``).
    """
    from pydantic import ValidationError

    if not isinstance(error, ValidationError):
        return str(error)
    parts = []
    for item in error.errors():
        field = ".".join(str(p) for p in item.get("loc", ())) or "input"
        msg = item.get("msg", "invalid")
        parts.append(f"{field}: {msg}")
    return "; ".join(parts)


class NoMatchingDocument(AgentFailed):
    """The researcher searched the corpus and no document matched the question, so there
    is nothing to ground a finding in. Not retried: the same corpus gives the same answer.
    The researcher runtime answers it as its own error name (422), so the Map iteration's
    error and cause say "no document in the corpus matches …" rather than a generic failure."""

    http_status = 422
