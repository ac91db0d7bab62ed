"""The local console: a Starlette app that starts, watches and inspects executions of the
local runtime in the Step Functions console's own terms.

Pages (paths relative to where the app is mounted):

- ``/state-machine``: the graph of the definition (laid out in the browser by ELK,
  elkjs's layered algorithm) and the definition itself;
- ``/executions``: name, status, started, duration, redrive count; ``?status=`` filter;
  newest first; ``?next_token=`` pages of :data:`PAGE_SIZE`;
- ``/executions/new`` (GET) and ``/executions`` (POST): start an execution (optional
  name, input JSON validated by :func:`relay_core.api_models.parse_workflow_request`,
  the API's own rules, before anything starts);
- ``/executions/{name}``: the execution page (the graph, the state details, the approval,
  the quality checks of the newest analysis and of the report, the Map Run, the
  artifacts, the cost and the history), kept live by the server-sent event stream
  ``/executions/{name}/stream`` (one ``view`` event per change: the page never polls);
  ``/executions/{name}/view`` is the same view as one JSON answer;
- ``POST /executions/{name}/stop`` and ``/redrive``: the Stop and Redrive buttons;
- ``POST /sfn``: the Step Functions API (:mod:`relay.local.console.sfn_api`).

Safety: every page and answer comes from redacted history events and from
:func:`relay_core.workflows_api.describe_workflow`, which hold no task token. Start,
Stop and Redrive are forms carrying a CSRF token (HMAC-SHA256 of the session cookie,
``SameSite=Strict``, under a secret made at start) and are refused (403) without it, or
when ``Sec-Fetch-Site`` or ``Origin`` say the request came from another site. The server
the console is attached to answers only its own ``Host`` names (no DNS rebinding:
:class:`relay.local.servers.TrustedHosts`). Pages send a Content-Security-Policy allowing
scripts and styles from the console only.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import secrets
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError
from relay_core import api_models, workflows_api
from relay_core.contracts import REDRIVABLE_STATUSES, ExecutionStatus
from relay_core.cost import execution_cost
from relay_core.errors import (
    ExecutionExists,
    InvalidInput,
    RelayError,
    WorkflowConflict,
    WorkflowNotFound,
    http_status_for,
)
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from relay.local.console.feed import ChangeFeed
from relay.local.console.graph import build_graph, state_paths
from relay.local.console.markdown import render_artifact
from relay.local.console.sfn_api import sfn_endpoint
from relay.local.console.view import (
    heartbeats_by_item,
    map_iterations,
    node_statuses,
    quality_checks,
    read_history,
    resolve_path,
)

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]
#: elkjs's single-file build, installed by the project's npm setup (``package.json``).
ELK_FILE = ROOT / "node_modules" / "elkjs" / "lib" / "elk.bundled.js"
#: Executions per page of the list (ListExecutions ``maxResults``).
PAGE_SIZE = 20
#: Execution statuses the list filters by (ListExecutions ``statusFilter``).
STATUSES: tuple[str, ...] = tuple(status.value for status in ExecutionStatus)
SESSION_COOKIE = "relay_console_session"
CSRF_FIELD = "csrf_token"
#: The start page's input, as the README shows it ("The local console").
EXAMPLE_INPUT: dict[str, Any] = {
    "topic": "How do AWS Step Functions task tokens work?",
    "questions": 3,
    "max_concurrency": 3,
    "approval_timeout_seconds": 86400,
    "max_revisions": 2,
}
#: Who the workflow record names when the console stops an execution.
CONSOLE_USER = "console (local)"
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)


class _SecurityHeaders:
    """Adds the Content-Security-Policy and friends to every answer (pure ASGI, so the
    event stream is not buffered)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                names = {k.lower() for k, _ in headers}
                for name, value in (
                    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
                    (b"x-content-type-options", b"nosniff"),
                    (b"referrer-policy", b"no-referrer"),
                    (b"x-frame-options", b"DENY"),
                    (b"cache-control", b"no-store"),
                ):
                    if name not in names:
                        headers.append((name, value))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _iso(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    return str(value)


def _duration_ms(start: Any, stop: Any) -> int | None:
    if not isinstance(start, datetime):
        return None
    end = stop if isinstance(stop, datetime) else datetime.now(UTC)
    return int((end - start).total_seconds() * 1000)


def _error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


class Console:
    """The console's domain: reads and commands against one :class:`relay.local.runtime.LocalRelay`.

    Args:
        relay: a started local runtime.
    """

    def __init__(self, relay: Any) -> None:
        from relay_core.adapters.step_functions import StepFunctionsExecutions
        from relay_core.adapters.workflow_records import DynamoDBWorkflowRecords

        from relay.local import moto_patches
        from relay.local.runtime import TABLE

        self.relay = relay
        self.secret = secrets.token_bytes(32)
        self.executions = StepFunctionsExecutions(relay.state_machine_arn, client=relay.sfn)
        self.records = DynamoDBWorkflowRecords(TABLE)
        self.feed = ChangeFeed()
        #: Rendered artifacts by (key, sha256): each version is rendered once, not once per view.
        self._rendered: dict[tuple[str, str], str] = {}
        self._patches = moto_patches
        moto_patches.add_persistence(self.feed)
        moto_patches.add_status_listener(self._status_changed)
        moto_patches.add_heartbeat_listener(self._heartbeat)

    def _status_changed(self, event: dict[str, Any]) -> None:
        self.feed.changed()

    def _heartbeat(self, execution_arn: str) -> None:
        self.feed.changed()  # the Map Run's heartbeat column: no history event records one

    def close(self) -> None:
        """Stop receiving the engine's changes (call when the console stops serving)."""
        self._patches.remove_persistence(self.feed)
        self._patches.remove_status_listener(self._status_changed)
        self._patches.remove_heartbeat_listener(self._heartbeat)
        self.feed.close()  # open event streams end

    # ----- reads ------------------------------------------------------------------------
    @cached_property
    def definition(self) -> dict[str, Any]:
        """The state machine definition the engine runs (DescribeStateMachine)."""
        described = self.relay.sfn.describe_state_machine(stateMachineArn=self.relay.state_machine_arn)
        return dict(json.loads(described["definition"]))

    @cached_property
    def graph(self) -> dict[str, Any]:
        return build_graph(self.definition).to_json()

    @cached_property
    def paths(self) -> dict[str, str]:
        return state_paths(self.definition)

    def list_page(self, status: str | None, next_token: str | None) -> dict[str, Any]:
        """One page of ListExecutions, newest first, each with its redrive count and duration.

        Raises:
            InvalidInput: an unknown status, or a ``next_token`` Step Functions did not issue.
        """
        if status is not None and status not in STATUSES:
            raise InvalidInput(f"status: must be one of {', '.join(STATUSES)}")
        kwargs: dict[str, Any] = {"stateMachineArn": self.relay.state_machine_arn, "maxResults": PAGE_SIZE}
        if status:
            kwargs["statusFilter"] = status
        if next_token:
            kwargs["nextToken"] = next_token
        try:
            page = self.relay.sfn.list_executions(**kwargs)
        except ClientError as exc:
            if _error_code(exc) in {"InvalidToken", "ValidationException"}:
                raise InvalidInput("next_token: not a token this console issued; start again from the first page") from None
            raise
        rows = []
        for item in page.get("executions", []):
            redrives = item.get("redriveCount")
            if redrives is None:  # moto's ListExecutions omits it; DescribeExecution has it
                redrives = self.relay.sfn.describe_execution(executionArn=item["executionArn"]).get("redriveCount") or 0
            rows.append(
                {
                    "name": item["name"],
                    "status": item["status"],
                    "started": _iso(item.get("startDate")),
                    "stopped": _iso(item.get("stopDate")),
                    "duration_ms": _duration_ms(item.get("startDate"), item.get("stopDate")),
                    "redrive_count": int(redrives),
                }
            )
        return {"executions": rows, "next_token": page.get("nextToken"), "status": status}

    def describe(self, name: str) -> dict[str, Any]:
        """DescribeExecution. Raises :class:`WorkflowNotFound`."""
        return self.executions.describe(api_models.parse_workflow_id(name))

    def _approval_link(self, name: str, approval: dict[str, Any] | None) -> str | None:
        """The emailed link of the workflow's newest approval while it is PENDING."""
        from relay.mailbox import approval_emails, approval_id_of, approval_link

        if not approval or approval.get("status") != "PENDING":
            return None
        for _, message in reversed(approval_emails(self.relay.outbox, name)):
            if approval_id_of(message) == approval.get("approval_id"):
                return approval_link(message)
        return None

    def view(self, name: str) -> dict[str, Any]:
        """Everything the execution page shows (the ``view`` event of the stream).

        Raises:
            InvalidInput: ``name`` is not an execution name.
            WorkflowNotFound: no such execution.
        """
        from relay.local.runtime import BUCKET

        described = self.describe(name)
        status = str(described["status"])
        arn = str(described["executionArn"])
        events = self.relay.history(arn)
        history = read_history(events, status)
        iterations: dict[str, list[dict[str, Any]]] = {}
        map_runs = []
        for run in history.map_runs:
            state_name = run.get("state")
            if not state_name:
                continue
            state = self.definition.get("States", {}).get(state_name, {})
            entry = history.latest(state_name)
            items: Any = None
            with contextlib.suppress(ValueError):
                items = resolve_path(entry.input if entry else None, str(state.get("ItemsPath", "$")))
            kept = {int(e[1]) for e in self._patches.memo_entries(arn) if e[0] == state_name}
            outputs = {int(e[1]): e[3] for e in self._patches.memo_entries(arn) if e[0] == state_name}
            rows = map_iterations(items if isinstance(items, list) else [], kept, run.get("status"), status)
            beating = heartbeats_by_item(self._patches.open_tasks(arn))
            for row in rows:
                output = outputs.get(row["index"])
                row["summary"] = str(output.get("summary", ""))[:300] if isinstance(output, dict) else None
                item = items[row["index"]] if isinstance(items, list) else None
                row["heartbeat"] = beating.get(str(item.get("id"))) if isinstance(item, dict) and row["status"] == "RUNNING" else None
            iterations[state_name] = rows
            map_runs.append({**run, "iterations": rows})
        workflow: dict[str, Any] | None = None
        with contextlib.suppress(WorkflowNotFound):
            workflow = workflows_api.describe_workflow(self.executions, self.records, name).model_dump(mode="json")
        artifacts = []
        for key, data in sorted(self.relay.artifacts(name).items()):
            digest = hashlib.sha256(data).hexdigest()
            html = self._rendered.get((key, digest))
            if html is None:
                html = self._rendered[(key, digest)] = render_artifact(key, data)
            artifacts.append({"key": key, "bytes": len(data), "sha256": digest, "html": html})
        return {
            "execution": {
                "name": name,
                "arn": arn,
                "status": status,
                "started": _iso(described.get("startDate")),
                "stopped": _iso(described.get("stopDate")),
                "duration_ms": _duration_ms(described.get("startDate"), described.get("stopDate")),
                "redrive_count": int(described.get("redriveCount") or 0),
                "redrive_date": _iso(described.get("redriveDate")),
                "error": described.get("error"),
                "cause": described.get("cause"),
                "input": described.get("input"),
                "output": described.get("output"),
                "can_stop": status == "RUNNING",
                "can_redrive": status in REDRIVABLE_STATUSES,
            },
            "statuses": node_statuses(history, self.paths, iterations),
            "states": {n: [e.to_json() for e in entries] for n, entries in history.entries.items()},
            "transitions": [[a, b] for a, b in history.transitions],
            "events": [
                {"id": r.id, "type": r.type, "state": r.state, "timestamp_ms": r.timestamp_ms, "elapsed_ms": r.elapsed_ms, "detail": r.detail}
                for r in history.rows
            ],
            "map_runs": map_runs,
            "workflow": workflow,
            "approval_link": self._approval_link(name, (workflow or {}).get("approval")),
            "artifacts": artifacts,
            "artifacts_location": f"s3://{BUCKET}/workflows/{name}/",
            "cost": execution_cost(events, self.definition).model_dump(mode="json"),
            "quality": quality_checks(history),
        }

    # ----- commands -----------------------------------------------------------------------
    def start(self, name: str, input_text: str) -> str:
        """Start an execution from the start page; returns its name.

        Raises:
            InvalidInput: a bad name or input (the API's rules, :mod:`relay_core.api_models`).
            WorkflowConflict: an execution with that name exists.
        """
        request = api_models.parse_workflow_request(input_text)
        if not name:
            started, _ = workflows_api.start_workflow(self.executions, request, None, self.relay.api_url)
            return started.workflow_id
        name = api_models.parse_workflow_id(name)
        try:
            self.executions.start(name, workflows_api.canonical_input(request))
        except ExecutionExists:
            raise WorkflowConflict(f"name: an execution named {name!r} exists already; pick another name") from None
        return name

    def stop(self, name: str, cause: str) -> None:
        """Stop (cancel) a RUNNING execution, recorded as the API's cancel is.

        Raises:
            InvalidInput: an empty or too long cause.
            WorkflowConflict: it is not RUNNING.
        """
        reason = api_models.parse_cancel_request(json.dumps({"reason": cause or "stopped from the local console"})).reason
        workflows_api.cancel_workflow(self.executions, self.records, api_models.parse_workflow_id(name), reason, CONSOLE_USER)

    def redrive(self, name: str) -> None:
        """Redrive a FAILED, TIMED_OUT or ABORTED execution. Raises :class:`WorkflowConflict` otherwise."""
        workflows_api.redrive_workflow(self.executions, api_models.parse_workflow_id(name), self.relay.api_url)

    # ----- CSRF ------------------------------------------------------------------------------
    def csrf_token(self, session: str) -> str:
        return hmac.new(self.secret, session.encode(), hashlib.sha256).hexdigest()

    def check_csrf(self, request: Request, form: Any) -> None:
        """Refuse a form post that is cross-site or lacks the session's token.

        Raises:
            PermissionError: naming what was wrong.
        """
        site = request.headers.get("sec-fetch-site")
        if site is not None and site not in {"same-origin", "none"}:
            raise PermissionError(f"Sec-Fetch-Site: {site!r}: only same-origin form posts are accepted")
        origin = request.headers.get("origin")
        own = f"{request.url.scheme}://{request.url.netloc}"
        if origin not in (None, "null", own):
            raise PermissionError("Origin: the form was posted from another site")
        session = request.cookies.get(SESSION_COOKIE, "")
        token = str(form.get(CSRF_FIELD) or "")
        if not session or not hmac.compare_digest(token, self.csrf_token(session)):
            raise PermissionError(f"{CSRF_FIELD}: missing or wrong; reload the page and try again")


def _session(request: Request) -> tuple[str, bool]:
    """The session id from the cookie, or a new one (``True`` when new)."""
    current = request.cookies.get(SESSION_COOKIE, "")
    if len(current) == 43 and all(c.isalnum() or c in "-_" for c in current):
        return current, False
    return secrets.token_urlsafe(32), True


def console_app(relay: Any) -> Starlette:
    """The console for a started :class:`relay.local.runtime.LocalRelay`, as a Starlette app
    to attach to a server that checks ``Host`` (:func:`relay.local.console.server.serve_console`). Its
    ``state.console`` is the :class:`Console`; call ``app.state.console.close()`` when it
    stops serving."""
    console = Console(relay)
    templates = Jinja2Templates(directory=str(HERE / "templates"))

    def page(request: Request, template: str, context: dict[str, Any], status_code: int = 200) -> Response:
        session, new = _session(request)
        response = templates.TemplateResponse(
            request, template, {**context, "csrf_token": console.csrf_token(session), "csrf_field": CSRF_FIELD},
            status_code=status_code,
        )
        if new:
            path = request.scope.get("root_path") or "/"  # the console's own paths only
            response.set_cookie(SESSION_COOKIE, session, httponly=True, samesite="strict", path=path)
        return response

    def error_page(request: Request, exc: Exception) -> Response:
        if isinstance(exc, PermissionError):
            status, message = 403, str(exc)
        elif isinstance(exc, RelayError):
            status = http_status_for(exc)
            message = str(exc) if status < 500 else "internal error"
        else:
            raise exc
        return page(request, "error.html", {"message": message, "status": status}, status_code=status)

    async def home(request: Request) -> Response:
        return RedirectResponse(request.url_for("executions"), status_code=303)

    async def state_machine(request: Request) -> Response:
        definition = await run_in_threadpool(lambda: console.definition)
        return page(
            request, "state_machine.html",
            {"graph": console.graph, "definition": json.dumps(definition, indent=2), "arn": relay.state_machine_arn, "elk": ELK_FILE.is_file()},
        )

    async def executions(request: Request) -> Response:
        status = request.query_params.get("status") or None
        token = request.query_params.get("next_token") or None
        try:
            listed = await run_in_threadpool(console.list_page, status, token)
        except RelayError as exc:
            return error_page(request, exc)
        return page(request, "executions.html", {**listed, "statuses": STATUSES, "first_page": token is None})

    async def new_execution(request: Request) -> Response:
        return page(request, "start.html", {"name": "", "input": json.dumps(EXAMPLE_INPUT, indent=2), "error": None})

    async def start_execution(request: Request) -> Response:
        form = await request.form()
        name, text = str(form.get("name") or "").strip(), str(form.get("input") or "")
        try:
            console.check_csrf(request, form)
            started = await run_in_threadpool(console.start, name, text)
        except PermissionError as exc:
            return error_page(request, exc)
        except RelayError as exc:
            status = http_status_for(exc)
            if status >= 500:
                return error_page(request, exc)
            return page(request, "start.html", {"name": name, "input": text, "error": str(exc)}, status_code=status)
        return RedirectResponse(request.url_for("execution", name=started), status_code=303)

    async def execution(request: Request) -> Response:
        name = request.path_params["name"]
        try:
            described = await run_in_threadpool(console.describe, name)
        except RelayError as exc:
            return error_page(request, exc)
        return page(
            request, "execution.html",
            {
                "name": name, "status": described["status"], "graph": console.graph, "elk": ELK_FILE.is_file(),
                "redrivable": sorted(REDRIVABLE_STATUSES),
            },
        )

    async def execution_view(request: Request) -> Response:
        try:
            view = await run_in_threadpool(console.view, request.path_params["name"])
        except RelayError as exc:
            status = http_status_for(exc)
            return JSONResponse({"message": str(exc) if status < 500 else "internal error"}, status_code=status)
        return JSONResponse(view)

    async def stream(request: Request) -> Response:
        from sse_starlette.sse import EventSourceResponse

        name = request.path_params["name"]
        try:
            await run_in_threadpool(console.describe, name)
        except RelayError as exc:
            status = http_status_for(exc)
            return JSONResponse({"message": str(exc) if status < 500 else "internal error"}, status_code=status)

        async def events() -> Any:
            wake = console.feed.subscribe()
            sent_artifacts: str | None = None
            last: str | None = None
            try:
                while not console.feed.closed:
                    wake.clear()
                    view = await run_in_threadpool(console.view, name)
                    signature = json.dumps([(a["key"], a["sha256"]) for a in view["artifacts"]])
                    if signature == sent_artifacts:
                        view.pop("artifacts")  # unchanged: the page keeps what it shows
                    body = json.dumps(view, separators=(",", ":"), default=str)
                    if body != last:
                        yield {"event": "view", "data": body}
                        last, sent_artifacts = body, signature
                    await asyncio.sleep(0.1)  # coalesce bursts of changes into one view
                    if console.feed.closed:
                        break
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(wake.wait(), timeout=15)  # the timeout refreshes durations
            finally:
                console.feed.unsubscribe(wake)

        return EventSourceResponse(events(), ping=15)

    async def stop(request: Request) -> Response:
        form = await request.form()
        name = request.path_params["name"]
        try:
            console.check_csrf(request, form)
            await run_in_threadpool(console.stop, name, str(form.get("cause") or "").strip())
        except (PermissionError, RelayError) as exc:
            return error_page(request, exc)
        return RedirectResponse(request.url_for("execution", name=name), status_code=303)

    async def redrive(request: Request) -> Response:
        form = await request.form()
        name = request.path_params["name"]
        try:
            console.check_csrf(request, form)
            await run_in_threadpool(console.redrive, name)
        except (PermissionError, RelayError) as exc:
            return error_page(request, exc)
        return RedirectResponse(request.url_for("execution", name=name), status_code=303)

    async def elk(request: Request) -> Response:
        if not ELK_FILE.is_file():
            return Response(
                "// elkjs is not installed: run `make setup-run` (npm ci) in the repository\n",
                status_code=404, media_type="text/javascript",
            )
        return FileResponse(ELK_FILE, media_type="text/javascript")

    routes = [
        Route("/", home, name="home"),
        Route("/state-machine", state_machine, name="state_machine"),
        Route("/executions", executions, methods=["GET"], name="executions"),
        Route("/executions", start_execution, methods=["POST"], name="start_execution"),
        Route("/executions/new", new_execution, name="new_execution"),
        Route("/executions/{name}", execution, name="execution"),
        Route("/executions/{name}/view", execution_view, name="execution_view"),
        Route("/executions/{name}/stream", stream, name="execution_stream"),
        Route("/executions/{name}/stop", stop, methods=["POST"], name="stop_execution"),
        Route("/executions/{name}/redrive", redrive, methods=["POST"], name="redrive_execution"),
        Route("/sfn", sfn_endpoint, methods=["POST", "GET"], name="sfn"),
        Route("/sfn/", sfn_endpoint, methods=["POST", "GET"]),
        Route("/assets/elk.bundled.js", elk, name="elk"),
        Mount("/assets", app=StaticFiles(directory=str(HERE / "static")), name="assets"),
    ]
    app = Starlette(
        routes=routes,
        middleware=[Middleware(_SecurityHeaders)],
    )
    app.state.console = console
    return app
