"""The approval link routes (public, protected by signed links):

- ``GET /approvals/{approval_id}?exp=…&sig=…`` shows the request (the analysis rendered from
  Markdown, its research sources, its quality check) and two forms; it never writes. It reads
  the analysis and the research document from the artifact bucket (``s3:GetObject``).
- ``POST /approvals/{approval_id}`` (form: decision, feedback, exp, sig, csrf) decides once and
  resumes the execution with ``SendTaskSuccess``. The only function allowed ``states:SendTask*``.

Answers are HTML pages: 200, 400 (bad form, no feedback on reject), 403 (cross-site POST),
404 (tampered or unknown link: reveals nothing), 409 (already decided by … at …), 410 (expired).
A method the path does not have (PATCH, OPTIONS, TRACE, …) is 405 JSON ``{"message"}``
with ``Allow: GET, POST``, as on the workflows API.
"""

from functools import lru_cache
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import boto3
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import ValidationError
from relay_core import api_models, approvals, pages
from relay_core.adapters.artifact_store import artifact_store
from relay_core.adapters.step_functions import StepFunctionsTaskTokens
from relay_core.adapters.workflow_records import workflow_records
from relay_core.config import ApprovalSettings, load
from relay_core.errors import ApprovalAlreadyDecided, RelayError, describe_validation_error, http_status_for
from relay_core.links import load_secret
from relay_core.models import DecisionForm
from relay_core.observability import logger, metrics, tracer

app = APIGatewayRestResolver()
HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
}


@lru_cache(maxsize=1)
def _sfn() -> Any:
    """The Step Functions client (one per warm environment; tests replace it)."""
    return boto3.client("stepfunctions")


def _html(status: int, body: str) -> Response:
    return Response(status_code=status, content_type="text/html; charset=utf-8", body=body, headers=HEADERS)


def _cross_site(api_base_url: str) -> bool:
    """A POST another site made the browser send.

    ``Sec-Fetch-Site`` (Fetch Metadata, sent by every current browser) must be
    ``same-origin`` (or ``none``, a user-typed navigation); an ``Origin`` header must be
    this API's origin. ``Origin: null`` is accepted because the page's
    ``Referrer-Policy: no-referrer`` makes browsers send it on same-origin form posts
    (Fetch standard, "serializing a request origin"); the CSRF token still has to match.
    """
    headers = app.current_event.headers
    fetch_site = (headers.get("Sec-Fetch-Site") or "").strip().lower()
    if fetch_site and fetch_site not in {"same-origin", "none"}:
        return True
    origin = (headers.get("Origin") or "").strip()
    allowed = "{0.scheme}://{0.netloc}".format(urlsplit(api_base_url))
    return bool(origin) and origin != "null" and origin.rstrip("/") != allowed


@app.get("/approvals/<approval_id>")
def show_approval(approval_id: str) -> Response:
    settings = load(ApprovalSettings)
    query = app.current_event.query_string_parameters or {}
    view = approvals.show(
        workflow_records(settings.table_name), load_secret(settings), approval_id, query.get("exp"), query.get("sig"),
        store=artifact_store(settings.artifact_bucket),
    )
    return _html(200, pages.approval_page(view))


@app.post("/approvals/<approval_id>")
def decide_approval(approval_id: str) -> Response:
    settings = load(ApprovalSettings)
    if _cross_site(settings.api_base_url):
        return _html(403, pages.error_page(403, "Cross-site form submissions are refused."))
    try:
        fields = dict(parse_qsl(app.current_event.decoded_body or "", keep_blank_values=True))
    except (ValueError, UnicodeError):
        return _html(400, pages.error_page(400, "body: not a valid form submission"))
    try:
        form = DecisionForm.model_validate(fields)
    except ValidationError as exc:
        return _html(400, pages.error_page(400, describe_validation_error(exc)))
    records = workflow_records(settings.table_name)
    decision = approvals.decide(records, StepFunctionsTaskTokens(_sfn()), load_secret(settings), approval_id, form)
    try:  # for the page's "what happens next" (revision, max_revisions); the decision stands either way
        approval: dict[str, Any] | None = records.get_approval(approval_id)
    except RelayError:
        approval = None
    return _html(200, pages.decision_page(decision, approval))


@app.exception_handler(RelayError)
def relay_error(exc: RelayError) -> Response:
    status = http_status_for(exc)
    if isinstance(exc, ApprovalAlreadyDecided):
        return _html(409, pages.already_decided_page(exc.decided_by, exc.decided_at))
    message = "This link is not valid." if status == 404 else str(exc)
    return _html(status, pages.error_page(status, message))


@app.exception_handler(Exception)
def unexpected_error(exc: Exception) -> Response:
    logger.exception("approval request failed")
    return _html(500, pages.error_page(500, "Something went wrong. Open the link again in a minute."))


@app.not_found
def not_found(exc: Exception) -> Response:
    event = app.current_event
    routes = [(route.method, route.rule) for route in (*app._static_routes, *app._dynamic_routes)]
    allowed = api_models.allowed_methods(routes, event.path)
    if allowed:  # RFC 9110 §15.5.6: 405 names the methods the path has
        error = api_models.MethodNotAllowed(event.http_method, event.path, allowed)
        body = api_models.ErrorBody(message=str(error)).model_dump_json()
        return Response(405, "application/json", body, {**HEADERS, "Allow": ", ".join(allowed)})
    return _html(404, pages.error_page(404, "This link is not valid."))


@logger.inject_lambda_context(clear_state=True, log_event=False)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
