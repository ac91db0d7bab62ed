"""Serve the console from the local runtime's own API server, under ``/console/``.

One address: ``relay serve`` answers the API, the approval links, the report links and
the console on one port (8787 unless ``--port`` says otherwise), so a bookmark or a
script finds the console where it found it last time; ``serve.json`` records both
(:mod:`relay.serve`). The console's Step Functions API is ``/console/sfn`` on the same port.
"""

from __future__ import annotations

from typing import Any, Self

#: Where the console is served on the runtime's API server.
CONSOLE_PATH = "/console"


class ConsoleServer:
    """The console of a started :class:`relay.local.runtime.LocalRelay`, attached to its API
    server (``relay.api``) under :data:`CONSOLE_PATH` from :meth:`start` until :meth:`stop`."""

    def __init__(self, relay: Any) -> None:
        from relay.local.console.app import console_app

        self.relay = relay
        self.app = console_app(relay)

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT/console/``: the console's home page."""
        return f"{self.relay.api_url}{CONSOLE_PATH}/"

    @property
    def sfn_endpoint(self) -> str:
        """The Step Functions API endpoint (``--endpoint-url`` for the AWS CLI and boto3)."""
        return f"{self.relay.api_url}{CONSOLE_PATH}/sfn"

    def start(self) -> Self:
        self.relay.api.attach(CONSOLE_PATH, self.app)
        return self

    def stop(self) -> None:
        """Detach from the engine (open event streams end), then stop serving."""
        self.app.state.console.close()
        self.relay.api.detach(CONSOLE_PATH)


def serve_console(relay: Any) -> ConsoleServer:
    """Serve the console of ``relay`` under ``/console/`` of its API server; returns the
    started :class:`ConsoleServer` (``.url``, ``.sfn_endpoint``, ``.stop()``)."""
    return ConsoleServer(relay).start()
