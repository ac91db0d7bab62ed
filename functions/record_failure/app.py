"""Record failures from outside the execution: the target of the EventBridge rules on
*Step Functions Execution Status Change* (FAILED, TIMED_OUT, ABORTED, and RUNNING
again after a redrive). Reads the history to name the failed state, its error and
cause; a redrive puts the record back to RUNNING (see
:func:`relay_core.steps.record_status_change`).

Event: :class:`relay_core.models.ExecutionStatusChange` (parsed by Powertools' parser).
Result: :class:`relay_core.models.StatusRecorded`.
"""

from typing import Any

from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext
from relay_core import steps
from relay_core.adapters.step_functions import executions_for
from relay_core.adapters.workflow_records import workflow_records
from relay_core.config import StoreSettings, load
from relay_core.models import ExecutionStatusChange
from relay_core.observability import logger, metrics, tracer


@logger.inject_lambda_context(correlation_id_path="detail.name", clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
@event_parser(model=ExecutionStatusChange)
def handler(event: ExecutionStatusChange, context: LambdaContext) -> dict[str, Any]:
    settings = load(StoreSettings)
    result = steps.record_status_change(event, executions_for(event.detail.stateMachineArn), workflow_records(settings.table_name))
    return result.model_dump(mode="json")
