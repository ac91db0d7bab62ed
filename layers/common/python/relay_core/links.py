"""Approval links: a random id, an expiry, and an HMAC signature binding the two.

A link is ``{base}/approvals/{approval_id}?exp={epoch_seconds}&sig={signature}``.

- ``approval_id`` is 128 random bits (``secrets.token_urlsafe(16)``, 22 characters).
- ``sig`` is HMAC-SHA256 over ``"approval:{approval_id}:{exp}"`` with the signing
  secret, base64url without padding (43 characters). Changing the id, the expiry or
  the signature makes :func:`verify` fail.
- The task token is never part of the link: it stays in the approval record.

The POST form also carries a CSRF token, a second HMAC over a different purpose
string, so a cross-site form that only knows the public parts cannot decide.
The secret comes from Secrets Manager when deployed (``RELAY_SIGNING_SECRET_ARN``)
and from a local file otherwise (``RELAY_SIGNING_SECRET_FILE``, created with 256
random bits on first use).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import secrets
import tempfile
import time
from pathlib import Path
from urllib.parse import urlencode

from .config import ApprovalSettings
from .errors import ApprovalExpired, ApprovalNotFound, InvalidInput

#: Bytes of randomness in an approval id (128 bits: unguessable, RFC 4086 guidance for session identifiers).
APPROVAL_ID_BYTES = 16


def new_approval_id() -> str:
    """A fresh approval id: 128 random bits, base64url (22 characters)."""
    return secrets.token_urlsafe(APPROVAL_ID_BYTES)


#: An expiry as it appears in a link: epoch seconds, canonical decimal (no sign, no
#: leading zeros, at most 12 digits: year 33658).
_EXP_RE = re.compile(r"^(?:0|[1-9][0-9]{0,11})$")


def _same(expected: str, given: object) -> bool:
    """Constant-time comparison of a MAC with untrusted input of any type or alphabet
    (``hmac.compare_digest`` raises ``TypeError`` on non-ASCII ``str``)."""
    if not isinstance(given, str) or not given:
        return False
    return hmac.compare_digest(expected.encode("ascii"), given.encode("utf-8", "surrogatepass"))


def _mac(secret: bytes, message: str) -> str:
    digest = hmac.new(secret, message.encode("utf-8"), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def sign(secret: bytes, approval_id: str, exp: int) -> str:
    """The link signature over ``approval_id`` and ``exp`` (epoch seconds)."""
    return _mac(secret, f"approval:{approval_id}:{exp}")


def csrf_token(secret: bytes, approval_id: str, exp: int) -> str:
    """The token the approval page embeds in its POST forms."""
    return _mac(secret, f"csrf:{approval_id}:{exp}")


def approval_url(base_url: str, secret: bytes, approval_id: str, exp: int) -> str:
    """The link mailed to the approver."""
    query = urlencode({"exp": exp, "sig": sign(secret, approval_id, exp)})
    return f"{base_url.rstrip('/')}/approvals/{approval_id}?{query}"


def verify(
    secret: bytes, approval_id: str, exp: int | str | None, sig: str | None, now: float | None = None, check_expiry: bool = True
) -> int:
    """Check a link's signature, then its expiry.

    Returns:
        The expiry as an int.

    Raises:
        ApprovalNotFound: missing or malformed parts, or a signature that does not
            match (tampered or unknown links look the same).
        ApprovalExpired: the signature is good but ``exp`` has passed (only with
            ``check_expiry``; callers that must say something more specific about an
            expired link check it themselves).
    """
    exp_text = str(exp) if exp is not None else ""
    # Only the canonical decimal form verifies: "0012", "+12", " 12" or "1_2" are other
    # links even though int() reads them as the same number.
    if not _EXP_RE.fullmatch(exp_text) or not _same(sign(secret, approval_id, int(exp_text)), sig):
        raise ApprovalNotFound("approval not found")
    exp_int = int(exp_text)
    if check_expiry and (now if now is not None else time.time()) >= exp_int:
        raise ApprovalExpired("this approval link has expired")
    return exp_int


def check_csrf(secret: bytes, approval_id: str, exp: int, token: str | None) -> None:
    """Raise :class:`InvalidInput` unless ``token`` is the form's CSRF token."""
    if not _same(csrf_token(secret, approval_id, exp), token):
        raise InvalidInput("csrf: the form token is missing or wrong; open the link from the email again")


def create_secret_file(path: Path) -> bool:
    """Create the local signing secret once, atomically: 32 random bytes (hex) are written
    to a private temporary file that is then hard-linked to ``path``; ``link`` fails if
    ``path`` exists, so concurrent first callers agree on one secret and nobody ever
    reads a half-written file. Returns whether this call created it."""
    if path.exists():
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".signing-", suffix=".tmp")  # mode 0600
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_hex(32))
        os.link(tmp, path)
    except FileExistsError:
        return False
    finally:
        os.unlink(tmp)
    return True


def load_secret(settings: ApprovalSettings) -> bytes:
    """The signing secret: Secrets Manager when ``signing_secret_arn`` is set (cached by
    Powertools for 5 minutes), else the local file (created with 32 random bytes, mode 0600).

    Raises:
        InvalidInput: neither source is configured.
    """
    if settings.signing_secret_arn:
        from aws_lambda_powertools.utilities import parameters

        value = parameters.get_secret(settings.signing_secret_arn, max_age=300)
        return value.encode("utf-8") if isinstance(value, str) else bytes(value)
    if settings.signing_secret_file:
        path = Path(settings.signing_secret_file)
        create_secret_file(path)
        return path.read_text().strip().encode("utf-8")
    raise InvalidInput("configuration: set RELAY_SIGNING_SECRET_ARN or RELAY_SIGNING_SECRET_FILE")
