"""Properties of the quality check (relay_core.quality, relay_core.prose), one or more per
metric: grounded, cited, repeated, fragments, question coverage, and the sentence splitter
they all stand on. Reports and research are generated from a small domain vocabulary, so
that what a report should score is known by construction."""

from __future__ import annotations

import re
from collections import Counter

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from rapidfuzz import fuzz
from relay_core.models import ResearchDocument, ResearchFinding, ResearchSource
from relay_core.prose import STOPWORDS, content_tokens, fragment_kind, split_sentences, strip_citations
from relay_core.quality import (
    QUESTION_FRAME_WORDS,
    RELEVANCE_THRESHOLD,
    WORD_MATCH_SCORE,
    assess,
    body_sentences,
    question_keywords,
    relevance,
    repeats,
    support,
)

pytestmark = pytest.mark.property

EXAMPLES = 60
FUZZ = settings(
    max_examples=EXAMPLES,
    derandomize=True,  # the same examples every run: reproducible, no flaky CI
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)

#: Content words of the reports (none a stopword or a question-framing word).
TOPIC_WORDS = [
    "execution", "token", "state", "machine", "workflow", "branch", "retry", "timeout", "heartbeat", "payload",
    "callback", "lambda", "function", "context", "manager", "block", "exception", "traceback", "statement",
    "iteration", "artifact", "approval", "session", "runtime", "stack", "construct", "queue", "message", "bucket",
    "object", "policy", "resource", "error", "result", "input", "output", "second", "minute", "history", "event",
]
#: Words no report is made of: questions over them are unanswerable.
ABSENT_WORDS = ["giraffe", "volcano", "saxophone", "tulip", "glacier", "mango", "violin", "pyramid", "walrus", "nebula"]
FILLER = ["the", "a", "of", "with", "until", "for", "and", "is"]
#: Words of documentation prose that are not plain words.
SPECIAL = ["900", "256", "KB", "SendTaskSuccess", "waitForTaskToken", "__exit__()", "close()"]
PARENTHETICALS = ["(up to 900 seconds)", "(an object with two methods)", "(see below)", "(15 minutes)"]
HEADINGS = ["Overview", "Task Tokens", "Request Syntax", "Context Managers", "Error Handling"]
CODE_FORMS = [
    "{a} = ({b}) {c} = type({a}).__enter__ exit = type({a}).__exit__",
    "{a} = {b}({c}).{a}",
    "def {a}({b}, {c}):",
    "{a}.{b}({c}=True)",
    "import {a}",
]
#: The words of the report's frame (title, notice, headings) and of its code lines.
FRAME = "Report Written by Relay Findings Sources Source Summary Example doc " + " ".join(HEADINGS + CODE_FORMS)

# The vocabularies must not meet, or "absent" would not be absent.
assert not (set(TOPIC_WORDS) | set(FILLER)) & (STOPWORDS - set(FILLER))
assert not set(TOPIC_WORDS) & QUESTION_FRAME_WORDS
assert all(
    fuzz.ratio(absent, word) < WORD_MATCH_SCORE
    for absent in ABSENT_WORDS
    for word in TOPIC_WORDS + [t for s in [*SPECIAL, *PARENTHETICALS, FRAME] for t in content_tokens(s)]
)

topic_word = st.sampled_from(TOPIC_WORDS)
word = st.one_of(topic_word, topic_word, st.sampled_from(FILLER), st.sampled_from(SPECIAL))


@st.composite
def sentences(draw) -> str:
    """A prose sentence: a capitalised topic word, then 3–11 words, at least one of them a
    topic word (maybe a parenthetical too), then a full stop."""
    rest = draw(st.lists(word, min_size=2, max_size=10))
    rest.insert(draw(st.integers(0, len(rest))), draw(topic_word))
    if draw(st.booleans()):
        rest.insert(draw(st.integers(0, len(rest))), draw(st.sampled_from(PARENTHETICALS)))
    return " ".join([draw(topic_word).capitalize(), *rest]) + "."


def cite(sentence: str, *numbers: int) -> str:
    """``sentence`` with ``[n, m]`` before its full stop (nothing when no number)."""
    if not numbers:
        return sentence
    return f"{sentence[:-1]} [{', '.join(map(str, numbers))}]."


def document(passages: list[list[str]], questions: list[str] | None = None) -> ResearchDocument:
    questions = questions or ["How does the execution token work?"]
    return ResearchDocument(
        workflow_id="wf-1",
        topic="Topic",
        findings=[
            ResearchFinding(question_id=f"q{i:02d}", question=q, status="answered") for i, q in enumerate(questions, 1)
        ],
        sources=[
            ResearchSource(number=n, title=f"Source {n}", uri=f"doc://{n}", passages=texts)
            for n, texts in enumerate(passages, 1)
        ],
    )


def report(paragraphs: list[str], *, sources: int = 0) -> str:
    """A report: title, notice, the paragraphs under one heading, then a Sources section."""
    lines = ["# Report", "", "_Written by Relay._", "", "## Findings", ""]
    for paragraph in paragraphs:
        lines += [paragraph, ""]
    lines += ["## Sources", ""] + [f"{n}. [Source {n}](doc://{n})" for n in range(1, sources + 1)]
    return "\n".join(lines) + "\n"


#: Two sources, each with a few passages of generated sentences.
passage_sets = st.lists(st.lists(sentences(), min_size=1, max_size=4), min_size=2, max_size=2)
code_lines = st.builds(
    lambda form, a, b, c, ticks: f"`{form.format(a=a, b=b, c=c)}`" if ticks else form.format(a=a, b=b, c=c),
    st.sampled_from(CODE_FORMS),
    topic_word, topic_word, topic_word, st.booleans(),
)


@st.composite
def reports(draw) -> tuple[str, ResearchDocument]:
    """Any mix of what reports hold: sentences copied from passages or made up, citing a
    source, none, or a number the document lacks, repeated sentences, code lines, glued
    headings, list items, and planned questions over topic or absent words."""
    passages = draw(passage_sets)
    pieces: list[str] = []
    for _ in range(draw(st.integers(0, 8))):
        kind = draw(st.sampled_from(["copied", "made-up", "repeat", "code", "heading", "list"]))
        if kind == "copied":
            n = draw(st.integers(1, 2))
            pieces.append(cite(draw(st.sampled_from(passages[n - 1])), n))
        elif kind == "made-up":
            pieces.append(cite(draw(sentences()), *draw(st.lists(st.integers(1, 4), max_size=2))))
        elif kind == "repeat" and pieces:
            pieces.append(draw(st.sampled_from(pieces)))
        elif kind == "code":
            pieces.append(draw(code_lines))
        elif kind == "heading":
            sentence = draw(sentences())
            pieces.append(f"{draw(st.sampled_from(HEADINGS))} The {sentence[0].lower()}{sentence[1:]}")
        elif kind == "list":
            pieces.append(f"- {draw(sentences())}")
    question_words = st.lists(st.sampled_from(TOPIC_WORDS + ABSENT_WORDS), min_size=1, max_size=4)
    questions = [f"How does {' '.join(w)} work?" for w in draw(st.lists(question_words, min_size=1, max_size=3))]
    return report(pieces, sources=2), document(passages, questions)


# --- all metrics --------------------------------------------------------------------------


@FUZZ
@given(case=reports())
def test_every_count_is_between_zero_and_the_sentences_and_grounded_within_cited(case):
    markdown, research = case
    result = assess(markdown, research)
    assert result.sentences == len(body_sentences(markdown))
    for count in (result.cited, result.grounded, result.repeated, result.fragments):
        assert 0 <= count <= result.sentences
    assert result.grounded <= result.cited
    assert [q.question_id for q in result.questions] == [f.question_id for f in research.findings]
    for question in result.questions:
        assert 0 <= question.relevance <= 1
        assert question.answered == (question.relevance >= RELEVANCE_THRESHOLD)
    assert 0 <= result.questions_answered <= len(result.questions)
    for examples, count in [
        (result.ungrounded_examples, result.cited - result.grounded),
        (result.repeated_examples, result.repeated),
        (result.fragment_examples, result.fragments),
    ]:
        assert len(examples) == min(count, 3)


# --- grounded and cited -------------------------------------------------------------------


@FUZZ
@given(passages=passage_sets, data=st.data())
def test_a_report_copied_from_the_cited_passages_is_all_grounded_and_cited(passages, data):
    # Given sentences copied verbatim from the passages, each citing the source it came from
    picks = data.draw(st.lists(st.tuples(st.integers(1, 2), st.integers(0, 3)), min_size=1, max_size=8))
    copied = [cite(passages[n - 1][i % len(passages[n - 1])], n) for n, i in picks]
    per_paragraph = data.draw(st.integers(1, 3))
    paragraphs = [" ".join(copied[i : i + per_paragraph]) for i in range(0, len(copied), per_paragraph)]
    # When assessed
    result = assess(report(paragraphs, sources=2), document(passages))
    # Then every sentence is found, cited and grounded
    assert result.sentences == len(copied)
    assert result.grounded == result.cited == result.sentences
    assert result.grounded_share == result.citation_coverage == 1


@FUZZ
@given(case=reports())
def test_removing_every_citation_leaves_nothing_cited_grounded_or_answered(case):
    markdown, research = case
    before = assess(markdown, research)
    uncited = "\n".join(strip_citations(line) for line in markdown.splitlines())
    after = assess(uncited, research)
    assert (after.cited, after.grounded, after.questions_answered) == (0, 0, 0)
    # the other figures do not depend on citations
    assert (after.sentences, after.repeated, after.fragments) == (before.sentences, before.repeated, before.fragments)


@FUZZ
@given(sentence=sentences(), passages=st.lists(sentences(), max_size=3), more=st.lists(sentences(), max_size=3))
def test_support_is_a_share_that_more_passages_never_lower(sentence, passages, more):
    assert 0 <= support(sentence, passages) <= 1
    assert support(sentence, passages) <= support(sentence, passages + more)
    assert support(sentence, [sentence]) == 1
    assert support(sentence, passages + [sentence]) == 1


@FUZZ
@given(text=st.text(max_size=80), passages=st.lists(st.text(max_size=80), max_size=3))
def test_support_of_any_text_is_a_share(text, passages):
    assert 0 <= support(text, passages) <= 1


# --- repeated -----------------------------------------------------------------------------


@FUZZ
@given(case=reports(), data=st.data())
def test_appending_a_copy_of_a_body_sentence_adds_exactly_one_repeat(case, data):
    # Given a report with at least one body sentence that has content words
    markdown, research = case
    body = [s for s in body_sentences(markdown) if content_tokens(s.text)]
    assume(body)
    original = data.draw(st.sampled_from(body))
    copy = cite(original.text, *original.citations) if original.text.endswith(".") else original.text
    before = assess(markdown, research)
    # When a copy of it is appended in a section of its own
    after = assess(f"{markdown}\n## Summary\n\n{copy}\n", research)
    # Then one more sentence, one more repeat, and the originals keep their grounding: the
    # copy is grounded exactly when its original is
    alone = assess(report([copy], sources=2), research)
    assert after.sentences == before.sentences + 1
    assert after.repeated == before.repeated + 1
    assert after.grounded == before.grounded + alone.grounded
    assert after.cited == before.cited + alone.cited


@FUZZ
@given(a=sentences(), b=sentences())
def test_repeats_is_reflexive_and_symmetric_for_sentences_with_content_words(a, b):
    assert repeats(a, a) and repeats(b, b)
    assert repeats(a, b) == repeats(b, a)


@FUZZ
@given(a=st.text(max_size=60), b=st.text(max_size=60))
def test_repeats_is_symmetric_for_any_text_and_never_holds_without_content_words(a, b):
    assert repeats(a, b) == repeats(b, a)
    if not content_tokens(a):
        assert not repeats(a, b)


@FUZZ
@given(a=sentences(), b=st.lists(st.sampled_from(ABSENT_WORDS), min_size=4, max_size=10))
def test_sentences_sharing_no_content_word_do_not_repeat(a, b):
    assert not repeats(a, " ".join(b).capitalize() + ".")


# --- fragments ----------------------------------------------------------------------------


@FUZZ
@given(sentence=sentences())
def test_generated_prose_is_prose(sentence):
    # numbers and units, camelCase API names, method names and parentheticals included
    assert fragment_kind(sentence) is None
    assert fragment_kind(cite(sentence, 1)) is None


@FUZZ
@given(case=reports(), line=code_lines)
def test_adding_a_code_line_adds_one_fragment(case, line):
    markdown, research = case
    before = assess(markdown, research)
    after = assess(f"{markdown}\n## Example\n\n{line}\n", research)
    assert after.sentences == before.sentences + 1
    assert after.fragments == before.fragments + 1


@FUZZ
@given(sentence=sentences(), heading=st.sampled_from(HEADINGS), data=st.data())
def test_a_glued_heading_a_list_marker_or_a_production_makes_a_fragment(sentence, heading, data):
    # Given prose damaged in one of the ways the issue names
    words = sentence.split()
    at = data.draw(st.integers(1, len(words) - 1))
    damaged = {
        "heading": f"{heading} The {sentence[0].lower()}{sentence[1:]}",
        "list-marker": " ".join(words[:at] + ["*"] + words[at:]),
        "grammar": f"{words[0].lower()}_stmt ::= {' '.join(words[1:])}",
    }
    # Then each is caught as that kind
    assert {kind: fragment_kind(text) for kind, text in damaged.items()} == {k: k for k in damaged}


# --- question coverage --------------------------------------------------------------------


@FUZZ
@given(keys=st.lists(topic_word, min_size=1, max_size=4, unique=True), data=st.data())
def test_a_question_whose_key_words_are_in_a_grounded_sentence_is_answered(keys, data):
    # Given a grounded sentence holding the question's key words among others
    question = f"How does the {' '.join(keys)} work?"
    words = data.draw(st.permutations(keys + data.draw(st.lists(word, min_size=2, max_size=6))))
    answer = " ".join(["Execution", *words]) + "."
    others = data.draw(st.lists(sentences(), max_size=3))
    passages = [[answer], others or ["Execution history holds every event."]]
    # When the report citing it is assessed
    result = assess(report([cite(answer, 1), *others], sources=2), document(passages, [question]))
    # Then the question is answered with full relevance
    assert set(question_keywords(question)) == {content_tokens(k)[0] for k in keys}
    assert relevance(answer, question) == 1
    assert [(q.answered, q.relevance) for q in result.questions] == [(True, 1.0)]


@FUZZ
@given(case=reports(), absent=st.lists(st.sampled_from(ABSENT_WORDS), min_size=1, max_size=3, unique=True))
def test_a_question_over_words_absent_from_the_report_is_unanswered_and_named(case, absent):
    markdown, research = case
    assume(not any(w in markdown.lower() for w in ABSENT_WORDS))
    question = f"What is the {' '.join(absent)}?"
    research = research.model_copy(update={"findings": [ResearchFinding(question_id="q01", question=question, status="answered")]})
    result = assess(markdown, research)
    assert [(q.answered, q.relevance) for q in result.questions] == [(False, 0.0)]
    assert result.check().unanswered == [question]


# --- sentences ----------------------------------------------------------------------------


@st.composite
def prose(draw) -> tuple[list[str], str]:
    """Paragraphs of generated sentences, cited before or after their full stop, joined
    as a writer would: sentences by a space, paragraphs by a blank line. Returns the
    sentences as :func:`split_sentences` should give them, and the text."""
    expected: list[str] = []
    paragraphs: list[str] = []
    for _ in range(draw(st.integers(1, 3))):
        written: list[str] = []
        for sentence in draw(st.lists(sentences(), min_size=1, max_size=4)):
            numbers = draw(st.lists(st.integers(1, 9), max_size=2))
            expected.append(cite(sentence, *numbers))
            after = numbers and draw(st.booleans())
            written.append(f"{sentence} [{', '.join(map(str, numbers))}]" if after else cite(sentence, *numbers))
        paragraphs.append(" ".join(written))
    return expected, "\n\n".join(paragraphs)


@FUZZ
@given(case=prose())
def test_split_sentences_finds_the_written_sentences_and_loses_no_content_word(case):
    expected, text = case
    out = split_sentences(text)
    assert out == expected
    assert Counter(content_tokens(" ".join(out))) == Counter(content_tokens(text))


@FUZZ
@given(case=prose())
def test_split_sentences_is_idempotent_on_its_output(case):
    out = split_sentences(case[1])
    assert split_sentences(" ".join(out)) == out
    assert [again for sentence in out for again in split_sentences(sentence)] == out


@FUZZ
@given(text=st.text(max_size=200))
def test_split_sentences_of_any_text_keeps_every_content_word(text):
    out = split_sentences(text)
    assert all(s and s == " ".join(s.split()) for s in out)
    assert Counter(content_tokens(" ".join(out))) == Counter(content_tokens(text))


@FUZZ
@given(text=st.text(max_size=120))
def test_content_tokens_are_lower_case_words_without_stopwords_or_citations(text):
    tokens = content_tokens(text)
    assert all(re.fullmatch(r"[a-z0-9]{2,}", t) and t not in STOPWORDS for t in tokens)
    assert tokens == content_tokens(strip_citations(text))
