"""The local console: a web UI over the local runtime, in the Step Functions console's terms.

- :func:`console_app` builds the Starlette app for a started :class:`relay.local.runtime.LocalRelay`
  (mount it, or serve it);
- :func:`serve_console` serves it under ``/console/`` of the runtime's own API server
  (one address for the API and the console).

See :mod:`relay.local.console.app` for the pages and their safety rules.
"""

from relay.local.console.app import console_app
from relay.local.console.server import ConsoleServer, serve_console

__all__ = ["ConsoleServer", "console_app", "serve_console"]
