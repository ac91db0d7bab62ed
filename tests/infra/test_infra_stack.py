"""CDK assertions on the synthesized Relay stack: the properties that matter."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from aws_cdk.assertions import Match
from infra_support import TEST_EMAIL, Synth
from relay_core.contracts import STATUS_INDEX

from stacks.workflow import (
    ASL_FILE,
    MAP_RUN_LABEL,
    RECONCILE_FUNCTION,
    RUNTIME_KEY,
    STATUS_FUNCTION,
    TASK_FUNCTIONS,
    execution_timeout,
)

pytestmark = pytest.mark.infra

SUBSTITUTION = re.compile(r"\$\{([A-Za-z0-9_]+)\}")


# -- helpers -----------------------------------------------------------------------------------
def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def statements(synth: Synth) -> list[tuple[str, dict[str, Any]]]:
    """Every IAM statement in the template as ``(owner role logical id or policy id, statement)``."""
    out: list[tuple[str, dict[str, Any]]] = []
    for lid, res in synth.template["Resources"].items():
        props = res.get("Properties", {})
        if res["Type"] in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
            owners = [r["Ref"] for r in props.get("Roles", [])] or [lid]
            for owner in owners:
                out += [(owner, s) for s in props["PolicyDocument"]["Statement"]]
        elif res["Type"] == "AWS::IAM::Role":
            for policy in props.get("Policies", []):
                out += [(lid, s) for s in policy["PolicyDocument"]["Statement"]]
    return out


def role_statements(synth: Synth, role: Any) -> list[dict[str, Any]]:
    lid = synth.logical_id(role)
    return [s for owner, s in statements(synth) if owner == lid]


def allows(statement: dict[str, Any], action: str) -> bool:
    return statement["Effect"] == "Allow" and action in _as_list(statement["Action"])


def getatt_arn(synth: Synth, construct: Any, attr: str = "Arn") -> dict[str, Any]:
    return {"Fn::GetAtt": [synth.logical_id(construct), attr]}


# -- the ASL contract ----------------------------------------------------------------------------
def test_substitution_keys_in_the_file_and_the_stack_are_the_same_set(synth: Synth) -> None:
    # Given the definition file and the synthesized state machine
    in_file = set(SUBSTITUTION.findall(ASL_FILE.read_text()))
    (sm,) = synth.resources("AWS::StepFunctions::StateMachine").values()
    # Then the stack substitutes exactly the keys the file names
    assert in_file, "the ASL file names no ${...} keys"
    assert set(sm["Properties"]["DefinitionSubstitutions"]) == in_file
    assert set(synth.stack.workflow.substitutions) == in_file
    assert in_file == {s.substitution_key for s in TASK_FUNCTIONS} | {RUNTIME_KEY}


def test_definition_is_the_file_with_the_execution_timeout_in_it(synth: Synth) -> None:
    # StateMachine(timeout=...) is ignored for a definition read from a file: the
    # execution-level TimeoutSeconds must be in the deployed definition itself.
    (sm,) = synth.resources("AWS::StepFunctions::StateMachine").values()
    assert sm["Properties"]["StateMachineType"] == "STANDARD"
    deployed = json.loads(sm["Properties"]["DefinitionString"])
    expected = json.loads(ASL_FILE.read_text())
    timeout = deployed.pop("TimeoutSeconds")
    assert deployed == expected  # the file, unchanged but for the timeout
    from stacks.settings import from_context

    assert timeout == int(execution_timeout(from_context(synth.stack)).to_seconds())
    assert 86_400 < timeout <= 31_536_000
    # and every function that validates a request knows it, so a request that cannot fit is refused
    functions = synth.resources("AWS::Lambda::Function")
    plan = synth.logical_id(synth.stack.workflow.functions["plan_research"].function)
    api = synth.logical_id(synth.stack.api.functions["api"].function)
    for lid in (plan, api):
        assert functions[lid]["Properties"]["Environment"]["Variables"]["RELAY_EXECUTION_TIMEOUT_SECONDS"] == str(timeout), lid


def test_status_change_rules_send_failures_and_redrives_to_the_record_failure_function(synth: Synth) -> None:
    wf = synth.stack.workflow
    recorder = synth.logical_id(wf.functions[STATUS_FUNCTION.name].function)
    sm_ref = synth.stack.resolve(wf.state_machine.state_machine_arn)
    rules = list(synth.resources("AWS::Events::Rule").values())
    targeted = [r for r in rules if any(t["Arn"] == {"Fn::GetAtt": [recorder, "Arn"]} for t in r["Properties"].get("Targets", []))]
    patterns = {json.dumps(r["Properties"]["EventPattern"]["detail"]["status"]) : r["Properties"]["EventPattern"] for r in targeted}
    assert set(patterns) == {json.dumps(["ABORTED", "FAILED", "TIMED_OUT"]), json.dumps(["RUNNING"])}
    for pattern in patterns.values():
        assert pattern["source"] == ["aws.states"]
        assert pattern["detail-type"] == ["Step Functions Execution Status Change"]
        assert pattern["detail"]["stateMachineArn"] == [sm_ref]
    assert patterns[json.dumps(["RUNNING"])]["detail"]["redriveCount"] == [{"numeric": [">", 0]}]
    # EventBridge may invoke it, and it may read the history it names the failed state from
    permissions = [p["Properties"] for p in synth.resources("AWS::Lambda::Permission").values()]
    assert sum(1 for p in permissions if p["Principal"] == "events.amazonaws.com" and p["FunctionName"] == {"Fn::GetAtt": [recorder, "Arn"]}) == 2
    reads = [s for s in role_statements(synth, wf.functions[STATUS_FUNCTION.name].role) if allows(s, "states:GetExecutionHistory")]
    assert reads and ":execution:" in json.dumps(reads[0]["Resource"])


# -- no silently lost status event: dead-letter queue, alarm, reconcile --------------------------
def test_every_status_change_target_has_the_alarmed_dead_letter_queue(synth: Synth) -> None:
    wf = synth.stack.workflow
    dlq = synth.logical_id(wf.dead_letters)
    dlq_arn = {"Fn::GetAtt": [dlq, "Arn"]}
    (queue,) = [q for lid, q in synth.resources("AWS::SQS::Queue").items() if lid == dlq]
    assert queue["Properties"]["SqsManagedSseEnabled"] is True
    assert queue["Properties"]["MessageRetentionPeriod"] == 14 * 24 * 3600
    # Given every rule on Step Functions status changes (the recorder's two, the notification one) and the schedule
    rules = synth.resources("AWS::Events::Rule")
    status_rules = [r for r in rules.values() if r["Properties"].get("EventPattern", {}).get("source") == ["aws.states"]]
    assert len(status_rules) == 3
    schedule = rules[synth.logical_id(wf.reconcile_schedule)]
    # Then each of their targets sends what it cannot deliver to the queue
    for rule in [*status_rules, schedule]:
        for target in rule["Properties"]["Targets"]:
            assert target["DeadLetterConfig"] == {"Arn": dlq_arn}, rule
    # and EventBridge may send to it only for these rules (aws:SourceArn), over TLS only
    (policy,) = [p["Properties"] for p in synth.resources("AWS::SQS::QueuePolicy").values() if {"Ref": dlq} in p["Properties"]["Queues"]]
    sends = [s for s in policy["PolicyDocument"]["Statement"] if s["Effect"] == "Allow"]
    assert sends and all(s["Principal"] == {"Service": "events.amazonaws.com"} and s["Action"] == "sqs:SendMessage" for s in sends)
    assert all("aws:SourceArn" in json.dumps(s["Condition"]) for s in sends)
    assert any(s["Effect"] == "Deny" and "aws:SecureTransport" in json.dumps(s["Condition"]) for s in policy["PolicyDocument"]["Statement"])
    # And an alarm on a message in the queue notifies the topic
    alarm = synth.template["Resources"][synth.logical_id(synth.stack.monitoring.dead_letter_alarm)]["Properties"]
    assert alarm["MetricName"] == "ApproximateNumberOfMessagesVisible" and alarm["Namespace"] == "AWS/SQS"
    assert alarm["Dimensions"] == [{"Name": "QueueName", "Value": {"Fn::GetAtt": [dlq, "QueueName"]}}]
    assert (alarm["Threshold"], alarm["ComparisonOperator"]) == (1, "GreaterThanOrEqualToThreshold")
    assert alarm["AlarmActions"] == [{"Ref": synth.logical_id(synth.stack.approvals.topic)}]


def test_reconcile_runs_on_a_schedule_with_only_what_it_needs(synth: Synth) -> None:
    from relay_core.contracts import RECONCILE_EVERY_MINUTES

    wf = synth.stack.workflow
    reconciler = wf.functions[RECONCILE_FUNCTION.name]
    fn = synth.template["Resources"][synth.logical_id(reconciler.function)]["Properties"]
    assert fn["Handler"] == "app.handler"
    assert "stateMachine:Relay-research-report" in json.dumps(fn["Environment"]["Variables"]["RELAY_STATE_MACHINE_ARN"])
    schedule = synth.template["Resources"][synth.logical_id(wf.reconcile_schedule)]["Properties"]
    assert schedule["ScheduleExpression"] == f"rate({RECONCILE_EVERY_MINUTES} minutes)"
    assert [t["Arn"] for t in schedule["Targets"]] == [{"Fn::GetAtt": [synth.logical_id(reconciler.function), "Arn"]}]
    # Least privilege: it reads this state machine's executions and writes workflow records, nothing else
    stmts = role_statements(synth, reconciler.role)
    actions = {a for s in stmts for a in _as_list(s["Action"])}
    assert actions == {
        "states:GetExecutionHistory", "states:DescribeExecution", "states:ListExecutions",
        "dynamodb:GetItem", "dynamodb:Query", "dynamodb:PutItem", "dynamodb:UpdateItem",
        "xray:PutTraceSegments", "xray:PutTelemetryRecords", "logs:CreateLogStream", "logs:PutLogEvents",
    }, actions  # fmt: skip
    reads = [s for s in stmts if allows(s, "states:DescribeExecution")]
    assert sorted(map(json.dumps, _as_list(reads[0]["Resource"]))) == sorted(
        json.dumps(synth.stack.resolve(arn)) for arn in (wf.execution_arn_pattern, wf.map_children_arn)
    )
    assert not [s for s in stmts if any(a.startswith(("states:Start", "states:Stop", "states:Redrive", "states:SendTask")) for a in _as_list(s["Action"]))]
    records = [s for s in stmts if allows(s, "dynamodb:Query")]
    assert all("Fn::GetAtt" in json.dumps(r) or "index/" in json.dumps(r) for s in records for r in _as_list(s["Resource"]))


def test_the_api_may_redrive_and_read_history_of_this_state_machines_executions_only(synth: Synth) -> None:
    api_role = synth.stack.api.functions["api"].role
    stmts = [s for s in role_statements(synth, api_role) if allows(s, "states:RedriveExecution")]
    assert len(stmts) == 1 and allows(stmts[0], "states:GetExecutionHistory")
    assert _as_list(stmts[0]["Resource"]) == [synth.stack.resolve(synth.stack.workflow.execution_arn_pattern)]


def test_state_machine_may_redrive_its_map_children_on_the_documented_resource(synth: Synth) -> None:
    wf = synth.stack.workflow
    stmts = role_statements(synth, wf.role)
    redrive = [s for s in stmts if allows(s, "states:RedriveExecution")]
    assert len(redrive) == 1
    text = json.dumps(redrive[0]["Resource"])
    assert ":execution:{\"Fn::Join\"" not in text  # a plain pattern, built from the fixed name
    assert f"/{MAP_RUN_LABEL}:*" in text and ":execution:" in text and ":mapRun:" not in text
    assert allows(redrive[0], "states:DescribeExecution") and allows(redrive[0], "states:StopExecution")


def test_state_machine_invokes_exactly_the_referenced_functions_and_runtime(synth: Synth) -> None:
    wf = synth.stack.workflow
    stmts = role_statements(synth, wf.role)
    # Given the functions the definition references through its substitutions
    substitutions = synth.resources("AWS::StepFunctions::StateMachine").popitem()[1]["Properties"][
        "DefinitionSubstitutions"
    ]
    referenced = {v["Fn::GetAtt"][0] for k, v in substitutions.items() if k != RUNTIME_KEY}
    # When we collect the lambda:InvokeFunction grants of the state machine role
    invoke = [s for s in stmts if allows(s, "lambda:InvokeFunction")]
    granted_plain = {r["Fn::GetAtt"][0] for s in invoke for r in _as_list(s["Resource"]) if "Fn::GetAtt" in r}
    granted_versions = {
        r["Fn::Join"][1][0]["Fn::GetAtt"][0]
        for s in invoke
        for r in _as_list(s["Resource"])
        if "Fn::Join" in r and r["Fn::Join"][1][1] == ":*"
    }
    all_resources = [r for s in invoke for r in _as_list(s["Resource"])]
    # Then they are exactly those functions (and their versions), nothing else
    not_tasks = {STATUS_FUNCTION.name, RECONCILE_FUNCTION.name}
    assert referenced == {synth.logical_id(fn.function) for name, fn in wf.functions.items() if name not in not_tasks}
    assert granted_plain == referenced
    assert granted_versions == referenced
    assert len(all_resources) == 2 * len(referenced)
    # And the runtime grant is the runtime ARN and ARN/* under the bedrock-agentcore prefix
    runtime_arn = getatt_arn(synth, synth.stack.agents.cfn_runtime, "AgentRuntimeArn")
    assert substitutions[RUNTIME_KEY] == runtime_arn
    agent = [s for s in stmts if allows(s, "bedrock-agentcore:InvokeAgentRuntime")]
    assert len(agent) == 1
    assert _as_list(agent[0]["Resource"]) == [runtime_arn, {"Fn::Join": ["", [runtime_arn, "/*"]]}]
    # And no role anywhere uses CDK's wrong derived prefix
    assert not [
        s
        for _, s in statements(synth)
        if any(str(a).startswith("bedrockagentcore:") for a in _as_list(s["Action"]))
    ]


def test_state_machine_role_can_run_its_distributed_map(synth: Synth) -> None:
    wf = synth.stack.workflow
    stmts = role_statements(synth, wf.role)
    start = [s for s in stmts if allows(s, "states:StartExecution")]
    assert len(start) == 1
    assert synth.stack.resolve(wf.state_machine_arn) in _as_list(start[0]["Resource"])
    children = [
        s for s in stmts if allows(s, "states:DescribeExecution") and allows(s, "states:StopExecution")
    ]
    assert children and all(":execution:" in json.dumps(s["Resource"]) for s in children)
    # the ARN is built from the fixed name, not a reference to the state machine (no cycle)
    assert "WorkflowResearchReport" not in json.dumps(start)
    (sm,) = synth.resources("AWS::StepFunctions::StateMachine").values()
    assert sm["Properties"]["StateMachineName"] == wf.name


def test_only_the_approvals_function_and_the_researcher_can_send_task_results(synth: Synth) -> None:
    approvals_role = synth.logical_id(synth.stack.api.functions["approvals"].role)
    researcher_role = synth.logical_id(synth.stack.agents.role)
    senders = {
        owner
        for owner, s in statements(synth)
        for a in _as_list(s["Action"])
        if str(a).startswith("states:SendTask")
    }
    assert senders == {approvals_role, researcher_role}
    (stmt,) = [
        s
        for s in role_statements(synth, synth.stack.api.functions["approvals"].role)
        if allows(s, "states:SendTaskSuccess")
    ]
    assert _as_list(stmt["Action"]) == ["states:SendTaskSuccess"]


def test_the_researcher_can_heartbeat_and_end_its_task_and_nothing_more_on_step_functions(synth: Synth) -> None:
    # AskResearcher waits for the researcher's callback: it heartbeats, then succeeds or fails the task
    on_states = [
        s for s in role_statements(synth, synth.stack.agents.role)
        if any(str(a).startswith("states:") for a in _as_list(s["Action"]))
    ]  # fmt: skip
    (stmt,) = on_states
    assert sorted(_as_list(stmt["Action"])) == ["states:SendTaskFailure", "states:SendTaskHeartbeat", "states:SendTaskSuccess"]
    # SendTask* support no resource-level permissions: the token is the authority
    assert stmt["Effect"] == "Allow" and _as_list(stmt["Resource"]) == ["*"] and "Condition" not in stmt


def test_no_statement_allows_every_action_on_every_resource(synth: Synth) -> None:
    offenders = [
        (owner, s)
        for owner, s in statements(synth)
        if s["Effect"] == "Allow" and "*" in _as_list(s["Action"]) and "*" in _as_list(s.get("Resource"))
    ]
    assert offenders == []
    # nor a service-wide wildcard action anywhere
    assert not [s for _, s in statements(synth) if any(str(a).endswith(":*") for a in _as_list(s["Action"]))]


def test_the_approvals_function_reads_the_artifacts_it_shows_and_writes_none(synth: Synth) -> None:
    # The approval page renders the analysis and lists the research document's sources
    stmts = role_statements(synth, synth.stack.api.functions["approvals"].role)
    reads = [s for s in stmts if allows(s, "s3:GetObject")]
    bucket = getatt_arn(synth, synth.stack.storage.bucket)
    assert reads and all(s["Resource"] == {"Fn::Join": ["", [bucket, "/workflows/*"]]} for s in reads), reads
    assert not [s for s in stmts for a in _as_list(s["Action"]) if str(a).startswith("s3:") and a != "s3:GetObject"]


def test_each_function_has_its_own_role(synth: Synth) -> None:
    fns = synth.resources("AWS::Lambda::Function")
    roles = [f["Properties"]["Role"]["Fn::GetAtt"][0] for f in fns.values()]
    assert len(fns) == len(TASK_FUNCTIONS) + 4  # + record_failure, reconcile, api, approvals
    assert len(set(roles)) == len(roles)
    managed = [
        r for r in synth.resources("AWS::IAM::Role").values() if r["Properties"].get("ManagedPolicyArns")
    ]
    # only API Gateway's account-level CloudWatch role uses an AWS managed policy
    assert len(managed) == 1 and "AmazonAPIGatewayPushToCloudWatchLogs" in json.dumps(managed[0])


# -- functions -------------------------------------------------------------------------------------
def test_functions_are_arm64_python_traced_with_powertools_env(synth: Synth) -> None:
    from stacks.api import API_FUNCTIONS

    functions = synth.resources("AWS::Lambda::Function")
    # every handler the stack deploys (6 Tasks, the status-change and reconcile functions, the API's 2), and nothing else
    assert len(functions) == len(TASK_FUNCTIONS) + 2 + len(API_FUNCTIONS) == 10, sorted(functions)
    for lid, fn in functions.items():
        p = fn["Properties"]
        assert p["Architectures"] == ["arm64"], lid
        assert p["Runtime"].startswith("python3."), lid
        assert p["TracingConfig"] == {"Mode": "Active"}, lid
        assert p["LoggingConfig"]["LogFormat"] == "JSON", lid
        env = p["Environment"]["Variables"]
        assert env["POWERTOOLS_SERVICE_NAME"] == "relay"
        assert env["POWERTOOLS_METRICS_NAMESPACE"] == "Relay"
        assert env["POWERTOOLS_LOGGER_LOG_EVENT"] == "false"
        assert env["RELAY_MODEL_PROVIDER"] == "bedrock"
        for key in ("RELAY_ARTIFACT_BUCKET", "RELAY_TABLE_NAME", "RELAY_API_BASE_URL", "RELAY_SIGNING_SECRET_ARN",
                    "RELAY_TOPIC_ARN", "RELAY_APPROVER_EMAIL", "RELAY_MAIL_FROM", "RELAY_MODEL_ID"):  # fmt: skip
            assert key in env, (lid, key)


def test_each_function_deploys_with_the_variables_the_local_runtime_gives_its_workers(synth: Synth) -> None:
    # The stack and the local runtime build every function's environment with one rule
    # (relay_core.contracts.function_environment): the shared variables, Powertools' and the
    # function's own (TaskFunction.variables), and no other function's
    from relay_core.contracts import ALL_FUNCTIONS, POWERTOOLS_ENVIRONMENT, STATE_MACHINE_VARIABLE

    shared = set(synth.stack.workflow.environment)
    deployed = {**synth.stack.workflow.functions, **synth.stack.api.functions}
    assert set(deployed) == set(ALL_FUNCTIONS)
    for name, construct in deployed.items():
        fn = synth.template["Resources"][synth.logical_id(construct.function)]["Properties"]
        assert set(fn["Environment"]["Variables"]) == shared | set(POWERTOOLS_ENVIRONMENT) | set(ALL_FUNCTIONS[name].variables), name
    assert {n for n, spec in ALL_FUNCTIONS.items() if STATE_MACHINE_VARIABLE in spec.variables} == {"api", "reconcile"}


def test_only_agent_functions_carry_the_agent_layers(synth: Synth) -> None:
    wf = synth.stack.workflow
    slim = {"Ref": synth.logical_id(wf.slim_layer)}
    agent = {"Ref": synth.logical_id(wf.deps_layer)}
    agents_code = {"Ref": synth.logical_id(wf.agents_code_layer)}
    core = {"Ref": synth.logical_id(wf.code_layer)}
    functions = {**wf.functions, **synth.stack.api.functions}
    assert {"approvals", "api", "request_approval", "finalize", "compile_research"} <= set(functions)
    for name, fn in functions.items():
        layers = synth.template["Resources"][synth.logical_id(fn.function)]["Properties"]["Layers"]
        expected = [agent, core, agents_code] if name in ("plan_research", "analyze", "write_report") else [slim, core]
        assert sorted(layers, key=json.dumps) == sorted(expected, key=json.dumps), name


def test_every_function_with_its_layers_fits_75_percent_of_lambdas_limit(synth: Synth) -> None:
    from stacks.budget import LAMBDA_BUDGET, check_assembly

    # Given the staged assets of the synthesized assembly (what cdk deploy uploads)
    sizes = check_assembly(synth.outdir)
    functions = [s for s in sizes if not s.name.endswith("zipped)")]
    # Then every function's code plus all its layers, unzipped, is within 75 % of 262,144,000 B
    assert LAMBDA_BUDGET == 196_608_000
    assert len(functions) == len(synth.resources("AWS::Lambda::Function"))
    for size in sizes:
        assert size.ok, size.line()
    for size in functions:
        assert len(size.parts) >= 3 and all(b > 0 for b in size.parts.values()), size
    # And the AgentCore bundle is measured zipped and unzipped against its quotas
    assert sum(s.name.endswith("zipped)") for s in sizes) == 2


def test_api_function_knows_the_state_machine_and_the_url_needs_no_cycle(synth: Synth) -> None:
    api_fn = synth.template["Resources"][synth.logical_id(synth.stack.api.functions["api"].function)]
    env = api_fn["Properties"]["Environment"]["Variables"]
    assert "stateMachine:Relay-research-report" in json.dumps(env["RELAY_STATE_MACHINE_ARN"])
    # the URL is built from the RestApi id alone: no reference to the stage or deployment
    url = json.dumps(env["RELAY_API_BASE_URL"])
    assert synth.logical_id(synth.stack.api.rest_api) in url
    assert "Deployment" not in url and "Stage" not in url


def test_agent_functions_may_invoke_only_the_configured_model(synth: Synth) -> None:
    model_id = synth.stack.node.try_get_context("modelId")
    for name, fn in synth.stack.workflow.functions.items():
        invoke = [s for s in role_statements(synth, fn.role) if allows(s, "bedrock:InvokeModel")]
        if name in ("plan_research", "analyze", "write_report"):
            assert invoke and all(model_id.split(".", 1)[-1] in json.dumps(s["Resource"]) for s in invoke), (
                name
            )
        else:
            assert not invoke, name


# -- the researcher runtime ------------------------------------------------------------------------
def test_researcher_runtime_is_code_deployed_with_its_own_role(synth: Synth) -> None:
    (runtime,) = synth.resources("AWS::BedrockAgentCore::Runtime").values()
    p = runtime["Properties"]
    code = p["AgentRuntimeArtifact"]["CodeConfiguration"]
    assert code["EntryPoint"] == ["main.py"]
    assert code["Runtime"].startswith("PYTHON_3_")
    assert p["RoleArn"] == getatt_arn(synth, synth.stack.agents.role)
    assert p["EnvironmentVariables"]["RELAY_MODEL_PROVIDER"] == "bedrock"
    stmts = role_statements(synth, synth.stack.agents.role)
    actions = {a for s in stmts for a in _as_list(s["Action"])}
    assert actions == {
        "bedrock:InvokeModel", "bedrock:InvokeModelWithResponseStream", "s3:PutObject",
        "logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams",
        "logs:DescribeLogGroups", "cloudwatch:PutMetricData", "xray:PutTraceSegments",
        "xray:PutTelemetryRecords", "xray:GetSamplingRules", "xray:GetSamplingTargets",
        "states:SendTaskHeartbeat", "states:SendTaskSuccess", "states:SendTaskFailure",
    }  # fmt: skip
    # (no s3:GetObject: the deploying principal fetches direct-deployment code, not this role)
    (describe,) = [s for s in stmts if allows(s, "logs:DescribeLogGroups")]
    assert describe["Resource"]["Fn::Join"][1][-1] == ":log-group:*"
    (put,) = [s for s in stmts if allows(s, "s3:PutObject")]
    assert put["Resource"]["Fn::Join"][1][-1] == "/workflows/*"
    trust = synth.template["Resources"][synth.logical_id(synth.stack.agents.role)]["Properties"][
        "AssumeRolePolicyDocument"
    ]
    assert trust["Statement"][0]["Principal"] == {"Service": "bedrock-agentcore.amazonaws.com"}
    assert "aws:SourceAccount" in json.dumps(trust)


# -- logging and tracing ---------------------------------------------------------------------------
def test_state_machine_logs_and_traces_without_execution_data(synth: Synth) -> None:
    # The RequestApproval task's parameters carry the task token; with includeExecutionData
    # false no state input/output (so no token) reaches CloudWatch Logs.
    synth.assertions.has_resource_properties(
        "AWS::StepFunctions::StateMachine",
        {
            "TracingConfiguration": {"Enabled": True},
            "LoggingConfiguration": {
                "Level": "ALL",
                "IncludeExecutionData": False,
                "Destinations": [{"CloudWatchLogsLogGroup": {"LogGroupArn": Match.any_value()}}],
            },
        },
    )


def test_api_stage_logs_traces_and_throttles_without_bodies(synth: Synth) -> None:
    synth.assertions.has_resource_properties(
        "AWS::ApiGateway::Stage",
        {
            "TracingEnabled": True,
            "AccessLogSetting": {"DestinationArn": Match.any_value(), "Format": Match.any_value()},
            "MethodSettings": Match.array_with(
                [
                    Match.object_like(
                        {
                            "DataTraceEnabled": False,
                            "ThrottlingRateLimit": Match.any_value(),
                            "ThrottlingBurstLimit": Match.any_value(),
                        }
                    )
                ]  # fmt: skip
            ),
        },
    )


def test_every_log_group_has_the_configured_retention(synth: Synth) -> None:
    days = synth.stack.node.try_get_context("logRetentionDays")
    groups = synth.resources("AWS::Logs::LogGroup")
    assert groups and all(g["Properties"]["RetentionInDays"] == days for g in groups.values())


# -- storage ---------------------------------------------------------------------------------------
def test_artifact_bucket_is_versioned_encrypted_private_and_tls_only(synth: Synth) -> None:
    lid = synth.logical_id(synth.stack.storage.bucket)
    p = synth.template["Resources"][lid]["Properties"]
    assert p["VersioningConfiguration"] == {"Status": "Enabled"}
    assert p["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"]
    assert p["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True, "BlockPublicPolicy": True, "IgnorePublicAcls": True, "RestrictPublicBuckets": True,
    }  # fmt: skip
    rules = p["LifecycleConfiguration"]["Rules"]
    assert any(r.get("NoncurrentVersionExpiration", {}).get("NoncurrentDays") for r in rules)
    assert "LoggingConfiguration" in p
    policies = [
        r
        for r in synth.resources("AWS::S3::BucketPolicy").values()
        if r["Properties"]["Bucket"] == {"Ref": lid}
    ]
    deny_tls = [
        s for pol in policies for s in pol["Properties"]["PolicyDocument"]["Statement"]
        if s["Effect"] == "Deny" and s.get("Condition", {}).get("Bool", {}).get("aws:SecureTransport") == "false"
    ]  # fmt: skip
    assert deny_tls


def test_workflow_table_schema_ttl_gsi_on_demand_pitr(synth: Synth) -> None:
    synth.assertions.has_resource_properties(
        "AWS::DynamoDB::Table",
        {
            "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
            "BillingMode": "PAY_PER_REQUEST",
            "TimeToLiveSpecification": {"AttributeName": "ttl", "Enabled": True},
            "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True},
            "GlobalSecondaryIndexes": [
                {
                    "IndexName": STATUS_INDEX,
                    "KeySchema": [
                        {"AttributeName": "status", "KeyType": "HASH"},
                        {"AttributeName": "created_at", "KeyType": "RANGE"},
                    ],
                    "Projection": {"ProjectionType": "ALL"},
                }
            ],
            "AttributeDefinitions": Match.array_with([{"AttributeName": "pk", "AttributeType": "S"}]),
        },
    )


def test_table_access_is_item_level_only(synth: Synth) -> None:
    table = synth.logical_id(synth.stack.storage.table)
    actions = {
        a
        for _, s in statements(synth)
        if table in json.dumps(s.get("Resource"))
        for a in _as_list(s["Action"])
    }
    assert actions == {"dynamodb:GetItem", "dynamodb:Query", "dynamodb:PutItem", "dynamodb:UpdateItem"}


# -- API -------------------------------------------------------------------------------------------
def test_workflow_routes_need_iam_and_approval_routes_are_public(synth: Synth) -> None:
    resources = synth.resources("AWS::ApiGateway::Resource")
    paths = {lid: r["Properties"]["PathPart"] for lid, r in resources.items()}
    methods = synth.resources("AWS::ApiGateway::Method")
    seen = {}
    for m in methods.values():
        p = m["Properties"]
        part = paths[p["ResourceId"]["Ref"]]
        parent = resources[p["ResourceId"]["Ref"]]["Properties"]["ParentId"]
        parent_part = paths.get(parent.get("Ref", ""), "")
        seen[(parent_part, part, p["HttpMethod"])] = p["AuthorizationType"]
    assert seen == {
        ("", "workflows", "POST"): "AWS_IAM",
        ("", "workflows", "GET"): "AWS_IAM",
        ("workflows", "{id}", "GET"): "AWS_IAM",
        ("{id}", "cancel", "POST"): "AWS_IAM",
        ("{id}", "redrive", "POST"): "AWS_IAM",
        ("{id}", "history", "GET"): "AWS_IAM",
        ("approvals", "{id}", "GET"): "NONE",
        ("approvals", "{id}", "POST"): "NONE",
    }


# -- approvals and monitoring ----------------------------------------------------------------------
def test_topic_is_encrypted_with_an_email_subscription_from_context(synth: Synth) -> None:
    synth.assertions.has_resource_properties("AWS::SNS::Topic", {"KmsMasterKeyId": Match.any_value()})
    synth.assertions.has_resource_properties(
        "AWS::SNS::Subscription", {"Protocol": "email", "Endpoint": TEST_EMAIL}
    )
    synth.assertions.has_resource_properties(
        "AWS::SecretsManager::Secret", {"GenerateSecretString": Match.object_like({"PasswordLength": 64})}
    )


def test_the_topic_policy_lets_this_accounts_alarms_publish(synth: Synth) -> None:
    topic = {"Ref": synth.logical_id(synth.stack.approvals.topic)}
    (policy,) = synth.resources("AWS::SNS::TopicPolicy").values()
    assert policy["Properties"]["Topics"] == [topic]
    stmts = policy["Properties"]["PolicyDocument"]["Statement"]
    # Given the topic policy CDK writes (it replaces SNS's default policy)
    (alarms,) = [s for s in stmts if s.get("Principal") == {"Service": "cloudwatch.amazonaws.com"}]
    # Then CloudWatch may publish, only for this account's alarms in this Region
    assert alarms["Effect"] == "Allow" and alarms["Action"] == "sns:Publish" and alarms["Resource"] == topic
    source_arn = alarms["Condition"]["ArnLike"]["aws:SourceArn"]
    assert source_arn == {"Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, ":cloudwatch:", {"Ref": "AWS::Region"},
                                            ":", {"Ref": "AWS::AccountId"}, ":alarm:*"]]}  # fmt: skip
    assert alarms["Condition"]["StringEquals"] == {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}
    # And EventBridge keeps its statement, and no statement denies cloudwatch
    assert [s for s in stmts if s.get("Principal") == {"Service": "events.amazonaws.com"}]
    assert not [s for s in stmts if s["Effect"] == "Deny" and "cloudwatch" in json.dumps(s.get("Principal"))]


def test_api_gateway_account_role_is_retained_on_destroy(synth: Synth) -> None:
    (account,) = synth.resources("AWS::ApiGateway::Account").values()
    role_id = account["Properties"]["CloudWatchRoleArn"]["Fn::GetAtt"][0]
    for resource in (account, synth.template["Resources"][role_id]):
        assert resource["DeletionPolicy"] == "Retain" and resource["UpdateReplacePolicy"] == "Retain"


def test_failed_and_timed_out_executions_alarm_to_the_topic(synth: Synth) -> None:
    topic = {"Ref": synth.logical_id(synth.stack.approvals.topic)}
    alarms = synth.resources("AWS::CloudWatch::Alarm").values()
    by_metric = {a["Properties"]["MetricName"]: a["Properties"] for a in alarms}
    for metric in ("ExecutionsFailed", "ExecutionsTimedOut"):
        assert by_metric[metric]["Namespace"] == "AWS/States"
        assert by_metric[metric]["AlarmActions"] == [topic]


def test_execution_status_changes_go_to_the_topic(synth: Synth) -> None:
    synth.assertions.has_resource_properties(
        "AWS::Events::Rule",
        {
            "EventPattern": {
                "source": ["aws.states"],
                "detail-type": ["Step Functions Execution Status Change"],
                "detail": Match.object_like({"stateMachineArn": Match.any_value()}),
            },
            "Targets": [Match.object_like({"Arn": {"Ref": synth.logical_id(synth.stack.approvals.topic)}})],
        },
    )
    synth.assertions.resource_count_is("AWS::CloudWatch::Dashboard", 1)


def test_budget_check_fails_naming_the_function_over_budget(
    synth_outdir_for_budget, monkeypatch, capsys
) -> None:
    from stacks import budget

    outdir, agent_total = synth_outdir_for_budget
    # Given a budget just under the smallest agent function's total (slim ones are far below)
    monkeypatch.setattr(budget, "LAMBDA_BUDGET", agent_total - 1)
    # Then the check exits naming only the agent functions
    with pytest.raises(SystemExit, match="over 75 %") as exc:
        budget.main([str(outdir)])
    named = str(exc.value)
    assert "PlanResearch" in named and "Analyze" in named and "WriteReport" in named
    assert "Approvals" not in named and "Finalize" not in named
