"""The console's graph of a definition (relay.local.console.graph): pure functions."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from relay.local.console.graph import (
    DefinitionError,
    build_graph,
    condition_text,
    resource_label,
    state_paths,
)

ASL = Path(__file__).resolve().parents[2] / "statemachines" / "research_report.asl.json"


@pytest.fixture(scope="module")
def definition() -> dict:
    return json.loads(ASL.read_text())


def edges_of(graph, source: str) -> list[tuple[str, str, str]]:
    return [(e.target, e.kind, e.label) for e in graph.edges if e.source == source]


def test_every_state_of_the_definition_is_a_node_and_the_map_holds_its_item_processor(definition):
    graph = build_graph(definition)
    top = {n.name for n in graph.nodes if n.parent == "" and n.type not in {"Start", "End"}}
    assert top == set(definition["States"])
    inner = [n for n in graph.nodes if n.parent == "ResearchQuestions"]
    assert [(n.id, n.type) for n in inner] == [
        ("ResearchQuestions/__start__", "Start"), ("ResearchQuestions/AskResearcher", "Task"), ("ResearchQuestions/__end__", "End"),
    ]
    assert graph.node("ResearchQuestions").detail == "Distributed Map"
    assert graph.node("ResearchQuestions/AskResearcher").detail == "bedrockagentcore:invokeAgentRuntime.waitForTaskToken"
    assert edges_of(graph, "ResearchQuestions/AskResearcher") == [("ResearchQuestions/__end__", "end", "")]


def test_transitions_follow_next_end_and_the_choice_rules_with_their_conditions(definition):
    graph = build_graph(definition)
    assert edges_of(graph, "__start__") == [("PlanResearch", "next", "")]
    assert edges_of(graph, "PlanResearch") == [("ResearchQuestions", "next", "")]
    assert edges_of(graph, "ApprovalDecision") == [
        ("WriteReport", "choice", "$.approval.approved == true"),
        (
            "PrepareRevision", "choice",
            "$.approval.approved == false and $.approval.feedback is a string and $.review.revision < $.request.max_revisions",
        ),
        ("RecordRejection", "default", "Default"),
    ]
    assert edges_of(graph, "PrepareRevision") == [("AnalyzeResearch", "next", "")]
    assert edges_of(graph, "FinalizeWorkflow") == [("__end__", "end", "")]
    assert edges_of(graph, "ReportRejected") == [("__end__", "end", "")]
    assert graph.node("RequestApproval").detail == "lambda:invoke.waitForTaskToken"
    assert len({e.id for e in graph.edges}) == len(graph.edges)
    assert json.loads(json.dumps(graph.to_json()))["nodes"][0]["id"] == "__start__"


@pytest.mark.parametrize(
    ("rule", "text"),
    [
        ({"Variable": "$.a", "StringEquals": "x"}, '$.a == "x"'),
        ({"Variable": "$.n", "NumericGreaterThanEquals": 3}, "$.n >= 3"),
        ({"Variable": "$.n", "NumericLessThanPath": "$.max"}, "$.n < $.max"),
        ({"Variable": "$.t", "TimestampLessThan": "2026-01-01T00:00:00Z"}, '$.t < "2026-01-01T00:00:00Z"'),
        ({"Variable": "$.s", "StringMatches": "log-*"}, '$.s matches "log-*"'),
        ({"Variable": "$.x", "IsPresent": False}, "$.x is not present"),
        ({"Variable": "$.x", "IsNull": True}, "$.x is null"),
        ({"Not": {"Variable": "$.b", "BooleanEquals": True}}, "not ($.b == true)"),
        (
            {"Or": [{"Variable": "$.a", "NumericEquals": 1}, {"And": [{"Variable": "$.b", "IsString": True}, {"Variable": "$.c", "IsBoolean": True}]}]},
            "$.a == 1 or ($.b is a string and $.c is a boolean)",
        ),
        ({"Condition": "{% $states.input.ok %}"}, "{% $states.input.ok %}"),
    ],
)
def test_choice_rules_read_as_one_line(rule, text):
    assert condition_text(rule) == text


def test_a_rule_without_an_operator_is_refused_naming_its_keys():
    with pytest.raises(DefinitionError, match="keys: Frobnicate"):
        condition_text({"Variable": "$.a", "Frobnicate": 1, "Next": "X"})


def test_catch_and_parallel_branches_are_drawn():
    definition = {
        "StartAt": "Work",
        "States": {
            "Work": {"Type": "Parallel", "Branches": [
                {"StartAt": "A", "States": {"A": {"Type": "Pass", "End": True}}},
                {"StartAt": "B", "States": {"B": {"Type": "Wait", "Seconds": 1, "End": True}}},
            ], "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Oops"}], "Next": "Done"},
            "Oops": {"Type": "Fail", "Error": "E"},
            "Done": {"Type": "Succeed"},
        },
    }
    graph = build_graph(json.dumps(definition))
    assert edges_of(graph, "Work") == [("Done", "next", ""), ("Oops", "catch", "Catch: States.ALL")]
    assert {n.id for n in graph.nodes if n.parent == "Work"} == {"Work/branch1", "Work/branch2"}
    assert graph.node("Work/branch2/B").parent == "Work/branch2"
    assert edges_of(graph, "Oops") == [("__end__", "end", "")]
    assert state_paths(definition)["B"] == "Work/branch2/B"


@pytest.mark.parametrize(
    ("definition", "message"),
    [
        ("{not json", "not valid JSON"),
        ({"StartAt": "A", "States": {}}, "States must be a non-empty object"),
        ({"StartAt": "Z", "States": {"A": {"Type": "Pass", "End": True}}}, "StartAt 'Z' is not one of its States"),
        ({"StartAt": "A", "States": {"A": {"Type": "Pass", "Next": "Nowhere"}}}, "state A: next names 'Nowhere'"),
        ({"StartAt": "A", "States": {"A": {"Type": "Pass"}}}, "state A: needs Next or End"),
        ({"StartAt": "A", "States": {"A": {"Type": "Map", "End": True}}}, "state A: a Map needs an ItemProcessor"),
    ],
)
def test_definitions_that_cannot_be_drawn_are_refused_naming_the_state_and_rule(definition, message):
    with pytest.raises(DefinitionError, match=message):
        build_graph(definition)


def test_resource_labels():
    assert resource_label({"Type": "Task", "Resource": "arn:aws:lambda:us-east-1:123456789012:function:f"}) == "lambda"
    assert resource_label({"Type": "Task", "Resource": "arn:aws:states:::aws-sdk:s3:getObject"}) == "s3:getObject"
    assert resource_label({"Type": "Map", "ItemProcessor": {"StartAt": "A", "States": {}}}) == "Inline Map"
    assert resource_label({"Type": "Pass"}) == ""
