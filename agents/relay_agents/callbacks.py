"""The researcher's callbacks to Step Functions: heartbeats while it works, then one
``SendTaskSuccess`` or ``SendTaskFailure`` for the task token it was given.

``AskResearcher`` calls ``InvokeAgentRuntime`` with the ``.waitForTaskToken`` pattern
(developer guide, "Service integration patterns": AWS SDK integrations support
``.waitForTaskToken`` in Standard workflows). Its payload is the JSON array
``[ResearcherRequest, task token]`` (``States.Array``: intrinsic functions cannot build
an object, and ``States.Format`` would need every brace of a JSON object escaped). The
runtime answers at once and researches in the background (:mod:`relay_agents.agentcore_app`);
this module does the rest:

- :func:`run_with_callbacks` runs the research while a thread sends ``SendTaskHeartbeat``
  every :attr:`CallbackSettings.heartbeat_seconds`, then reports the outcome;
- :func:`failure_name` is the one place a researcher error becomes the error name of
  ``SendTaskFailure`` (:data:`FAILURE_NAMES`), which ``AskResearcher``'s Retry matches
  exactly (``tests/unit/test_contracts.py`` checks both sides);
- :class:`TaskCallbacks` owns the Step Functions client. A token Step Functions no
  longer accepts (``TaskTimedOut``: the task timed out or was already closed, e.g. a
  duplicate or late callback; ``InvalidToken``; ``TaskDoesNotExist``; Step Functions API
  reference, SendTaskSuccess) is logged and dropped: the state has moved on (a retry
  asks again with a new token), so there is nobody to tell.

The task token is never logged (it is a bearer credential for the waiting state).
"""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, Field, ValidationError
from relay_core.errors import (
    AgentFailed,
    ConfigurationError,
    InvalidInput,
    KnowledgeBaseThrottled,
    KnowledgeBaseUnavailable,
    ModelThrottled,
    ModelUnavailable,
    NoMatchingDocument,
)

#: Prefix of every error name the researcher sends with ``SendTaskFailure`` (not
#: ``States.``, which Step Functions reserves).
ERROR_PREFIX = "Relay."
#: (exception type, ``SendTaskFailure`` error name). First match wins, so a subclass
#: (``NoMatchingDocument`` is an ``AgentFailed``) comes before its base.
FAILURE_NAMES: tuple[tuple[type[BaseException], str], ...] = (
    (InvalidInput, "Relay.InvalidInput"),
    (ConfigurationError, "Relay.ConfigurationError"),
    (ModelThrottled, "Relay.ModelThrottled"),
    (KnowledgeBaseThrottled, "Relay.KnowledgeBaseThrottled"),
    (ModelUnavailable, "Relay.ModelUnavailable"),
    (KnowledgeBaseUnavailable, "Relay.KnowledgeBaseUnavailable"),
    (NoMatchingDocument, "Relay.NoMatchingDocument"),
    (AgentFailed, "Relay.AgentFailed"),
)
#: Any other exception.
UNKNOWN_FAILURE = "Relay.InternalError"
#: Names ``AskResearcher`` retries: throttling and unavailability, and (fewer times) a
#: failed agent or an unknown error. Never the ones the same request would hit again:
#: invalid input, configuration, no matching document.
RETRIED_FAILURES = frozenset(
    {
        "Relay.ModelThrottled",
        "Relay.KnowledgeBaseThrottled",
        "Relay.ModelUnavailable",
        "Relay.KnowledgeBaseUnavailable",
        "Relay.AgentFailed",
        UNKNOWN_FAILURE,
    }
)
#: SendTaskFailure limits (Step Functions API reference): error ≤ 256, cause ≤ 32,768 characters.
MAX_ERROR_CHARS = 256
MAX_CAUSE_CHARS = 32_768
#: Errors meaning the token is no longer accepted (Step Functions API reference, SendTaskSuccess).
DEAD_TOKEN_ERRORS = frozenset({"TaskTimedOut", "InvalidToken", "TaskDoesNotExist"})
#: A task token is at most 2,048 characters (Step Functions API reference, SendTaskSuccess).
MAX_TOKEN_CHARS = 2048


def failure_name(error: BaseException) -> str:
    """The ``SendTaskFailure`` error name for ``error`` (:data:`FAILURE_NAMES`, else
    :data:`UNKNOWN_FAILURE`)."""
    for kind, name in FAILURE_NAMES:
        if isinstance(error, kind):
            return name
    return UNKNOWN_FAILURE


class CallbackSettings(BaseModel):
    """How the researcher calls back, from the environment.

    Attributes:
        heartbeat_seconds: seconds between two ``SendTaskHeartbeat`` calls
            (``RELAY_RESEARCH_HEARTBEAT_SECONDS``, default 60). It must stay well below
            ``AskResearcher``'s ``HeartbeatSeconds`` (300): a test checks the default
            fits three times. Tests shorten it together with the local engine's heartbeat
            clock (:func:`relay.local.moto_patches.set_heartbeat_time_scale`).
    """

    heartbeat_seconds: float = Field(default=60.0, gt=0, le=3600)

    @classmethod
    def from_env(cls) -> CallbackSettings:
        """Read ``RELAY_RESEARCH_HEARTBEAT_SECONDS``.

        Raises:
            ConfigurationError: the variable is not a number in (0, 3600].
        """
        raw = os.environ.get("RELAY_RESEARCH_HEARTBEAT_SECONDS", "").strip()
        try:
            return cls(heartbeat_seconds=float(raw)) if raw else cls()
        except (ValueError, ValidationError):
            raise ConfigurationError("RELAY_RESEARCH_HEARTBEAT_SECONDS: a number of seconds in (0, 3600]") from None


def parse_envelope(payload: Any) -> tuple[Any, str] | None:
    """``(request, task_token)`` when ``payload`` is the callback envelope
    ``[request, task token]`` AskResearcher sends, else ``None`` (a direct caller's
    plain ``ResearcherRequest``).

    Raises:
        InvalidInput: a two-item array whose token is empty or longer than 2,048 characters.
    """
    if not isinstance(payload, list) or len(payload) != 2 or not isinstance(payload[1], str):
        return None
    request, token = payload
    if not token or len(token) > MAX_TOKEN_CHARS:
        raise InvalidInput(f"task token: 1 to {MAX_TOKEN_CHARS} characters")
    return request, token


class TaskCallbacks:
    """SendTaskHeartbeat / SendTaskSuccess / SendTaskFailure on a Step Functions client.

    Each method returns ``True`` when Step Functions took the call and ``False`` when it
    refused the token (:data:`DEAD_TOKEN_ERRORS`: logged as ``callback dropped`` with the
    error code, never the token); any other ``ClientError`` propagates.

    Args:
        client: a boto3 ``stepfunctions`` client (default: a new one; it follows
            ``AWS_ENDPOINT_URL_SFN`` when set, as every boto3 client does).
    """

    def __init__(self, client: Any | None = None):
        if client is None:
            import boto3

            client = boto3.client("stepfunctions")
        self._sfn = client

    def heartbeat(self, task_token: str) -> bool:
        """SendTaskHeartbeat."""
        return self._send("SendTaskHeartbeat", self._sfn.send_task_heartbeat, taskToken=task_token)

    def succeed(self, task_token: str, output: str) -> bool:
        """SendTaskSuccess with ``output`` (JSON text: the state's result)."""
        return self._send("SendTaskSuccess", self._sfn.send_task_success, taskToken=task_token, output=output)

    def fail(self, task_token: str, error: str, cause: str) -> bool:
        """SendTaskFailure; ``error`` and ``cause`` are cut to the API's limits."""
        return self._send(
            "SendTaskFailure",
            self._sfn.send_task_failure,
            taskToken=task_token,
            error=error[:MAX_ERROR_CHARS],
            cause=cause[:MAX_CAUSE_CHARS],
        )

    @staticmethod
    def _send(action: str, call: Callable[..., Any], **kwargs: Any) -> bool:
        from botocore.exceptions import ClientError
        from relay_core.observability import logger

        try:
            call(**kwargs)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code not in DEAD_TOKEN_ERRORS:
                raise
            logger.warning("callback dropped", extra={"action": action, "error": code})
            return False
        return True


@functools.lru_cache(maxsize=1)
def task_callbacks() -> TaskCallbacks:
    """The cached adapter (one client per runtime process)."""
    return TaskCallbacks()


def run_with_callbacks(
    work: Callable[[], str],
    task_token: str,
    callbacks: TaskCallbacks,
    heartbeat_seconds: float,
) -> str:
    """Run ``work`` (returns the success output, JSON text) while a thread sends a
    heartbeat every ``heartbeat_seconds``; then SendTaskSuccess with its output, or
    SendTaskFailure named by :func:`failure_name` with the error's message as the cause.

    Heartbeats stop when the work ends or when Step Functions refuses the token (the
    task timed out or was closed: the work's result will be dropped too).

    Returns:
        ``"succeeded"``, or the error name sent; ``"dropped"`` is appended
        (``"succeeded dropped"``) when Step Functions refused the final callback.
    """
    from relay_core.observability import logger

    done = threading.Event()

    def beat() -> None:
        while not done.wait(heartbeat_seconds):
            try:
                if not callbacks.heartbeat(task_token):
                    return
            except Exception:  # noqa: BLE001 - a lost heartbeat is retried at the next beat
                logger.exception("heartbeat failed")

    beater = threading.Thread(target=beat, name="researcher-heartbeat", daemon=True)
    beater.start()
    try:
        output = work()
    except Exception as exc:  # noqa: BLE001 - every error becomes a named SendTaskFailure
        done.set()
        beater.join()
        name = failure_name(exc)
        if name == UNKNOWN_FAILURE:
            logger.exception("research failed")
        else:
            logger.warning("research failed", extra={"error": name, "reason": str(exc)})
        cause = str(exc) if name != UNKNOWN_FAILURE else f"{type(exc).__name__}: {exc}"
        sent = callbacks.fail(task_token, name, cause)
        return name if sent else f"{name} dropped"
    done.set()
    beater.join()
    return "succeeded" if callbacks.succeed(task_token, output) else "succeeded dropped"
