"""RecordFailure: every Task's Catch lands here; mark the workflow FAILED naming the
failed state, its error and cause.

Event: :class:`relay_core.models.RecordFailureEvent` (``failure = {StateName: {Error, Cause}}``).
Result: :class:`relay_core.models.FailureRecord`; WorkflowFailed reads its error and cause.
"""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from relay_core import workflow
from relay_core.config import StoreSettings, load
from relay_core.models import RecordFailureEvent
from relay_core.observability import logger, metrics, tracer
from relay_core.records import workflow_records


@logger.inject_lambda_context(correlation_id_path="workflow_id", clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    settings = load(StoreSettings)
    result = workflow.record_failure(RecordFailureEvent.model_validate(event), workflow_records(settings.table_name))
    return result.model_dump(mode="json")
