"""The local console: a web UI over the local runtime, in the Step Functions console's terms.

- :func:`console_app` builds the Starlette app for a started :class:`relay.local.runtime.LocalRelay`
  (mount it, or serve it);
- :func:`serve_console` serves it with uvicorn on ``127.0.0.1`` in a background thread.

See :mod:`relay.local.console.app` for the pages and their safety rules.
"""

from relay.local.console.app import console_app
from relay.local.console.server import ConsoleServer, serve_console

__all__ = ["ConsoleServer", "console_app", "serve_console"]
