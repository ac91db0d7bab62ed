"""Relay's shared Lambda layer: domain models, artifact store, workflow records,
approval links, notifications, configuration and observability.

Everything here is imported by the Lambda handlers in ``functions/``, by the
AgentCore researcher runtime in ``agents/`` and by the local runtime in ``relay/``.
"""

__all__ = ["__version__"]
__version__ = "0.1.0"
