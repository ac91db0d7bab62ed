"""The quality bench's yardstick (bench/quality_eval): the evaluation sets (each corpus's tuned
set and its held-out set) are well formed and every reference fact is stated in the document
it names; the fact matcher, the BM25 baseline and the not-covered claim finder behave as
documented."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from relay_core.prose import split_sentences

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

from quality_eval import facts as qe  # noqa: E402
from quality_eval import stdlib_corpus  # noqa: E402

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def stdlib_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return stdlib_corpus.write_corpus(tmp_path_factory.mktemp("corpus") / "stdlib")


# ----- the evaluation sets ------------------------------------------------------------------
#: Every set: each corpus's tuned set and its held-out set.
SETS = [
    pytest.param(name, heldout, id=name + ("-heldout" if heldout else ""))
    for name in qe.CORPORA
    for heldout in (False, True)
]


@pytest.mark.parametrize("name, heldout", SETS)
def test_each_set_has_twelve_or_more_questions_of_three_to_five_facts_with_unique_ids(name, heldout):
    # When the set loads (load_set validates it)
    eval_set = qe.load_set(name, heldout=heldout)
    # Then its shape is the documented one
    assert eval_set.corpus == name and len(eval_set.questions) >= 12
    assert all(3 <= len(q.facts) <= 5 for q in eval_set.questions)
    ids = [q.id for q in eval_set.questions]
    assert len(set(ids)) == len(ids)
    assert all(q.question.endswith("?") for q in eval_set.questions)
    # And a question's facts come from more than one document for some questions
    assert sum(1 for q in eval_set.questions if len({f.source for f in q.facts}) > 1) >= 6


@pytest.mark.parametrize("name", qe.CORPORA)
def test_a_held_out_set_shares_no_question_or_source_document_with_the_tuned_set(name):
    tuned, heldout = qe.load_set(name), qe.load_set(name, heldout=True)
    assert not {q.id for q in tuned.questions} & {q.id for q in heldout.questions}
    assert not {q.question for q in tuned.questions} & {q.question for q in heldout.questions}
    sources = [{f.source for q in s.questions for f in q.facts} for s in (tuned, heldout)]
    assert not sources[0] & sources[1]


def _unstated(eval_set: qe.EvalSet, documents: dict[str, str]) -> list[str]:
    sentences = {source: split_sentences(text) for source, text in documents.items()}
    missing = []
    for q in eval_set.questions:
        for fact in q.facts:
            if not any(qe.holds(s, fact) for s in sentences.get(fact.source, [])):
                missing.append(f"{q.id}: {fact.fact} ({fact.source})")
    return missing


@pytest.mark.parametrize("heldout", [False, True], ids=["tuned", "heldout"])
def test_every_botocore_fact_is_held_by_a_sentence_of_its_source_operation(heldout):
    # Given the documents the facts name, read through Relay's botocore corpus (their services only)
    eval_set = qe.load_set("botocore", heldout=heldout)
    sources = {f.source for q in eval_set.questions for f in q.facts}
    documents = qe.corpus_documents("botocore", sources=sources)
    # Then every source exists and states its fact in one sentence
    assert set(documents) == sources
    assert _unstated(eval_set, documents) == []


@pytest.mark.parametrize("heldout", [False, True], ids=["tuned", "heldout"])
def test_every_stdlib_fact_is_held_by_a_sentence_of_its_module_file(stdlib_folder, heldout):
    # Given the standard library corpus built into a temporary folder
    eval_set = qe.load_set("stdlib", heldout=heldout)
    sources = {f.source for q in eval_set.questions for f in q.facts}
    documents = qe.corpus_documents("stdlib", sources=sources, folder=stdlib_folder)
    # Then every named module file exists and states its fact in one sentence
    assert set(documents) == sources
    assert _unstated(eval_set, documents) == []


@pytest.mark.parametrize(
    "change, problem",
    [
        (lambda d: d["questions"].pop(), "fewer than 12"),
        (lambda d: d["questions"][1].update(id=d["questions"][0]["id"]), "ids repeat"),
        (lambda d: d["questions"][0]["facts"].extend(d["questions"][1]["facts"][:3]), "facts, not 3-5"),
        (lambda d: d["questions"][0]["facts"][0].update(match=[["heartbeat"]]), "match groups"),
        (lambda d: d["questions"][0]["facts"][0].update(match=[["heartbeat"], ["`*_"]]), "empty alternative"),
    ],
)
def test_a_malformed_set_is_refused_naming_the_problem(change, problem):
    # Given a valid set of 12 questions, then one change
    data = json.loads((qe.HERE / "botocore.json").read_text(encoding="utf-8"))
    data["questions"] = data["questions"][:12]
    qe.parse_set(json.loads(json.dumps(data)), "botocore")
    change(data)
    # Then parsing fails and says why
    with pytest.raises(ValueError, match=problem):
        qe.parse_set(data, "botocore")


# ----- the matcher --------------------------------------------------------------------------
FACT = [["heartbeat"], ["progress", "reset"]]


def test_a_sentence_holds_a_fact_only_when_every_group_has_an_alternative():
    assert qe.holds("SendTaskHeartbeat... no: the Heartbeat clock is reset by this action.", FACT)
    assert qe.holds("A heartbeat reports that the task is still making progress.", FACT)
    # Missing one group
    assert not qe.holds("A heartbeat is sent by the worker.", FACT)
    assert not qe.holds("The worker reports its progress.", FACT)


def test_an_alternative_matches_as_a_word_prefix():
    fact = [["retr"], ["lambda"]]
    assert qe.holds("Lambda retries the invocation twice.", fact)
    assert qe.holds("Lambda: Retry behaviour varies.", fact)
    # Inside a word it does not match (no word boundary on its left)
    assert not qe.holds("Lambda returns an ultraretro answer.", fact)
    assert not qe.holds("The Lambdas metric", [["ambda"], ["metric"]])
    # A phrase alternative must appear as written (whitespace collapsed)
    assert qe.holds(
        "The  default\nvisibility timeout is 30 seconds.", [["visibility timeout"], ["30 seconds"]]
    )
    assert not qe.holds("The timeout for visibility is 30 seconds.", [["visibility timeout"], ["30 seconds"]])


def test_backticks_and_emphasis_are_ignored_but_underscores_inside_words_are_kept():
    assert qe.holds(
        "`ExitStack.enter_context` pushes its `__exit__` method as a **callback**.", [["exit"], ["callback"]]
    )
    assert qe.holds(
        "If *maxsize* is set to _None_, the cache is unbounded.", [["maxsize is set to none"], ["unbounded"]]
    )
    assert qe.holds("The state is set to INSUFFICIENT_DATA at once.", [["insufficient_data"], ["state"]])
    assert not qe.holds("The state is set to INSUFFICIENT DATA at once.", [["insufficient_data"], ["state"]])
    # Alternatives are normalised the same way; curly apostrophes count as straight ones
    assert qe.holds("You can’t call GetFederationToken.", [["`GetFederationToken`"], ["can't"]])


def test_a_fact_counts_when_one_sentence_holds_all_of_it():
    sentences = ["A heartbeat is sent by the worker.", "The worker reports its progress."]
    assert qe.facts_held(sentences, [FACT, [["worker"], ["sent"]]]) == [False, True]
    assert qe.facts_held([], [FACT]) == [False]


# ----- the baseline and the claims ----------------------------------------------------------
def test_the_baseline_ranks_by_bm25_and_keeps_no_repeated_sentence():
    # Given a small index with a near-duplicate sentence
    sentences = [
        "Task tokens are generated when a task is assigned to a worker.",
        "Task tokens are generated whenever a task is assigned to a worker.",
        "A queue holds messages until a consumer deletes them.",
        "The heartbeat clock is reset by SendTaskHeartbeat.",
    ]
    index = qe.SentenceIndex(corpus="t", sentences=sentences, sources=["a", "a", "b", "c"], documents={})
    # When the baseline answers a question about task tokens
    answer = qe.bm25_baseline("How are task tokens generated?", index, k=3)
    # Then the best sentence comes first and its near-duplicate is skipped
    assert answer[0] == sentences[0] and sentences[1] not in answer
    assert qe.bm25_baseline("zebra quokka", index) == []


def test_not_covered_claims_name_a_quoted_phrase_or_a_listed_question():
    report = "\n".join(
        [
            "# Report",
            "The heartbeat clock is reset [1].",
            "_No sentence in the research states a limit._",
            "## Open questions",
            "- Not covered by any source: “heartbeat clock”.",
            '- No source mentions "zebra migration".',
            "- **dead letter queue**: no sentence in the research mentions it.",
            "- Not answered by the sources found: q2: How is the heartbeat clock reset?",
            "- Unanswered: q3: Why do zebras migrate?",
            "- Quoted but no claim: “heartbeat clock”.",
        ]
    )
    claims = qe.not_covered_claims(report)
    assert [(c.phrase, c.kind) for c in claims] == [
        ("heartbeat clock", "quoted"),
        ("zebra migration", "quoted"),
        ("dead letter queue", "quoted"),
        ("How is the heartbeat clock reset?", "question"),
        ("Why do zebras migrate?", "question"),
    ]
    # Given a corpus that states the heartbeat clock's reset
    text = "The Heartbeat  clock is reset by each heartbeat. Queues hold messages for consumers."
    index = qe.SentenceIndex(
        corpus="t", sentences=split_sentences(text), sources=["a", "a"], documents={"a": text}
    )
    # Then a quoted phrase found in its text, and a question whose words one sentence holds, are false claims
    assert [index.contradicts(c) for c in claims] == [True, False, False, True, False]


def test_the_stdlib_corpus_is_one_markdown_file_per_module_written_deterministically(stdlib_folder, tmp_path):
    # Given the corpus written a second time elsewhere
    again = stdlib_corpus.write_corpus(tmp_path / "again")
    files = sorted(p.name for p in stdlib_folder.glob("*.md"))
    # Then it has one file per listed module, each headed by its name, byte for byte the same
    assert files == sorted(f"{m}.md" for m in stdlib_corpus.MODULES)
    assert all((stdlib_folder / f).read_bytes() == (again / f).read_bytes() for f in files)
    text = (stdlib_folder / "contextlib.md").read_text(encoding="utf-8")
    assert text.startswith("# contextlib\n") and "\n## contextlib.ExitStack.enter_context\n" in text
    # And a folder already written is reused as it is
    assert stdlib_corpus.write_corpus(again) == again.absolute()
