"""Payload discipline: no state input or output over 32 KiB, whatever
the corpus size. Its own module: it needs its own local runtime (moto state is global)."""

from __future__ import annotations

from .test_real_paths import PAYLOAD_LIMIT, run


def test_no_state_input_or_output_exceeds_32_kib_on_a_large_corpus(tmp_path_factory):
    # Given a corpus of 300 long documents and a 6-question plan
    from relay.local.runtime import LocalRelay

    corpus = tmp_path_factory.mktemp("large-corpus")
    words = ["approval", "token", "workflow", "retry", "timeout", "execution", "state", "payload", "artifact", "reviewer"]
    for i in range(300):
        body = " ".join(f"{words[(i + j) % len(words)]}{j % 17}" for j in range(1500))
        (corpus / f"doc-{i:03d}.md").write_text(f"# Document {i}\n\n{body}. The approval token workflow number {i} retries.\n")
    with LocalRelay(data_dir=tmp_path_factory.mktemp("large"), corpus=str(corpus), retry_time_scale=0.01) as relay:
        # When a workflow runs to completion
        name, description, history = run(relay, {"topic": "approval token workflow retries", "questions": 6}, [(True, "")], timeout=240)
        assert description["status"] == "SUCCEEDED", description
        # Then no state input or output in the history is over 32 KiB
        sizes = []
        for event in history:
            for details in event.values():
                if isinstance(details, dict):
                    for key in ("input", "output"):
                        if isinstance(details.get(key), str):
                            sizes.append(len(details[key].encode("utf-8")))
        assert sizes and max(sizes) < PAYLOAD_LIMIT
