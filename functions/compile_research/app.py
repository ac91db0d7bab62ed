"""CompileResearch: merge the Map's findings into the research document (research.json,
read by AnalyzeResearch and WriteReport) and research.md (for people), deduplicating sources.

Event: :class:`relay_core.models.CompileResearchEvent`. Result: :class:`relay_core.models.CompiledResearch`.
Errors: ``AgentFailed`` when no question was answered; ``ArtifactNotFound``/``ArtifactIntegrityError``.
"""

from typing import Any

from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext
from relay_core import steps
from relay_core.adapters.artifact_store import artifact_store
from relay_core.config import StoreSettings, load
from relay_core.models import CompileResearchEvent
from relay_core.observability import logger, metrics, tracer


@logger.inject_lambda_context(correlation_id_path="workflow_id", clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
@event_parser(model=CompileResearchEvent)
def handler(event: CompileResearchEvent, context: LambdaContext) -> dict[str, Any]:
    settings = load(StoreSettings)
    result = steps.compile_research(event, artifact_store(settings.artifact_bucket))
    return result.model_dump(mode="json")
