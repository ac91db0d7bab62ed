"""Fixtures shared by the end-to-end tests."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="module")
def callbacks_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One document about task-token callbacks and reviewers (what the e2e topics ask about)."""
    folder = tmp_path_factory.mktemp("docs")
    (folder / "callbacks.md").write_text(
        "# Callbacks\n\nA Task state can pause with waitForTaskToken until an external system calls SendTaskSuccess "
        "with the task token. Reviewers approve or reject the analysis of a workflow; a rejection carries feedback.\n"
    )
    return folder
