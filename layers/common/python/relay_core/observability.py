"""Powertools logger, tracer and metrics shared by every handler.

Service name ``relay``; metrics namespace ``Relay`` unless
``POWERTOOLS_METRICS_NAMESPACE`` says otherwise. Handlers set the correlation id to
the workflow id (the execution name). Never log a task token, a secret, or a whole
document: log ids, sizes and hashes.
"""

from __future__ import annotations

import os

from aws_lambda_powertools import Logger, Metrics, Tracer

os.environ.setdefault("POWERTOOLS_SERVICE_NAME", "relay")
os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "Relay")

logger = Logger()
tracer = Tracer()
metrics = Metrics()
