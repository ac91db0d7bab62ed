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

Each route declares its inputs (body model, path, query and header parameters) and its
answers to Powertools' data validation (``enable_validation=True``), which checks them
before the route runs and generates the OpenAPI document published as
``docs/openapi.json`` (``python -m relay.openapi``). Request bodies must be
``application/json`` (415 otherwise) and are validated strictly (no type coercion; each
key once; no control characters but tab and newline in text).
Every error is ``{"message": …}`` naming the problem: 400 bad input, 404 unknown
workflow or route, 405 (with ``Allow``) a method the path does not have, 409
conflict, 415 a body that is not JSON; only a fault of ours is a 500.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import TYPE_CHECKING, Annotated, Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.event_handler.middlewares.openapi_validation import (
    OpenAPIRequestValidationMiddleware,
)
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.event_handler.openapi.params import Body, Header, Path, Query
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, ValidationError
from relay_core import api_models, workflows_api
from relay_core.adapters.artifact_store import artifact_store
from relay_core.adapters.step_functions import executions_for
from relay_core.adapters.workflow_records import workflow_records
from relay_core.config import ApiSettings, load
from relay_core.contracts import RecordStatus
from relay_core.errors import InvalidInput, RelayError, describe_validation_error, http_status_for
from relay_core.models import EXECUTION_NAME_RE
from relay_core.observability import logger, metrics, tracer

if TYPE_CHECKING:
    from aws_lambda_powertools.event_handler.api_gateway import Route
    from aws_lambda_powertools.event_handler.middlewares import NextMiddleware
    from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse

JSON = "application/json"
HEADERS = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}
#: Error messages are cut to this many characters (they may quote field names).
MESSAGE_MAX_CHARS = 1000
#: Header naming the caller when the request carries no IAM identity (local runs only).
LOCAL_USER_HEADER = "X-Relay-User"


class StrictRequestValidation(OpenAPIRequestValidationMiddleware):
    """Powertools' request validation, preceded by the rules it cannot express (the only
    hand-written parsing left in this API):

    - a request body must be declared ``application/json`` with a UTF-8 charset, any case
      (415 otherwise): Powertools reads ``application/x-www-form-urlencoded`` and
      ``multipart/form-data`` bodies as forms, takes a missing ``Content-Type`` for JSON and
      compares media types case-sensitively;
    - a body must decode as UTF-8 (400): Powertools lets the decode error escape (a 500);
    - on a route that reads a query string, a query parameter must be one it declares and
      be given once (400): Powertools ignores unknown names and keeps the first of repeated
      values. (Routes without query parameters ignore a query string, as before.)

    The body text then goes through the resolver's ``json_body_deserializer``
    (:func:`relay_core.api_models.parse_json_object`: one JSON object, each key once), and
    everything else (types, bounds, patterns, required and unknown body fields) is the
    declared models' and parameters' validation.

    These checks refuse a request at once, so a request bad in two ways is told about its
    unreadable body or wrong query name before its malformed workflow id; every other
    combination is reported in the order of :data:`_LOCATIONS`.
    """

    def handler(self, app: Any, next_middleware: NextMiddleware) -> Response:
        route: Route = app.context["_route"]
        declared = {field.alias for field in route.dependant.query_params}
        if declared:
            _check_query_names(app.current_event, declared)
        return super().handler(app, next_middleware)

    def _get_body(self, app: Any) -> Any:
        """The body as a JSON object, or ``None`` when there is none (Powertools then reports
        the route's required body missing). Raises the 415/400 above."""
        event = app.current_event
        if event.body is None:
            return None  # no body: the route's required body is reported missing (400)
        api_models.check_json_content_type(event.headers.get("Content-Type"))
        try:
            text = event.decoded_body
        except (ValueError, UnicodeError):
            raise InvalidInput("body: not valid UTF-8 (or base64)") from None
        if not text:
            return None
        body: dict[str, Any] = event.json_body  # the resolver's json_body_deserializer
        return body


def _check_query_names(event: Any, declared: set[str]) -> None:
    """Refuse a query parameter given twice (rather than guess which one was meant) or one
    the route does not declare (a typo such as ``limt`` would otherwise pass unnoticed).

    Raises:
        InvalidInput: naming the parameter and the rule.
    """
    for name, values in (event.multi_value_query_string_parameters or {}).items():
        if len(values) > 1:
            raise InvalidInput(f"{name}: give this query parameter once")
    names = {**(event.query_string_parameters or {}), **(event.multi_value_query_string_parameters or {})}
    unknown = [name for name in names if name not in declared]
    if unknown:
        raise InvalidInput("; ".join(f"{name}: Extra inputs are not permitted" for name in unknown))


app = APIGatewayRestResolver(enable_validation=True, json_body_deserializer=api_models.parse_json_object)
# Powertools installs its request validation as the first middleware of every route; ours
# adds the checks above. tests/unit/test_api_validation.py fails if an upgrade moves it.
app._request_validation_middleware = StrictRequestValidation()


def _json(status: int, model: BaseModel, headers: dict[str, str] | None = None) -> Response[Any]:
    """An answer built here, outside the route's response validation (errors)."""
    return Response(status_code=status, content_type=JSON, body=model.model_dump_json(), headers={**HEADERS, **(headers or {})})


def _answer(status: int, model: Any, headers: dict[str, str] | None = None) -> Response[Any]:
    """A route's answer: ``model`` is checked against the route's declared return model
    and serialised as ``model_dump(mode="json")`` by Powertools' response validation."""
    return Response(status_code=status, content_type=JSON, body=model, headers={**HEADERS, **(headers or {})})


#: An answer that does not match its route's declared model is our fault: a 500 (through
#: ``unexpected_error``), never the 400 Powertools would otherwise raise it as. Set per route
#: rather than on the resolver, whose setting would replace each route's documented 500.
OUR_FAULT = HTTPStatus.INTERNAL_SERVER_ERROR
#: What each error status means, for the OpenAPI document.
_ERRORS: dict[int, str] = {
    400: "Bad input: the message names the field and the rule.",
    404: "No workflow with this id.",
    409: "Conflict.",
    415: "A request body that is not declared application/json (UTF-8).",
    500: "A fault of ours (the message is only 'internal error').",
}


def _responses(
    status: int, model: type[BaseModel], description: str, errors: Mapping[int, str | None], headers: Mapping[str, str] | None = None
) -> dict[int, OpenAPIResponse]:
    """``responses=`` for a route: its success answer and each error it can give, every
    one with its JSON schema. ``errors`` maps a status to its meaning (``None``: the usual)."""
    answers: dict[int, OpenAPIResponse] = {
        status: {"description": description, "content": {JSON: {"model": model}}},
    }
    if headers:
        answers[status]["headers"] = {name: {"description": text, "schema": {"type": "string"}} for name, text in headers.items()}
    for code, meaning in {**errors, 500: None}.items():
        answers[code] = {"description": meaning or _ERRORS[code], "content": {JSON: {"model": api_models.ErrorBody}}}
    return answers


WorkflowIdPath = Annotated[
    str, Path(pattern=EXECUTION_NAME_RE.pattern, description="The workflow id: the execution name (1-80 letters, digits, '-' or '_').")
]
NextTokenQuery = Annotated[
    str | None,
    Query(min_length=1, max_length=api_models.NEXT_TOKEN_MAX_CHARS, description="The opaque `next_token` of the previous page."),
]


def _settings() -> ApiSettings:
    """The function's configuration; a missing variable is our fault (500), not the caller's."""
    try:
        return load(ApiSettings)
    except RelayError as exc:
        raise RuntimeError(str(exc)) from None


def _caller() -> str:
    """Who is calling: the IAM identity API Gateway verified, else the local header."""
    identity = (app.current_event.get("requestContext") or {}).get("identity") or {}
    user = identity.get("userArn") or identity.get("caller")
    if user:
        return str(user)
    local = (app.current_event.headers.get(LOCAL_USER_HEADER) or "").strip()
    return f"{local[:120]} (local)" if local else "anonymous (local)"


@app.post(
    "/workflows",
    summary="Start a workflow",
    description="Starts one research workflow. With an `Idempotency-Key`, a retry returns the same workflow "
    "(`Idempotent-Replayed: true`) instead of starting a second one.",
    operation_id="startWorkflow",
    tags=["workflows"],
    custom_response_validation_http_code=OUR_FAULT,
    responses=_responses(
        202,
        api_models.StartedWorkflow,
        "Started, or found again for a retried Idempotency-Key.",
        {400: None, 409: "The Idempotency-Key was already used for a different request body.", 415: None},
        headers={"Location": "The workflow's status URL.", "Idempotent-Replayed": "`true` when a retry found the workflow again, else `false`."},
    ),
)
def start_workflow(
    request: Annotated[api_models.StartWorkflowRequest, Body(description="What to research; every field but `topic` has a default.")],
    idempotency_key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            pattern=api_models.IDEMPOTENCY_KEY_RE.pattern,
            description="Makes retries safe: the same key returns the same workflow (1-255 printable ASCII characters).",
        ),
    ] = None,
) -> Response[api_models.StartedWorkflow]:
    settings = _settings()
    started, replayed = workflows_api.start_workflow(
        executions_for(settings.state_machine_arn), request, idempotency_key, settings.api_base_url
    )
    logger.set_correlation_id(started.workflow_id)
    # WorkflowsStarted is counted by PlanResearch, the first state of every start (API, CLI, console).
    headers = {"Location": started.status_url, "Idempotent-Replayed": "true" if replayed else "false"}
    return _answer(202, started, headers)


@app.get(
    "/workflows",
    summary="List workflows",
    description="One page of workflows, newest first; pass `next_token` back for the next page.",
    operation_id="listWorkflows",
    tags=["workflows"],
    custom_response_validation_http_code=OUR_FAULT,
    responses=_responses(200, api_models.WorkflowList, "One page of workflows, newest first.", {400: None}),
)
def list_workflows(
    status: Annotated[RecordStatus | None, Query(description="Only workflows with this record status (omit for all).")] = None,
    limit: Annotated[int, Query(ge=1, le=api_models.LIST_MAX_LIMIT, description="Page size.")] = api_models.LIST_DEFAULT_LIMIT,
    next_token: NextTokenQuery = None,
) -> Response[api_models.WorkflowList]:
    settings = _settings()
    query = api_models.ListQuery(status=status, limit=limit, next_token=next_token)
    return _answer(200, workflows_api.list_workflows(workflow_records(settings.table_name), query))


@app.get(
    "/workflows/<workflow_id>",
    summary="Describe a workflow",
    description="The execution's status, the workflow record, its newest approval (never the task token or the link) "
    "and, once it completed, where the report is.",
    operation_id="describeWorkflow",
    tags=["workflows"],
    custom_response_validation_http_code=OUR_FAULT,
    responses=_responses(200, api_models.WorkflowStatus, "The workflow.", {400: None, 404: None}),
)
def describe_workflow(workflow_id: WorkflowIdPath) -> Response[api_models.WorkflowStatus]:
    settings = _settings()
    logger.set_correlation_id(workflow_id)
    store = artifact_store(settings.artifact_bucket, settings.artifact_base_url)
    status = workflows_api.describe_workflow(
        executions_for(settings.state_machine_arn),
        workflow_records(settings.table_name),
        workflow_id,
        presign=lambda ref: store.presigned_url(ref, expires_in=workflows_api.REPORT_URL_SECONDS),
    )
    return _answer(200, status)


@app.post(
    "/workflows/<workflow_id>/cancel",
    summary="Cancel a workflow",
    description="Stops a RUNNING workflow's execution and records who cancelled it and why; a pending approval link expires.",
    operation_id="cancelWorkflow",
    tags=["workflows"],
    custom_response_validation_http_code=OUR_FAULT,
    responses=_responses(
        200,
        api_models.CancelledWorkflow,
        "Cancelled.",
        {400: None, 404: None, 409: "The workflow is not RUNNING.", 415: None},
    ),
)
def cancel_workflow(
    workflow_id: WorkflowIdPath,
    request: Annotated[api_models.CancelRequest, Body(description="Why the workflow is being cancelled.")],
) -> Response[api_models.CancelledWorkflow]:
    settings = _settings()
    logger.set_correlation_id(workflow_id)
    result = workflows_api.cancel_workflow(
        executions_for(settings.state_machine_arn),
        workflow_records(settings.table_name),
        workflow_id,
        request.reason,
        _caller(),
    )
    metrics.add_metric(name="WorkflowsCancelled", unit=MetricUnit.Count, value=1)
    return _answer(200, result)


@app.post(
    "/workflows/<workflow_id>/redrive",
    summary="Redrive a failed workflow",
    description="Runs a FAILED, TIMED_OUT or ABORTED execution again from the state that failed; nothing that succeeded runs again.",
    operation_id="redriveWorkflow",
    tags=["workflows"],
    custom_response_validation_http_code=OUR_FAULT,
    responses=_responses(
        202,
        api_models.RedrivenWorkflow,
        "Redriven: the execution runs again.",
        {400: None, 404: None, 409: "The execution cannot be redriven (the message says why)."},
        headers={"Location": "The workflow's status URL."},
    ),
)
def redrive_workflow(workflow_id: WorkflowIdPath) -> Response[api_models.RedrivenWorkflow]:
    settings = _settings()
    logger.set_correlation_id(workflow_id)
    result = workflows_api.redrive_workflow(
        executions_for(settings.state_machine_arn), workflow_id, settings.api_base_url
    )
    # WorkflowsRedriven is counted by record-failure on the status change (RUNNING again), as for every redrive.
    return _answer(202, result, {"Location": result.status_url})


@app.get(
    "/workflows/<workflow_id>/history",
    summary="Read a workflow's execution history",
    description="GetExecutionHistory events, one page at a time, with every task token replaced by `<redacted>`.",
    operation_id="getWorkflowHistory",
    tags=["workflows"],
    custom_response_validation_http_code=OUR_FAULT,
    responses=_responses(200, api_models.HistoryPage, "One page of events.", {400: None, 404: None}),
)
def workflow_history(
    workflow_id: WorkflowIdPath,
    limit: Annotated[int, Query(ge=1, le=api_models.HISTORY_MAX_LIMIT, description="Events per page.")] = api_models.HISTORY_DEFAULT_LIMIT,
    next_token: NextTokenQuery = None,
    reverse: Annotated[bool, Query(description="`true`: newest events first.")] = False,
) -> Response[api_models.HistoryPage]:
    settings = _settings()
    query = api_models.HistoryQuery(limit=limit, next_token=next_token, reverse=reverse)
    return _answer(200, workflows_api.workflow_history(executions_for(settings.state_machine_arn), workflow_id, query))


# ----- the one error mapping: RelayError/ValidationError → status via http_status_for ----------
def _error(status: int, message: str) -> Response[Any]:
    return _json(status, api_models.ErrorBody(message=message[:MESSAGE_MAX_CHARS]))


#: Where a request's problems are reported from, first to last: one location's problems
#: per answer, in the order the handlers checked them before validation moved to Powertools.
_LOCATIONS = ("path", "body", "query", "header")
#: Parameters whose pattern is stated as a rule rather than as pydantic's regex message.
_RULES = {("path", "workflow_id"): api_models.WORKFLOW_ID_RULE, ("header", "idempotency-key"): api_models.IDEMPOTENCY_KEY_RULE}
#: Header names as the messages spell them (Powertools reports them in lower case).
_HEADER_NAMES = {"idempotency-key": "Idempotency-Key"}


def describe_request_errors(errors: Sequence[Mapping[str, Any]]) -> str:
    """One line for Powertools' request validation errors (``loc`` = ``(location, name,
    …)``), in this API's words: the first location's problems, each naming its field and
    rule (``questions: Input should be less than or equal to 40``)."""
    first = min((str(e["loc"][0]) for e in errors), key=lambda where: _LOCATIONS.index(where) if where in _LOCATIONS else len(_LOCATIONS))
    group = [e for e in errors if str(e["loc"][0]) == first]
    repeated = [str(e["loc"][-1]) for e in group if first == "header" and isinstance(e.get("input"), list)]
    if repeated:  # API Gateway passes a header sent twice as two values (multiValueHeaders)
        return "; ".join(f"{_HEADER_NAMES.get(name, name)}: give this header once" for name in dict.fromkeys(repeated))
    rules = [rule for e in group if len(e["loc"]) > 1 and (rule := _RULES.get((first, str(e["loc"][1]).lower())))]
    if rules:
        return "; ".join(dict.fromkeys(rules))
    if any(tuple(e["loc"]) == ("body",) and e.get("type") == "missing" for e in group):
        return api_models.BODY_REQUIRED
    return api_models.describe_errors([{**e, "loc": tuple(e["loc"])[1:] or (first,)} for e in group])


@app.exception_handler(RequestValidationError)
def request_validation_error(exc: RequestValidationError) -> Response[Any]:
    return _error(400, describe_request_errors(exc.errors()))


@app.exception_handler(RelayError)
def relay_error(exc: RelayError) -> Response[Any]:
    status = http_status_for(exc)
    if status >= 500:
        logger.exception("request failed")
        return _error(status, "internal error")
    return _error(status, str(exc))


@app.exception_handler(ValidationError)
def validation_error(exc: ValidationError) -> Response[Any]:
    return _error(http_status_for(exc), describe_validation_error(exc))


@app.exception_handler(Exception)
def unexpected_error(exc: Exception) -> Response[Any]:
    logger.exception("request failed")
    return _error(500, "internal error")


def routes() -> list[tuple[str, Any]]:
    """``(method, compiled path rule)`` of every route this resolver serves (Powertools
    keeps them in ``_static_routes``/``_dynamic_routes``; ``tests/unit/test_api_strict.py``
    fails if a Powertools upgrade moves them)."""
    return [(route.method, route.rule) for route in (*app._static_routes, *app._dynamic_routes)]


@app.not_found
def not_found(exc: Exception) -> Response[Any]:
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
