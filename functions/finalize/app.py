"""FinalizeWorkflow and RecordRejection: record the outcome; on COMPLETED presign the
report and send a completion notice.

Event: :class:`relay_core.models.FinalizeEvent`. Result: :class:`relay_core.models.FinalizeResult`.
"""

from typing import Any

from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext
from relay_core import steps
from relay_core.adapters.artifact_store import artifact_store
from relay_core.adapters.notifiers import notifier_for
from relay_core.adapters.workflow_records import workflow_records
from relay_core.config import ApprovalSettings, load
from relay_core.models import FinalizeEvent
from relay_core.observability import logger, metrics, tracer


@logger.inject_lambda_context(correlation_id_path="workflow_id", clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
@event_parser(model=FinalizeEvent)
def handler(event: FinalizeEvent, context: LambdaContext) -> dict[str, Any]:
    settings = load(ApprovalSettings)
    result = steps.finalize(
        event,
        artifact_store(settings.artifact_bucket, settings.artifact_base_url),
        workflow_records(settings.table_name),
        notifier_for(settings),
        settings.default_approver,
    )
    return result.model_dump(mode="json")
