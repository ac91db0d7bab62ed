"""The workflows API (IAM/SigV4-authorised when deployed; served locally by ``relay serve``):

- ``POST /workflows`` (JSON :class:`relay_core.models.WorkflowRequest`; optional
  ``Idempotency-Key`` header) → 202 ``{"workflow_id", "status_url"}``;
- ``GET /workflows/{id}`` → :class:`relay_core.api_models.WorkflowStatus`;
- ``GET /workflows?status=&limit=&next_token=`` → :class:`relay_core.api_models.WorkflowList`;
- ``POST /workflows/{id}/cancel`` (JSON ``{"reason"}``) → :class:`relay_core.api_models.CancelledWorkflow`;
- ``POST /workflows/{id}/redrive`` → 202 :class:`relay_core.api_models.RedrivenWorkflow`
  (409 with the reason when the execution is not FAILED, TIMED_OUT or ABORTED);
- ``GET /workflows/{id}/history?limit=&next_token=&reverse=`` →
  :class:`relay_core.api_models.HistoryPage` (task tokens redacted).

Request bodies must be ``application/json`` (415 otherwise) and are validated
strictly (no type coercion; no control characters but tab and newline in text).
Every error is ``{"message": …}`` naming the problem: 400 bad input, 404 unknown
workflow or route, 405 (with ``Allow``) a method the path does not have, 409
conflict, 415 a body that is not JSON; only a fault of ours is a 500.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, ValidationError
from relay_core import api_models, workflows_api
from relay_core.adapters.artifact_store import artifact_store
from relay_core.adapters.step_functions import executions_for
from relay_core.adapters.workflow_records import workflow_records
from relay_core.config import ApiSettings, load
from relay_core.errors import InvalidInput, RelayError, describe_validation_error, http_status_for
from relay_core.observability import logger, metrics, tracer

app = APIGatewayRestResolver()
JSON = "application/json"
HEADERS = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}
#: Error messages are cut to this many characters (they may quote field names).
MESSAGE_MAX_CHARS = 1000
#: Header naming the caller when the request carries no IAM identity (local runs only).
LOCAL_USER_HEADER = "X-Relay-User"


def _json(status: int, model: BaseModel, headers: dict[str, str] | None = None) -> Response:
    return Response(status_code=status, content_type=JSON, body=model.model_dump_json(), headers={**HEADERS, **(headers or {})})


def _settings() -> ApiSettings:
    """The function's configuration; a missing variable is our fault (500), not the caller's."""
    try:
        return load(ApiSettings)
    except RelayError as exc:
        raise RuntimeError(str(exc)) from None


def _body() -> str | None:
    """The request body as text; a body (even an empty-looking one) must be declared JSON."""
    if app.current_event.body is not None:
        api_models.check_json_content_type(app.current_event.headers.get("Content-Type"))
    try:
        return app.current_event.decoded_body
    except (ValueError, UnicodeError):
        raise InvalidInput("body: not valid UTF-8 (or base64)") from None


def _caller() -> str:
    """Who is calling: the IAM identity API Gateway verified, else the local header."""
    identity = (app.current_event.get("requestContext") or {}).get("identity") or {}
    user = identity.get("userArn") or identity.get("caller")
    if user:
        return str(user)
    local = (app.current_event.headers.get(LOCAL_USER_HEADER) or "").strip()
    return f"{local[:120]} (local)" if local else "anonymous (local)"


@app.post("/workflows")
def start_workflow() -> Response:
    settings = _settings()
    request = api_models.parse_workflow_request(_body())
    key = api_models.parse_idempotency_key(app.current_event.headers.get("Idempotency-Key"))
    started, replayed = workflows_api.start_workflow(
        executions_for(settings.state_machine_arn), request, key, settings.api_base_url
    )
    logger.set_correlation_id(started.workflow_id)
    if not replayed:
        metrics.add_metric(name="WorkflowsStarted", unit=MetricUnit.Count, value=1)
    headers = {"Location": started.status_url, "Idempotent-Replayed": "true" if replayed else "false"}
    return _json(202, started, headers)


@app.get("/workflows")
def list_workflows() -> Response:
    settings = _settings()
    event = app.current_event
    query = api_models.parse_list_query(event.query_string_parameters, event.multi_value_query_string_parameters)
    return _json(200, workflows_api.list_workflows(workflow_records(settings.table_name), query))


@app.get("/workflows/<workflow_id>")
def describe_workflow(workflow_id: str) -> Response:
    settings = _settings()
    workflow_id = api_models.parse_workflow_id(workflow_id)
    logger.set_correlation_id(workflow_id)
    store = artifact_store(settings.artifact_bucket)
    status = workflows_api.describe_workflow(
        executions_for(settings.state_machine_arn),
        workflow_records(settings.table_name),
        workflow_id,
        presign=lambda ref: store.presigned_url(ref, expires_in=workflows_api.REPORT_URL_SECONDS),
    )
    return _json(200, status)


@app.post("/workflows/<workflow_id>/cancel")
def cancel_workflow(workflow_id: str) -> Response:
    settings = _settings()
    workflow_id = api_models.parse_workflow_id(workflow_id)
    logger.set_correlation_id(workflow_id)
    request = api_models.parse_cancel_request(_body())
    result = workflows_api.cancel_workflow(
        executions_for(settings.state_machine_arn),
        workflow_records(settings.table_name),
        workflow_id,
        request.reason,
        _caller(),
    )
    metrics.add_metric(name="WorkflowsCancelled", unit=MetricUnit.Count, value=1)
    return _json(200, result)


@app.post("/workflows/<workflow_id>/redrive")
def redrive_workflow(workflow_id: str) -> Response:
    settings = _settings()
    workflow_id = api_models.parse_workflow_id(workflow_id)
    logger.set_correlation_id(workflow_id)
    result = workflows_api.redrive_workflow(
        executions_for(settings.state_machine_arn), workflow_id, settings.api_base_url
    )
    metrics.add_metric(name="WorkflowsRedriven", unit=MetricUnit.Count, value=1)
    return _json(202, result, {"Location": result.status_url})


@app.get("/workflows/<workflow_id>/history")
def workflow_history(workflow_id: str) -> Response:
    settings = _settings()
    workflow_id = api_models.parse_workflow_id(workflow_id)
    event = app.current_event
    query = api_models.parse_history_query(event.query_string_parameters, event.multi_value_query_string_parameters)
    return _json(200, workflows_api.workflow_history(executions_for(settings.state_machine_arn), workflow_id, query))


# ----- the one error mapping: RelayError/ValidationError → status via http_status_for ----------
def _error(status: int, message: str) -> Response:
    return _json(status, api_models.ErrorBody(message=message[:MESSAGE_MAX_CHARS]))


@app.exception_handler(RelayError)
def relay_error(exc: RelayError) -> Response:
    status = http_status_for(exc)
    if status >= 500:
        logger.exception("request failed")
        return _error(status, "internal error")
    return _error(status, str(exc))


@app.exception_handler(ValidationError)
def validation_error(exc: ValidationError) -> Response:
    return _error(http_status_for(exc), describe_validation_error(exc))


@app.exception_handler(Exception)
def unexpected_error(exc: Exception) -> Response:
    logger.exception("request failed")
    return _error(500, "internal error")


def routes() -> list[tuple[str, Any]]:
    """``(method, compiled path rule)`` of every route this resolver serves (Powertools
    keeps them in ``_static_routes``/``_dynamic_routes``; ``tests/unit/test_api_strict.py``
    fails if a Powertools upgrade moves them)."""
    return [(route.method, route.rule) for route in (*app._static_routes, *app._dynamic_routes)]


@app.not_found
def not_found(exc: Exception) -> Response:
    event = app.current_event
    allowed = api_models.allowed_methods(routes(), event.path)
    if allowed:  # the path exists, the method does not: 405 with Allow (RFC 9110 §15.5.6)
        error = api_models.MethodNotAllowed(event.http_method, event.path, allowed)
        return _json(405, api_models.ErrorBody(message=str(error)[:MESSAGE_MAX_CHARS]), {"Allow": ", ".join(allowed)})
    return _error(
        404,
        f"no route {event.http_method} {event.path}; routes: POST /workflows, GET /workflows, "
        "GET /workflows/{id}, GET /workflows/{id}/history, POST /workflows/{id}/cancel, POST /workflows/{id}/redrive",
    )


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST, clear_state=True, log_event=False)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)

