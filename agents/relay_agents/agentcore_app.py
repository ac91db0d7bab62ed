"""The researcher as an Amazon Bedrock AgentCore runtime app.

``POST /invocations`` takes one of two JSON bodies:

* **the callback envelope** ``[ResearcherRequest, task token]`` that the state machine's
  ``AskResearcher`` sends (``invokeAgentRuntime.waitForTaskToken``): the request is
  validated and the app answers at once (``{"status": "accepted", "question_id": …}``;
  an invalid request is the 400 below, which fails the Task synchronously). The research
  then runs in a background thread registered as an AgentCore asynchronous task
  (``BedrockAgentCoreApp.add_async_task``/``complete_async_task``, so ``GET /ping``
  answers ``HealthyBusy`` while it runs; AgentCore keeps a ``HealthyBusy`` session past
  its 15-minute idle timeout, "Handle asynchronous and long running agents with Amazon
  Bedrock AgentCore Runtime"). It sends ``SendTaskHeartbeat`` while it works and ends with
  ``SendTaskSuccess`` (the Finding) or ``SendTaskFailure`` with a ``Relay.*`` error name
  (:mod:`relay_agents.callbacks`);
* **a plain** :class:`relay_core.models.ResearcherRequest` (``workflow_id``,
  ``question_id``, ``question``) from a direct caller: answered synchronously with the
  Finding, or an error response.

Either way :func:`handle` runs :func:`relay_agents.researcher.research`, writes the full
answer to ``s3://$RELAY_ARTIFACT_BUCKET/workflows/<workflow_id>/findings/<question_id>.md``
and the passages it read beside it (``findings/<question_id>.evidence.json``), and makes
a :class:`relay_core.models.Finding`. ``GET /ping`` is BedrockAgentCoreApp's health
check. The session id arrives in the ``X-Amzn-Bedrock-AgentCore-Runtime-Session-Id``
header (``context.session_id``); it is logged as the correlation id.

Synchronous errors are answered with a JSON body ``{"error": <name>, "message": …}`` and a
status (BedrockAgentCoreApp passes a returned Starlette ``Response`` through unchanged):

* invalid payload → 400 ``ValidationException`` naming the failing fields;
* ``ModelThrottled``/``KnowledgeBaseThrottled`` → 429 ``ThrottlingException``;
* ``ModelUnavailable``/``KnowledgeBaseUnavailable`` → 503 ``ServiceUnavailableException``;
* ``NoMatchingDocument`` → 422 ``NoMatchingDocument`` (no document in the corpus matches the
  question; not retried);
* ``AgentFailed`` → 502 ``AgentFailed``; any other error → 500 ``InternalServerError``.

``GET /.well-known/agent-card.json`` serves the agent card (:func:`agent_card`): name,
version, description, endpoints, the input and output JSON schemas, how callers
authenticate, and the tools the agent uses.

**Start-up.** AgentCore gives a runtime 60 s to answer ``/ping`` after it starts
(AgentCore quotas, "Runtime initialization time"). Importing this module loads only
``BedrockAgentCoreApp`` and ``relay_core.errors``; the models, the store, Powertools and
the agent (Strands, bm25s, the corpus) are imported on the first invocation. ``bench/
bench_runtime_start.py`` measures process start → first ``/ping`` answer.

Serve locally with ``uvicorn relay_agents.agentcore_app:app --host 127.0.0.1 --port 8080``, or
deploy with :func:`main` (AgentCore runs the container's ``main``: port 8080).
"""

from __future__ import annotations

import functools
import json
import os
import threading
from typing import TYPE_CHECKING, Any

from bedrock_agentcore.runtime import BedrockAgentCoreApp
from relay_core import __version__
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
from starlette.requests import Request
from starlette.responses import JSONResponse

if TYPE_CHECKING:
    from relay_core.models import Finding, ResearcherRequest

app = BedrockAgentCoreApp()
#: The agent card's path (A2A convention: ``/.well-known/agent-card.json``).
AGENT_CARD_PATH = "/.well-known/agent-card.json"
AGENT_NAME = "relay-researcher"
AGENT_DESCRIPTION = (
    "Relay researcher: answers one research question from the configured corpus with cited "
    "sources, writes the full finding to S3 and returns a short summary and the finding's reference."
)


def finding_name(question_id: str) -> str:
    """The artifact name of a finding: ``findings/<question_id>.md``."""
    return f"findings/{question_id}.md"


def evidence_name(question_id: str) -> str:
    """The artifact name of a finding's evidence (the passages it read, a JSON list of
    :class:`relay_core.models.Evidence`): ``findings/<question_id>.evidence.json``."""
    return f"findings/{question_id}.evidence.json"


def validated(payload: Any) -> ResearcherRequest:
    """``payload`` as a ``ResearcherRequest``, with the runtime's configuration checked.

    Raises:
        InvalidInput: the payload is not a ``ResearcherRequest``.
        ConfigurationError: ``RELAY_ARTIFACT_BUCKET`` is unset.
    """
    from pydantic import ValidationError
    from relay_core.errors import describe_validation_error
    from relay_core.models import ResearcherRequest

    try:
        request = ResearcherRequest.model_validate(payload)
    except ValidationError as exc:
        raise InvalidInput(describe_validation_error(exc)) from exc
    if not os.environ.get("RELAY_ARTIFACT_BUCKET", "").strip():
        raise ConfigurationError("RELAY_ARTIFACT_BUCKET: required")
    return request


def handle(payload: Any) -> Finding:
    """Research one question and store the answer.

    Raises:
        InvalidInput, ConfigurationError: from :func:`validated`.
        ModelThrottled, ModelUnavailable, AgentFailed: from :func:`research`.
    """
    from relay_core.adapters.artifact_store import artifact_store
    from relay_core.contracts import artifact_key
    from relay_core.models import Finding
    from relay_core.observability import logger

    from .researcher import research
    from .runner import metered

    request = validated(payload)
    bucket = os.environ["RELAY_ARTIFACT_BUCKET"].strip()
    with metered() as tokens:
        result = research(request.question)
    store = artifact_store(bucket)
    ref = store.put_text(artifact_key(request.workflow_id, finding_name(request.question_id)), result.answer_markdown)
    evidence = store.put_text(
        artifact_key(request.workflow_id, evidence_name(request.question_id)),
        json.dumps([e.model_dump(mode="json") for e in result.evidence], indent=1),
        content_type="application/json",
    )
    logger.info(
        "finding stored",
        extra={"question_id": request.question_id, "bytes": ref.bytes, "sources": len(result.sources)},
    )
    return Finding(
        question_id=request.question_id,
        summary=result.summary,
        sources=result.sources,
        finding=ref,
        evidence=evidence,
        usage=tokens.usage(),
    )


#: (exception type, HTTP status, error name in the body). Order matters: first match wins.
ERROR_RESPONSES: tuple[tuple[type[BaseException], int, str], ...] = (
    (InvalidInput, 400, "ValidationException"),
    # A misconfigured runtime fails the same way every time: answered as a 400 so that
    # AskResearcher does not retry it (its Retry names only transient AgentCore errors).
    (ConfigurationError, 400, "ValidationException"),
    (ModelThrottled, 429, "ThrottlingException"),
    (KnowledgeBaseThrottled, 429, "ThrottlingException"),
    (ModelUnavailable, 503, "ServiceUnavailableException"),
    (KnowledgeBaseUnavailable, 503, "ServiceUnavailableException"),
    (NoMatchingDocument, 422, "NoMatchingDocument"),
    (AgentFailed, 502, "AgentFailed"),
)


def error_response(error: BaseException) -> JSONResponse:
    """The one place runtime errors become HTTP answers (see the module docstring)."""
    for kind, status, name in ERROR_RESPONSES:
        if isinstance(error, kind):
            return JSONResponse({"error": name, "message": str(error)}, status_code=status)
    return JSONResponse({"error": "InternalServerError", "message": type(error).__name__}, status_code=500)


#: Background research threads started for callback requests (name prefix).
RESEARCH_THREAD = "researcher-callback"


def _log_failure(logger: Any, exc: Exception) -> None:
    if isinstance(exc, InvalidInput | ConfigurationError | ModelThrottled | ModelUnavailable | KnowledgeBaseThrottled | KnowledgeBaseUnavailable | AgentFailed):
        logger.warning("research failed", extra={"error": type(exc).__name__, "reason": str(exc)})
    else:
        logger.exception("research failed")


def accept(request_payload: Any, task_token: str, session_id: str | None) -> dict[str, Any]:
    """Validate a callback request, start its research in the background (an AgentCore
    asynchronous task: ``/ping`` says ``HealthyBusy`` until it ends) and return the
    immediate answer ``{"status": "accepted", "question_id": …}``.

    Raises:
        InvalidInput, ConfigurationError: from :func:`validated` (answered synchronously).
    """
    from relay_core.observability import logger

    from .callbacks import CallbackSettings, run_with_callbacks, task_callbacks

    request = validated(request_payload)
    settings = CallbackSettings.from_env()
    callbacks = task_callbacks()
    task_id = app.add_async_task("research", {"question_id": request.question_id})

    def work() -> str:
        return handle(request.model_dump(mode="json")).model_dump_json()

    def research_in_background() -> None:
        if session_id:
            logger.set_correlation_id(session_id)
        try:
            outcome = run_with_callbacks(work, task_token, callbacks, settings.heartbeat_seconds)
            logger.info("research ended", extra={"question_id": request.question_id, "outcome": outcome})
        except Exception:  # noqa: BLE001 - a callback that could not be sent: the heartbeat timeout retries it
            logger.exception("research callback failed")
        finally:
            app.complete_async_task(task_id)

    threading.Thread(target=research_in_background, name=f"{RESEARCH_THREAD}-{request.question_id}", daemon=True).start()
    return {"status": "accepted", "question_id": request.question_id}


@app.entrypoint
def invoke(payload: Any, context: Any = None) -> dict[str, Any] | JSONResponse:
    """AgentCore entrypoint: for the callback envelope ``[request, task token]`` the
    immediate ``{"status": "accepted", …}``; for a plain request a ``Finding`` as JSON; or
    an error response (see module docstring)."""
    from relay_core.observability import logger

    from .callbacks import parse_envelope

    session_id = getattr(context, "session_id", None)
    if session_id:
        logger.set_correlation_id(session_id)
    try:
        envelope = parse_envelope(payload)
        if envelope is not None:
            return accept(envelope[0], envelope[1], session_id)
        return handle(payload).model_dump(mode="json")
    except Exception as exc:  # noqa: BLE001 - mapped in one place
        _log_failure(logger, exc)
        return error_response(exc)


@functools.cache
def agent_card() -> dict[str, Any]:
    """The researcher's agent card, built once on first request.

    Returns:
        ``{"name", "version", "description", "protocol", "endpoints": {"invocations",
        "ping"}, "defaultInputModes", "defaultOutputModes", "inputSchema", "outputSchema",
        "auth", "tools": [{"name", "description", "inputSchema"}], "errors", "callback"}``
        (``callback``: the state machine's envelope, the immediate answer, the Step Functions
        calls and the ``SendTaskFailure`` error names); the schemas
        are JSON Schema from the pydantic models, the tools' entries the Strands tool specs.
    """
    from relay_core.models import Finding, ResearcherRequest

    from .callbacks import FAILURE_NAMES, UNKNOWN_FAILURE
    from .tools import search_documents

    spec = search_documents.tool_spec
    return {
        "name": AGENT_NAME,
        "version": __version__,
        "description": AGENT_DESCRIPTION,
        "protocol": "HTTP",
        "endpoints": {"invocations": "POST /invocations", "ping": "GET /ping"},
        "defaultInputModes": ["application/json"],
        "defaultOutputModes": ["application/json"],
        "inputSchema": ResearcherRequest.model_json_schema(),
        "outputSchema": Finding.model_json_schema(),
        "auth": {
            "type": "aws-sigv4",
            "service": "bedrock-agentcore",
            "action": "bedrock-agentcore:InvokeAgentRuntime",
            "description": "Deployed, callers sign InvokeAgentRuntime with IAM credentials (SigV4); "
            "the runtime has no inbound OAuth. Locally the app serves loopback without auth.",
        },
        "tools": [
            {
                "name": spec["name"],
                "description": spec["description"],
                "inputSchema": spec["inputSchema"]["json"],
            }
        ],
        "errors": {name: status for _, status, name in ERROR_RESPONSES},
        "callback": {
            "payload": "[ResearcherRequest, task token] (Step Functions invokeAgentRuntime.waitForTaskToken)",
            "answer": {"status": "accepted", "question_id": "<question_id>"},
            "sends": ["states:SendTaskHeartbeat", "states:SendTaskSuccess", "states:SendTaskFailure"],
            "errors": sorted({name for _, name in FAILURE_NAMES} | {UNKNOWN_FAILURE}),
        },
    }


async def serve_agent_card(request: Request) -> JSONResponse:
    """``GET /.well-known/agent-card.json``."""
    return JSONResponse(agent_card())


app.add_route(AGENT_CARD_PATH, serve_agent_card, methods=["GET"])


def main() -> None:
    """Serve the app on port 8080 (AgentCore's runtime contract)."""
    app.run()


if __name__ == "__main__":  # pragma: no cover
    main()
