"""How the offline model calls tools: which tool to search with, its arguments, and
filling a forced tool's JSON schema (Strands' structured output) from a composed answer."""

from __future__ import annotations

import re
from typing import Any

from relay_core.prose import content_tokens
from relay_core.quality import QUESTION_FRAME_WORDS
from strands.types.tools import ToolSpec

from .. import text as tx

#: Words that frame a question rather than name what to search for: the quality check's
#: question-frame words and the words of the planner's own frames.
QUERY_NOISE = QUESTION_FRAME_WORDS | frozenset({"together", "key", "fact", "role", "say", "source"})


def query_from(text: str, limit: int = 4) -> str:
    """A search query: the prompt's YAKE! keyphrases, words deduplicated in order."""
    phrases = tx.keyphrases(text, top=limit) or [text]
    words: list[str] = []
    seen: set[str] = set()
    for phrase in phrases:
        for word in phrase.split():
            if word.lower() not in seen:
                seen.add(word.lower())
                words.append(word)
    return " ".join(words)[:300]


def search_queries(role: str | None, subject: str) -> list[str]:
    """The searches the model makes, in order, one per model turn: the subject's
    keyphrases (:func:`query_from`); a researcher also searches every content word of its
    question (keyphrase extraction drops words such as a service's short name), when
    that query differs."""
    first = query_from(subject)
    if role != "researcher":
        return [first]
    words = list(
        dict.fromkeys(
            w
            for w in re.sub(r"[?,;:()]", " ", subject).split()
            if content_tokens(w) and not set(content_tokens(w)) <= QUERY_NOISE
        )
    )
    second = " ".join(words)[:300]
    if not second or set(tx.tokenize(second)) <= set(tx.tokenize(first)):
        return [first]
    return [first, second]


def pick_tool(tool_specs: list[ToolSpec]) -> ToolSpec | None:
    """``search_documents``, else a tool named like search/retrieve/lookup, else the first
    tool taking a required string argument."""
    by_name = {t["name"]: t for t in tool_specs}
    if "search_documents" in by_name:
        return by_name["search_documents"]
    for spec in tool_specs:
        if re.search(r"search|retriev|lookup|query|find", spec["name"], re.IGNORECASE):
            return spec
    for spec in tool_specs:
        schema = tool_schema(spec)
        if any(
            schema.get("properties", {}).get(r, {}).get("type") == "string"
            for r in schema.get("required", [])
        ):
            return spec
    return None


def tool_schema(spec: ToolSpec) -> dict[str, Any]:
    """The tool's input JSON schema (Strands nests it under ``inputSchema.json``)."""
    schema = spec.get("inputSchema", {})
    return dict(schema.get("json", schema)) if isinstance(schema, dict) else {}


def tool_input(spec: ToolSpec, query: str, results: int) -> dict[str, Any]:
    """Arguments for a search call: string params get the query, count-like ints ``results``."""
    schema = tool_schema(spec)
    out: dict[str, Any] = {}
    props = schema.get("properties", {})
    required = set(schema.get("required", []))
    for name, prop in props.items():
        kind = prop.get("type")
        if kind == "string" and (name in required or re.search(r"query|question|text|q$", name)):
            out[name] = query
        elif kind == "integer" and re.search(r"max|k$|limit|count|top|num", name):
            out[name] = results
        elif name in required and "default" in prop:
            out[name] = prop["default"]
    return out


def fill_schema(schema: dict[str, Any], answer: str, defs: dict[str, Any] | None = None) -> Any:
    """Fill a JSON schema from a composed answer: strings get the answer (or its first
    line for short fields), string arrays get its list items, numbers 0, booleans False."""
    defs = defs if defs is not None else schema.get("$defs", {})
    if "$ref" in schema:
        return fill_schema(defs.get(schema["$ref"].rsplit("/", 1)[-1], {}), answer, defs)
    for key in ("anyOf", "oneOf", "allOf"):
        if key in schema:
            options = [o for o in schema[key] if o.get("type") != "null"] or schema[key]
            return fill_schema(options[0], answer, defs)
    kind = schema.get("type")
    if kind == "object" or "properties" in schema:
        return {name: fill_schema(prop, answer, defs) for name, prop in schema.get("properties", {}).items()}
    if kind == "array":
        items = [re.sub(r"^\s*(?:[-*•]|\d+[.)])\s+", "", ln).strip() for ln in answer.splitlines()]
        items = [i for i in items if i and not i.startswith(("#", "_"))]
        if schema.get("maxItems"):
            items = items[: schema["maxItems"]]
        return [fill_schema(schema.get("items", {"type": "string"}), item, defs) for item in items]
    if kind == "integer":
        return int(schema.get("minimum", 0))
    if kind == "number":
        return float(schema.get("minimum", 0))
    if kind == "boolean":
        return False
    value = answer.strip()
    if schema.get("maxLength"):
        value = value[: schema["maxLength"]]
    return value
