"""Monitoring: a CloudWatch dashboard, alarms on failed and timed-out executions (to the
SNS topic), and an EventBridge rule that forwards execution status changes to the topic.
"""

from __future__ import annotations

from typing import Any

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from constructs import Construct
from relay_core.contracts import (
    REDRIVABLE_STATUSES,
    STATUS_CHANGE_DETAIL_TYPE,
    STATUS_CHANGE_SOURCE,
    ExecutionStatus,
)

from .agents import Agents
from .api import Api
from .approvals import Approvals
from .functions import POWERTOOLS_ENV, RelayFunction
from .workflow import Workflow

#: Custom metrics the handlers emit with Powertools (namespace ``Relay``, dimension
#: ``service=relay``): one ``ApprovalsRequested`` per approval email, one
#: ``ApprovalsDecided`` per decision. Pending = running sum of the difference.
APPROVALS_REQUESTED = "ApprovalsRequested"
APPROVALS_DECIDED = "ApprovalsDecided"
#: Execution statuses that reach the topic through EventBridge: every way an execution
#: stops (RUNNING is left out: noise).
NOTIFY_STATUSES = (str(ExecutionStatus.SUCCEEDED), *sorted(str(status) for status in REDRIVABLE_STATUSES))


class Monitoring(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        workflow: Workflow,
        agents: Agents,
        api: Api,
        approvals: Approvals,
    ) -> None:
        super().__init__(scope, construct_id)
        sm = workflow.state_machine
        period = Duration.minutes(5)
        action = cw_actions.SnsAction(approvals.topic)

        self.failed_alarm = cw.Alarm(
            self,
            "ExecutionsFailed",
            alarm_description="A Relay workflow execution failed (the workflow record names the failed state; redrive resumes it)",
            metric=sm.metric_failed(period=period, statistic="Sum"),
            threshold=1,
            evaluation_periods=1,
            comparison_operator=cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
        )
        self.timed_out_alarm = cw.Alarm(
            self,
            "ExecutionsTimedOut",
            alarm_description="A Relay workflow execution timed out",
            metric=sm.metric_timed_out(period=period, statistic="Sum"),
            threshold=1,
            evaluation_periods=1,
            comparison_operator=cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
        )
        self.dead_letter_alarm = cw.Alarm(
            self,
            "StatusEventsDeadLettered",
            alarm_description="A Step Functions status-change event (or a reconcile run) was not delivered after its "
            "retries and is in the dead-letter queue; the reconcile function records what it missed within "
            "15 minutes. The message says why delivery failed.",
            metric=workflow.dead_letters.metric_approximate_number_of_messages_visible(period=period, statistic="Maximum"),
            threshold=1,
            evaluation_periods=1,
            comparison_operator=cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
        )
        for alarm in (self.failed_alarm, self.timed_out_alarm, self.dead_letter_alarm):
            alarm.add_alarm_action(action)

        self.status_rule = events.Rule(
            self,
            "ExecutionStatusChange",
            description="Relay execution status changes -> notification topic",
            event_pattern=events.EventPattern(
                source=[STATUS_CHANGE_SOURCE],
                detail_type=[STATUS_CHANGE_DETAIL_TYPE],
                detail={"stateMachineArn": [sm.state_machine_arn], "status": list(NOTIFY_STATUSES)},
            ),
        )
        self.status_rule.add_target(
            targets.SnsTopic(
                approvals.topic,
                dead_letter_queue=workflow.dead_letters,
                message=events.RuleTargetInput.from_text(
                    f"Relay execution {events.EventField.from_path('$.detail.name')} is "
                    f"{events.EventField.from_path('$.detail.status')}: "
                    f"{events.EventField.from_path('$.detail.executionArn')}"
                ),
            )
        )

        relay_metric: dict[str, Any] = {"namespace": POWERTOOLS_ENV["POWERTOOLS_METRICS_NAMESPACE"],
                        "dimensions_map": {"service": POWERTOOLS_ENV["POWERTOOLS_SERVICE_NAME"]},
                        "statistic": "Sum", "period": period}  # fmt: skip
        pending = cw.MathExpression(
            expression="RUNNING_SUM(FILL(requested, 0) - FILL(decided, 0))",
            using_metrics={
                "requested": cw.Metric(metric_name=APPROVALS_REQUESTED, **relay_metric),
                "decided": cw.Metric(metric_name=APPROVALS_DECIDED, **relay_metric),
            },
            label="approvals pending (over the dashboard range)",
            period=period,
        )
        functions: list[RelayFunction] = [*workflow.functions.values(), *api.functions.values()]
        runtime = agents.runtime

        self.dashboard = cw.Dashboard(self, "Dashboard", default_interval=Duration.days(1))
        self.dashboard.add_widgets(
            cw.GraphWidget(
                title="Executions",
                left=[
                    sm.metric_started(period=period, statistic="Sum"),
                    sm.metric_succeeded(period=period, statistic="Sum"),
                    sm.metric_failed(period=period, statistic="Sum"),
                    sm.metric_timed_out(period=period, statistic="Sum"),
                    sm.metric_aborted(period=period, statistic="Sum"),
                ],
                width=12,
            ),
            cw.GraphWidget(title="Approvals pending", left=[pending], width=6),
            cw.AlarmStatusWidget(title="Alarms", alarms=[self.failed_alarm, self.timed_out_alarm], width=6),
        )
        self.dashboard.add_widgets(
            cw.GraphWidget(
                title="Researcher runtime: invocations and errors",
                left=[
                    runtime.metric_invocations(period=period),
                    runtime.metric_system_errors(period=period),
                    runtime.metric_user_errors(period=period),
                    runtime.metric_throttles(period=period),
                ],
                width=12,
            ),
            cw.GraphWidget(
                title="Researcher runtime: latency (p90)",
                left=[runtime.metric_latency(period=period, statistic="p90")],
                width=12,
            ),
        )
        self.dashboard.add_widgets(
            cw.GraphWidget(
                title="Lambda duration (p90, ms)",
                left=[
                    fn.function.metric_duration(period=period, statistic="p90", label=fn.spec.name)
                    for fn in functions
                ],
                width=12,
            ),
            cw.GraphWidget(
                title="Lambda errors",
                left=[fn.function.metric_errors(period=period, label=fn.spec.name) for fn in functions],
                width=12,
            ),
        )
