"""``relay reconcile``: record the status changes whose events were lost, locally.

Deployed, an EventBridge schedule runs ``functions/reconcile`` every
:data:`relay_core.contracts.RECONCILE_EVERY_MINUTES` minutes. Locally, ``relay serve``
runs the same function on its own schedule (every :data:`LOCAL_EVERY_SECONDS`), and
``relay reconcile`` runs it at once: both invoke it through the local Lambda Invoke API
of the server (its address is in ``serve.json`` as ``lambda_url``), so the real handler
does the work. See :mod:`relay_core.reconcile`.
"""

from __future__ import annotations

import json
import urllib.request
from typing import Any

from relay_core.contracts import RECONCILE_FUNCTION

#: How often ``relay serve`` reconciles, in seconds (local events are lost only when the
#: record-failure function fails every delivery attempt).
LOCAL_EVERY_SECONDS = 60.0


class ReconcileFailed(RuntimeError):
    """The reconcile function raised; the message is its ``errorType: errorMessage``."""


def invoke_reconcile(lambda_url: str, timeout: float = 300.0) -> dict[str, Any]:
    """Invoke the reconcile function through the local Lambda Invoke API at ``lambda_url``;
    its result (:class:`relay_core.models.Reconciled` as JSON).

    Raises:
        ReconcileFailed: the handler raised (Lambda's ``X-Amz-Function-Error``).
        OSError: the server does not answer.
    """
    request = urllib.request.Request(
        f"{lambda_url.rstrip('/')}/2015-03-31/functions/{RECONCILE_FUNCTION.name}/invocations",
        data=b"{}",
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=timeout) as answer:  # noqa: S310 - a loopback URL the server published
        body = json.loads(answer.read() or b"null") or {}
        if answer.headers.get("X-Amz-Function-Error"):
            raise ReconcileFailed(f"{body.get('errorType', 'Error')}: {body.get('errorMessage', '')}")
    return dict(body)


def describe(result: dict[str, Any]) -> list[str]:
    """One line per finding of a reconcile pass, for people."""
    recorded = result.get("recorded") or []
    lines = [f"relay: reconcile checked {result.get('checked', 0)} open workflow(s); recorded {len(recorded)} lost status change(s)"]
    for item in recorded:
        where = f" at {item['state']}" if item.get("state") else ""
        why = f" ({item['error']})" if item.get("error") else ""
        lines.append(f"relay: {item['workflow_id']}: {item['status']} -> record {item['record_status']}{where}{why}")
    lines += [f"relay: needs a look: {line}" for line in result.get("unexplained") or []]
    return lines
