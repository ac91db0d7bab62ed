"""The whole workflow with the embedded model (``--model local``), as a user runs it: ``relay
run --auto-approve``, and ``relay serve`` approved through the emailed link. Each is one
real run of a 135M-parameter model on 2 questions over a one-document corpus (about a
minute on 2 cores); what is checked is the path, not the prose: SUCCEEDED, the report
written and naming the model, the server's real token counts in the cost.

Needs ``make setup-llm`` (skipped without it, failed with ``RELAY_REQUIRE_LOCAL_MODEL=1``).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.test_local_model import require_local_model
from tests.support.polling import api_status, eventually

RELAY = str(Path(sys.executable).with_name("relay"))
MODEL = "SmolLM2-135M-Instruct-Q4_1"
PROVENANCE = f"_Provenance: written by llama.cpp server {MODEL} for Relay._"


def environment(home: Path) -> dict[str, str]:
    """The user's environment without Relay's own variables (the model comes from --model)."""
    return {k: v for k, v in os.environ.items() if not k.startswith("RELAY_")} | {"HOME": str(home)}


def model_usage(history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The ``usage`` each Task result reported."""
    found = []
    for event in history:
        output = (event.get("taskSucceededEventDetails") or {}).get("output") or ""
        if '"usage"' in output:
            result = json.loads(output)
            found.append((result.get("Payload") or result)["usage"])
    return found


@pytest.mark.timeout(600)  # a minute on an idle 2-core machine; several times that when both cores are busy
def test_relay_run_with_the_embedded_model_succeeds_and_its_report_names_the_model(callbacks_corpus, tmp_path):
    require_local_model()
    result = subprocess.run(
        [RELAY, "run", "How do task tokens pause a workflow?", "--model", "local", "--auto-approve", "--questions", "2",
         "--corpus", str(callbacks_corpus), "--runs-dir", str(tmp_path / "runs")],
        capture_output=True, text=True, timeout=540, env=environment(tmp_path),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(rf"embedded model {MODEL} loaded in [\d.]+s, serving http://127\.0\.0\.1:\d+", result.stdout)
    (run_dir,) = (tmp_path / "runs").iterdir()
    # The report is written and its provenance names the model
    report = (run_dir / "report.md").read_text()
    assert report.startswith("# ") and report.rstrip().endswith(PROVENANCE)
    # Every agent step reported the server's own token counts, under the model's id
    usage = model_usage(json.loads((run_dir / "history.json").read_text()))
    assert len(usage) == 4  # PlanResearch, CompileResearch (the researchers'), AnalyzeResearch, WriteReport
    assert all(u["model"] == MODEL and u["inputTokens"] > 0 and u["outputTokens"] > 0 for u in usage), usage
    # and the cost line counts them, priced at 0
    total = sum(u["inputTokens"] + u["outputTokens"] for u in usage)
    assert f", {total:,} model tokens: $" in result.stdout
    # The researchers searched the corpus (for the model, which calls no tools) and say so
    assert json.loads((run_dir / "artifacts" / "findings" / "q01.evidence.json").read_text())
    assert "callbacks.md" in report
    assert json.loads((run_dir / "run.json").read_text())["model"] == "local"  # a redrive uses it again


@pytest.mark.timeout(600)
def test_relay_serve_with_the_embedded_model_is_approved_through_the_emailed_link(callbacks_corpus, tmp_path):
    require_local_model()
    data_dir = tmp_path / "serve"
    process = subprocess.Popen(
        [RELAY, "serve", "--model", "local", "--port", "0", "--data-dir", str(data_dir), "--corpus", str(callbacks_corpus)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=environment(tmp_path),
    )
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        match = re.match(r"relay: serving (http://127\.0\.0\.1:\d+)$", first.strip())
        assert match, first + (process.stderr.read() if process.stderr and process.poll() is not None else "")
        url = match.group(1)

        def relay(*args: str) -> tuple[int, Any, str]:
            done = subprocess.run(
                [RELAY, *args, "--data-dir", str(data_dir)], capture_output=True, text=True, timeout=120, env=environment(tmp_path)
            )
            return done.returncode, json.loads(done.stdout) if done.stdout.strip().startswith("{") else done.stdout, done.stderr

        code, started, err = relay("start", "How do task tokens pause a workflow?", "--questions", "2")
        assert code == 0, err
        workflow_id = started["workflow_id"]
        # When it waits for approval, the approval email's link decides it
        eventually(
            lambda: (api_status(url, workflow_id).get("approval") or {}).get("status") == "PENDING",
            timeout=360, interval=1, what="the approval request",
        )
        code, decided, err = relay("approve", workflow_id, "--as", "e2e reviewer")
        assert code == 0, err
        assert decided["result"].startswith("You approved this analysis.")
        # Then it completes, and GET /workflows/{id} prices the server's real tokens under the model's id
        done = eventually(lambda: (s := api_status(url, workflow_id))["status"] == "SUCCEEDED" and s, timeout=180, interval=1, what="SUCCEEDED")
        (tokens,) = done["cost"]["model_tokens"]
        assert tokens["model"] == MODEL and tokens["input_tokens"] > 0 and tokens["output_tokens"] > 0 and tokens["usd"] == 0.0
        report = data_dir / "reports" / f"{workflow_id}.md"
        assert eventually(report.is_file, what="the report file")
        assert report.read_text().rstrip().endswith(PROVENANCE)
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
