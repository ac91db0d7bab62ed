"""Approval links: signature binds id and expiry; records decide once."""

from __future__ import annotations

import pytest
from relay_core import links
from relay_core.errors import ApprovalAlreadyDecided, ApprovalExpired, ApprovalNotFound

SECRET = b"k" * 32


def test_a_signed_link_verifies_until_it_expires():
    approval_id = links.new_approval_id()
    sig = links.sign(SECRET, approval_id, 2000)
    assert links.verify(SECRET, approval_id, "2000", sig, now=1999) == 2000
    with pytest.raises(ApprovalExpired):
        links.verify(SECRET, approval_id, 2000, sig, now=2000)


@pytest.mark.parametrize("change", ["id", "exp", "sig", "secret"])
def test_changing_any_part_of_a_link_is_refused_as_not_found(change):
    approval_id, exp = links.new_approval_id(), 5000
    sig = links.sign(SECRET, approval_id, exp)
    args = {"id": approval_id, "exp": exp, "sig": sig, "secret": SECRET}
    args[change] = {"id": approval_id + "x", "exp": exp + 1, "sig": sig[:-1] + ("A" if sig[-1] != "A" else "B"), "secret": b"other"}[change]
    with pytest.raises(ApprovalNotFound):
        links.verify(args["secret"], args["id"], args["exp"], args["sig"], now=0)


def test_ids_are_random_and_128_bits():
    ids = {links.new_approval_id() for _ in range(1000)}
    assert len(ids) == 1000 and all(len(i) == 22 for i in ids)


def test_an_approval_is_decided_once(stores):
    from relay_core.adapters.workflow_records import DynamoDBWorkflowRecords

    records = DynamoDBWorkflowRecords(stores["RELAY_TABLE_NAME"])
    records.put_approval("a1", "wf", "token", 9_999_999_999, {})
    records.decide_approval("a1", "APPROVED", "ann", None)
    with pytest.raises(ApprovalAlreadyDecided) as err:
        records.decide_approval("a1", "REJECTED", "bob", "no")
    assert err.value.decided_by == "ann"
    assert records.get_approval("a1")["approval_status"] == "APPROVED"


def test_the_local_signing_secret_is_created_once_when_first_requests_race(tmp_path):
    # Given 16 first approvals at once, each asking for the secret
    import threading

    from relay_core.config import ApprovalSettings

    settings = ApprovalSettings.model_validate(
        {"RELAY_ARTIFACT_BUCKET": "bucket", "RELAY_TABLE_NAME": "table", "RELAY_API_BASE_URL": "http://127.0.0.1:1",
         "RELAY_SIGNING_SECRET_FILE": str(tmp_path / "keys" / "signing.key")}
    )  # fmt: skip
    start = threading.Barrier(16)
    secrets: list[bytes] = []
    errors: list[BaseException] = []

    def first_approval() -> None:
        start.wait()
        try:
            secrets.append(links.load_secret(settings))
        except BaseException as exc:  # noqa: BLE001 - the test reports every failure
            errors.append(exc)

    threads = [threading.Thread(target=first_approval) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    # Then nobody failed, all got the same 64-hex-digit secret, and it is private
    assert errors == []
    assert len(secrets) == 16 and len(set(secrets)) == 1 and len(secrets[0]) == 64
    key = tmp_path / "keys" / "signing.key"
    assert oct(key.stat().st_mode & 0o777) == "0o600"
    assert [p.name for p in key.parent.iterdir()] == ["signing.key"]  # no temporary file left behind
    assert links.create_secret_file(key) is False
