"""What the fuzz tests tried, printed once at the end of the session (``tests/conftest.py``'s
``pytest_terminal_summary``) rather than by a test that has to run last.

A fuzz test sets ``REPORTS[title] = [line, ...]`` after its own checks; the summary shows
whatever ran, in any order (under pytest-xdist each worker keeps its own, and the
summary of the controlling process shows none).
"""

from __future__ import annotations

REPORTS: dict[str, list[str]] = {}
