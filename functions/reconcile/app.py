"""Reconcile: record the status changes whose EventBridge events were lost. Runs on an
EventBridge schedule; compares every RUNNING workflow record with DescribeExecution and,
for an execution that stopped (or was redriven) without the record hearing of it, records
what the record-failure function would have (see :func:`relay_core.reconcile.reconcile`).

Event: the schedule's *Scheduled Event* (its content is not used).
Result: :class:`relay_core.models.Reconciled`.
"""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from relay_core.adapters.step_functions import executions_for
from relay_core.adapters.workflow_records import workflow_records
from relay_core.config import ReconcileSettings, load
from relay_core.observability import logger, metrics, tracer
from relay_core.reconcile import reconcile


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    settings = load(ReconcileSettings)
    return reconcile(executions_for(settings.state_machine_arn), workflow_records(settings.table_name)).model_dump(mode="json")
