"""Real local HTTP endpoints that stand in for AWS service front doors, one module per
emulated service on one HTTP layer:

- :mod:`~relay.local.servers.http_server` (and :mod:`~relay.local.servers.protocol`):
  the HTTP layer every server shares, loopback only, answering only its own names;
- :mod:`~relay.local.servers.lambda_api`: :class:`LambdaServer`, the Lambda Invoke API
  running the real handlers from ``functions/``;
- :mod:`~relay.local.servers.agentcore`: :class:`AgentCoreGateway`, the AgentCore data
  plane's InvokeAgentRuntime, forwarding to agent apps on loopback;
- :mod:`~relay.local.servers.api_gateway`: :class:`ApiServer`, the REST API as API
  Gateway's proxy integration;
- :mod:`~relay.local.servers.environments`: Lambda execution environments (worker
  processes, one invocation at a time each);
- :mod:`~relay.local.servers.aws_endpoint`: :class:`AwsEndpoint`, the in-memory AWS over
  HTTP for the workers;
- :mod:`~relay.local.servers.artifacts`: :func:`artifact_app`, the local stand-in for
  S3 presigned GET URLs (the report link of ``GET /workflows/{id}``);
- :mod:`~relay.local.servers.faults`: :class:`Fault`, scripted failures.
"""

from relay.local.servers.agentcore import AgentCoreGateway
from relay.local.servers.api_gateway import ApiServer, proxy_event
from relay.local.servers.artifacts import artifact_app
from relay.local.servers.aws_endpoint import AwsEndpoint
from relay.local.servers.environments import (
    FUNCTIONS_DIR,
    Environments,
    FakeLambdaContext,
    FunctionConfig,
    InProcessEnvironment,
    Invocation,
    Report,
    load_handler,
    start_fork_server,
)
from relay.local.servers.faults import Fault
from relay.local.servers.http_server import BACKLOG, CONCURRENCY, MAX_BODY_BYTES, TrustedHosts, _LocalHttp
from relay.local.servers.lambda_api import LambdaServer
from relay.local.servers.protocol import MAX_HEAD_BYTES, _Uvicorn

__all__ = [
    "BACKLOG",
    "CONCURRENCY",
    "FUNCTIONS_DIR",
    "MAX_BODY_BYTES",
    "MAX_HEAD_BYTES",
    "AgentCoreGateway",
    "ApiServer",
    "AwsEndpoint",
    "Environments",
    "FakeLambdaContext",
    "Fault",
    "FunctionConfig",
    "InProcessEnvironment",
    "Invocation",
    "LambdaServer",
    "Report",
    "TrustedHosts",
    "_LocalHttp",
    "_Uvicorn",
    "artifact_app",
    "load_handler",
    "proxy_event",
    "start_fork_server",
]
