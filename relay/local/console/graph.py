"""The state machine graph: nodes and edges of an Amazon States Language definition.

Pure functions, no I/O. :func:`build_graph` turns a definition (the parsed
``statemachines/research_report.asl.json``, with or without its ``${…}``
substitutions) into what the console lays out with ELK (elkjs, layered algorithm)
in the browser:

- one node per state, with its ``Type`` and a short resource label; a Map or
  Parallel state is a compound node holding its item processor (or each branch)
  with its own Start and End nodes, as the Step Functions console draws them;
- one edge per transition: ``Next``, ``End`` (to the scope's End node), each
  Choice rule labelled with its condition (:func:`condition_text`), the Choice
  ``Default`` labelled ``Default``, and each ``Catch`` labelled with its errors.

Node ids are the state's path of names joined by ``/`` (``ResearchQuestions/AskResearcher``),
so a state name used in two scopes stays unique; Start and End nodes are
``<scope>/__start__`` and ``<scope>/__end__`` (the top-level scope is empty).

Reference for the rule operators: Amazon States Language specification, "Choice
Rules" (the comparison operators and ``And``/``Or``/``Not``).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

#: Choice comparison operators → how the console writes them (Amazon States Language, "Choice Rules").
_COMPARISONS: dict[str, str] = {
    "StringEquals": "==",
    "StringLessThan": "<",
    "StringGreaterThan": ">",
    "StringLessThanEquals": "<=",
    "StringGreaterThanEquals": ">=",
    "StringMatches": "matches",
    "NumericEquals": "==",
    "NumericLessThan": "<",
    "NumericGreaterThan": ">",
    "NumericLessThanEquals": "<=",
    "NumericGreaterThanEquals": ">=",
    "BooleanEquals": "==",
    "TimestampEquals": "==",
    "TimestampLessThan": "<",
    "TimestampGreaterThan": ">",
    "TimestampLessThanEquals": "<=",
    "TimestampGreaterThanEquals": ">=",
}
#: Type tests (``"IsString": true`` → "is a string").
_TYPE_TESTS: dict[str, str] = {
    "IsNull": "null",
    "IsPresent": "present",
    "IsNumeric": "a number",
    "IsString": "a string",
    "IsBoolean": "a boolean",
    "IsTimestamp": "a timestamp",
}
#: Longest edge label drawn, in characters (longer conditions are cut with "…").
LABEL_MAX_CHARS = 120


class DefinitionError(ValueError):
    """The definition is not a state machine the console can draw; the message names the state and rule."""


@dataclass(frozen=True)
class Node:
    """One box of the graph.

    Attributes:
        id: unique path (``Parent/Child``); Start/End nodes end in ``__start__``/``__end__``.
        name: the state name (``Start``/``End`` for the synthetic nodes).
        type: the ASL ``Type`` (``Task``, ``Map``, …) or ``Start``/``End``.
        parent: the id of the compound node holding it (``""`` at the top level).
        detail: a short second line: the Task's resource (``lambda:invoke``) or the Map's mode.
        comment: the state's ``Comment`` (may be empty).
    """

    id: str
    name: str
    type: str
    parent: str = ""
    detail: str = ""
    comment: str = ""


@dataclass(frozen=True)
class Edge:
    """One transition. ``kind`` is ``next``, ``choice``, ``default``, ``catch`` or ``end``."""

    id: str
    source: str
    target: str
    kind: str
    label: str = ""


@dataclass
class Graph:
    """What :func:`build_graph` returns; :meth:`to_json` is what the page's script reads."""

    nodes: list[Node] = field(default_factory=list)
    edges: list[Edge] = field(default_factory=list)

    def node(self, node_id: str) -> Node:
        """The node with ``node_id``. Raises ``KeyError`` naming it."""
        for node in self.nodes:
            if node.id == node_id:
                return node
        raise KeyError(f"no node {node_id!r}")

    def to_json(self) -> dict[str, Any]:
        return {"nodes": [asdict(n) for n in self.nodes], "edges": [asdict(e) for e in self.edges]}


def _operand(rule: dict[str, Any], operator: str) -> str:
    """A path operand as written (``$.request.max_revisions``), a literal as JSON (``"x"``, ``true``)."""
    value = rule[operator]
    return str(value) if operator.endswith("Path") else json.dumps(value)


def condition_text(rule: dict[str, Any]) -> str:
    """A Choice rule as one line: ``$.approval.approved == true``, ``$.x is a string``,
    ``not (…)``, ``(…) and (…)``; a JSONata ``Condition`` is shown as written.

    Raises:
        DefinitionError: the rule has no operator this function knows.
    """
    if "Condition" in rule:
        return str(rule["Condition"])
    if "And" in rule or "Or" in rule:
        joiner = " and " if "And" in rule else " or "
        parts = [condition_text(r) for r in rule.get("And") or rule.get("Or") or []]
        return joiner.join(f"({p})" if (" and " in p or " or " in p) else p for p in parts)
    if "Not" in rule:
        return f"not ({condition_text(rule['Not'])})"
    variable = str(rule.get("Variable", "$"))
    for operator, test in _TYPE_TESTS.items():
        if operator in rule:
            negated = "" if rule[operator] is True else "not "
            return f"{variable} is {negated}{test}"
    for operator, symbol in _COMPARISONS.items():
        for key in (operator, operator + "Path"):
            if key in rule:
                return f"{variable} {symbol} {_operand(rule, key)}"
    known = sorted(k for k in rule if k not in {"Variable", "Next"})
    raise DefinitionError(f"Choice rule: no comparison operator this console knows (keys: {', '.join(known) or 'none'})")


def _short(text: str) -> str:
    return text if len(text) <= LABEL_MAX_CHARS else text[: LABEL_MAX_CHARS - 1] + "…"


def resource_label(state: dict[str, Any]) -> str:
    """``lambda:invoke``, ``lambda:invoke.waitForTaskToken``, ``bedrockagentcore:invokeAgentRuntime``;
    the Map's mode (``Distributed``/``Inline``); empty for other types."""
    kind = state.get("Type")
    if kind == "Task":
        resource = str(state.get("Resource", ""))
        if resource.startswith("arn:aws:states:::"):
            resource = resource.removeprefix("arn:aws:states:::").removeprefix("aws-sdk:")
        elif resource.startswith("arn:aws:lambda:") or "${" in resource:
            resource = "lambda"
        return resource
    if kind == "Map":
        processor = state.get("ItemProcessor") or state.get("Iterator") or {}
        mode = str((processor.get("ProcessorConfig") or {}).get("Mode", "INLINE"))
        return f"{mode.title()} Map"
    return ""


def _add_scope(graph: Graph, machine: dict[str, Any], scope: str) -> None:
    """Add the Start/End nodes, states and edges of one state machine (top level, an item
    processor or a Parallel branch) under compound node ``scope``."""
    states = machine.get("States")
    if not isinstance(states, dict) or not states:
        raise DefinitionError(f"{scope or 'the definition'}: States must be a non-empty object")
    start_at = machine.get("StartAt")
    if start_at not in states:
        raise DefinitionError(f"{scope or 'the definition'}: StartAt {start_at!r} is not one of its States")
    prefix = f"{scope}/" if scope else ""
    start, end = f"{prefix}__start__", f"{prefix}__end__"
    graph.nodes.append(Node(id=start, name="Start", type="Start", parent=scope))
    edges: list[Edge] = []

    def edge(source: str, target_name: str | None, kind: str, label: str = "") -> None:
        if target_name is None:
            target = end
        elif target_name not in states:
            raise DefinitionError(f"state {source.rsplit('/', 1)[-1]}: {kind} names {target_name!r}, which is not a state of this scope")
        else:
            target = prefix + target_name
        edges.append(Edge(id=f"{source}->{target}#{len(edges)}", source=source, target=target, kind=kind, label=_short(label)))

    edge(start, str(start_at), "next")
    for name, state in states.items():
        if not isinstance(state, dict) or "Type" not in state:
            raise DefinitionError(f"state {name}: must be an object with a Type")
        node_id = prefix + name
        kind = str(state["Type"])
        graph.nodes.append(
            Node(id=node_id, name=name, type=kind, parent=scope, detail=resource_label(state), comment=str(state.get("Comment", "")))
        )
        if kind == "Map":
            processor = state.get("ItemProcessor") or state.get("Iterator")
            if not isinstance(processor, dict):
                raise DefinitionError(f"state {name}: a Map needs an ItemProcessor")
            _add_scope(graph, processor, node_id)
        elif kind == "Parallel":
            for index, branch in enumerate(state.get("Branches") or []):
                branch_id = f"{node_id}/branch{index + 1}"
                graph.nodes.append(Node(id=branch_id, name=f"Branch {index + 1}", type="Branch", parent=node_id))
                _add_scope(graph, branch, branch_id)
        if kind == "Choice":
            for rule in state.get("Choices") or []:
                edge(node_id, str(rule.get("Next")), "choice", condition_text(rule))
            if "Default" in state:
                edge(node_id, str(state["Default"]), "default", "Default")
        elif kind in {"Succeed", "Fail"} or state.get("End") is True:
            edge(node_id, None, "end")
        elif "Next" in state:
            edge(node_id, str(state["Next"]), "next")
        else:
            raise DefinitionError(f"state {name}: needs Next or End")
        for catcher in state.get("Catch") or []:
            errors = ", ".join(str(e) for e in catcher.get("ErrorEquals") or [])
            edge(node_id, str(catcher.get("Next")), "catch", f"Catch: {errors}")
    graph.nodes.append(Node(id=end, name="End", type="End", parent=scope))
    graph.edges.extend(edges)


def build_graph(definition: dict[str, Any] | str) -> Graph:
    """The graph of a definition (a dict or its JSON text).

    Raises:
        DefinitionError: not valid JSON, no ``States``/``StartAt``, a ``Next`` naming no
            state, a Choice rule without a known operator.
    """
    if isinstance(definition, str):
        try:
            definition = json.loads(definition)
        except ValueError as exc:
            raise DefinitionError(f"definition: not valid JSON ({exc})") from None
    if not isinstance(definition, dict):
        raise DefinitionError("definition: must be a JSON object")
    graph = Graph()
    _add_scope(graph, definition, "")
    return graph


def state_paths(definition: dict[str, Any]) -> dict[str, str]:
    """Every state name → its node id (a name used in two scopes maps to the first one found)."""
    out: dict[str, str] = {}
    for node in build_graph(definition).nodes:
        if node.type not in {"Start", "End", "Branch"}:
            out.setdefault(node.name, node.id)
    return out
