"""Serve the console with uvicorn on 127.0.0.1 in a background thread."""

from __future__ import annotations

import threading
import time
from typing import Any, Self

#: Seconds :meth:`ConsoleServer.start` waits for uvicorn to listen.
START_TIMEOUT_SECONDS = 20.0


class ConsoleServer:
    """The console of ``relay`` on ``127.0.0.1:port`` (0 = any free port) until :meth:`stop`.

    Raises (from :meth:`start`):
        OSError: the port is in use or cannot be bound.
        RuntimeError: uvicorn did not start within :data:`START_TIMEOUT_SECONDS`.
    """

    def __init__(self, relay: Any, port: int = 0) -> None:
        import socket

        import uvicorn

        from relay.local.console.app import console_app

        self.app = console_app(relay)
        # Bind here, so a port in use is an OSError now and port 0 is known at once.
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self._socket.bind(("127.0.0.1", port))
        except OSError:
            self._socket.close()
            self.app.state.console.close()
            raise
        self.port = int(self._socket.getsockname()[1])
        config = uvicorn.Config(self.app, log_level="warning", lifespan="off", backlog=1024, timeout_graceful_shutdown=1)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self._socket]}, name="relay-console", daemon=True)

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT/``: the console's home page."""
        return f"http://127.0.0.1:{self.port}/"

    @property
    def sfn_endpoint(self) -> str:
        """The Step Functions API endpoint (``--endpoint-url`` for the AWS CLI and boto3)."""
        return f"http://127.0.0.1:{self.port}/sfn"

    def start(self) -> Self:
        self.thread.start()
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("the console's web server did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        """Detach from the engine (open event streams end), then stop serving."""
        self.app.state.console.close()
        self.server.should_exit = True
        if self.thread.is_alive():
            self.thread.join(timeout=10)
        self._socket.close()


def serve_console(relay: Any, port: int = 0) -> ConsoleServer:
    """Start the console of ``relay`` on ``127.0.0.1:port`` in a background thread; returns the
    started :class:`ConsoleServer` (``.url``, ``.stop()``).

    Raises:
        OSError: the port is in use.
        RuntimeError: the server did not start.
    """
    return ConsoleServer(relay, port).start()
