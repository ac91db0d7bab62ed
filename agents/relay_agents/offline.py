"""The offline model: a deterministic Strands ``Model`` that needs no network and no LLM.

It does real, extractive work with well-kept libraries (see :mod:`relay_agents.text`):
BM25 retrieval (``bm25s``) over tool results, LexRank-style TF-IDF sentence centrality
(scikit-learn) for summaries, and YAKE! keyphrases (``yake``) for search queries and plan
questions. Every sentence of substance it writes is copied from its inputs (the prompt or
tool results); only short connective headings and labels are its own. Every report-like
text it writes carries :data:`OFFLINE_NOTICE`.

How it knows its role: the agent's system prompt carries ``[relay-role: <role>]``
(:mod:`relay_agents.prompts`), and its inputs arrive in XML-style tags. Without a marker it
acts as a generic extractive summariser of the prompt and tool results.

Tool loop (the real Strands one): when the agent has tools and the current turn (the
messages since the last user text) has no tool calls yet, :meth:`OfflineModel.stream`
emits one ``toolUse`` for a search-like tool (``search_documents`` preferred) with a query
built from the prompt's keyphrases and stops with ``stopReason: "tool_use"``. Strands runs
the tool and calls the model again with the ``toolResult``; the model then composes the
answer from those results, cites them by title and URI and stops with ``"end_turn"``.
When ``tool_choice`` forces a tool (Strands' structured output), it emits a ``toolUse`` for
that tool whose input is filled from the composed answer according to the tool's schema.

Output is a pure function of (system prompt, messages, tool specs, config): the same input
always streams the same events, apart from the measured ``latencyMs`` in ``metadata``.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import time
from collections.abc import AsyncGenerator, AsyncIterable
from dataclasses import dataclass, field
from typing import Any, TypedDict, TypeVar

from pydantic import BaseModel
from strands.models import Model
from strands.types.content import Messages
from strands.types.streaming import StreamEvent
from strands.types.tools import ToolSpec

from . import text as tx
from .prompts import detect_role, read_tag

T = TypeVar("T", bound=BaseModel)

#: The line every report-like text from the offline model carries.
OFFLINE_NOTICE = "_Written by Relay's offline extractive model: no LLM provider is configured._"
OFFLINE_MODEL_ID = "relay-offline-extractive"

_CITE_RE = re.compile(r"\s*\[(\d+)\]")
_RISK_RE = re.compile(
    r"\b(limit|quota|maximum|minimum|fail|failure|error|throttl|timeout|timed out|expire|cost|charge|billing|"
    r"must|cannot|can't|not supported|unsupported|deprecat|risk|secur|permission|denied|restrict|only)\w*",
    re.IGNORECASE,
)
_UNCERTAIN_RE = re.compile(
    r"\b(may|might|optional|optionally|depends|unless|if you|can be|could)\b", re.IGNORECASE
)


class OfflineConfig(TypedDict, total=False):
    """Offline model configuration.

    Attributes:
        model_id: shown in provenance (default ``relay-offline-extractive``).
        max_sentences: sentences in a research answer (default 6).
        search_results: ``max_results`` it asks ``search_documents`` for (default 5).
    """

    model_id: str
    max_sentences: int
    search_results: int


@dataclass
class Source:
    """A passage the model received from a tool."""

    ref: int
    title: str
    uri: str
    text: str
    score: float = 0.0


@dataclass
class Turn:
    """What the model sees in the current turn."""

    prompt: str
    tool_calls: int = 0
    sources: list[Source] = field(default_factory=list)
    tool_texts: list[str] = field(default_factory=list)


def _system_text(system_prompt: str | None, system_prompt_content: list[Any] | None) -> str:
    if system_prompt:
        return system_prompt
    return "\n".join(b.get("text", "") for b in system_prompt_content or [] if isinstance(b, dict))


def _current_turn(messages: Messages) -> Turn:
    """The last user text and every tool call/result after it."""
    start = 0
    for i in range(len(messages) - 1, -1, -1):
        msg = messages[i]
        if msg.get("role") == "user" and any("text" in b for b in msg.get("content", [])):
            start = i
            break
    prompt = (
        "\n".join(b["text"] for b in messages[start].get("content", []) if "text" in b) if messages else ""
    )
    turn = Turn(prompt=prompt)
    names: dict[str, str] = {}
    seen: dict[str, Source] = {}
    for msg in messages[start + 1 :]:
        for block in msg.get("content", []):
            if "toolUse" in block:
                turn.tool_calls += 1
                names[block["toolUse"].get("toolUseId", "")] = block["toolUse"].get("name", "tool")
            if "toolResult" in block:
                result = block["toolResult"]
                if result.get("status") == "error":
                    continue
                tool_name = names.get(result.get("toolUseId", ""), "tool")
                for item in result.get("content", []):
                    payload: Any = item.get("json")
                    if payload is None and "text" in item:
                        try:
                            payload = json.loads(item["text"])
                        except ValueError:
                            payload = None
                        if not isinstance(payload, dict):
                            turn.tool_texts.append(item["text"])
                            turn.sources.append(
                                Source(
                                    len(seen) + 1 + len(turn.tool_texts) * 1000,
                                    tool_name,
                                    f"tool://{tool_name}",
                                    item["text"],
                                )
                            )
                            continue
                    for hit in payload.get("results", []) if isinstance(payload, dict) else []:
                        uri = str(hit.get("uri", ""))
                        if not uri or not hit.get("text"):
                            continue
                        if uri in seen:
                            if hit["text"] not in seen[uri].text:
                                seen[uri].text += "\n" + hit["text"]
                            continue
                        ref = int(hit.get("ref") or len(seen) + 1)
                        seen[uri] = Source(
                            ref,
                            str(hit.get("title") or uri),
                            uri,
                            str(hit["text"]),
                            float(hit.get("score", 0)),
                        )
    turn.sources = [s for s in turn.sources if s.uri.startswith("tool://")] + list(seen.values())
    # Renumber free-text tool outputs after the numbered hits.
    taken = {s.ref for s in seen.values()}
    n = 1
    for s in turn.sources:
        if s.uri.startswith("tool://"):
            while n in taken:
                n += 1
            s.ref = n
            taken.add(n)
    turn.sources.sort(key=lambda s: s.ref)
    return turn


def _query_from(text: str, limit: int = 4) -> str:
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


def _pick_tool(tool_specs: list[ToolSpec]) -> ToolSpec | None:
    """``search_documents``, else a tool named like search/retrieve/lookup, else the first
    tool taking a required string argument."""
    by_name = {t["name"]: t for t in tool_specs}
    if "search_documents" in by_name:
        return by_name["search_documents"]
    for spec in tool_specs:
        if re.search(r"search|retriev|lookup|query|find", spec["name"], re.IGNORECASE):
            return spec
    for spec in tool_specs:
        schema = _schema(spec)
        if any(
            schema.get("properties", {}).get(r, {}).get("type") == "string"
            for r in schema.get("required", [])
        ):
            return spec
    return None


def _schema(spec: ToolSpec) -> dict[str, Any]:
    schema = spec.get("inputSchema", {})
    return dict(schema.get("json", schema)) if isinstance(schema, dict) else {}


def _tool_input(spec: ToolSpec, query: str, results: int) -> dict[str, Any]:
    """Arguments for a search call: string params get the query, count-like ints ``results``."""
    schema = _schema(spec)
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


def _fill_schema(schema: dict[str, Any], answer: str, defs: dict[str, Any] | None = None) -> Any:
    """Fill a JSON schema from a composed answer: strings get the answer (or its first
    line for short fields), string arrays get its list items, numbers 0, booleans False."""
    defs = defs if defs is not None else schema.get("$defs", {})
    if "$ref" in schema:
        return _fill_schema(defs.get(schema["$ref"].rsplit("/", 1)[-1], {}), answer, defs)
    for key in ("anyOf", "oneOf", "allOf"):
        if key in schema:
            options = [o for o in schema[key] if o.get("type") != "null"] or schema[key]
            return _fill_schema(options[0], answer, defs)
    kind = schema.get("type")
    if kind == "object" or "properties" in schema:
        return {name: _fill_schema(prop, answer, defs) for name, prop in schema.get("properties", {}).items()}
    if kind == "array":
        items = [re.sub(r"^\s*(?:[-*•]|\d+[.)])\s+", "", ln).strip() for ln in answer.splitlines()]
        items = [i for i in items if i and not i.startswith(("#", "_"))]
        if schema.get("maxItems"):
            items = items[: schema["maxItems"]]
        return [_fill_schema(schema.get("items", {"type": "string"}), item, defs) for item in items]
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


def _strip_cites(sentence: str) -> str:
    return _CITE_RE.sub("", sentence).strip()


def _sentences_with_sources(sources: list[Source]) -> tuple[list[str], list[int]]:
    sentences: list[str] = []
    owners: list[int] = []
    for src in sources:
        for s in tx.split_sentences(src.text):
            if len(s) > 400:
                s = s[:400].rsplit(" ", 1)[0] + "…"
            sentences.append(s)
            owners.append(src.ref)
    return sentences, owners


# ---------------------------------------------------------------- composition by role


def compose_researcher(prompt: str, sources: list[Source], max_sentences: int = 6) -> str:
    """An answer: the most relevant, central sentences of the passages, each cited ``[n]``,
    then the cited sources (title + URI)."""
    question = read_tag(prompt, "question") or prompt
    if not sources:
        return f"No passage in the corpus matched the question: {question}\n\n{OFFLINE_NOTICE}"
    sentences, owners = _sentences_with_sources(sources)
    scores = tx.rank_sentences(sentences, query=question)
    picked = tx.select(sentences, scores, max_sentences)
    by_ref = {s.ref: s for s in sources}
    cited: list[int] = []
    lines: list[str] = []
    for i in picked:
        ref = owners[i]
        if ref not in cited:
            cited.append(ref)
        lines.append(f"- {sentences[i]} [{ref}]")
    if not lines:  # only fragments: quote the best passage's start
        best = sources[0]
        lines.append(f"- {tx.clip_words(best.text, 60)} [{best.ref}]")
        cited.append(best.ref)
    cited_lines = [f"- [{r}] [{by_ref[r].title}]({by_ref[r].uri})" for r in sorted(cited)]
    return "\n".join(lines) + "\n\n**Sources**\n" + "\n".join(cited_lines) + f"\n\n{OFFLINE_NOTICE}"


_QUESTION_TEMPLATES = (
    "What is {s}, and how does it work?",
    "How does {s} relate to {topic}?",
    "What limits and quotas apply to {s}?",
    "How are errors and retries handled in {s}?",
    "How is {s} secured?",
    "How is {s} monitored?",
    "What drives the cost of {s}?",
    "What are the common usage patterns for {s}?",
    "What alternatives to {s} exist?",
    "How is {s} tested?",
    "How is {s} configured?",
    "What changed recently in {s}?",
)


def compose_planner(prompt: str, sources: list[Source]) -> str:
    """``count`` distinct questions from the topic's keyphrases and the corpus hits'
    keyphrases/titles, one per line, numbered. The topic itself comes first when it is a
    question. Question frames are :data:`_QUESTION_TEMPLATES` filled with those phrases."""
    topic = " ".join((read_tag(prompt, "topic") or prompt).split())
    try:
        count = max(1, int(read_tag(prompt, "count") or 3))
    except ValueError:
        count = 3
    subjects: list[str] = []

    def add(phrase: str) -> None:
        phrase = " ".join(phrase.split()).strip(" .,:;?!")
        if phrase and phrase.lower() not in {s.lower() for s in subjects}:
            subjects.append(phrase)

    for kp in tx.keyphrases(topic, top=6) or [topic]:
        add(kp)
    for src in sources:
        add(src.title.split(" — ")[-1])
    if sources:
        passages = re.sub(
            r"^Request parameters:$", "", "\n".join(s.text for s in sources), flags=re.MULTILINE
        )
        for kp in tx.keyphrases(passages, top=8):
            add(kp)
    if not subjects:
        add(topic)
    questions: list[str] = []
    seen: set[str] = set()

    def push(q: str) -> None:
        key = q.lower()
        if key not in seen and len(questions) < count:
            seen.add(key)
            questions.append(q)

    if topic.endswith("?"):
        push(topic)
    short_topic = tx.clip_words(topic.rstrip("?"), 12)
    # Diagonal walk: subject i gets template (i + round) so neighbours differ in both.
    for round_ in range(len(_QUESTION_TEMPLATES)):
        for i, subject in enumerate(subjects):
            template = _QUESTION_TEMPLATES[(i + round_) % len(_QUESTION_TEMPLATES)]
            if "{topic}" in template and subject.lower() in short_topic.lower():
                continue
            # Later subjects carry the main subject as context, for the researcher's search.
            shown = (
                subject if i == 0 or subjects[0].lower() in subject.lower() else f"{subject} ({subjects[0]})"
            )
            push(template.format(s=shown, topic=short_topic))
        if len(questions) >= count:
            break
    n = 1
    while len(questions) < count:  # very short inputs: number the remaining angles
        push(f"What else should be known about {subjects[(n - 1) % len(subjects)]} (angle {n})?")
        n += 1
    return "\n".join(f"{i}. {q}" for i, q in enumerate(questions, 1)) + f"\n\n{OFFLINE_NOTICE}"


@dataclass
class _Section:
    heading: str
    body: str


def _sections(markdown: str) -> list[_Section]:
    """Level-2 sections of a Markdown document (``## heading``), the preamble as ``""``."""
    sections: list[_Section] = []
    heading = ""
    lines: list[str] = []
    for line in markdown.splitlines():
        if line.startswith("## "):
            sections.append(_Section(heading, "\n".join(lines)))
            heading, lines = line[3:].strip(), []
        else:
            lines.append(line)
    sections.append(_Section(heading, "\n".join(lines)))
    return [s for s in sections if s.heading or s.body.strip()]


def _research_sentences(research: str) -> list[str]:
    return [s for s in tx.split_sentences(tx.markdown_to_text(research)) if len(s.split()) >= 5]


def compose_analyst(prompt: str) -> str:
    """Key insights (central sentences), risks (sentences with limit/failure/cost cues),
    open questions (failed questions, uncovered keyphrases, hedged sentences) and, with
    feedback, a section quoting it and the research sentences that answer its keyphrases;
    the feedback also biases which insights are picked."""
    topic = read_tag(prompt, "topic") or ""
    research = read_tag(prompt, "research") or ""
    feedback = read_tag(prompt, "feedback")
    revision = read_tag(prompt, "revision") or "0"
    sentences = _research_sentences(research)
    bias = f"{topic} {feedback}" if feedback else topic
    scores = tx.rank_sentences(sentences, query=bias)
    out = [f"# Analysis: {topic}", "", OFFLINE_NOTICE, "", f"_Revision {revision}._", ""]

    out += ["## Key insights", ""]
    insights = tx.select(sentences, scores, 5)
    out += [f"- {sentences[i]}" for i in insights] or [
        "- The research holds no complete sentences to analyse."
    ]

    out += ["", "## Risks", ""]
    risky = [i for i, s in enumerate(sentences) if _RISK_RE.search(s) and i not in insights]
    risk_texts = [sentences[i] for i in risky]
    risk_scores = tx.rank_sentences(risk_texts, query=f"{bias} limit failure error cost")
    picked = tx.select(risk_texts, risk_scores, 4)
    out += [f"- {sentences[risky[j]]}" for j in picked] or [
        "- No sentence in the research states a limit, failure mode or cost."
    ]

    out += ["", "## Open questions", ""]
    opens: list[str] = []
    for section in _sections(research):
        if "_No answer" in section.body and section.heading:
            opens.append(f"- Unanswered: {section.heading}")
    research_tokens = set(tx.tokenize(research))
    wanted = tx.keyphrases(topic, top=5) + (tx.keyphrases(feedback, top=3) if feedback else [])
    for kp in wanted:
        if not set(tx.tokenize(kp)) <= research_tokens:
            opens.append(f"- Not covered by any source: “{kp}”.")
    hedged = [i for i, s in enumerate(sentences) if _UNCERTAIN_RE.search(s) and i not in insights]
    for i in sorted(hedged, key=lambda i: -scores[i])[:2]:
        opens.append(f"- Conditional in the sources: {sentences[i]}")
    out += opens or ["- None found: every topic keyphrase is covered by the research."]

    if feedback:
        out += ["", f"## Reviewer feedback addressed (revision {revision})", ""]
        out += ["> " + line for line in feedback.splitlines()] + [""]
        for kp in tx.keyphrases(feedback, top=3) or [feedback]:
            relevance = tx.bm25_scores([tx.tokenize(s) for s in sentences], tx.tokenize(kp))
            if len(relevance) and relevance.max() > 0:
                best = int(relevance.argmax())
                out.append(f"- **{kp}**: {sentences[best]}")
            else:
                out.append(
                    f"- **{kp}**: no sentence in the research mentions it, so it is listed under Open questions."
                )
        out.append("- Key insights above were re-ranked towards the feedback's terms.")
    return "\n".join(out).rstrip() + "\n"


_LOCAL_SOURCE_RE = re.compile(r"^\s*-\s*\[(\d+)\]\s*\[([^\]]+)\]\(([^)\s]+)\)")
_GLOBAL_SOURCE_RE = re.compile(r"^\s*(\d+)\.\s+(.+?)\s+<([^>\s]+)>\s*$")
_LINK_SOURCE_RE = re.compile(r"\[([^\]]+)\]\(([a-z][a-z0-9+.-]*://[^)\s]+)\)")


def research_sources(research: str) -> list[tuple[int, str, str]]:
    """``(number, title, uri)`` of the research's sources: its ``## Sources`` list
    (``n. Title <uri>``) when present, else every Markdown link with a URI, numbered."""
    found: list[tuple[int, str, str]] = []
    for section in _sections(research):
        if section.heading.lower() == "sources":
            for line in section.body.splitlines():
                m = _GLOBAL_SOURCE_RE.match(line)
                if m:
                    found.append((int(m.group(1)), m.group(2), m.group(3)))
    if found:
        return found
    seen: dict[str, tuple[int, str, str]] = {}
    for title, uri in _LINK_SOURCE_RE.findall(research):
        if uri not in seen:
            seen[uri] = (len(seen) + 1, title, uri)
    return list(seen.values())


def compose_writer(prompt: str) -> str:
    """The report: title, executive summary (central sentences of research + analysis),
    findings per question (its best sentences, citations renumbered to the report's source
    list), the analysis (headings demoted), approval notes, and the numbered sources."""
    topic = read_tag(prompt, "topic") or "Research report"
    research = read_tag(prompt, "research") or ""
    analysis = read_tag(prompt, "analysis") or ""
    approval = read_tag(prompt, "approval_feedback")
    sources = research_sources(research)
    global_by_uri = {uri: n for n, _title, uri in sources}

    out = [f"# {topic}", "", OFFLINE_NOTICE, "", "## Executive summary", ""]
    insights = re.search(r"^## Key insights\s*$(.*?)(?=^## |\Z)", analysis, flags=re.MULTILINE | re.DOTALL)
    pool = _research_sentences(research) + _research_sentences(insights.group(1) if insights else "")
    pool = list(dict.fromkeys(_strip_cites(s) for s in pool))
    summary_idx = tx.select(pool, tx.rank_sentences(pool, query=topic), 4)
    out += [" ".join(pool[i] for i in sorted(summary_idx)) or "The research holds no complete sentences."]

    out += ["", "## Findings", ""]
    question_sections = [s for s in _sections(research) if s.heading and s.heading.lower() not in {"sources"}]
    if not question_sections:
        question_sections = [_Section("Research", research)]
    for section in question_sections:
        heading = re.sub(r"^q\d+:\s*", "", section.heading)
        out += [f"### {heading}", ""]
        if "_No answer" in section.body:
            out += ["_No answer: this research branch failed._", ""]
            continue
        local = {
            int(m.group(1)): m.group(3) for m in map(_LOCAL_SOURCE_RE.match, section.body.splitlines()) if m
        }
        sents = [s for s in tx.split_sentences(tx.markdown_to_text(section.body)) if len(s.split()) >= 5]
        picked = tx.select(sents, tx.rank_sentences(sents, query=heading), 3)

        def renumber(match: re.Match[str], local: dict[int, str] = local) -> str:
            uri = local.get(int(match.group(1)))
            n = global_by_uri.get(uri or "")
            return f" [{n}]" if n else ""

        lines = [f"- {_CITE_RE.sub(renumber, sents[i])}" for i in sorted(picked)]
        out += (lines or ["- The research for this question holds no complete sentences."]) + [""]

    out += ["## Analysis", ""]
    for line in analysis.splitlines():
        if line.startswith("# ") or line.strip() == OFFLINE_NOTICE or line.strip().startswith("_Revision"):
            continue
        out.append("#" + line if line.startswith("## ") else line)
    if approval:
        out += ["", "## Approval notes", ""] + ["> " + line for line in approval.splitlines()]
    out += ["", "## Sources", ""]
    out += [f"{n}. [{title}]({uri})" for n, title, uri in sources] or ["_No sources were cited._"]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(out)).rstrip() + "\n"


def compose_generic(prompt: str, sources: list[Source], max_sentences: int = 6) -> str:
    """No role marker: an extractive summary of the tool results (cited) or the prompt."""
    if sources:
        return compose_researcher(prompt, sources, max_sentences)
    summary = tx.summarize(prompt, k=max_sentences)
    return ("\n".join(f"- {s}" for s in summary) or prompt.strip()) + f"\n\n{OFFLINE_NOTICE}"


def compose(role: str | None, turn: Turn, max_sentences: int = 6) -> str:
    """What the offline model answers as ``role`` for this turn."""
    if role == "planner":
        return compose_planner(turn.prompt, turn.sources)
    if role == "researcher":
        return compose_researcher(turn.prompt, turn.sources, max_sentences)
    if role == "analyst":
        return compose_analyst(turn.prompt)
    if role == "writer":
        return compose_writer(turn.prompt)
    return compose_generic(turn.prompt, turn.sources, max_sentences)


# ---------------------------------------------------------------------- the Model


class OfflineModel(Model):
    """Deterministic, extractive, offline Strands model (see the module docstring).

    Args:
        **config: :class:`OfflineConfig` fields.
    """

    def __init__(self, **config: Any):
        self.config: dict[str, Any] = {"model_id": OFFLINE_MODEL_ID, "max_sentences": 6, "search_results": 5}
        self.update_config(**config)

    def update_config(self, **model_config: Any) -> None:
        """Update the configuration (``model_id``, ``max_sentences``, ``search_results``)."""
        unknown = set(model_config) - set(OfflineConfig.__annotations__) - {"context_window_limit"}
        if unknown:
            raise ValueError(f"unknown offline model settings: {sorted(unknown)}")
        self.config.update(model_config)

    def get_config(self) -> dict[str, Any]:
        """The configuration (a copy)."""
        return dict(self.config)

    def _answer(self, system: str, messages: Messages) -> tuple[str | None, Turn, str]:
        role = detect_role(system)
        turn = _current_turn(messages)
        return role, turn, compose(role, turn, int(self.config["max_sentences"]))

    async def stream(
        self,
        messages: Messages,
        tool_specs: list[ToolSpec] | None = None,
        system_prompt: str | None = None,
        *,
        tool_choice: Any | None = None,
        system_prompt_content: list[Any] | None = None,
        **kwargs: Any,
    ) -> AsyncIterable[StreamEvent]:
        """Stream one assistant message as Bedrock-shaped events (see the module docstring).

        Yields:
            ``messageStart``, ``contentBlockStart``/``contentBlockDelta``/``contentBlockStop``
            (text, or a ``toolUse`` with JSON input), ``messageStop`` with ``stopReason``
            ``"tool_use"`` or ``"end_turn"``, and ``metadata`` (token usage estimated at four
            characters per token; measured latency).
        """
        started = time.perf_counter()
        system = _system_text(system_prompt, system_prompt_content)
        role = detect_role(system)
        turn = _current_turn(messages)
        specs = list(tool_specs or [])
        forced = tool_choice.get("tool", {}).get("name") if isinstance(tool_choice, dict) else None
        forced_spec = next((t for t in specs if t["name"] == forced), None) if forced else None

        tool_call: tuple[str, dict[str, Any]] | None = None
        answer = ""
        if forced_spec is not None:
            answer = compose(role, turn, int(self.config["max_sentences"]))
            tool_call = (forced_spec["name"], _fill_schema(_schema(forced_spec), answer))
        elif specs and turn.tool_calls == 0 and role in (None, "planner", "researcher"):
            spec = _pick_tool(specs)
            if spec is not None:
                subject = read_tag(turn.prompt, "question") or read_tag(turn.prompt, "topic") or turn.prompt
                tool_call = (
                    spec["name"],
                    _tool_input(spec, _query_from(subject), int(self.config["search_results"])),
                )
        if tool_call is None:
            answer = compose(role, turn, int(self.config["max_sentences"]))

        yield {"messageStart": {"role": "assistant"}}
        if tool_call is not None:
            name, arguments = tool_call
            payload = json.dumps(arguments, ensure_ascii=False, sort_keys=True)
            digest = hashlib.sha256(f"{len(messages)}\n{name}\n{payload}".encode()).hexdigest()[:24]
            yield {
                "contentBlockStart": {
                    "contentBlockIndex": 0,
                    "start": {"toolUse": {"toolUseId": f"tooluse_{digest}", "name": name}},
                }
            }
            yield {"contentBlockDelta": {"contentBlockIndex": 0, "delta": {"toolUse": {"input": payload}}}}
            yield {"contentBlockStop": {"contentBlockIndex": 0}}
            yield {"messageStop": {"stopReason": "tool_use"}}
            output_chars = len(payload)
        else:
            yield {"contentBlockStart": {"contentBlockIndex": 0, "start": {}}}
            for chunk in re.split(r"(?<=\n\n)", answer):
                if chunk:
                    yield {"contentBlockDelta": {"contentBlockIndex": 0, "delta": {"text": chunk}}}
            yield {"contentBlockStop": {"contentBlockIndex": 0}}
            yield {"messageStop": {"stopReason": "end_turn"}}
            output_chars = len(answer)
        input_chars = len(system) + sum(len(json.dumps(m.get("content", []), default=str)) for m in messages)
        input_tokens, output_tokens = math.ceil(input_chars / 4), math.ceil(output_chars / 4)
        yield {
            "metadata": {
                "usage": {
                    "inputTokens": input_tokens,
                    "outputTokens": output_tokens,
                    "totalTokens": input_tokens + output_tokens,
                },
                "metrics": {"latencyMs": int((time.perf_counter() - started) * 1000)},
            }
        }

    async def structured_output(
        self, output_model: type[T], prompt: Messages, system_prompt: str | None = None, **kwargs: Any
    ) -> AsyncGenerator[dict[str, T | Any], None]:
        """Compose the answer for ``prompt`` and fill ``output_model``'s schema from it.

        Yields:
            ``{"output": instance}``.

        Raises:
            pydantic.ValidationError: the composed answer cannot fill the model.
        """
        _role, _turn, answer = self._answer(system_prompt or "", prompt)
        data = _fill_schema(output_model.model_json_schema(), answer)
        yield {"output": output_model.model_validate(data)}
