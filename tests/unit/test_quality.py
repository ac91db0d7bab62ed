"""The quality check of a report (relay_core.quality, relay_core.prose) on hand-written
reports: a good one scores clean, and each bad one, with one defect, is caught exactly by
the figure meant for it and by no other."""

from __future__ import annotations

import pytest
from pydantic import ValidationError
from relay_core.models import (
    QualityAssessment,
    QualityCheck,
    QuestionCoverage,
    ResearchDocument,
    ResearchFinding,
    ResearchSource,
)
from relay_core.prose import fragment_kind, split_sentences
from relay_core.quality import assess, body_sentences, support

pytestmark = pytest.mark.unit

#: What the researchers read: source 1 (the Python reference), source 2 (Step Functions).
WITH_PASSAGES = [
    "The with statement is used to wrap the execution of a block with methods defined by a context manager.",
    "The with statement calls the context manager's __enter__() method before the block runs, and its "
    "__exit__() method after the block, even when the block raises an exception.",
]
TOKEN_PASSAGES = [
    "A Task state that uses the waitForTaskToken pattern pauses the execution until Step Functions "
    "receives SendTaskSuccess or SendTaskFailure with the task token.",
    "A task token stays valid until the execution ends, up to one year for standard workflows.",
    "A Lambda function runs for at most 900 seconds.",
]
Q_WITH = "How does the with statement call a context manager?"
Q_TOKENS = "How do task tokens resume a paused execution?"
Q_PARALLEL = "What does a Parallel state do when one branch fails?"

#: The good report's body, section by section: every sentence grounded in the source it cites.
GOOD_BODY = {
    "The with statement": [
        "The with statement wraps the execution of a block with methods defined by a context manager [1].",
        "It calls the context manager's `__enter__()` method before the block runs [1].",
        "Its `__exit__()` method runs after the block, even when the block raises an exception [1].",
    ],
    "Task tokens": [
        "A Task state using the **waitForTaskToken** pattern pauses the execution until Step Functions "
        "receives `SendTaskSuccess` with the task token [2].",
        "A task token stays valid until the execution ends, up to one year for standard workflows [2].",
    ],
}
GOOD_SENTENCES = 5


def research(*findings: ResearchFinding) -> ResearchDocument:
    findings = findings or (answered("q01", Q_WITH), answered("q02", Q_TOKENS))
    return ResearchDocument(
        workflow_id="wf-1",
        topic="Context managers and task tokens",
        findings=list(findings),
        sources=[
            ResearchSource(number=1, title="The with statement", uri="https://docs.python.org/3/reference/compound_stmts.html",
                           passages=WITH_PASSAGES),
            ResearchSource(number=2, title="Wait for a callback", uri="https://docs.aws.amazon.com/step-functions/callback",
                           passages=TOKEN_PASSAGES),
        ],
    )


def answered(qid: str, question: str) -> ResearchFinding:
    return ResearchFinding(question_id=qid, question=question, status="answered", summary="…", answer_markdown="…")


def report(body: dict[str, list[str]]) -> str:
    """A report as WriteReport lays it out: title, notice, sections of one-sentence
    paragraphs, then Open questions and Sources (not body)."""
    parts = ["# Context managers and task tokens", "", "_Written by Relay from 2 sources._", ""]
    for section, paragraphs in body.items():
        parts += [f"## {section}", ""]
        for paragraph in paragraphs:
            parts += [paragraph, ""]
    parts += [
        "## Open questions", "",
        "- Does the exception reach the exit method when the block is a generator?", "",
        "## Sources", "",
        "1. [The with statement](https://docs.python.org/3/reference/compound_stmts.html)",
        "2. [Wait for a callback](https://docs.aws.amazon.com/step-functions/callback)",
    ]
    return "\n".join(parts) + "\n"


def with_paragraph(paragraph: str, section: str = "Task tokens") -> str:
    """The good report with one paragraph added at the end of ``section`` (a new section if absent)."""
    body = {name: list(paragraphs) for name, paragraphs in GOOD_BODY.items()}
    body.setdefault(section, []).append(paragraph)
    return report(body)


def assert_only(result: QualityAssessment, **changed: int) -> None:
    """The figures of ``result`` are the good report's but for ``changed``."""
    figures = {"sentences": GOOD_SENTENCES, "cited": GOOD_SENTENCES, "grounded": GOOD_SENTENCES, "repeated": 0, "fragments": 0}
    expected = figures | changed
    assert {name: getattr(result, name) for name in figures} == expected


def test_a_good_report_is_all_grounded_cited_unrepeated_prose_and_answers_every_question():
    # Given a report whose every body sentence says what its cited passages say
    # When it is assessed
    result = assess(report(GOOD_BODY), research())
    # Then title, notice, Open questions and Sources are not body; everything else is clean
    assert_only(result)
    assert (result.grounded_share, result.citation_coverage, result.redundancy, result.fragment_share) == (1, 1, 0, 0)
    assert [(q.question_id, q.answered) for q in result.questions] == [("q01", True), ("q02", True)]
    assert result.unanswered == []
    assert result.ungrounded_examples == result.repeated_examples == result.fragment_examples == []
    assert result.check().headline() == "2 of 2 questions answered · 100 % of sentences grounded · 0 repeated"


def test_a_sentence_citing_a_source_whose_passages_lack_its_words_is_cited_but_not_grounded():
    # Given one sentence citing [1] for a claim its passages do not make
    bad = "Context managers encrypt the variables of the block with a key from KMS [1]."
    # When assessed
    result = assess(with_paragraph(bad, "The with statement"), research())
    # Then it is cited, not grounded, and quoted as the one ungrounded example
    assert_only(result, sentences=6, cited=6)
    assert result.ungrounded_examples == ["Context managers encrypt the variables of the block with a key from KMS."]
    assert result.grounded_share == pytest.approx(5 / 6)


def test_a_figure_the_source_does_not_give_is_not_found_in_it():
    # Given the passage says 900 seconds, and a sentence that says 9000
    wrong = "Lambda runs for 9000 seconds [2]."
    # When its support is measured and the report is assessed
    # Then the number is the one word not found: a number is found only as itself (fuzz.ratio
    # of 9000 and 900 is 86, above WORD_MATCH_SCORE), and in a sentence of four content words
    # it is enough to leave it ungrounded
    assert support("Lambda runs for 900 seconds.", TOKEN_PASSAGES) == 1
    assert support(wrong, TOKEN_PASSAGES) == pytest.approx(3 / 4)
    result = assess(with_paragraph(wrong), research())
    assert_only(result, sentences=6, cited=6)
    assert result.ungrounded_examples == ["Lambda runs for 9000 seconds."]


def test_an_inflected_word_is_found_but_not_a_different_one():
    # Given a passage about retries
    passages = ["The state machine retries the failed task three times."]
    # Then "retried" finds "retries" (fuzz.ratio 86), "tasks" finds "task", "rejected" finds nothing
    assert support("The state machine retried the failed tasks three times.", passages) == 1
    assert support("The state machine rejected the task.", passages) == pytest.approx(3 / 4)


def test_a_sentence_citing_a_source_number_the_document_lacks_is_cited_but_grounds_nothing():
    # Given a sentence copied from source 2's passages but citing [5]: the document has 2 sources
    dangling = "A Lambda function runs for at most 900 seconds [5]."
    # When assessed
    result = assess(with_paragraph(dangling), research())
    # Then it counts as cited (the writer claimed a source) and is not grounded: it is shown as an example
    assert_only(result, sentences=6, cited=6)
    assert result.ungrounded_examples == ["A Lambda function runs for at most 900 seconds."]
    # ...while the same sentence citing [2] is grounded
    assert_only(assess(with_paragraph(dangling.replace("[5]", "[2]")), research()), sentences=6, cited=6, grounded=6)


def test_a_source_with_no_passages_grounds_nothing():
    # Given the research read nothing of source 2
    doc = research()
    doc = doc.model_copy(update={"sources": [doc.sources[0], doc.sources[1].model_copy(update={"passages": []})]})
    # When the good report is assessed against it
    result = assess(report(GOOD_BODY), doc)
    # Then the two sentences citing [2] are cited, not grounded, and q02 is no longer answered
    assert_only(result, grounded=3)
    assert [q.question_id for q in result.unanswered] == ["q02"]


def test_an_uncited_sentence_lowers_citation_coverage_and_nothing_else():
    # Given a sentence taken word for word from a passage, but citing nothing
    uncited = "A Lambda function runs for at most 900 seconds."
    # When assessed
    result = assess(with_paragraph(uncited), research())
    # Then it is a body sentence, neither cited nor grounded, and no other defect
    assert_only(result, sentences=6)
    assert result.citation_coverage == pytest.approx(5 / 6)
    assert result.ungrounded_examples == []


def test_the_same_fact_in_two_sections_is_one_repeat():
    # Given a Summary section that restates a Task tokens sentence word for word
    again = GOOD_BODY["Task tokens"][1]
    # When assessed
    result = assess(with_paragraph(again, "Summary"), research())
    # Then the later one is the single repeat (and, cited, it is grounded like the first)
    assert_only(result, sentences=6, cited=6, grounded=6, repeated=1)
    assert result.repeated_examples == ["A task token stays valid until the execution ends, up to one year for standard workflows."]
    assert [s.section for s in body_sentences(with_paragraph(again, "Summary"))][-1] == "Summary"


def test_a_reworded_near_duplicate_is_a_repeat():
    # Given the same fact reworded: order changed, "stays" → "remains", "up to" → "at most"
    reworded = "For standard workflows, a task token remains valid until the execution ends, at most one year [2]."
    # When assessed
    result = assess(with_paragraph(reworded, "Summary"), research())
    # Then it is caught as a repeat (and it is still grounded: 7 of its 8 content words are in the passage)
    assert_only(result, sentences=6, cited=6, grounded=6, repeated=1)
    assert result.repeated_examples == [
        "For standard workflows, a task token remains valid until the execution ends, at most one year."
    ]


#: The issue's examples of sentences that are not prose, and the kind each is.
ISSUE_FRAGMENTS = [
    pytest.param('with_stmt ::= "with" ( "(" with_stmt_contents ","? ")" | with_stmt_contents ) ":" suite',
                 "grammar", id="grammar-production"),
    pytest.param("manager = (EXPRESSION) enter = type(manager).__enter__ exit = type(manager).__exit__",
                 "code", id="code-line"),
    pytest.param("Overview The with statement calls the context manager's __enter__ method.",
                 "heading", id="glued-heading"),
    pytest.param("The exit method receives three arguments * the exception type, its value and the traceback.",
                 "list-marker", id="list-marker-remnant"),
]


@pytest.mark.parametrize(("fragment", "kind"), ISSUE_FRAGMENTS)
def test_each_fragment_kind_of_the_issue_is_caught(fragment, kind):
    # Given the good report with one paragraph that is not prose
    # When assessed
    result = assess(with_paragraph(fragment, "The with statement"), research())
    # Then it is one body sentence, one fragment of its kind, and nothing else changed
    assert fragment_kind(fragment) == kind
    assert_only(result, sentences=6, fragments=1)
    assert len(result.fragment_examples) == 1
    assert fragment_kind(result.fragment_examples[0]) == kind


@pytest.mark.parametrize(
    ("line", "kind"),
    [
        ("Request parameters: taskToken: The token that represents this task.", "heading"),
        ("| The field name | The type of its value | Whether a request must carry it |", "table"),
        (">>> with open(path) as handle:", "code"),
        ("The Map state accepts the following fields:", "lead-in"),
        ("See below.", "too-short"),
    ],
)
def test_the_other_fragment_kinds(line, kind):
    assert fragment_kind(line) == kind


@pytest.mark.parametrize(
    "sentence",
    [
        pytest.param("It then calls `__exit__()`.", id="dunder-method-in-code-span"),
        pytest.param("The with statement calls __exit__() when the block ends.", id="dunder-method"),
        pytest.param("Call close() when you are done with the file.", id="short-call"),
        pytest.param("Call SendTaskSuccess with the task token to resume the execution.", id="camel-case-api"),
        pytest.param("Some services, e.g., Lambda, accept a task token in the payload.", id="e.g.-with-commas"),
        pytest.param("Use a Choice state, e.g. to branch on a value of the input.", id="e.g.-without-comma"),
        pytest.param("A Lambda function runs for at most 900 seconds.", id="number-and-unit"),
        pytest.param("The payload of a task is limited to 256 KB.", id="number-and-abbreviated-unit"),
        pytest.param("It retries (up to 3 times).", id="short-parenthetical"),
        pytest.param("The context manager (an object with two methods) controls the block.", id="parenthetical"),
        pytest.param("The exit method receives the type (or None when the block ends normally.", id="unclosed-parenthesis"),
        pytest.param("Option A is cheaper than option B.", id="label-letter-A"),
        pytest.param("Appendix A lists every quota of the service.", id="label-letter-A-then-verb"),
    ],
)
def test_documentation_prose_is_not_a_fragment(sentence):
    # Given one ordinary documentation sentence added to the good report
    # When assessed
    result = assess(with_paragraph(sentence), research())
    # Then it is one body sentence (not split) and it is prose
    assert len(split_sentences(sentence)) == 1
    assert_only(result, sentences=6)
    assert result.fragment_examples == []


def test_a_code_span_keeps_its_dunder_names():
    # Given `__enter__()` in a code span (Markdown emphasis is dropped, code is not)
    [sentence] = body_sentences("It calls the **context manager's** `__enter__()` method first [1].")
    # Then the sentence keeps the method's name as written
    assert sentence.text == "It calls the context manager's __enter__() method first."
    assert sentence.citations == (1,)


def test_an_unanswered_planned_question_is_named():
    # Given a third planned question that no sentence of the report addresses
    doc = research(answered("q01", Q_WITH), answered("q02", Q_TOKENS), answered("q03", Q_PARALLEL))
    # When the good report is assessed
    result = assess(report(GOOD_BODY), doc)
    # Then the sentence figures are the good ones, and q03 is the one unanswered question, named
    assert_only(result)
    assert [q.question_id for q in result.unanswered] == ["q03"]
    assert result.unanswered[0].relevance < 0.5
    check = result.check()
    assert (check.questions, check.answered, check.unanswered) == (3, 2, [Q_PARALLEL])
    assert check.headline() == "2 of 3 questions answered · 100 % of sentences grounded · 0 repeated"


def test_a_question_only_ungrounded_sentences_address_is_unanswered():
    # Given sentences about the Parallel state: one uncited, one citing a source that says nothing of it
    doc = research(answered("q01", Q_WITH), answered("q02", Q_TOKENS), answered("q03", Q_PARALLEL))
    body = dict(GOOD_BODY) | {"Parallel state": [
        "A Parallel state fails when one branch fails, and it stops the other branches.",
        "When one branch of a Parallel state fails, the Parallel state fails [2].",
    ]}
    # When assessed
    result = assess(report(body), doc)
    # Then q03 is unanswered: an answer must be grounded
    assert_only(result, sentences=7, cited=6)
    assert [q.question_id for q in result.unanswered] == ["q03"]


def test_a_failed_finding_is_an_unanswered_question():
    # Given the third question's research failed, and the report says so in an uncited sentence
    failed = ResearchFinding(question_id="q03", question=Q_PARALLEL, status="failed")
    doc = research(answered("q01", Q_WITH), answered("q02", Q_TOKENS), failed)
    note = "The research could not find what a Parallel state does when one branch fails."
    # When assessed
    result = assess(with_paragraph(note, "Parallel state"), doc)
    # Then it is listed, in plan order, as unanswered; the note is an uncited body sentence
    assert [(q.question_id, q.answered) for q in result.questions] == [("q01", True), ("q02", True), ("q03", False)]
    assert_only(result, sentences=6)


def test_sources_open_questions_and_references_are_not_body():
    # Given sentences (even cited ones) under Sources, its subsection, Open questions and References,
    # and a section after them
    markdown = "\n".join([
        "# Title",
        "## Open questions",
        "Does the exception reach the exit method when the block is a generator?",
        "## Sources",
        "1. The with statement: the reference says the block runs between enter and exit [1].",
        "### Python",
        "The Python reference describes the with statement in full [1].",
        "## References",
        "- Step Functions developer guide, the callback pattern with task tokens [2].",
        "## Summary",
        "A task token stays valid until the execution ends, up to one year for standard workflows [2].",
    ])
    # When its body is read and it is assessed
    sentences = body_sentences(markdown)
    result = assess(markdown, research())
    # Then only the Summary's sentence is body
    assert [(s.section, s.citations) for s in sentences] == [("Summary", (2,))]
    assert (result.sentences, result.cited, result.grounded) == (1, 1, 1)


def test_headings_notices_quotes_rules_and_fenced_code_are_not_body():
    markdown = "\n".join([
        "# A title that is long enough to be a sentence",
        "_An italic notice about how this report was written._",
        "> A block quote from the reviewer that asks for more depth.",
        "---",
        "```python",
        "manager = (EXPRESSION)",
        "```",
        "The only body sentence of this text is this one [1].",
    ])
    assert [s.text for s in body_sentences(markdown)] == ["The only body sentence of this text is this one."]


def test_headline_text():
    # Given figures with fragments, a repeat, and a grounded share that is not whole
    check = QualityCheck(sentences=3, cited=3, grounded=2, repeated=1, fragments=2, questions=3, answered=1,
                         unanswered=["Q2?", "Q3?"])
    # Then the headline rounds the share down and names the sentences that are not prose
    assert check.headline() == "1 of 3 questions answered · 66 % of sentences grounded · 1 repeated · 2 not prose"
    assert QualityCheck(sentences=0, cited=0, grounded=0, repeated=0, fragments=0, questions=1, answered=0).headline() == (
        "0 of 1 questions answered · 0 % of sentences grounded · 0 repeated"
    )


def test_headline_of_a_defective_report():
    # Given the good report with a repeat and a code line
    body = dict(GOOD_BODY) | {"Summary": [GOOD_BODY["Task tokens"][1], ISSUE_FRAGMENTS[1].values[0]]}
    # When assessed
    check = assess(report(body), research()).check()
    # Then 6 of 7 sentences are grounded (85 %), one repeated, one not prose
    assert check.headline() == "2 of 2 questions answered · 85 % of sentences grounded · 1 repeated · 1 not prose"


@pytest.mark.parametrize(
    ("counts", "message"),
    [
        ({"sentences": 2, "cited": 3, "grounded": 0}, "cited: 3 is more than the 2 sentences"),
        ({"sentences": 2, "repeated": 3}, "repeated: 3 is more than the 2 sentences"),
        ({"sentences": 2, "fragments": 3}, "fragments: 3 is more than the 2 sentences"),
        ({"sentences": 3, "cited": 1, "grounded": 2}, "grounded: 2 is more than the 1 cited sentences"),
        ({"sentences": -1}, "greater than or equal to 0"),
    ],
)
def test_quality_assessment_refuses_inconsistent_counts(counts, message):
    figures = {"sentences": 0, "cited": 0, "grounded": 0, "repeated": 0, "fragments": 0} | counts
    with pytest.raises(ValidationError, match=message):
        QualityAssessment(artifact="report.md", **figures)


def test_question_coverage_relevance_is_a_share():
    with pytest.raises(ValidationError):
        QuestionCoverage(question_id="q01", question="Q?", answered=True, relevance=1.5)


def test_an_escaped_artifact_reads_as_its_rendered_text():
    # Given a report as stored: markdown_safe escaped its "<" (the page renders "<")
    from relay_core.safe_text import markdown_safe

    sentence = "The next random number is in the range 0.0 <= X < 1.0 [1]."
    report = markdown_safe(f"# T\n\n## Findings\n\n- {sentence}\n")
    # When its body is read
    sentences = body_sentences(report)
    # Then the escapes are decoded: one sentence, not split at the ";" of "&lt;"
    assert [s.text for s in sentences] == ["The next random number is in the range 0.0 <= X < 1.0."]


@pytest.mark.parametrize(
    ("sentence", "kind"),
    [
        ("TIMEOUT = 1 # Error reported by type checker.", "code"),
        ("1. The return value is a boolean.", "list-marker"),
    ],
)
def test_an_assignment_or_a_list_number_at_the_start_is_not_prose(sentence, kind):
    # Given docstring remnants an extractive model could quote: a code line, a numbered item
    # Then each is named as what it is
    assert fragment_kind(sentence) == kind


def test_a_sentence_about_an_assignment_or_a_number_is_prose():
    assert fragment_kind("If init is true, an __init__() method is added to the class.") is None
    assert fragment_kind("The default visibility timeout is 30 seconds.") is None
