"""`relay run` on a corpus where no document matches: the last lines say so."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

RELAY = str(Path(sys.executable).with_name("relay"))


def test_a_run_whose_questions_match_no_document_names_the_reason_in_its_last_lines(tmp_path):
    # Given a corpus about something else entirely
    corpus = tmp_path / "docs"
    corpus.mkdir()
    (corpus / "zebras.md").write_text("# Zebras\n\nThe quokka and the zebra graze on savannah grasses near the river.\n")
    topic = "How do Step Functions task tokens work?"
    # When a run researches a topic the corpus does not cover
    result = subprocess.run(
        [RELAY, "run", topic, "--questions", "1", "--auto-approve", "--corpus", str(corpus), "--runs-dir", str(tmp_path / "runs")],
        capture_output=True, text=True, timeout=180,
    )
    # Then it fails at the Map state, and its failure line names the researcher's own error
    assert result.returncode == 1, result.stdout + result.stderr
    failure = next(line for line in result.stderr.splitlines() if line.startswith("relay: FAILED: "))
    assert failure.startswith("relay: FAILED: ResearchQuestions failed (States.ExceedToleratedFailureThreshold)")
    assert "NoMatchingDocument" in failure
    assert f"no document in the corpus matches {topic!r}" in failure
    assert result.stderr.splitlines()[-1].startswith("relay: resume from the state that failed with:  relay redrive ")
    # And the execution's cause (what the failure record copies) carries it too
    (run_dir,) = (tmp_path / "runs").iterdir()
    execution = json.loads((run_dir / "execution.json").read_text())
    assert execution["status"] == "FAILED" and "no document in the corpus matches" in execution["cause"]
