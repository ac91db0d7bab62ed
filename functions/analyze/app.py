"""AnalyzeResearch: the analyst agent's insights, risks and open questions (addresses
reviewer feedback on a revision).

Event: :class:`relay_core.models.AnalyzeEvent`. Result: :class:`relay_core.models.Analysis`, plus ``usage`` (:class:`relay_core.models.ModelUsage`,
the agent's model tokens, when the model reports them; the ResultSelector drops it).
Errors: ``ModelThrottled``/``ModelUnavailable`` (retried), ``AgentFailed``, ``InvalidInput`` (the research
reference is not a research document, research.json).
"""

from typing import Any

from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext
from relay_agents.analyst import analyze
from relay_agents.runner import metered
from relay_core import steps
from relay_core.adapters.artifact_store import artifact_store
from relay_core.adapters.workflow_records import workflow_records
from relay_core.config import StoreSettings, load
from relay_core.models import AnalyzeEvent
from relay_core.observability import logger, metrics, tracer


@logger.inject_lambda_context(correlation_id_path="workflow_id", clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
@event_parser(model=AnalyzeEvent)
def handler(event: AnalyzeEvent, context: LambdaContext) -> dict[str, Any]:
    settings = load(StoreSettings)
    with metered() as tokens:
        result = steps.analyze(event, artifact_store(settings.artifact_bucket), workflow_records(settings.table_name), analyze)
    return {**result.model_dump(mode="json"), **tokens.payload()}
