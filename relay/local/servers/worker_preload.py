"""Imported once by the fork server of the local Lambda workers
(:data:`relay.local.servers.environments.PRELOAD`), never by the runtime itself: it fills
boto3's default session with the service models the handlers' clients load (S3, DynamoDB,
Step Functions, SNS), so each worker, forked from the server, finds them parsed instead of
reading and parsing the JSON again on its first call (about 0.1 s of CPU per client).
It resolves no credentials, Region or endpoint: those are read from the worker's own
environment when a handler makes its client.
"""

from __future__ import annotations

import boto3

#: Services the handlers' adapters call (relay_core.adapters).
SERVICES = ("s3", "dynamodb", "stepfunctions", "sns")

boto3.setup_default_session()
_session = boto3.DEFAULT_SESSION._session  # the botocore session behind boto3's default one
_loader = _session.get_component("data_loader")
for _service in SERVICES:
    _session.get_service_model(_service)
    _loader.load_service_model(_service, "endpoint-rule-set-1")
_loader.load_service_model("dynamodb", "resources-1")
