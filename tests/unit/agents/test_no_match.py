"""The researcher's "no document matches" error: its own name, its own message, not retried."""

from __future__ import annotations

import json

import pytest
from relay_agents.agentcore_app import error_response
from relay_agents.researcher import QUESTION_QUOTE_CHARS, no_match_message, research
from relay_core.errors import AgentFailed, NoMatchingDocument

pytestmark = pytest.mark.unit


def test_a_question_no_document_matches_raises_no_matching_document_naming_it(folder_corpus):
    # Given a corpus about Step Functions / When the question shares no word with it
    with pytest.raises(NoMatchingDocument) as raised:
        research("zebra quokka savannah?", corpus=folder_corpus)
    # Then the error says which question matched nothing (still an AgentFailed for callers)
    assert str(raised.value).startswith("no document in the corpus matches 'zebra quokka savannah?' (")
    assert isinstance(raised.value, AgentFailed)


def test_the_no_match_message_is_one_bounded_line():
    message = no_match_message("why\n\n" + "x" * 1000, 3)
    assert "\n" not in message and message.endswith("…' (3 searches)")
    assert len(message) < QUESTION_QUOTE_CHARS + 60


def test_the_runtime_answers_no_match_with_its_own_error_name_as_a_non_retried_4xx():
    # When the runtime maps the error / Then the body names it (the Map iteration's cause
    # carries the body) and the status is 422, which the gateway reports as
    # ValidationException: not in the AskResearcher Retry list
    response = error_response(NoMatchingDocument("no document in the corpus matches 'q' (1 searches)"))
    assert response.status_code == 422
    assert json.loads(response.body) == {
        "error": "NoMatchingDocument",
        "message": "no document in the corpus matches 'q' (1 searches)",
    }
    assert json.loads(error_response(AgentFailed("empty answer")).body)["error"] == "AgentFailed"
