"""Bad input, generated: hypothesis properties over the request models and approval links,
and a bounded fuzz of every endpoint through the real handlers on API Gateway events.

Every answer must be a 4xx whose body names the problem (or a 2xx for input that is
valid), never a 5xx, and a 4xx must change nothing: no execution started or stopped,
no approval decided, no record written. Strictness too (no type coercion,
control characters, media types, unknown methods → 405 with ``Allow``) and a raw-socket
fuzz of ``relay serve``'s HTTP server: malformed request lines, lengths and chunked
bodies always get complete HTTP answers, never a 5xx, never a dropped connection. Each
endpoint's fuzz checks its own counts (:func:`fuzzes`), so the tests pass in any order; the
number of bad inputs tried per endpoint is printed at the end of the session.
"""

from __future__ import annotations

import inspect
import json
import re
import string
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from relay_core import links, workflows_api
from relay_core.adapters.workflow_records import DynamoDBWorkflowRecords
from relay_core.api_models import parse_workflow_request
from relay_core.errors import InvalidInput, describe_validation_error
from relay_core.models import EXECUTION_NAME_RE, DecisionForm, WorkflowRequest

from tests.support.apigw import MotoStores, call, load_function
from tests.support.rawhttp import exchange as raw_exchange
from tests.support.rawhttp import split
from tests.support.tally import REPORTS

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics")

EXAMPLES = 150
FUZZ = settings(
    max_examples=EXAMPLES,
    derandomize=True,  # the same examples every run: reproducible counts, no flaky CI
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large],
)
TOKEN = "AQCEAAAA-fuzz-task-token+/=-0123456789"
TRIED: Counter[str] = Counter()
BAD: Counter[str] = Counter()
FIVE_XX: Counter[str] = Counter()


# ----- fixtures --------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Any:
    """moto stores, both API handlers, a pending approval and an expired one, quiet logs."""
    from relay_core.observability import logger

    level = logger.log_level
    logger.setLevel("ERROR")
    with MotoStores(tmp_path_factory.mktemp("fuzz")) as stores:
        w = World(stores)
        yield w
    logger.setLevel(level)


class RecordingSfn:
    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def send_task_success(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(kwargs)
        return {}


class World:
    def __init__(self, stores: MotoStores):
        from relay.local.servers import FakeLambdaContext

        self.stores = stores
        self.api = load_function("api")
        self.approvals_fn = load_function("approvals")
        self.sfn = RecordingSfn()
        self.approvals_fn._sfn = lambda: self.sfn
        self.context = FakeLambdaContext(function_name="fuzz", invoked_function_arn="arn:aws:lambda:us-east-1:123456789012:function:fuzz")
        self.records = DynamoDBWorkflowRecords("relay-workflows-local")
        self.secret = self._secret()
        now = int(time.time())
        self.pending = self._approval("pending-approval-id-00", now + 3600)
        self.expired = self._approval("expired-approval-id-00", now - 60)

    @staticmethod
    def _secret() -> bytes:
        from relay_core.config import ApprovalSettings, load
        from relay_core.links import load_secret

        return load_secret(load(ApprovalSettings))

    def _approval(self, approval_id: str, exp: int) -> dict[str, str]:
        self.records.put_approval(approval_id, f"wf-{approval_id}", TOKEN, exp, {"topic": "t", "summary": "s"})
        return {"id": approval_id, "exp": str(exp), "sig": links.sign(self.secret, approval_id, exp),
                "csrf": links.csrf_token(self.secret, approval_id, exp)}

    def reset_approvals(self) -> None:
        for a in (self.pending, self.expired):
            self.records.reopen_approval(a["id"], "PENDING")
        self.sfn.calls.clear()

    def approval_state(self) -> list[dict[str, Any]]:
        """Both approval items as stored (moto's backend, see ``MotoStores.table_items``)."""
        items = self.stores.table_items()
        return [items[f"APPROVAL#{a['id']}"] for a in (self.pending, self.expired)]

    def table_size(self) -> int:
        return len(self.stores.table_items())


def fuzzes(endpoint: str) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """One endpoint's hypothesis examples as one test, whatever ran before it: the endpoint's
    counts start afresh, and after the examples at least a third must have been bad input
    (answered 4xx, so the fuzz really probes the refusals) and none a 5xx. The counts are
    printed at the end of the session (:mod:`tests.support.tally`)."""

    def wrap(examples: Callable[..., None]) -> Callable[..., None]:
        def test(**fixtures: Any) -> None:
            for tally in (TRIED, BAD, FIVE_XX):
                tally.pop(endpoint, None)
            examples(**fixtures)
            REPORTS.setdefault("bad inputs per endpoint (answered 4xx, of examples tried; 5xx seen)", []).append(
                f"{endpoint:30s} {BAD[endpoint]:4d} bad of {TRIED[endpoint]:4d} tried, {FIVE_XX[endpoint]} 5xx"
            )
            assert BAD[endpoint] >= EXAMPLES // 3, (endpoint, dict(BAD), dict(TRIED))
            assert FIVE_XX[endpoint] == 0, endpoint

        test.__name__, test.__doc__ = examples.__name__, examples.__doc__
        test.__signature__ = inspect.signature(examples)  # type: ignore[attr-defined]  # the fixtures
        return test

    return wrap


def record(endpoint: str, status: int, body: Any, valid_statuses: set[int]) -> None:
    """Count the example and check the answer's shape: 4xx naming the problem, or a valid 2xx."""
    TRIED[endpoint] += 1
    if status >= 500:
        FIVE_XX[endpoint] += 1
    assert status < 500, (endpoint, status, body)
    if 400 <= status < 500:
        BAD[endpoint] += 1
        message = body["message"] if isinstance(body, dict) else _page_message(str(body))
        assert isinstance(message, str) and message.strip(), body
    else:
        assert status in valid_statuses, (endpoint, status, body)


def _page_message(html: str) -> str:
    match = re.search(r"<p id=(?:error|decided)>(.*?)</p>", html, re.S)
    return match.group(1) if match else ""


# ----- strategies ------------------------------------------------------------------------------------
json_scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=20))
json_values = st.recursive(json_scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3), max_leaves=6)


def maybe(valid: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Valid values half the time, anything JSON can hold otherwise."""
    return st.one_of(valid, json_values)


#: Values a lax parser would coerce to integers: refused by the API.
coercible = st.sampled_from(["3", "1", True, False, 1.0, 3.0, 1e1, " 2 "])
#: Text with C0/C1 control characters (tab and newline are allowed, the rest refused).
control_text = st.text(st.characters(codec="utf-8", categories=["Cc"]) | st.sampled_from("ab \t\n"), min_size=1, max_size=12)
request_fields = st.fixed_dictionaries(
    {},
    optional={
        "topic": maybe(st.one_of(st.text(max_size=40), st.integers(1995, 2005).map(lambda n: "t" * n), st.just("Task tokens"), control_text)),
        "questions": maybe(st.one_of(st.integers(-2, 45), coercible)),
        "max_concurrency": maybe(st.integers(-2, 45)),
        "tolerated_failure_percentage": maybe(st.floats(-10, 110)),
        "approval_timeout_seconds": maybe(st.integers(-5, 400 * 24 * 3600)),
        "max_revisions": maybe(st.one_of(st.integers(-2, 12), coercible)),
        "approver": maybe(st.one_of(st.emails(), st.text(max_size=20), control_text.map(lambda t: t + "@example.com"))),
        "question": json_values,
        "extra": json_values,
    },
)
valid_requests = st.fixed_dictionaries(
    {"topic": st.text(string.ascii_letters + " ", min_size=1, max_size=30).filter(str.strip)},
    optional={"questions": st.integers(1, 40), "max_revisions": st.integers(0, 10), "approver": st.emails()},
)
request_bodies = st.one_of(
    valid_requests.map(json.dumps),
    request_fields.map(json.dumps),
    request_fields.map(lambda d: json.dumps({**d, "topic": "Task tokens"})),
    json_values.map(json.dumps),
    st.text(max_size=60),
    st.binary(max_size=60),
    st.none(),
)
header_values = st.one_of(st.text(max_size=20), st.sampled_from(["k-1", "k-2", "", " padded ", "x" * 256]))


def mutated_text(original: str) -> st.SearchStrategy[str]:
    """Any string but ``original``: edits of it, and unrelated text."""
    edits = st.one_of(
        st.just(original[:-1]),
        st.just(original + "x"),
        st.integers(0, max(0, len(original) - 1)).flatmap(
            lambda i: st.sampled_from(string.ascii_letters + string.digits + "-_é%/ ").map(lambda c: original[:i] + c + original[i + 1:])
        ),
        st.text(max_size=50),
    )
    return edits.filter(lambda s: s != original)


# ----- properties over the models --------------------------------------------------------------------------
@FUZZ
@given(fields=request_fields)
def test_workflow_request_either_validates_within_bounds_or_names_a_field(fields):
    try:
        request = WorkflowRequest.model_validate(fields)
    except ValidationError as exc:
        message = describe_validation_error(exc)
        named = {m.split(":", 1)[0].split(".")[0] for m in message.split("; ")}
        assert named and named <= set(fields) | {"topic"}, message
        return
    assert 1 <= len(request.topic) <= 2000 and request.topic == request.topic.strip()
    assert 1 <= request.questions <= 40 and 0 <= request.max_revisions <= 10
    assert 0 <= request.tolerated_failure_percentage <= 100 and request.approval_timeout_seconds >= 1
    # the canonical execution input parses back to the same request
    assert parse_workflow_request(workflows_api.canonical_input(request)) == request


_INT_FIELDS = ("questions", "max_concurrency", "approval_timeout_seconds", "max_revisions")


@FUZZ
@given(fields=request_fields)
def test_the_api_never_coerces_types_nor_accepts_control_characters(fields):
    # Given any JSON object as a POST /workflows body
    text = json.dumps(fields)
    try:
        request = parse_workflow_request(text)
    except InvalidInput as exc:
        message = str(exc)
        # Then a refusal names a field the body holds (or the missing topic) ...
        assert {m.split(":", 1)[0] for m in message.split("; ")} <= set(fields) | {"topic"}, message
        for name in ("topic", "approver"):
            value = fields.get(name)
            if isinstance(value, str) and re.search(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]", value.replace("\r\n", "\n")):
                assert f"{name}: must not contain control characters" in message, message
        return
    # ... and an accepted body held real JSON integers and plain text, kept as sent
    for name in _INT_FIELDS:
        if name in fields:
            assert type(fields[name]) is int and getattr(request, name) == fields[name], (name, fields[name])
    assert not re.search(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]", request.topic + (request.approver or ""))


@FUZZ
@given(body=request_bodies)
def test_any_start_body_parses_or_raises_invalid_input_naming_the_problem(body):
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    try:
        parse_workflow_request(text)
    except InvalidInput as exc:
        assert re.match(r"^[^:]+: ", str(exc)), str(exc)


@FUZZ
@given(fields=st.dictionaries(
    st.sampled_from(["decision", "feedback", "exp", "sig", "csrf", "decided_by", "other"]),
    st.one_of(st.text(max_size=30), st.sampled_from(["approve", "reject", "12", "0012", "x" * 43]), st.integers(1, 4100).map(lambda n: "f" * n)),
))
def test_decision_form_either_validates_within_bounds_or_names_a_field(fields):
    try:
        form = DecisionForm.model_validate(fields)
    except ValidationError as exc:
        message = describe_validation_error(exc)
        assert {m.split(":", 1)[0] for m in message.split("; ")} <= set(fields) | {"decision", "exp", "sig"}, message
        return
    assert form.decision in {"approve", "reject"} and form.exp >= 0 and len(form.feedback) <= 4000
    assert re.fullmatch(r"[A-Za-z0-9_-]{16,128}", form.sig)


@FUZZ
@given(part=st.sampled_from(["id", "exp", "sig"]), data=st.data())
def test_any_change_to_a_links_id_expiry_or_signature_is_refused_and_decides_nothing(world, part, data):
    # Given the pending approval's link and its page's form
    real = world.pending
    link = {"id": real["id"], "exp": real["exp"], "sig": real["sig"]}
    # When one part of the link is changed in any way
    link[part] = data.draw(mutated_text(real[part]))
    before = world.approval_state()
    path = "/approvals/" + quote(link["id"], safe="")
    shown = call(world.approvals_fn, world.context, "GET", path + "?" + urlencode({"exp": link["exp"], "sig": link["sig"]}), user_arn=None)
    form = urlencode({"decision": "approve", "exp": link["exp"], "sig": link["sig"], "csrf": real["csrf"]})
    posted = call(world.approvals_fn, world.context, "POST", path, form,
                  {"Content-Type": "application/x-www-form-urlencoded", "Origin": "null", "Sec-Fetch-Site": "same-origin"}, user_arn=None)
    # Then both are refused as unknown (or expired), and nothing is decided
    assert shown[0] in {404, 410} and posted[0] in {400, 404, 410}, (link, shown[0], posted[0])
    assert world.approval_state() == before and world.sfn.calls == []


# ----- the endpoint fuzz ------------------------------------------------------------------------------------
@fuzzes("POST /workflows")
@FUZZ
@given(body=request_bodies, key=st.one_of(st.none(), header_values), content_type=st.sampled_from(["application/json", "text/plain", ""]))
def test_fuzz_post_workflows(world, body, key, content_type):
    before = world.stores.executions()
    headers = {"Content-Type": content_type} | ({"Idempotency-Key": key} if key is not None else {})
    status, _, answer = call(world.api, world.context, "POST", "/workflows", body, headers)
    record("POST /workflows", status, answer, {202})
    if body and content_type != "application/json":  # an empty body is no body (400 "body: required")
        assert status == 415 and answer["message"].startswith("Content-Type: must be application/json"), answer
    after = world.stores.executions()
    if status >= 400:
        assert after == before, "a refused start must start nothing"
    else:
        assert answer["workflow_id"] in {e["name"] for e in after} and len(after) - len(before) in {0, 1}


@fuzzes("GET /workflows")
@FUZZ
@given(
    params=st.one_of(
        st.fixed_dictionaries({}, optional={
            "status": st.sampled_from(["RUNNING", "AWAITING_APPROVAL", "COMPLETED", "REJECTED", "FAILED", "CANCELLED"]),
            "limit": st.integers(1, 100).map(str),
        }).map(lambda d: list(d.items())),
        st.lists(st.tuples(
            st.one_of(st.sampled_from(["status", "limit", "next_token"]), st.text(max_size=8)),
            st.one_of(st.sampled_from(["RUNNING", "COMPLETED", "FAILED", "1", "20", "100", "0", "-1", "abc"]), st.text(max_size=30)),
        ), max_size=4),
    ),
    token=st.sampled_from([None, "tok"]),
)
def test_fuzz_get_workflows(world, params, token):
    size = world.table_size()
    if token:
        issued = call(world.api, world.context, "GET", "/workflows?status=RUNNING&limit=1")[2].get("next_token")
        if issued:
            params = [*params, ("next_token", issued)]
    status, _, answer = call(world.api, world.context, "GET", "/workflows?" + urlencode(params))
    record("GET /workflows", status, answer, {200})
    assert world.table_size() == size


@fuzzes("GET /workflows/{id}")
@FUZZ
@given(workflow_id=st.one_of(st.text(max_size=90), st.from_regex(EXECUTION_NAME_RE, fullmatch=True), st.just("sentinel")), quoted=st.booleans())
def test_fuzz_get_workflow(world, workflow_id, quoted):
    sentinel = _sentinel(world)
    if workflow_id == "sentinel":
        workflow_id = sentinel
    segment = quote(workflow_id, safe="") if quoted or set(workflow_id) & set("/?#") else workflow_id
    size, before = world.table_size(), world.stores.executions()
    status, _, answer = call(world.api, world.context, "GET", "/workflows/" + segment)
    record("GET /workflows/{id}", status, answer, {200})
    assert world.table_size() == size and world.stores.executions() == before


@fuzzes("POST /workflows/{id}/cancel")
@FUZZ
@given(
    workflow_id=st.one_of(st.text(max_size=90), st.from_regex(EXECUTION_NAME_RE, fullmatch=True), st.just("sentinel")),
    body=st.one_of(
        st.fixed_dictionaries({}, optional={"reason": maybe(st.text(max_size=30)), "force": json_values}).map(json.dumps),
        json_values.map(json.dumps), st.text(max_size=40), st.binary(max_size=40), st.none(),
    ),
)
def test_fuzz_cancel_workflow(world, workflow_id, body):
    sentinel = _sentinel(world)
    if workflow_id == "sentinel":
        workflow_id = sentinel
    size = world.table_size()
    status, _, answer = call(world.api, world.context, "POST", f"/workflows/{quote(workflow_id, safe='')}/cancel", body)
    record("POST /workflows/{id}/cancel", status, answer, {200})
    running = {e["name"]: e["status"] for e in world.stores.executions()}
    if status == 200:
        assert running[workflow_id] == "ABORTED"
        world.sentinel = None  # a valid cancel: start a new sentinel for the next example
    else:
        assert running[sentinel] == "RUNNING" and world.table_size() == size


def _sentinel(world: World) -> str:
    """A RUNNING workflow that bad cancels must not stop."""
    if getattr(world, "sentinel", None) is None:
        world.sentinel = call(world.api, world.context, "POST", "/workflows", {"topic": "sentinel"})[2]["workflow_id"]
    return str(world.sentinel)


def _approval_part(real: str) -> st.SearchStrategy[str | None]:
    return st.one_of(st.just(real), mutated_text(real), st.none())


@fuzzes("GET /approvals/{id}")
@FUZZ
@given(data=st.data(), extra=st.dictionaries(st.text(max_size=6), st.text(max_size=10), max_size=2))
def test_fuzz_get_approval(world, data, extra):
    real = data.draw(st.sampled_from([world.pending, world.expired]))
    approval_id = data.draw(st.one_of(st.just(real["id"]), mutated_text(real["id"])))
    query = {k: v for k, v in {"exp": data.draw(_approval_part(real["exp"])), "sig": data.draw(_approval_part(real["sig"]))}.items() if v is not None}
    before = world.approval_state()
    path = f"/approvals/{quote(approval_id, safe='')}?" + urlencode({**extra, **query})
    status, _, page = call(world.approvals_fn, world.context, "GET", path, user_arn=None)
    record("GET /approvals/{id}", status, page, {200})
    assert world.approval_state() == before and world.sfn.calls == []


@fuzzes("POST /approvals/{id}")
@FUZZ
@given(
    data=st.data(),
    decision=st.one_of(st.sampled_from(["approve", "reject"]), st.text(max_size=8)),
    feedback=st.one_of(st.none(), st.text(max_size=30), st.just("Please revise.")),
    origin=st.one_of(st.none(), st.sampled_from(["null", "https://evil.example", "https://abc123.execute-api.us-east-1.amazonaws.com"]), st.text(max_size=20)),
    fetch_site=st.one_of(st.none(), st.sampled_from(["same-origin", "cross-site", "same-site", "none"]), st.text(max_size=10)),
    raw=st.one_of(st.none(), st.text(max_size=60), st.binary(max_size=60)),
)
def test_fuzz_post_approval(world, data, decision, feedback, origin, fetch_site, raw):
    real = data.draw(st.sampled_from([world.pending, world.expired]))
    approval_id = data.draw(st.one_of(st.just(real["id"]), mutated_text(real["id"])))
    fields = {"decision": decision, "feedback": feedback, "exp": data.draw(_approval_part(real["exp"])),
              "sig": data.draw(_approval_part(real["sig"])), "csrf": data.draw(_approval_part(real["csrf"]))}
    body = raw if raw is not None else urlencode({k: v for k, v in fields.items() if v is not None})
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    headers |= {"Origin": origin} if origin is not None else {}
    headers |= {"Sec-Fetch-Site": fetch_site} if fetch_site is not None else {}
    before = world.approval_state()
    status, _, page = call(world.approvals_fn, world.context, "POST", f"/approvals/{quote(approval_id, safe='')}", body, headers, user_arn=None)
    record("POST /approvals/{id}", status, page, {200})
    if status == 200:  # a valid decision: it must have decided exactly once; put it back for the next example
        assert len(world.sfn.calls) == 1 and world.records.get_approval(real["id"])["approval_status"] in {"APPROVED", "REJECTED"}
        world.reset_approvals()
    else:
        assert world.approval_state() == before and world.sfn.calls == []


ROUTE_METHODS = {"/workflows": "GET, POST", "/workflows/wf-1": "GET", "/workflows/wf-1/cancel": "POST",
                 "/workflows/wf-1/redrive": "POST", "/workflows/wf-1/history": "GET", "/approvals/some-id": "GET, POST"}
methods = st.one_of(
    st.sampled_from(["PATCH", "OPTIONS", "TRACE", "PUT", "DELETE", "HEAD", "CONNECT", "PROPFIND"]),
    st.text(string.ascii_uppercase + "-_", min_size=1, max_size=10),
)


@fuzzes("any method")
@FUZZ
@given(method=methods, path=st.sampled_from(sorted(ROUTE_METHODS)))
def test_fuzz_any_method(world, method, path):
    # Given any method on a path of either API
    fn = world.approvals_fn if path.startswith("/approvals") else world.api
    before, size = world.stores.executions(), world.table_size()
    status, headers, answer = call(fn, world.context, method, path, user_arn=None)
    record("any method", status, answer, {200})
    # Then a method the path does not have is 405 JSON listing the path's methods, and changes nothing
    if method not in ROUTE_METHODS[path].split(", "):
        assert status == 405 and headers["Allow"] == ROUTE_METHODS[path], (method, path, status, answer)
    assert world.stores.executions() == before and world.table_size() == size and world.sfn.calls == []


@pytest.fixture(scope="module")
def served(world) -> Any:
    """``relay serve``'s HTTP server in front of the same two handlers."""
    from relay.local.servers import ApiServer

    functions = Path(__file__).resolve().parents[2] / "functions"
    routes = [("/workflows", functions / "api"), ("/approvals", functions / "approvals")]
    server = ApiServer(routes, public_urls=["http://127.0.0.1"]).start()  # the raw requests say Host: 127.0.0.1
    server.body_timeout_seconds = 5.0  # a client that stalls is answered 408 (never generated here)
    yield server
    server.stop()


def _chunked(body: bytes, sizes: list[int]) -> bytes:
    out, rest = b"", body
    for size in sizes:
        piece, rest = rest[:size], rest[size:]
        if piece:
            out += b"%x\r\n%s\r\n" % (len(piece), piece)
    if rest:
        out += b"%x\r\n%s\r\n" % (len(rest), rest)
    return out + b"0\r\n\r\n"


raw_bodies = st.one_of(
    st.just(b'{"topic": "Task tokens"}'), st.just(b'{"reason": "stop"}'), st.just(b'{"topic": "t", "questions": "3"}'),
    st.binary(max_size=80), st.text(max_size=40).map(lambda t: t.encode("utf-8")),
)
raw_lengths = st.one_of(
    st.just("exact"), st.none(), st.sampled_from(["abc", "-1", "1.5", "5, 6", "", "0x10", "99999999999", "0", "3"]),
    st.integers(0, 200).map(str),
)


@st.composite
def raw_requests(draw: st.DrawFn) -> bytes:
    """One HTTP/1.1 request, valid or malformed in its request line, framing or body."""
    method = draw(st.one_of(st.sampled_from(["GET", "POST", "PATCH", "OPTIONS", "TRACE", "HEAD", "DELETE"]),
                            st.text(string.ascii_letters + string.punctuation, min_size=1, max_size=8)))
    path = draw(st.one_of(st.sampled_from([*ROUTE_METHODS, "/workflows?limit=2", "/nope", "/approvals/x?exp=1&sig=y", "*"]),
                          st.text(string.printable.strip() + "é", min_size=1, max_size=20).map(lambda p: "/" + p)))
    version = draw(st.sampled_from(["HTTP/1.1", "HTTP/1.1", "HTTP/1.0", "HTTP/1.x", "HTTPS/1.1"]))
    body = draw(raw_bodies)
    headers = [b"Host: 127.0.0.1"]
    content_type = draw(st.sampled_from([b"application/json", b"text/plain", b"application/x-www-form-urlencoded", None]))
    if content_type:
        headers.append(b"Content-Type: " + content_type)
    framing = draw(st.sampled_from(["length", "length", "chunked", "chunked-broken", "both", "gzip", "none"]))
    if framing == "length":
        length = draw(raw_lengths)
        if length is not None:
            headers.append(b"Content-Length: " + (str(len(body)) if length == "exact" else length).encode())
        payload = body
    elif framing in ("chunked", "chunked-broken", "both", "gzip"):
        payload = _chunked(body, draw(st.lists(st.integers(1, 30), max_size=4)))
        if framing == "chunked-broken":
            cut = draw(st.integers(0, len(payload)))
            payload = payload[:cut] + draw(st.binary(max_size=6)) + payload[cut + 3:]
        headers.append(b"Transfer-Encoding: " + (b"gzip, chunked" if framing == "gzip" else b"chunked"))
        if framing == "both":
            headers.append(b"Content-Length: %d" % len(payload))
    else:
        payload = body
    if method == "HEAD":  # an answer to HEAD has no body: keep its request to one, so answers split unambiguously
        headers, payload = headers[:1], b""
    if draw(st.booleans()):
        headers.append(b"Connection: close")
    line = f"{method} {path} {version}".encode()
    return line + b"\r\n" + b"\r\n".join(headers) + b"\r\n\r\n" + payload


@fuzzes("raw HTTP")
@FUZZ
@given(raw=raw_requests())
def test_fuzz_raw_http_to_relay_serve_always_gets_complete_answers_and_no_5xx(world, served, raw):
    # Given any request bytes sent on a fresh connection (then half-closed)
    before = world.approval_state()
    received = raw_exchange(served.port, raw)
    # Then the server answered with complete HTTP responses (no drop, no truncation) and no 5xx
    answers = split(received, head=raw.startswith(b"HEAD "))
    for answer in answers:
        if raw.startswith(b"HEAD "):
            body = {"message": "(an answer to HEAD has no body)"}
        elif answer.status >= 400 and answer.headers.get("Content-Type", "").startswith("application/json"):
            body: Any = json.loads(answer.body)
        else:
            body = answer.body.decode("utf-8", "replace")  # a page (approvals), or a 2xx
        record("raw HTTP", answer.status, body, {200, 202})
    assert world.approval_state() == before and world.sfn.calls == []
