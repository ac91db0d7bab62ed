"""Pydantic models for every event and result that crosses a state of the workflow.

Handlers parse their event into one of these at the edge and return
``model_dump(mode="json")``. Field names are the contract with the ASL file
(``statemachines/research_report.asl.json``): its ``Parameters`` build the events
and its ``ResultSelector`` blocks read the results.

Payload discipline: Step Functions caps each state's input and
output at 262,144 bytes (AWS Step Functions quotas, "Maximum input or output size
for a task, state, or execution"). Text that grows with the corpus or the report
lives in S3 and state data carries :class:`ArtifactRef` values plus summaries that
are capped here (``SUMMARY_MAX_CHARS``), so every payload stays under 32 KiB.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from aws_lambda_powertools.utilities.parser.models import EventBridgeModel
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    EmailStr,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

#: Longest research topic accepted, in characters.
TOPIC_MAX_CHARS = 2000
#: Most research questions per workflow. Each question is one Map iteration; 40 is the
#: Step Functions inline Map concurrency ceiling (Step Functions developer guide, Map state: inline concurrency is at most 40), kept as the fan-out
#: bound so MaxConcurrency can always equal the question count.
MAX_QUESTIONS = 40
#: Summaries carried in state data are cut to this many characters.
SUMMARY_MAX_CHARS = 280
#: The analysis summary carried to the approval email and page: three state-data summaries.
ANALYSIS_SUMMARY_MAX_CHARS = SUMMARY_MAX_CHARS * 3
#: Longest reviewer feedback accepted, in characters.
FEEDBACK_MAX_CHARS = 4000
#: Standard workflows run at most one year (AWS Step Functions quotas), so a task
#: token can wait at most that long, in seconds.
MAX_APPROVAL_TIMEOUT_SECONDS = 365 * 24 * 3600
#: A Standard execution runs at most one year (AWS Step Functions quotas), in seconds.
MAX_EXECUTION_SECONDS = 365 * 24 * 3600
#: What the execution timeout allows for research, analysis and writing beside the
#: approval rounds: one day, in seconds (``stacks/workflow.py``, ``execution_timeout``).
WORK_BUDGET_SECONDS = 24 * 3600
#: AgentCore InvokeAgentRuntime requires runtimeSessionId of at least 33 characters
#: (Amazon Bedrock AgentCore API reference, InvokeAgentRuntime).
MIN_SESSION_ID_CHARS = 33

#: C0 and C1 control characters and DEL, except tab (U+0009) and newline (U+000A): what
#: text fields that reach emails, pages and reports may not hold (Unicode category Cc).
CONTROL_CHARACTERS_RE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
CONTROL_CHARACTERS_RULE = "must not contain control characters (only tab and newline are allowed)"


def _plain_text(value: Any) -> Any:
    """Refuse control characters in a text field, after turning CRLF into LF (browsers
    submit a textarea's line breaks as CRLF: HTML standard, "form submission").
    Non-strings pass through to the field's own type check."""
    if not isinstance(value, str):
        return value
    value = value.replace("\r\n", "\n")
    if CONTROL_CHARACTERS_RE.search(value):
        raise PydanticCustomError("control_characters", CONTROL_CHARACTERS_RULE)
    return value


#: Marks a ``str`` field as plain text: no control characters but tab and newline.
PlainText = BeforeValidator(_plain_text)

NonBlank = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]
Sha256Hex = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
#: Step Functions execution names: 1-80 characters of letters, digits, ``-`` and ``_``
#: (StartExecution API reference; we allow the ASCII subset only).
EXECUTION_NAME_RE = re.compile(r"^[A-Za-z0-9_-]{1,80}$")
WorkflowId = Annotated[str, StringConstraints(pattern=EXECUTION_NAME_RE.pattern)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=False)


def utc_now() -> str:
    """The current time as ISO-8601 UTC with seconds, e.g. ``2026-11-21T14:00:00Z``
    (the format of every timestamp in the workflow records)."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def clip(text: str, limit: int = SUMMARY_MAX_CHARS) -> str:
    """Cut ``text`` to at most ``limit`` characters on a word boundary, adding an ellipsis."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    cut = text[: limit - 1].rsplit(" ", 1)[0]
    return cut + "…"


class ArtifactRef(_Model):
    """A pointer to an object in the artifact bucket.

    Attributes:
        bucket: S3 bucket name.
        key: object key.
        bytes: object size in bytes.
        sha256: lowercase hex SHA-256 of the object body, checked on read.
    """

    bucket: NonBlank
    key: NonBlank
    bytes: int = Field(ge=0)
    sha256: Sha256Hex


class WorkflowRequest(_Model):
    """The execution input: what a user asks for, validated, with defaults applied.

    Every field but ``topic`` is optional. Unknown fields are rejected so typos
    (``question`` for ``questions``) fail loudly instead of being ignored. ``topic``
    and ``approver`` refuse control characters other than tab and newline
    (:data:`CONTROL_CHARACTERS_RULE`). The HTTP API validates with ``strict=True``
    (:func:`relay_core.api_models.parse_workflow_request`): JSON types are not coerced.
    """

    topic: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=TOPIC_MAX_CHARS), PlainText]
    questions: int = Field(default=3, ge=1, le=MAX_QUESTIONS, description="research questions (Map iterations)")
    max_concurrency: int = Field(default=3, ge=1, le=MAX_QUESTIONS, description="Map MaxConcurrency")
    tolerated_failure_percentage: float = Field(
        default=34, ge=0, le=100, description="Map ToleratedFailurePercentage: failed questions tolerated"
    )
    approval_timeout_seconds: int = Field(
        default=24 * 3600, ge=1, le=MAX_APPROVAL_TIMEOUT_SECONDS, description="RequestApproval TimeoutSeconds"
    )
    max_revisions: int = Field(default=2, ge=0, le=10, description="rejections sent back for revision")
    approver: Annotated[EmailStr | None, PlainText] = Field(default=None, description="who gets the approval email (else the topic subscribers)")

    @property
    def execution_seconds_needed(self) -> int:
        """The execution time this request may take: every approval round waiting its full
        window (the first and one per revision), plus :data:`WORK_BUDGET_SECONDS`."""
        return execution_seconds_needed(self.approval_timeout_seconds, self.max_revisions)

    def timeout_conflict(self, execution_timeout_seconds: int | None) -> str | None:
        """One line naming both numbers when this request cannot fit an execution timeout
        of ``execution_timeout_seconds`` (``None``: no timeout, nothing to refuse), else ``None``."""
        needed = self.execution_seconds_needed
        if execution_timeout_seconds is None or needed <= execution_timeout_seconds:
            return None
        return (
            f"approval_timeout_seconds {self.approval_timeout_seconds} × (max_revisions {self.max_revisions} + 1)"
            f" + {WORK_BUDGET_SECONDS} s for research and writing = {needed} s, more than the deployed"
            f" execution timeout of {execution_timeout_seconds} s; ask for a shorter approval window or fewer revisions"
        )


def execution_seconds_needed(approval_timeout_seconds: int, max_revisions: int) -> int:
    """``approval_timeout_seconds × (max_revisions + 1) + WORK_BUDGET_SECONDS``: the longest
    a workflow with these settings may run, in seconds."""
    return approval_timeout_seconds * (max_revisions + 1) + WORK_BUDGET_SECONDS


class ResearchQuestion(_Model):
    """One Map iteration: a question and the AgentCore runtime that answers it."""

    id: Annotated[str, StringConstraints(pattern=r"^q\d{2}$")]
    question: NonBlank
    runtime_arn: NonBlank
    session_id: Annotated[str, StringConstraints(min_length=MIN_SESSION_ID_CHARS, max_length=100)]


class Review(_Model):
    """Where the revision loop stands: 0 on the first analysis, +1 per rejection."""

    revision: int = Field(default=0, ge=0)
    feedback: str | None = None


class Plan(_Model):
    workflow_id: WorkflowId
    topic: str
    questions: list[ResearchQuestion] = Field(min_length=1, max_length=MAX_QUESTIONS)


class PlanResearchEvent(_Model):
    """PlanResearch's Lambda event.

    Attributes:
        workflow_id: the execution name (``$$.Execution.Name``); it is the workflow id.
        execution_arn: ``$$.Execution.Id``.
        request: the raw execution input, validated here into a :class:`WorkflowRequest`.
        default_runtime_arn: the researcher AgentCore runtime (``${ResearcherRuntimeArn}``).
    """

    workflow_id: WorkflowId
    execution_arn: NonBlank
    request: dict[str, Any]
    default_runtime_arn: NonBlank
    redrive_count: int = Field(default=0, ge=0, description="$$.Execution.RedriveCount: 0, then n after the n-th redrive")


class PlanResult(_Model):
    request: WorkflowRequest
    plan: Plan
    review: Review


class ResearcherRequest(_Model):
    """The JSON body the state machine sends to the researcher runtime's ``/invocations``."""

    workflow_id: WorkflowId
    question_id: Annotated[str, StringConstraints(pattern=r"^q\d{2}$")]
    question: NonBlank


class SourceRef(_Model):
    """A corpus document a finding cites.

    Attributes:
        title: the document's title.
        uri: where it lives (``file://…``, ``s3://…``, ``botocore://service/Operation``, …).
        score: its best retrieval score (BM25 or the Knowledge Base's), 0 when unknown.
        ref: the number the finding's text cites it by (``[ref]``), when the researcher
            reported one; ``None`` for callers that number nothing.
    """

    title: str
    uri: str
    score: float = 0.0
    ref: int | None = Field(default=None, ge=1)


class ModelUsage(BaseModel):
    """Model tokens one Task used, in Strands' ``Usage`` shape (``inputTokens``,
    ``outputTokens``) plus the ``model`` id: what :mod:`relay_core.cost` prices. Handlers
    that run an agent put it in their result as ``usage``; the ASL's ResultSelectors do
    not pass it on, so it stays in the execution history only."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, serialize_by_alias=True)

    model: str
    input_tokens: int = Field(ge=0, alias="inputTokens")
    output_tokens: int = Field(ge=0, alias="outputTokens")

    def __add__(self, other: ModelUsage) -> ModelUsage:
        model = self.model if self.model == other.model else f"{self.model}+{other.model}"
        return ModelUsage(model=model, inputTokens=self.input_tokens + other.input_tokens, outputTokens=self.output_tokens + other.output_tokens)


class Finding(_Model):
    """The researcher runtime's JSON answer: a short summary plus the full finding in S3,
    the passages it read (``evidence``: a JSON list of :class:`Evidence` in S3, ``None``
    from a researcher that reports none) and the model tokens the research used
    (``usage``; CompileResearch sums them)."""

    question_id: str
    summary: Annotated[str, StringConstraints(max_length=SUMMARY_MAX_CHARS)]
    sources: list[SourceRef] = Field(default_factory=list, max_length=8)
    finding: ArtifactRef
    evidence: ArtifactRef | None = None
    usage: ModelUsage | None = None


class CompileResearchEvent(_Model):
    """CompileResearch's event. ``findings`` is the ResearchQuestions Map's output
    (``$.findings`` in state data): one entry per question, ``None`` (or an error object)
    where an iteration failed within tolerance."""

    workflow_id: WorkflowId
    topic: str
    questions: list[ResearchQuestion]
    findings: list[Any]


#: Version of the research document's JSON layout (:class:`ResearchDocument`).
RESEARCH_DOCUMENT_VERSION = 1


#: Most passages of one source a research document keeps (the evidence its sentences are
#: checked against; each passage is at most 1,500 characters, ``relay_agents.corpus``).
MAX_SOURCE_PASSAGES = 20


class Evidence(_Model):
    """A passage the researcher read, as it was returned by ``search_documents``: what a
    finding's sentences are grounded in. The researcher writes a finding's evidence as a
    JSON list beside the finding (``findings/<question_id>.evidence.json``).

    Attributes:
        ref: the number the finding cites it by (``[ref]``).
        title: the document's title.
        uri: the document's URI.
        text: the passage (≤ 1,500 characters).
    """

    ref: int = Field(ge=1)
    title: str
    uri: NonBlank
    text: str


class ResearchSource(_Model):
    """One source of a research document, after deduplication by URI.

    Attributes:
        number: its position in :attr:`ResearchDocument.sources`, 1-based, in order of
            first citation; ``research.md`` lists and cites it as ``[number]``.
        title: the document's title (as the first finding citing it gave it).
        uri: the document's URI, the deduplication key.
        passages: the passages of it the researchers read (each once, at most
            :data:`MAX_SOURCE_PASSAGES`): what the quality check grounds sentences
            citing this source in. Empty when the researcher reported none.
    """

    number: int = Field(ge=1)
    title: str
    uri: NonBlank
    passages: list[str] = Field(default_factory=list, max_length=MAX_SOURCE_PASSAGES)


class CitedSource(_Model):
    """A source one finding cites.

    Attributes:
        number: the source's :attr:`ResearchSource.number` in the document.
        ref: the number the finding's own answer cites it by (``[ref]``, the researcher's
            numbering); ``None`` when the researcher did not report one.
    """

    number: int = Field(ge=1)
    ref: int | None = Field(default=None, ge=1)


class ResearchFinding(_Model):
    """What research gave for one planned question.

    Attributes:
        question_id: the question's id (``q01``…).
        question: the question as planned.
        status: ``answered``, or ``failed`` when its Map iteration failed within the
            tolerated percentage (then ``summary``, ``answer_markdown`` and ``sources``
            are empty).
        summary: the researcher's summary (at most ``SUMMARY_MAX_CHARS``).
        answer_markdown: the researcher's full answer, Markdown citing ``[ref]``.
        sources: the sources the answer cites, in the researcher's order.
    """

    question_id: Annotated[str, StringConstraints(pattern=r"^q\d{2}$")]
    question: NonBlank
    status: Literal["answered", "failed"]
    summary: Annotated[str, StringConstraints(max_length=SUMMARY_MAX_CHARS)] = ""
    answer_markdown: str = ""
    sources: list[CitedSource] = Field(default_factory=list)

    @model_validator(mode="after")
    def _failed_is_empty(self) -> ResearchFinding:
        if self.status == "failed" and (self.summary or self.answer_markdown or self.sources):
            raise ValueError(f"{self.question_id}: a failed finding has no summary, answer or sources")
        return self


class ResearchDocument(_Model):
    """The compiled research: CompileResearch writes it as ``research.json`` (beside
    ``research.md``, the same content for people) and AnalyzeResearch and WriteReport
    read it. It is the typed hand-over between those steps: nothing parses
    ``research.md`` back.

    Attributes:
        version: the layout version, 1 (:data:`RESEARCH_DOCUMENT_VERSION`).
        workflow_id: the workflow (execution name) it belongs to.
        topic: the research topic.
        findings: one per planned question, in plan order (answered or failed).
        sources: every cited source once, deduplicated by URI, numbered 1..n.

    Raises:
        pydantic.ValidationError: on construction or parsing, when question ids repeat,
            sources are not numbered 1..n, a URI repeats, or a finding cites a source
            number the document does not have (each message names the field).
    """

    version: Literal[1] = 1
    workflow_id: WorkflowId
    topic: str
    findings: list[ResearchFinding] = Field(min_length=1, max_length=MAX_QUESTIONS)
    sources: list[ResearchSource] = Field(default_factory=list)

    @model_validator(mode="after")
    def _consistent(self) -> ResearchDocument:
        ids = [f.question_id for f in self.findings]
        if len(set(ids)) != len(ids):
            raise ValueError(f"findings: question ids repeat ({', '.join(sorted({i for i in ids if ids.count(i) > 1}))})")
        numbers = [s.number for s in self.sources]
        if numbers != list(range(1, len(numbers) + 1)):
            raise ValueError(f"sources: must be numbered 1..{len(numbers)} in order, got {numbers}")
        uris = [s.uri for s in self.sources]
        if len(set(uris)) != len(uris):
            raise ValueError("sources: each URI must appear once")
        for finding in self.findings:
            for cited in finding.sources:
                if cited.number > len(self.sources):
                    raise ValueError(
                        f"findings.{finding.question_id}.sources: cites source {cited.number}, "
                        f"the document has {len(self.sources)}"
                    )
        return self

    @property
    def answered(self) -> list[ResearchFinding]:
        """The findings with an answer, in plan order."""
        return [f for f in self.findings if f.status == "answered"]

    @property
    def failed_questions(self) -> list[str]:
        """Ids of the questions whose research failed, in plan order."""
        return [f.question_id for f in self.findings if f.status == "failed"]

    def source(self, number: int) -> ResearchSource:
        """The source numbered ``number`` (1-based).

        Raises:
            KeyError: no source has that number.
        """
        if not 1 <= number <= len(self.sources):
            raise KeyError(f"source {number}: the document has {len(self.sources)} sources")
        return self.sources[number - 1]


class CompiledResearch(_Model):
    """CompileResearch's result (``$.research`` in state data).

    Attributes:
        document: ``research.json``, the :class:`ResearchDocument` the next steps read.
        markdown: ``research.md``, the same research for people.
        answered: questions answered.
        failed_questions: ids of the questions whose research failed.
        sources: distinct sources cited.
        usage: the model tokens the answered questions' research used (the findings'
            ``usage`` summed; the Map's child executions are not in the parent's
            history, so this is where the research tokens are reported). Not passed on
            in state data (the ResultSelector drops it).
    """

    document: ArtifactRef
    markdown: ArtifactRef
    answered: int = Field(ge=0)
    failed_questions: list[str]
    sources: int = Field(ge=0)
    usage: ModelUsage | None = None


class AnalyzeEvent(_Model):
    """AnalyzeResearch's event. ``research`` is the research document (``research.json``,
    ``$.research.document`` in state data)."""

    workflow_id: WorkflowId
    topic: str
    research: ArtifactRef
    revision: int = Field(ge=0)
    feedback: str | None = None
    redrive_count: int = Field(default=0, ge=0, description="$$.Execution.RedriveCount: 0, then n after the n-th redrive")


class QuestionCoverage(_Model):
    """Whether one planned question is answered by the assessed text.

    Attributes:
        question_id: ``q01``…
        question: the planned question.
        answered: at least one grounded body sentence reaches the relevance threshold
            (:data:`relay_core.quality.RELEVANCE_THRESHOLD`).
        relevance: the best grounded sentence's relevance, 0..1: the share of the
            question's key words it holds.
    """

    question_id: str
    question: str
    answered: bool
    relevance: float = Field(ge=0, le=1)


#: Longest example sentence a quality assessment quotes, in characters.
QUALITY_EXAMPLE_MAX_CHARS = 200


class QualityAssessment(_Model):
    """How well a report (or an analysis) is supported by its research: lexical figures
    computed by :func:`relay_core.quality.assess` and stored beside the text it assesses
    (``report.quality.json``, ``analysis-r{n}.quality.json``). It checks grounding and
    coverage, not truth.

    Attributes:
        artifact: the assessed artifact's name (``report.md``, ``analysis-r0.md``).
        sentences: body sentences (title, headings, notices, quotes, the Sources and
            Open questions sections excluded).
        cited: body sentences that cite at least one source (``[n]``).
        grounded: cited body sentences whose content words are found in a source they
            cite (:data:`relay_core.quality.GROUNDED_THRESHOLD`).
        repeated: body sentences that repeat an earlier one (:func:`relay_core.quality.repeats`).
        fragments: body sentences that are not prose (:func:`relay_core.prose.fragment_kind`).
        questions: one entry per planned question, in plan order.
        ungrounded_examples, repeated_examples, fragment_examples: up to three of each,
            clipped to :data:`QUALITY_EXAMPLE_MAX_CHARS`.
    """

    version: Literal[1] = 1
    artifact: str
    sentences: int = Field(ge=0)
    cited: int = Field(ge=0)
    grounded: int = Field(ge=0)
    repeated: int = Field(ge=0)
    fragments: int = Field(ge=0)
    questions: list[QuestionCoverage] = Field(default_factory=list)
    ungrounded_examples: list[str] = Field(default_factory=list, max_length=3)
    repeated_examples: list[str] = Field(default_factory=list, max_length=3)
    fragment_examples: list[str] = Field(default_factory=list, max_length=3)

    @model_validator(mode="after")
    def _counts(self) -> QualityAssessment:
        for name in ("cited", "repeated", "fragments"):
            if getattr(self, name) > self.sentences:
                raise ValueError(f"{name}: {getattr(self, name)} is more than the {self.sentences} sentences")
        if self.grounded > self.cited:
            raise ValueError(f"grounded: {self.grounded} is more than the {self.cited} cited sentences")
        return self

    def _share(self, count: int) -> float:
        return count / self.sentences if self.sentences else 0.0

    @property
    def grounded_share(self) -> float:
        """Grounded body sentences / body sentences (0 when there are none)."""
        return self._share(self.grounded)

    @property
    def citation_coverage(self) -> float:
        """Cited body sentences / body sentences."""
        return self._share(self.cited)

    @property
    def redundancy(self) -> float:
        """Repeated body sentences / body sentences."""
        return self._share(self.repeated)

    @property
    def fragment_share(self) -> float:
        """Fragments / body sentences."""
        return self._share(self.fragments)

    @property
    def questions_answered(self) -> int:
        """Planned questions answered."""
        return sum(1 for q in self.questions if q.answered)

    @property
    def unanswered(self) -> list[QuestionCoverage]:
        """Planned questions not answered, in plan order."""
        return [q for q in self.questions if not q.answered]

    def check(self, ref: ArtifactRef | None = None) -> QualityCheck:
        """The short form carried in state data, records and emails."""
        return QualityCheck(
            assessment=ref,
            sentences=self.sentences,
            cited=self.cited,
            grounded=self.grounded,
            repeated=self.repeated,
            fragments=self.fragments,
            questions=len(self.questions),
            answered=self.questions_answered,
            unanswered=[clip(q.question, QUALITY_EXAMPLE_MAX_CHARS) for q in self.unanswered][:MAX_UNANSWERED_LISTED],
        )


#: Unanswered questions a :class:`QualityCheck` names (the rest are counted).
MAX_UNANSWERED_LISTED = 10


class QualityCheck(_Model):
    """A :class:`QualityAssessment`'s figures in a few hundred bytes: what state data,
    the workflow record, the approval email and page, the console and ``relay run``
    show. ``assessment`` points at the full assessment in S3.

    Attributes:
        unanswered: the unanswered planned questions (clipped to 200 characters), at
            most :data:`MAX_UNANSWERED_LISTED`; ``questions - answered`` counts them all.
    """

    assessment: ArtifactRef | None = None
    sentences: int = Field(ge=0)
    cited: int = Field(ge=0)
    grounded: int = Field(ge=0)
    repeated: int = Field(ge=0)
    fragments: int = Field(ge=0)
    questions: int = Field(ge=0)
    answered: int = Field(ge=0)
    unanswered: list[str] = Field(default_factory=list, max_length=MAX_UNANSWERED_LISTED)

    @property
    def grounded_percent(self) -> int:
        """Grounded sentences as a whole percentage (rounded down, so 100 means all)."""
        return self.grounded * 100 // self.sentences if self.sentences else 0

    def headline(self) -> str:
        """``3 of 3 questions answered · 100 % of sentences grounded · 0 repeated``
        (``· 1 fragment(s)`` added when there are any)."""
        line = (
            f"{self.answered} of {self.questions} questions answered · "
            f"{self.grounded_percent} % of sentences grounded · {self.repeated} repeated"
        )
        if self.fragments:
            line += f" · {self.fragments} not prose"
        return line

    @property
    def unlisted(self) -> int:
        """Unanswered questions counted but not named in :attr:`unanswered` (beyond
        :data:`MAX_UNANSWERED_LISTED`)."""
        return max(0, self.questions - self.answered - len(self.unanswered))


class ArtifactQuality(QualityCheck):
    """A :class:`QualityCheck` with the name of the artifact it assessed: what the workflow
    record keeps as ``quality`` (the report's once it exists, else the newest analysis's).

    Attributes:
        artifact: ``report.md`` or ``analysis-r{n}.md``.
    """

    artifact: NonBlank

    @classmethod
    def of(cls, ref: ArtifactRef, check: QualityCheck) -> ArtifactQuality:
        """``check`` of the artifact ``ref`` points at, named by its key's last part."""
        return cls(artifact=artifact_name(ref), **check.model_dump())


def artifact_name(ref: ArtifactRef) -> str:
    """An artifact's name within its workflow: ``workflows/wf-1/report.md`` → ``report.md``."""
    return ref.key.rsplit("/", 1)[-1]


class Analysis(_Model):
    """AnalyzeResearch's result: the analysis in S3, its summary (for the approval email
    and page) and its quality check (``None`` from an analysis made before checks existed)."""

    analysis: ArtifactRef
    summary: Annotated[str, StringConstraints(max_length=ANALYSIS_SUMMARY_MAX_CHARS)]
    revision: int = Field(ge=0)
    quality: QualityCheck | None = None


class RequestApprovalEvent(_Model):
    """RequestApproval's event. ``task_token`` comes from ``$$.Task.Token`` and is
    stored, never logged, mailed or put in a URL. ``analysis`` is AnalyzeResearch's
    result with its quality check; ``research`` the research document it was made from
    (``None`` from an execution started before RequestApproval was given it)."""

    workflow_id: WorkflowId
    task_token: Annotated[str, StringConstraints(min_length=1, max_length=2048)]
    topic: str
    analysis: Analysis
    research: ArtifactRef | None = Field(
        default=None, description="the research document the analysis was made from ($.research.document): the approval page lists its sources"
    )
    revision: int = Field(ge=0)
    max_revisions: int = Field(ge=0)
    timeout_seconds: int = Field(ge=1)
    approver: str | None = None
    redrive_count: int = Field(default=0, ge=0, description="$$.Execution.RedriveCount: 0, then n after the n-th redrive")


class ApprovalRequested(_Model):
    approval_id: str
    expires_at: datetime
    notified: str


class ApprovalDecision(_Model):
    """What ``SendTaskSuccess`` hands back to the state machine; ApprovalDecision routes on it."""

    approved: bool
    feedback: str | None = None
    decided_by: str
    decided_at: datetime
    approval_id: str

    @field_validator("feedback")
    @classmethod
    def _strip(cls, v: str | None) -> str | None:
        return v.strip() if v and v.strip() else None


class DecisionForm(_Model):
    """A POSTed approval decision, as the approval page submits it (form fields are
    strings, so ``exp`` is parsed from its decimal text). ``feedback`` and
    ``decided_by`` refuse control characters other than tab and newline; CRLF line
    breaks become LF first."""

    decision: Literal["approve", "reject"]
    feedback: Annotated[str, StringConstraints(strip_whitespace=True, max_length=FEEDBACK_MAX_CHARS), PlainText] = ""
    exp: int = Field(ge=0)
    sig: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{16,128}$")]
    csrf: str = ""
    decided_by: Annotated[str, StringConstraints(strip_whitespace=True, max_length=254), PlainText] = ""


class WriteReportEvent(_Model):
    """WriteReport's event. ``research`` is the research document (``research.json``,
    ``$.research.document`` in state data); ``analysis`` the approved analysis Markdown."""

    workflow_id: WorkflowId
    topic: str
    research: ArtifactRef
    analysis: ArtifactRef
    approval: ApprovalDecision


class Report(_Model):
    """WriteReport's result: the report in S3, its title, length and quality check."""

    report: ArtifactRef
    title: str
    words: int = Field(ge=0)
    quality: QualityCheck | None = None


class FinalizeEvent(_Model):
    """FinalizeWorkflow's and RecordRejection's event. ``quality`` is the report's quality
    check (``$.report.quality``), recorded with the report."""

    workflow_id: WorkflowId
    outcome: Literal["COMPLETED", "REJECTED"]
    report: ArtifactRef | None = None
    quality: QualityCheck | None = None
    approval: ApprovalDecision | None = None
    redrive_count: int = Field(default=0, ge=0, description="$$.Execution.RedriveCount: 0, then n after the n-th redrive")


class FinalizeResult(_Model):
    """The execution's output on COMPLETED (FinalizeWorkflow's ResultSelector) or REJECTED."""

    workflow_id: str
    status: Literal["COMPLETED", "REJECTED"]
    report: ArtifactRef | None = None
    report_url: str | None = None
    quality: QualityCheck | None = None


class ExecutionStatusDetail(BaseModel):
    """``detail`` of a *Step Functions Execution Status Change* EventBridge event
    (Step Functions developer guide, "Automating Step Functions event delivery with
    EventBridge"). Dates are epoch milliseconds; unknown fields are ignored."""

    model_config = ConfigDict(extra="ignore")
    executionArn: NonBlank
    stateMachineArn: NonBlank
    name: WorkflowId
    status: Literal["RUNNING", "SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED", "PENDING_REDRIVE"]
    startDate: int | None = None
    stopDate: int | None = None
    error: str | None = None
    cause: str | None = None
    redriveCount: int = Field(default=0, ge=0)


class ExecutionStatusChange(EventBridgeModel):
    """The EventBridge event the record-failure function receives."""

    detail: ExecutionStatusDetail  # type: ignore[assignment]


class StatusRecorded(_Model):
    """What the record-failure function wrote for one status change.

    Attributes:
        status: the execution status of the event.
        record_status: the workflow record's new status (FAILED, CANCELLED or RUNNING).
        state: the state that failed (or that the redrive resumed from); ``None`` when
            the execution stopped before its first state.
        written: False when the record already held a later redrive's write (an event
            delivered out of order changes nothing).
    """

    workflow_id: str
    status: str
    record_status: str
    redrive_count: int
    state: str | None = None
    error: str | None = None
    cause: str | None = None
    written: bool
