"""Key evidence (relay_agents.key_evidence): the passages' strongest sentences across all
branches, in the analyst's and writer's prompts, and quoted by the offline model's report
when no branch's answer holds them."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from relay_agents.key_evidence import key_evidence
from relay_agents.offline.reports import compose_analyst, compose_writer
from relay_agents.prompts import analyst_prompt, read_tag, writer_prompt
from relay_core.models import CitedSource, ResearchDocument, ResearchFinding, ResearchSource
from relay_core.prose import citations, strip_citations
from relay_core.quality import body_sentences, repeats

pytestmark = pytest.mark.unit

TOPIC = "How do Amazon SNS subscriptions work?"
#: Source 1: what both branches quoted, and two sentences neither answer holds.
SUBSCRIBE = [
    "Subscribes an endpoint to an Amazon SNS topic.",
    "If the endpoint type is HTTP/S or email, the endpoint owner must confirm the subscription.",
    "Confirmation tokens are valid for two days.",
    "Returns the ARN.",
]
#: Source 2: an unrelated operation the search also returned.
TAGS = ["Lists the tags of a resource.", "Tags are case-sensitive."]
#: A code line and a grammar production: never evidence.
NOT_PROSE = ["topic = sns.create_topic(Name='orders') arn = topic['TopicArn']", "subscription ::= endpoint protocol"]


def document(*, passages: bool = True) -> ResearchDocument:
    answer = "- Subscribes an endpoint to an Amazon SNS topic [1].\n\n**Sources**\n- [1] [Subscribe](botocore://sns/Subscribe)"
    findings = [
        ResearchFinding(question_id="q01", question=TOPIC, status="answered", summary="Subscribes an endpoint.",
                        answer_markdown=answer, sources=[CitedSource(number=1, ref=1)]),
        ResearchFinding(question_id="q02", question="What does ListTagsForResource do?", status="answered", summary="Lists tags.",
                        answer_markdown="- Lists the tags of a resource [1].\n\n**Sources**\n- [1] [Tags](botocore://sns/ListTagsForResource)",
                        sources=[CitedSource(number=2, ref=1)]),
    ]
    return ResearchDocument(
        workflow_id="wf-1",
        topic=TOPIC,
        findings=findings,
        sources=[
            ResearchSource(number=1, title="Subscribe", uri="botocore://sns/Subscribe", passages=(SUBSCRIBE + NOT_PROSE) if passages else []),
            ResearchSource(number=2, title="Tags", uri="botocore://sns/ListTagsForResource", passages=TAGS if passages else []),
        ],
    )


def test_key_evidence_ranks_a_relevant_rule_first_keeps_what_no_answer_quotes_and_cites_source_numbers():
    # Given research whose first-cited source states a rule and a limit no answer quotes
    evidence = key_evidence(document(), TOPIC)
    texts = [strip_citations(s).strip() for s in evidence]
    # Then the rule (relevant, a rule word, longer) leads, ahead of the plain label
    assert texts[0] == SUBSCRIBE[1]
    assert texts.index(SUBSCRIBE[1]) < texts.index(SUBSCRIBE[0])
    # And the limit no answer quotes is evidence; a sentence sharing no word with any
    # question, from a later-cited source, is not
    assert "Confirmation tokens are valid for two days." in texts
    assert "Tags are case-sensitive." not in texts
    # And each cites the number of the source it came from; code and grammar are never evidence
    assert [citations(s) for s in evidence if "tags" in s.lower()] == [[2]]
    assert all(citations(s) == [1] for s in evidence if "tags" not in s.lower())
    assert not any("::=" in s or "create_topic" in s for s in evidence)


def test_no_passages_give_no_key_evidence_and_an_empty_evidence_tag():
    assert key_evidence(document(passages=False), TOPIC) == []
    assert read_tag(analyst_prompt(TOPIC, document(passages=False), None, 0), "evidence") == ""


def test_the_analyst_and_the_writer_get_the_key_evidence_in_their_prompts():
    for prompt in (analyst_prompt(TOPIC, document(), None, 0), writer_prompt(TOPIC, document(), "# Analysis", None)):
        lines = (read_tag(prompt, "evidence") or "").splitlines()
        assert "- Confirmation tokens are valid for two days [1]." in lines
        # and the research JSON still leaves the passages out (the evidence is the part that counts)
        assert "Tags are case-sensitive" not in (read_tag(prompt, "research") or "")


def test_the_offline_report_quotes_key_evidence_that_no_branch_answer_holds():
    # Given research in which no answer quotes the confirmation tokens' lifetime
    research = document()
    analysis = compose_analyst(analyst_prompt(TOPIC, research, None, 0))
    report = compose_writer(writer_prompt(TOPIC, research, analysis, None))
    # Then the analysis or the report states it once, cited to source 1
    said = [b.text for text in (analysis, report) for b in body_sentences(text)]
    assert any("valid for two days" in s for s in said)
    sentences = [b for b in body_sentences(report)]
    assert sum("valid for two days" in b.text for b in sentences) <= 1
    assert all(re.search(r"\[1\]", line) for line in report.splitlines() if "valid for two days" in line)


PROSE = st.lists(
    st.sampled_from(SUBSCRIBE + TAGS + ["The endpoint owner must confirm the subscription within two days.",
                                        "Amazon SNS retries delivery to an HTTP/S endpoint up to 3 times."]),
    min_size=0, max_size=8,
)


@given(first=PROSE, second=PROSE, k=st.integers(min_value=1, max_value=10))
@settings(max_examples=60, deadline=None)
def test_key_evidence_never_repeats_a_sentence_cites_a_known_source_and_keeps_to_k(first, second, k):
    research = document()
    research = research.model_copy(update={"sources": [
        research.sources[0].model_copy(update={"passages": [" ".join(first)] if first else []}),
        research.sources[1].model_copy(update={"passages": [" ".join(second)] if second else []}),
    ]})
    evidence = key_evidence(research, TOPIC, k)
    assert len(evidence) <= k
    texts = [strip_citations(s).strip() for s in evidence]
    assert not any(repeats(a, b) for i, a in enumerate(texts) for b in texts[:i])
    assert all(citations(s) and set(citations(s)) <= {1, 2} for s in evidence)


def test_the_executive_summary_never_quotes_a_parameter_definition():
    # Given research whose most on-topic sentence is a parameter's definition
    research = document()
    definition = "SubscriptionArn: The ARN of the Amazon SNS subscription of the topic."
    research = research.model_copy(update={"sources": [
        research.sources[0].model_copy(update={"passages": [definition, *SUBSCRIBE]}),
        research.sources[1],
    ]})
    analysis = compose_analyst(analyst_prompt(TOPIC, research, None, 0))
    summary = analysis.split("## Executive summary", 1)[1].split("## ", 1)[0]
    # Then the summary holds sentences, not the definition (the findings may still quote it)
    assert summary.strip() and "SubscriptionArn:" not in summary
