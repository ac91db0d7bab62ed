"""Scripted failures a local endpoint answers with instead of doing the work (tests, demos,
crash drills): :class:`Fault`, injected into :class:`relay.local.servers.LambdaServer`
or :class:`relay.local.servers.AgentCoreGateway`."""

from __future__ import annotations

import threading
from dataclasses import dataclass


@dataclass
class Fault:
    """A scripted failure a local endpoint answers with instead of doing the work (tests, demos).

    For :class:`AgentCoreGateway`, ``status`` is the HTTP status, ``error`` the AWS
    error code and ``match`` a payload ``question_id``. For :class:`LambdaServer`,
    ``error`` is the handler's ``errorType`` and ``match`` a function name. ``None``
    matches every call; ``times`` is how many calls it answers.
    """

    error: str = ""
    message: str = "injected fault"
    status: int = 500
    match: str | None = None
    times: int = 1
    #: Seconds the endpoint waits first (a slow call). With no ``error``, the call then
    #: proceeds normally: a delay alone holds the work in flight (crash drills).
    delay_seconds: float = 0.0
    #: AgentCore only: answer 200 "accepted" without forwarding, as a runtime whose session
    #: died right after accepting a callback request: no heartbeat or result ever comes.
    lost: bool = False


class _Faults:
    def __init__(self) -> None:
        self._faults: list[Fault] = []
        self._lock = threading.Lock()

    def add(self, fault: Fault) -> None:
        with self._lock:
            self._faults.append(fault)

    def take(self, key: str | None) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.times > 0 and fault.match in (None, key):
                    fault.times -= 1
                    return fault
        return None

