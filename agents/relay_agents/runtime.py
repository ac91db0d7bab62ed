"""The researcher as an Amazon Bedrock AgentCore runtime app.

``POST /invocations`` takes a :class:`relay_core.models.ResearcherRequest` JSON body
(``workflow_id``, ``question_id``, ``question``), runs :func:`relay_agents.researcher.research`,
writes the full answer to ``s3://$RELAY_ARTIFACT_BUCKET/workflows/<workflow_id>/findings/<question_id>.md``
and answers with a :class:`relay_core.models.Finding` as plain JSON (not SSE). ``GET /ping``
is BedrockAgentCoreApp's health check. The session id arrives in the
``X-Amzn-Bedrock-AgentCore-Runtime-Session-Id`` header (``context.session_id``); it is logged
as the correlation id.

Errors are answered with a JSON body ``{"error": <name>, "message": …}`` and a status
(BedrockAgentCoreApp passes a returned Starlette ``Response`` through unchanged):

* invalid payload → 400 ``ValidationException`` naming the failing fields;
* ``ModelThrottled`` → 429 ``ThrottlingException`` (the name the state machine retries on);
* ``ModelUnavailable`` → 503 ``ServiceUnavailableException``;
* ``AgentFailed`` → 502 ``AgentFailed``; any other error → 500 ``InternalServerError``.

Serve locally with ``uvicorn relay_agents.runtime:app --host 127.0.0.1 --port 8080``, or
deploy with :func:`main` (AgentCore runs the container's ``main``: port 8080).
"""

from __future__ import annotations

import os
from typing import Any

from bedrock_agentcore.runtime import BedrockAgentCoreApp
from pydantic import ValidationError
from relay_core.errors import (
    AgentFailed,
    InvalidInput,
    ModelThrottled,
    ModelUnavailable,
    describe_validation_error,
)
from relay_core.models import Finding, ResearcherRequest
from relay_core.observability import logger
from relay_core.store import artifact_key, artifact_store
from starlette.responses import JSONResponse

app = BedrockAgentCoreApp()


def finding_name(question_id: str) -> str:
    """The artifact name of a finding: ``findings/<question_id>.md``."""
    return f"findings/{question_id}.md"


def handle(payload: Any) -> Finding:
    """Research one question and store the answer.

    Raises:
        InvalidInput: the payload is not a ``ResearcherRequest`` or ``RELAY_ARTIFACT_BUCKET`` is unset.
        ModelThrottled, ModelUnavailable, AgentFailed: from :func:`research`.
    """
    from .researcher import research

    try:
        request = ResearcherRequest.model_validate(payload)
    except ValidationError as exc:
        raise InvalidInput(describe_validation_error(exc)) from exc
    bucket = os.environ.get("RELAY_ARTIFACT_BUCKET", "").strip()
    if not bucket:
        raise InvalidInput("RELAY_ARTIFACT_BUCKET: required")
    result = research(request.question)
    ref = artifact_store(bucket).put_text(
        artifact_key(request.workflow_id, finding_name(request.question_id)), result.answer_markdown
    )
    logger.info(
        "finding stored",
        extra={"question_id": request.question_id, "bytes": ref.bytes, "sources": len(result.sources)},
    )
    return Finding(
        question_id=request.question_id, summary=result.summary, sources=result.sources, finding=ref
    )


#: (exception type, HTTP status, error name in the body). Order matters: first match wins.
ERROR_RESPONSES: tuple[tuple[type[BaseException], int, str], ...] = (
    (InvalidInput, 400, "ValidationException"),
    (ModelThrottled, 429, "ThrottlingException"),
    (ModelUnavailable, 503, "ServiceUnavailableException"),
    (AgentFailed, 502, "AgentFailed"),
)


def error_response(error: BaseException) -> JSONResponse:
    """The one place runtime errors become HTTP answers (see the module docstring)."""
    for kind, status, name in ERROR_RESPONSES:
        if isinstance(error, kind):
            return JSONResponse({"error": name, "message": str(error)}, status_code=status)
    return JSONResponse({"error": "InternalServerError", "message": type(error).__name__}, status_code=500)


@app.entrypoint
def invoke(payload: Any, context: Any = None) -> dict[str, Any] | JSONResponse:
    """AgentCore entrypoint: a ``Finding`` as JSON, or an error response (see module docstring)."""
    session_id = getattr(context, "session_id", None)
    if session_id:
        logger.set_correlation_id(session_id)
    try:
        return handle(payload).model_dump(mode="json")
    except Exception as exc:  # noqa: BLE001 - mapped in one place
        if not isinstance(exc, InvalidInput | ModelThrottled | ModelUnavailable | AgentFailed):
            logger.exception("research failed")
        else:
            logger.warning("research failed", extra={"error": type(exc).__name__, "reason": str(exc)})
        return error_response(exc)


def main() -> None:
    """Serve the app on port 8080 (AgentCore's runtime contract)."""
    app.run()


if __name__ == "__main__":  # pragma: no cover
    main()
