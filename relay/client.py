"""A small HTTP client for the workflows API, local (``relay serve``) or deployed.

Where the API is (first that is set wins):

1. ``--api-url`` on the command line;
2. the ``RELAY_API_URL`` environment variable;
3. ``api_url`` in the config file (``--config``, else ``RELAY_CONFIG``, else
   ``~/.config/relay/config.toml``), a TOML file such as::

       api_url = "https://abc123.execute-api.eu-west-1.amazonaws.com/v1"
       region = "eu-west-1"      # optional: read from the URL when it is an execute-api host
       profile = "research"      # optional: the AWS profile whose credentials sign requests
       data_dir = ".relay"       # optional: where ``relay serve`` keeps its outbox

4. ``{data_dir}/serve.json``, written by a running ``relay serve``.

The environment variables (``RELAY_API_URL``, ``RELAY_DATA_DIR``, ``RELAY_CONFIG``) are
read by :class:`ClientEnvironment` (pydantic-settings) and the file's keys are checked by
:class:`ConfigFile`; :func:`resolve_settings` applies the precedence itself, so that an
error names where the bad value came from.

A deployed API uses IAM authorisation, so requests to an ``*.amazonaws.com`` host
(or any host when ``sigv4 = true``) are signed with Signature Version 4 for the
``execute-api`` service (botocore's ``SigV4Auth``; credentials from the normal
botocore chain). Local requests are not signed and name the caller in
``X-Relay-User``.

Approvals need no API credentials: the signed link in the email is the only
credential. Locally the link is read from ``{data_dir}/outbox/*.eml``; for a
deployed stack the approver pastes it (``--link``) or simply clicks it.
"""

from __future__ import annotations

import getpass
import json
import os
import re
import tomllib
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

#: The default data folder of ``relay serve`` (and where the client looks for its outbox).
DEFAULT_DATA_DIR = Path(".relay")
DEFAULT_CONFIG = Path("~/.config/relay/config.toml")
EXECUTE_API_HOST = re.compile(r"^[a-z0-9]+\.execute-api\.([a-z0-9-]+)\.amazonaws\.com(?:\.cn)?$")


class ClientError(Exception):
    """The API (or the approval page) answered with an error; ``status`` is the HTTP status
    (0 when the API could not be reached) and the message is the API's ``message``."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


class ConfigError(Exception):
    """The client does not know where the API is, or the config file is unreadable."""


# ----- configuration ----------------------------------------------------------------------
class ClientSettings(BaseModel):
    """Where the API and the local outbox are, once resolved (:func:`resolve_settings`).

    Attributes:
        api_url: the API base URL, without a trailing slash.
        data_dir: ``relay serve``'s data folder (its outbox and ``serve.json``).
        region, profile: for SigV4 signing (see :func:`signer_for`).
        sigv4: ``None`` signs when the host is an AWS host.
    """

    model_config = ConfigDict(frozen=True)

    api_url: str
    data_dir: Path
    region: str | None = None
    profile: str | None = None
    sigv4: bool | None = None


class ClientEnvironment(BaseSettings):
    """The client's environment variables, read by pydantic-settings when asked for
    (never at import). Names are matched exactly; an empty value counts as unset.

    Attributes:
        api_url: ``RELAY_API_URL``.
        data_dir: ``RELAY_DATA_DIR``.
        config: ``RELAY_CONFIG``, the config file's path.
    """

    model_config = SettingsConfigDict(case_sensitive=True, env_ignore_empty=True, extra="ignore", frozen=True)

    api_url: str | None = Field(default=None, validation_alias="RELAY_API_URL")
    data_dir: str | None = Field(default=None, validation_alias="RELAY_DATA_DIR")
    config: str | None = Field(default=None, validation_alias="RELAY_CONFIG")


class ConfigFile(BaseModel):
    """The keys of the TOML config file (see the module docstring); other keys are ignored."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    api_url: str | None = None
    region: str | None = None
    profile: str | None = None
    data_dir: str | None = None
    sigv4: bool | None = None


def read_config(path: str | os.PathLike[str] | None = None) -> ConfigFile:
    """The config file (``path``, else ``RELAY_CONFIG``, else the default file; an absent
    default file is an empty :class:`ConfigFile`).

    Raises:
        ConfigError: an explicitly named file is missing, the TOML is invalid, or a key
            holds a value of the wrong type (``config file F: sigv4: Input should be …``).
    """
    explicit = path or ClientEnvironment().config
    target = Path(explicit or DEFAULT_CONFIG).expanduser()
    if not target.is_file():
        if explicit:
            raise ConfigError(f"config file {target} does not exist")
        return ConfigFile()
    try:
        raw = tomllib.loads(target.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"config file {target}: {exc}") from None
    except OSError as exc:
        raise ConfigError(f"config file {target} cannot be read: {exc.strerror or exc}") from None
    try:
        return ConfigFile.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        raise ConfigError(f"config file {target}: {problems}") from None


def check_api_url(url: str, source: str) -> str:
    """``url`` is an http(s) URL with a host (and a valid port), without spaces or control
    characters.

    Raises:
        ConfigError: ``<source>: <url> is not an http(s) URL …``; ``source`` names where it
            came from (``--api-url``, ``RELAY_API_URL``, ``api_url in <file>``).
    """
    shown = repr(url if len(url) <= 120 else url[:119] + "…")
    if not isinstance(url, str) or not url.strip():
        raise ConfigError(f"{source}: must not be empty (an http(s) URL such as http://127.0.0.1:8787)")
    if re.search(r"[\x00-\x20\x7f-\x9f]", url):
        raise ConfigError(f"{source}: {shown} holds spaces or control characters; it must be an http(s) URL")
    try:
        parts = urllib.parse.urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port out of range
    except ValueError as exc:
        raise ConfigError(f"{source}: {shown} is not a valid URL ({exc})") from None
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise ConfigError(f"{source}: {shown} is not an http(s) URL with a host")
    return url


def check_data_dir(data_dir: str | os.PathLike[str], source: str = "--data-dir") -> None:
    """``data_dir`` is a folder or does not exist yet.

    Raises:
        ConfigError: it is a file (or cannot be looked at).
    """
    try:
        if Path(data_dir).exists() and not Path(data_dir).is_dir():
            raise ConfigError(f"{source}: {data_dir} is a file, not a folder")
    except OSError as exc:
        raise ConfigError(f"{source}: {data_dir}: {exc.strerror or exc}") from None


def resolve_data_dir(data_dir: str | os.PathLike[str] | None = None, config: str | None = None) -> Path:
    """``--data-dir``, else ``RELAY_DATA_DIR``, else ``data_dir`` in the config file, else ``./.relay``.

    Raises:
        ConfigError: the config file is needed and cannot be read (see :func:`read_config`).
    """
    if data_dir:
        return Path(data_dir)
    return Path(ClientEnvironment().data_dir or read_config(config).data_dir or DEFAULT_DATA_DIR)


def resolve_settings(api_url: str | None = None, data_dir: str | os.PathLike[str] | None = None, config: str | None = None) -> ClientSettings:
    """Where the API and the local outbox are, by the precedence in the module docstring.
    Each candidate URL is checked under the name of where it came from, so an error says
    which one to fix.

    Raises:
        ConfigError: no API URL anywhere, or the first one found is not an http(s) URL.
    """
    environment = ClientEnvironment()
    file = read_config(config)
    folder = resolve_data_dir(data_dir, config)
    check_data_dir(folder, "--data-dir" if data_dir else "data folder")
    candidates = ((api_url, "--api-url"), (environment.api_url, "RELAY_API_URL"), (file.api_url, "api_url in the config file"))
    url, source = next(((value, where) for value, where in candidates if value), (None, ""))
    if url:
        check_api_url(url, source)
    else:
        from relay.discovery import is_live, published

        served = published(folder)
        if served is not None and not is_live(folder):
            raise ConfigError(
                f"no relay serve is running for data folder {folder} (its serve.json is left from pid "
                f"{served.get('pid', '?')}, which has stopped); start it again with: relay serve --data-dir {folder}"
            )
        url = served.get("api_url") if served else None
        if url:
            check_api_url(str(url), f"api_url in {folder / 'serve.json'}")
    if not url:
        raise ConfigError(
            "no API URL: pass --api-url, set RELAY_API_URL, put api_url in ~/.config/relay/config.toml, "
            f"or run `relay serve --data-dir {folder}`"
        )
    return ClientSettings(
        api_url=str(url).rstrip("/"),
        data_dir=folder,
        region=file.region,
        profile=file.profile,
        sigv4=file.sigv4,
    )


# ----- SigV4 --------------------------------------------------------------------------------
class SigV4Signer:
    """Signs requests for API Gateway IAM authorisation (service ``execute-api``).

    Args:
        credentials: botocore credentials (``botocore.credentials.Credentials`` or
            ``ReadOnlyCredentials``-like with access_key, secret_key, token).
        region: the API's region.
    """

    service = "execute-api"

    def __init__(self, credentials: Any, region: str):
        self.credentials = credentials
        self.region = region

    def sign(self, method: str, url: str, headers: dict[str, str], body: bytes | None) -> dict[str, str]:
        """The headers to send: ``headers`` plus ``Authorization``, ``X-Amz-Date`` and, for
        temporary credentials, ``X-Amz-Security-Token``."""
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest

        request = AWSRequest(method=method, url=url, data=body or b"", headers=dict(headers))
        SigV4Auth(self.credentials, self.service, self.region).add_auth(request)
        return dict(request.headers.items())


def signer_for(settings: ClientSettings) -> SigV4Signer | None:
    """A signer for deployed APIs (AWS hosts, or ``sigv4 = true``); ``None`` for local ones.

    Raises:
        ConfigError: signing is needed but there are no credentials or no region.
    """
    host = urllib.parse.urlsplit(settings.api_url).hostname or ""
    match = EXECUTE_API_HOST.match(host)
    wanted = settings.sigv4 if settings.sigv4 is not None else host.endswith((".amazonaws.com", ".amazonaws.com.cn"))
    if not wanted:
        return None
    import botocore.session
    from botocore.exceptions import BotoCoreError

    try:
        session = botocore.session.Session(profile=settings.profile)
        credentials = session.get_credentials()
    except BotoCoreError as exc:
        raise ConfigError(f"the deployed API needs AWS credentials to sign requests (SigV4): {exc}") from None
    if credentials is None:
        raise ConfigError("the deployed API needs AWS credentials to sign requests (SigV4); none were found")
    region = settings.region or (match.group(1) if match else None) or session.get_config_variable("region")
    if not region:
        raise ConfigError("set region in the config file: the API host does not name one")
    return SigV4Signer(credentials, region)


# ----- the API ---------------------------------------------------------------------------------
class RelayClient:
    """``start``, ``status``, ``list`` and ``cancel`` against ``base_url``.

    Raises (every method):
        ClientError: a non-2xx answer (``message`` from the API) or an unreachable API.
    """

    def __init__(self, base_url: str, signer: SigV4Signer | None = None, user: str | None = None, timeout: float = 30):
        self.base_url = base_url.rstrip("/")
        self.signer = signer
        self.user = user
        self.timeout = timeout

    def _request(self, method: str, path: str, body: dict[str, Any] | None = None, headers: dict[str, str] | None = None) -> Any:
        url = self.base_url + path
        data = json.dumps(body).encode("utf-8") if body is not None else None
        sent = {"Accept": "application/json", **(headers or {})}
        if data is not None:
            sent["Content-Type"] = "application/json"
        if self.signer is not None:
            sent = self.signer.sign(method, url, sent, data)
        elif self.user:
            sent["X-Relay-User"] = self.user
        request = urllib.request.Request(url, data=data, method=method, headers=sent)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return json.loads(response.read() or b"null")
        except urllib.error.HTTPError as exc:
            raw = exc.read().decode("utf-8", "replace")
            try:
                message = json.loads(raw).get("message") or raw
            except (ValueError, AttributeError):
                message = raw.strip()[:500] or exc.reason
            raise ClientError(exc.code, str(message)) from None
        except (urllib.error.URLError, OSError) as exc:
            raise ClientError(0, f"cannot reach {self.base_url}: {getattr(exc, 'reason', exc)}") from None

    def start(self, request: dict[str, Any], idempotency_key: str | None = None) -> dict[str, Any]:
        """``POST /workflows`` → ``{"workflow_id", "status_url"}``."""
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else None
        return dict(self._request("POST", "/workflows", request, headers))

    def status(self, workflow_id: str) -> dict[str, Any]:
        """``GET /workflows/{id}``."""
        return dict(self._request("GET", "/workflows/" + urllib.parse.quote(workflow_id, safe="")))

    def list(self, status: str | None = None, limit: int | None = None, next_token: str | None = None) -> dict[str, Any]:
        """``GET /workflows`` → ``{"items": […], "next_token"}``."""
        query = {k: v for k, v in {"status": status, "limit": limit, "next_token": next_token}.items() if v is not None}
        suffix = ("?" + urllib.parse.urlencode(query)) if query else ""
        return dict(self._request("GET", "/workflows" + suffix))

    def cancel(self, workflow_id: str, reason: str) -> dict[str, Any]:
        """``POST /workflows/{id}/cancel``."""
        return dict(self._request("POST", f"/workflows/{urllib.parse.quote(workflow_id, safe='')}/cancel", {"reason": reason}))

    def redrive(self, workflow_id: str) -> dict[str, Any]:
        """``POST /workflows/{id}/redrive``: resume a FAILED, TIMED_OUT or ABORTED workflow
        from the state that failed."""
        return dict(self._request("POST", f"/workflows/{urllib.parse.quote(workflow_id, safe='')}/redrive", {}))

    def history(self, workflow_id: str, limit: int | None = None, next_token: str | None = None, reverse: bool = False) -> dict[str, Any]:
        """``GET /workflows/{id}/history`` → ``{"workflow_id", "events": […], "next_token"}``."""
        query: dict[str, Any] = {k: v for k, v in {"limit": limit, "next_token": next_token}.items() if v is not None}
        if reverse:
            query["reverse"] = "true"
        suffix = ("?" + urllib.parse.urlencode(query)) if query else ""
        return dict(self._request("GET", f"/workflows/{urllib.parse.quote(workflow_id, safe='')}/history{suffix}"))


def client_for(settings: ClientSettings) -> RelayClient:
    signer = signer_for(settings)
    return RelayClient(settings.api_url, signer=signer, user=None if signer else local_user())


def local_user() -> str:
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return "unknown"


# ----- approvals by link -------------------------------------------------------------------------
def find_approval_link(outbox: Path, workflow_id: str, approval_id: str | None = None) -> str:
    """The link of approval ``approval_id`` of ``workflow_id`` (else of the workflow's newest
    approval email) in ``outbox``. Emails are matched by their ``X-Relay-Workflow-Id`` and
    ``X-Relay-Approval-Id`` headers, never by body text.

    Raises:
        ConfigError: no such email (yet).
    """
    from relay.mailbox import approval_emails, approval_id_of, approval_link

    for _path, message in reversed(approval_emails(outbox, workflow_id)):
        if approval_id is None or approval_id_of(message) == approval_id:
            return approval_link(message)
    which = f"approval {approval_id} of workflow {workflow_id}" if approval_id else f"workflow {workflow_id}"
    raise ConfigError(
        f"no approval email for {which} in {outbox} (is it awaiting approval? "
        "for a deployed stack pass --link with the link from the email)"
    )


def approval_link_for(relay: RelayClient, outbox: Path, workflow_id: str) -> str:
    """The link of the workflow's pending approval: the API names its newest approval
    (``GET /workflows/{id}``), and that approval's email in ``outbox`` holds the link.

    Raises:
        ConfigError: the workflow has not asked for approval (yet), or its email is not in ``outbox``.
        ClientError: the API refused the status request.
    """
    approval_id = (relay.status(workflow_id).get("approval") or {}).get("approval_id")
    if not approval_id:
        raise ConfigError(f"workflow {workflow_id} has not asked for approval (yet)")
    return find_approval_link(outbox, workflow_id, str(approval_id))


def _page_text(html: str, element_id: str) -> str | None:
    match = re.search(rf"<p id={element_id}>(.*?)</p>", html, re.S)
    if not match:
        return None
    import html as html_lib

    return html_lib.unescape(re.sub(r"<[^>]+>", "", match.group(1))).strip()


def decide(link: str, approve: bool, feedback: str = "", decided_by: str = "") -> str:
    """Open the approval page at ``link`` and submit its approve or reject form, as a
    browser would (same hidden fields, CSRF token and Origin). Returns the result text.

    Raises:
        ClientError: the link is invalid (404), expired (410), already decided (409, or
            a 200 page without forms), or the form was refused (400/403).
    """
    from relay.mailbox import decide_by_link, fetch

    if not approve and not feedback.strip():
        raise ClientError(400, "feedback: required when rejecting (say what the analysis should change)")
    try:
        page = decide_by_link(link, approve=approve, feedback=feedback, decided_by=decided_by)
    except RuntimeError:
        shown = fetch(link)
        text = _page_text(shown.html, "decided") or _page_text(shown.html, "error") or f"the approval page answered {shown.status}"
        raise ClientError(shown.status if shown.status >= 400 else 409, text) from None
    except OSError as exc:
        raise ClientError(0, f"cannot open the approval link: {exc}") from None
    text = _page_text(page.html, "result") or _page_text(page.html, "error") or _page_text(page.html, "decided") or ""
    if page.status != 200:
        raise ClientError(page.status, text or f"the approval page answered {page.status}")
    return text
