"""The token meter: each agent call's own usage, counted only by the block (and thread) that ran it."""

from __future__ import annotations

import threading

from relay_agents.offline import OfflineModel
from relay_agents.planner import plan_questions
from relay_agents.runner import metered


def test_each_call_is_counted_once_and_a_second_block_starts_from_zero(folder_corpus) -> None:
    with metered() as first:
        plan_questions("How do task tokens work?", 2, model=OfflineModel(), corpus=folder_corpus)
    once = first.usage()
    assert once is not None and once.input_tokens > 0 and once.output_tokens > 0
    with metered() as second:
        plan_questions("How do task tokens work?", 2, model=OfflineModel(), corpus=folder_corpus)
        plan_questions("How do task tokens work?", 2, model=OfflineModel(), corpus=folder_corpus)
    twice = second.usage()
    # the same planning twice costs twice as much: nothing of the first block leaks in
    assert twice is not None and (twice.input_tokens, twice.output_tokens) == (2 * once.input_tokens, 2 * once.output_tokens)


def test_outside_a_block_nothing_is_counted_and_threads_keep_their_own_counts(folder_corpus) -> None:
    plan_questions("How do task tokens work?", 2, model=OfflineModel(), corpus=folder_corpus)  # no meter: nothing to count into
    results: dict[str, int] = {}

    def plan(name: str, calls: int) -> None:
        with metered() as meter:
            for _ in range(calls):
                plan_questions("How do task tokens work?", 2, model=OfflineModel(), corpus=folder_corpus)
        usage = meter.usage()
        results[name] = usage.input_tokens if usage else 0

    threads = [threading.Thread(target=plan, args=("one", 1)), threading.Thread(target=plan, args=("three", 3))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results["three"] == 3 * results["one"] > 0
