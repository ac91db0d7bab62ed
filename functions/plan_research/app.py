"""PlanResearch: validate the execution input, record the workflow, plan research questions.

Event: :class:`relay_core.models.PlanResearchEvent`. Result: :class:`relay_core.models.PlanResult`, plus ``usage`` (:class:`relay_core.models.ModelUsage`,
the agent's model tokens, when the model reports them; the ResultSelector drops it).
Errors: ``InvalidInput`` (bad execution input, not retried), ``AgentFailed``,
``ModelThrottled``/``ModelUnavailable`` (retried by the state machine).
"""

from typing import Any

from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext
from relay_agents.planner import plan_questions
from relay_agents.runner import metered
from relay_core import steps
from relay_core.adapters.workflow_records import workflow_records
from relay_core.config import StoreSettings, load
from relay_core.models import PlanResearchEvent
from relay_core.observability import logger, metrics, tracer


@logger.inject_lambda_context(correlation_id_path="workflow_id", clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
@event_parser(model=PlanResearchEvent)
def handler(event: PlanResearchEvent, context: LambdaContext) -> dict[str, Any]:
    settings = load(StoreSettings)
    with metered() as tokens:
        result = steps.plan_research(event, workflow_records(settings.table_name), plan_questions)
    return {**result.model_dump(mode="json"), **tokens.payload()}
