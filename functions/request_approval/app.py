"""RequestApproval (``lambda:invoke.waitForTaskToken``): store the task token under an
opaque approval id and email the approver a signed link.

Event: :class:`relay_core.models.RequestApprovalEvent` (holds the task token: never
logged — the event is not logged and the response carries no token).
Result: :class:`relay_core.models.ApprovalRequested` (Step Functions ignores it; the
execution resumes on ``SendTaskSuccess``).
"""

from typing import Any

from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext
from relay_core import steps
from relay_core.adapters.notifiers import notifier_for
from relay_core.adapters.workflow_records import workflow_records
from relay_core.config import ApprovalSettings, load
from relay_core.links import load_secret
from relay_core.models import RequestApprovalEvent
from relay_core.observability import logger, metrics, tracer


@logger.inject_lambda_context(correlation_id_path="workflow_id", clear_state=True, log_event=False)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
@event_parser(model=RequestApprovalEvent)
def handler(event: RequestApprovalEvent, context: LambdaContext) -> dict[str, Any]:
    settings = load(ApprovalSettings)
    result = steps.request_approval(
        event, workflow_records(settings.table_name), notifier_for(settings), settings, load_secret(settings)
    )
    return result.model_dump(mode="json")
