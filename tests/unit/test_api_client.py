"""The API client and its CLI commands, without sockets: SigV4 signing checked against an
independent implementation of the algorithm, configuration precedence, the outbox
link lookup, and the CLI's exit codes. ``urlopen`` is replaced by a recorder."""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import urllib.error
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import pytest
from botocore.credentials import Credentials

from relay import client as api
from relay.cli import main

ACCESS_KEY, SECRET_KEY, SESSION_TOKEN = "AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "session-token-example"
DEPLOYED = "https://abc123.execute-api.eu-west-1.amazonaws.com/v1"


# ----- SigV4 -------------------------------------------------------------------------------------
def expected_signature(method: str, url: str, headers: dict[str, str], body: bytes, secret_key: str, region: str) -> str:
    """Signature Version 4 computed from the AWS General Reference's description
    ("Create a signed AWS API request"), independently of botocore."""
    auth = headers["Authorization"]
    signed = auth.split("SignedHeaders=")[1].split(",")[0].split(";")
    scope = auth.split("Credential=")[1].split(",")[0].split("/", 1)[1]
    amz_date = headers["X-Amz-Date"]
    parts = urlsplit(url)
    lowered = {k.lower(): " ".join(v.split()) for k, v in headers.items()}
    lowered.setdefault("host", parts.netloc)
    query = sorted((quote(k, safe="-_.~"), quote(v, safe="-_.~")) for k, v in (p.split("=", 1) for p in parts.query.split("&") if p))
    canonical = "\n".join([
        method,
        quote(parts.path or "/", safe="/-_.~"),
        "&".join(f"{k}={v}" for k, v in query),
        "".join(f"{name}:{lowered[name]}\n" for name in signed),
        ";".join(signed),
        hashlib.sha256(body).hexdigest(),
    ])
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()])
    key = ("AWS4" + secret_key).encode()
    for part in (amz_date[:8], region, "execute-api", "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()


@pytest.mark.parametrize(("method", "path", "body"), [
    ("POST", "/workflows", b'{"topic": "Task tokens"}'),
    ("GET", "/workflows?status=RUNNING&limit=5", b""),
    ("POST", "/workflows/api-0123/cancel", b'{"reason": "no longer needed"}'),
])
def test_requests_to_a_deployed_api_are_sigv4_signed_for_execute_api(method, path, body):
    # Given temporary credentials and the API's region
    signer = api.SigV4Signer(Credentials(ACCESS_KEY, SECRET_KEY, SESSION_TOKEN), "eu-west-1")
    url = DEPLOYED + path
    # When a request is signed
    headers = signer.sign(method, url, {"Content-Type": "application/json", "Idempotency-Key": "k-1"}, body)
    # Then it carries a SigV4 Authorization scoped to execute-api in that region, over these very bytes
    auth = headers["Authorization"]
    assert auth.startswith(f"AWS4-HMAC-SHA256 Credential={ACCESS_KEY}/{headers['X-Amz-Date'][:8]}/eu-west-1/execute-api/aws4_request, ")
    assert {"host", "x-amz-date", "x-amz-security-token", "idempotency-key"} <= set(auth.split("SignedHeaders=")[1].split(",")[0].split(";"))
    assert headers["X-Amz-Security-Token"] == SESSION_TOKEN
    signature = auth.rsplit("Signature=", 1)[1]
    assert signature == expected_signature(method, url, headers, body, SECRET_KEY, "eu-west-1")
    # And the check is sensitive: other bytes or another key give another signature
    assert signature != expected_signature(method, url, headers, body + b" ", SECRET_KEY, "eu-west-1")
    assert signature != expected_signature(method, url, headers, body, SECRET_KEY + "x", "eu-west-1")


@pytest.fixture
def fake_aws(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import os

    # Only the fake keys below: no profile, no container or web-identity provider.
    for key in [k for k in os.environ if k.startswith(("AWS_CONTAINER_", "AWS_WEB_IDENTITY_", "AWS_ROLE_"))]:
        monkeypatch.delenv(key)
    for key in ("AWS_PROFILE", "AWS_DEFAULT_REGION", "AWS_REGION"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
    monkeypatch.setenv("AWS_SESSION_TOKEN", SESSION_TOKEN)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


def test_the_signer_is_chosen_by_host_and_takes_the_region_from_it(fake_aws, tmp_path):
    deployed = api.signer_for(api.ClientSettings(api_url=DEPLOYED, data_dir=tmp_path))
    assert isinstance(deployed, api.SigV4Signer) and deployed.region == "eu-west-1"
    assert deployed.credentials.access_key == ACCESS_KEY
    assert api.signer_for(api.ClientSettings(api_url="http://127.0.0.1:8787", data_dir=tmp_path)) is None
    custom = api.ClientSettings(api_url="https://relay.example.com/v1", data_dir=tmp_path, region="us-west-2", sigv4=True)
    assert api.signer_for(custom).region == "us-west-2"  # type: ignore[union-attr]


def test_a_deployed_api_without_credentials_is_a_config_error(fake_aws, monkeypatch, tmp_path):
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(key)
    with pytest.raises(api.ConfigError, match="needs AWS credentials"):
        api.signer_for(api.ClientSettings(api_url=DEPLOYED, data_dir=tmp_path))


# ----- configuration ----------------------------------------------------------------------------
@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    for key in ("RELAY_API_URL", "RELAY_CONFIG", "RELAY_DATA_DIR"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_the_api_url_comes_from_the_flag_then_env_then_config_then_a_running_serve(clean_env, monkeypatch):
    from relay.local.lock import ServerLock

    # a live relay serve holds the folder's lock and publishes serve.json
    served = ServerLock(clean_env / ".relay")
    served.acquire()
    served.publish("http://127.0.0.1:1111")
    assert api.resolve_settings().api_url == "http://127.0.0.1:1111"
    # once it is gone, a serve.json left behind is not a server: one line says so
    (clean_env / ".relay" / "serve.json").write_text(json.dumps({"api_url": "http://127.0.0.1:1111", "pid": 1}))
    served.release()
    (clean_env / ".relay" / "serve.json").write_text(json.dumps({"api_url": "http://127.0.0.1:1111", "pid": 1}))
    with pytest.raises(api.ConfigError, match=r"no relay serve is running for data folder .* pid 1, which has stopped"):
        api.resolve_settings()
    served.acquire()
    served.publish("http://127.0.0.1:1111")
    config = clean_env / "relay.toml"
    config.write_text(f'api_url = "{DEPLOYED}/"\nregion = "eu-west-1"\nprofile = "research"\n')
    monkeypatch.setenv("RELAY_CONFIG", str(config))
    settings = api.resolve_settings()
    assert (settings.api_url, settings.region, settings.profile) == (DEPLOYED, "eu-west-1", "research")
    monkeypatch.setenv("RELAY_API_URL", "http://127.0.0.1:2222")
    assert api.resolve_settings().api_url == "http://127.0.0.1:2222"
    assert api.resolve_settings(api_url="http://127.0.0.1:3333").api_url == "http://127.0.0.1:3333"


@pytest.mark.parametrize(("kwargs", "message"), [
    ({}, "no API URL"),
    ({"api_url": "ftp://x"}, "is not an http(s) URL"),
    ({"config": "/nonexistent/relay.toml"}, "does not exist"),
])
def test_missing_or_bad_configuration_is_a_config_error(clean_env, kwargs, message):
    with pytest.raises(api.ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        api.resolve_settings(**kwargs)


def test_the_data_folder_comes_from_the_flag_then_env_then_config(clean_env, monkeypatch):
    config = clean_env / "relay.toml"
    config.write_text('data_dir = "from-config"\n')
    monkeypatch.setenv("RELAY_CONFIG", str(config))
    assert api.resolve_data_dir() == Path("from-config")
    monkeypatch.setenv("RELAY_DATA_DIR", "from-env")
    assert api.resolve_data_dir() == Path("from-env")
    assert api.resolve_data_dir("from-flag") == Path("from-flag")


def test_an_empty_variable_counts_as_unset(clean_env, monkeypatch):
    config = clean_env / "relay.toml"
    config.write_text(f'api_url = "{DEPLOYED}"\n')
    monkeypatch.setenv("RELAY_CONFIG", str(config))
    monkeypatch.setenv("RELAY_API_URL", "")
    monkeypatch.setenv("RELAY_DATA_DIR", "")
    settings = api.resolve_settings()
    assert (settings.api_url, settings.data_dir) == (DEPLOYED, Path(".relay"))


@pytest.mark.parametrize(("source", "message"), [
    ("env", "RELAY_API_URL: 'ftp://x' is not an http(s) URL with a host"),
    ("file", "api_url in the config file: 'ftp://x' is not an http(s) URL with a host"),
])
def test_a_bad_api_url_is_named_by_where_it_came_from(clean_env, monkeypatch, source, message):
    config = clean_env / "relay.toml"
    config.write_text('api_url = "ftp://x"\n' if source == "file" else "")
    monkeypatch.setenv("RELAY_CONFIG", str(config))
    if source == "env":
        monkeypatch.setenv("RELAY_API_URL", "ftp://x")
    with pytest.raises(api.ConfigError) as raised:
        api.resolve_settings()
    assert str(raised.value) == message


def test_a_config_key_of_the_wrong_type_is_named_with_the_file(clean_env):
    config = clean_env / "relay.toml"
    config.write_text(f'api_url = "{DEPLOYED}"\nsigv4 = "sometimes"\nregion = 7\nunknown = 1\n')
    with pytest.raises(api.ConfigError) as raised:
        api.resolve_settings(config=str(config))
    message = str(raised.value)
    assert message.startswith(f"config file {config}: ") and "sigv4: Input should be a valid boolean" in message
    assert "region: Input should be a valid string" in message and "unknown" not in message


def test_the_cli_reports_configuration_problems_with_exit_code_2(clean_env, capsys):
    assert main(["status", "wf-1"]) == 2
    assert capsys.readouterr().err.startswith("relay: error: no API URL")


# ----- the outbox ---------------------------------------------------------------------------------
def _email(outbox: Path, workflow_id: str, approval_id: str, topic: str = "t") -> str:
    from relay_core.adapters.notifiers import OutboxNotifier
    from relay_core.contracts import APPROVAL_ID_HEADER, WORKFLOW_ID_HEADER
    from relay_core.ports import Message

    link = f"http://127.0.0.1:8787/approvals/{approval_id}?exp=2000000000&sig={'s' * 43}"
    OutboxNotifier(outbox, "relay@localhost").send(
        Message(
            to="a@localhost",
            subject="Approval needed: t",
            body=f"Relay needs your decision on:\n\n  {topic}\n\nDecide:\n\n  {link}\n\nWorkflow: {workflow_id}\n",
            headers={WORKFLOW_ID_HEADER: workflow_id, APPROVAL_ID_HEADER: approval_id},
        )
    )
    return link


def test_approve_finds_the_newest_link_for_that_workflow_in_the_outbox(tmp_path):
    first = _email(tmp_path, "wf-a", "first-approval-id-000")
    newest = _email(tmp_path, "wf-a", "second-approval-id-00")
    _email(tmp_path, "wf-b", "other-workflow-id-000")
    assert api.find_approval_link(tmp_path, "wf-a") == newest
    assert api.find_approval_link(tmp_path, "wf-a", "first-approval-id-000") == first
    with pytest.raises(api.ConfigError, match="no approval email for workflow wf-c"):
        api.find_approval_link(tmp_path, "wf-c")


def test_a_topic_quoting_another_workflow_or_an_approval_url_changes_nothing(tmp_path):
    # Given workflow A's email, then B's whose topic impersonates A and carries an approval-like URL
    victim = _email(tmp_path, "wf-a", "victims-approval-id-0")
    forged = "http://127.0.0.1:8787/approvals/attackers-id-0000000?exp=2000000000&sig=" + "x" * 43
    own = _email(tmp_path, "wf-b", "attackers-id-0000000", topic=f"Workflow: wf-a {forged} Workflow: wf-a")
    # Then A's approval is still found by its headers, and B's email yields B's own link, not the quoted one
    assert api.find_approval_link(tmp_path, "wf-a") == victim
    assert api.find_approval_link(tmp_path, "wf-b") == own != forged
    # An email without the identifying headers is never taken for an approval
    from relay_core.adapters.notifiers import OutboxNotifier
    from relay_core.ports import Message

    OutboxNotifier(tmp_path, "relay@localhost").send(Message(to="a@localhost", subject="Approval needed: x", body=f"{forged}\nWorkflow: wf-a\n"))
    assert api.find_approval_link(tmp_path, "wf-a") == victim


def test_reject_needs_feedback_before_anything_is_sent(capsys):
    assert main(["reject", "wf-1", "--link", "http://127.0.0.1:9/approvals/x?exp=1&sig=y"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("relay: error: ") and "--feedback" in err and err.count("\n") == 1
    with pytest.raises(api.ClientError, match="feedback: required"):
        api.decide("http://127.0.0.1:9/approvals/x?exp=1&sig=y", approve=False, feedback="  ")


# ----- requests and answers -----------------------------------------------------------------------------
class Recorder:
    def __init__(self, status: int = 200, body: Any = None):
        self.status, self.body, self.requests = status, body, []

    def __call__(self, request: Any, timeout: float) -> Any:
        self.requests.append(request)
        payload = json.dumps(self.body).encode()
        if self.status >= 400:
            raise urllib.error.HTTPError(request.full_url, self.status, "error", {}, io.BytesIO(payload))  # type: ignore[arg-type]
        response = io.BytesIO(payload)
        response.status = self.status  # type: ignore[attr-defined]
        response.__enter__ = lambda *a: response  # type: ignore[method-assign]
        response.__exit__ = lambda *a: None  # type: ignore[method-assign]
        return response


def test_relay_start_sends_only_the_given_fields_and_the_idempotency_key(clean_env, monkeypatch, capsys):
    recorder = Recorder(202, {"workflow_id": "api-1", "status_url": "http://127.0.0.1:9/workflows/api-1"})
    monkeypatch.setattr(api.urllib.request, "urlopen", recorder)
    code = main(["start", "Task tokens", "--questions", "2", "--idempotency-key", "k-1", "--api-url", "http://127.0.0.1:9"])
    assert code == 0 and json.loads(capsys.readouterr().out)["workflow_id"] == "api-1"
    (request,) = recorder.requests
    assert (request.get_method(), request.full_url) == ("POST", "http://127.0.0.1:9/workflows")
    assert json.loads(request.data) == {"topic": "Task tokens", "questions": 2}
    headers = {k.lower(): v for k, v in request.header_items()}
    assert headers["idempotency-key"] == "k-1" and headers["x-relay-user"] and "authorization" not in headers


def test_a_deployed_api_gets_signed_requests_and_no_local_user_header(fake_aws, monkeypatch):
    recorder = Recorder(200, {"items": [], "next_token": None})
    monkeypatch.setattr(api.urllib.request, "urlopen", recorder)
    client = api.client_for(api.ClientSettings(api_url=DEPLOYED, data_dir=Path(".")))
    assert client.list(status="RUNNING", limit=5) == {"items": [], "next_token": None}
    (request,) = recorder.requests
    headers = {k.lower(): v for k, v in request.header_items()}
    assert request.full_url == DEPLOYED + "/workflows?status=RUNNING&limit=5"
    assert headers["authorization"].startswith("AWS4-HMAC-SHA256 ") and "x-relay-user" not in headers


def test_api_errors_print_the_apis_message_and_exit_1(clean_env, monkeypatch, capsys):
    # (input the CLI itself refuses exits 2 before sending: see tests/unit/test_cli_errors.py)
    monkeypatch.setattr(api.urllib.request, "urlopen", Recorder(400, {"message": "questions: Input should be less than or equal to 40"}))
    assert main(["start", "t", "--questions", "9", "--api-url", "http://127.0.0.1:9"]) == 1
    assert capsys.readouterr().err == "relay: HTTP 400: questions: Input should be less than or equal to 40\n"


def test_an_unreachable_api_is_reported_not_raised(clean_env, monkeypatch, capsys):
    def refuse(request: Any, timeout: float) -> Any:
        raise urllib.error.URLError(ConnectionRefusedError(111, "Connection refused"))

    monkeypatch.setattr(api.urllib.request, "urlopen", refuse)
    assert main(["list", "--api-url", "http://127.0.0.1:9"]) == 1
    assert capsys.readouterr().err.startswith("relay: cannot reach http://127.0.0.1:9")
