"""WriteReport: the writer agent's final Markdown report, stored as report.md.

Event: :class:`relay_core.models.WriteReportEvent`. Result: :class:`relay_core.models.Report`, plus ``usage`` (:class:`relay_core.models.ModelUsage`,
the agent's model tokens, when the model reports them; the ResultSelector drops it).
Errors: ``ModelThrottled``/``ModelUnavailable`` (retried), ``AgentFailed``, ``InvalidInput`` (the research
reference is not a research document, research.json).
"""

from typing import Any

from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext
from relay_agents.runner import metered
from relay_agents.writer import write_report
from relay_core import steps
from relay_core.adapters.artifact_store import artifact_store
from relay_core.config import StoreSettings, load
from relay_core.models import WriteReportEvent
from relay_core.observability import logger, metrics, tracer


@logger.inject_lambda_context(correlation_id_path="workflow_id", clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
@event_parser(model=WriteReportEvent)
def handler(event: WriteReportEvent, context: LambdaContext) -> dict[str, Any]:
    settings = load(StoreSettings)
    with metered() as tokens:
        result = steps.write_report(event, artifact_store(settings.artifact_bucket), write_report)
    return {**result.model_dump(mode="json"), **tokens.payload()}
