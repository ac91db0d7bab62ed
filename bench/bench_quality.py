"""Benchmark: how much of what a user needs do Relay's reports say, and how well — measured
against reference facts, beside a plain BM25 sentence retriever on the same questions.

Run on demand (``python bench/bench_quality.py [--corpus botocore|stdlib|all] [--heldout]
[--limit N] [--questions 3] [--jobs 2] [--verbose] [--json PATH]``); it is not a test and
asserts nothing (exit 0 unless it could not run).

The yardstick (``bench/quality_eval/``): for each corpus — the AWS documentation in
botocore (Relay's default corpus) and the docstrings of ~60 standard library modules
(``quality_eval/stdlib_corpus.py``, a corpus no one here wrote) — 12–14 questions a user
would ask, each with 3–5 reference facts the corpus states plainly, written from the
corpora before any report was read. A fact is a nugget of word groups; a sentence holds
it when every group has one of its alternatives (``quality_eval/facts.py``). Those sets
have been used to tune the pipeline, so their figures are optimistic; ``--heldout`` uses
each corpus's held-out set instead (``<corpus>_heldout.json``: 12 other questions, on other
services and modules, that no one tunes on), everything else the same.

For each question of each corpus:

* **pipeline**: the whole workflow, ``relay run "<question>" --questions 3 --auto-approve
  --runs-dir <tmp> [--corpus <stdlib folder>]``, one process per question (the ``relay``
  beside this interpreter), ``--jobs`` at once (the first run of a corpus alone, so its
  search index is built once). From ``artifacts/report.md`` and ``artifacts/research.json``:
  the body sentences (:func:`relay_core.quality.body_sentences`), the facts they hold (a
  fact counts when one body sentence holds it), the sentence count, and
  :func:`relay_core.quality.assess`'s redundancy, fragments, grounded share and planned-
  question coverage. A failed run counts as 0 facts and is listed.
* **false not-covered**: every line of the report (anywhere, Open questions included)
  that says something is not covered or unanswered and names what is a claim: a quoted
  phrase (``Not covered by any source: “X”``) is false when it occurs in the corpus text
  (case-insensitive); a listed question (``Not answered by the sources found: q1: How …?``)
  is false when one prose sentence of the corpus holds all its content words.
* **baseline**: the corpus split into sentences (:func:`relay_core.prose.split_sentences`),
  non-prose dropped (:func:`relay_core.prose.fragment_kind`), ranked by BM25 against the
  question; the 12 best that do not repeat a kept one (:func:`relay_core.quality.repeats`).
  Its facts held, sentences, redundancy and fragments are scored like the pipeline's.

Shares are pooled over a corpus's reports (repeated sentences / all sentences, …). The
table puts the targets beside the figures: facts ≥ 75 % and ≥ the baseline's + 20 points,
redundancy ≤ 5 %, fragments ≤ 5 %, grounded ≥ 95 %, no false not-covered claim, at most
20 sentences per report for 3 questions (scaled with ``--questions``). Each phase's wall
time is printed. The figures are lexical: a fact counts when its words are there, not
when a sentence is true.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from quality_eval import facts as qe  # noqa: E402

#: Targets (see the module docstring).
FACTS_TARGET = 0.75
FACTS_OVER_BASELINE = 0.20
REDUNDANCY_TARGET = 0.05
FRAGMENTS_TARGET = 0.05
GROUNDED_TARGET = 0.95
SENTENCES_PER_QUESTION = 20 / 3
BASELINE_K = 12


@dataclass
class Scored:
    """One answer (a report, or the baseline's sentences) scored against one question."""

    held: list[bool] = field(default_factory=list)
    sentences: int = 0
    repeated: int = 0
    fragments: int = 0
    grounded: int | None = None
    planned: int | None = None
    answered: int | None = None
    claims: list[str] = field(default_factory=list)
    false_claims: list[str] = field(default_factory=list)


@dataclass
class RunOutcome:
    qid: str
    ok: bool
    wall: float
    error: str = ""
    report: str = ""
    research: str = ""


@dataclass
class QuestionResult:
    id: str
    question: str
    facts: list[str]
    pipeline: Scored
    baseline: Scored
    run_ok: bool
    run_wall: float
    run_error: str = ""


def score_report(markdown: str, research_json: str, facts: list[qe.Fact], index: qe.SentenceIndex) -> Scored:
    """The pipeline's figures for one report (see the module docstring)."""
    from relay_core.models import ResearchDocument
    from relay_core.quality import assess, body_sentences

    body = [b.text for b in body_sentences(markdown)]
    assessment = assess(markdown, ResearchDocument.model_validate_json(research_json))
    claims = qe.not_covered_claims(markdown)
    return Scored(
        held=qe.facts_held(body, facts),
        sentences=assessment.sentences,
        repeated=assessment.repeated,
        fragments=assessment.fragments,
        grounded=assessment.grounded,
        planned=len(assessment.questions),
        answered=sum(1 for q in assessment.questions if q.answered),
        claims=[c.phrase for c in claims],
        false_claims=[c.phrase for c in claims if index.contradicts(c)],
    )


def score_sentences(sentences: list[str], facts: list[qe.Fact]) -> Scored:
    """The baseline's figures: its sentences as the body."""
    from relay_core.prose import fragment_kind
    from relay_core.quality import repeats

    return Scored(
        held=qe.facts_held(sentences, facts),
        sentences=len(sentences),
        repeated=sum(1 for i, s in enumerate(sentences) if any(repeats(s, e) for e in sentences[:i])),
        fragments=sum(1 for s in sentences if fragment_kind(s) is not None),
    )


def run_relay(
    relay: str, qid: str, question: str, questions: int, corpus: Path | None, work: Path, timeout: float
) -> RunOutcome:
    """One ``relay run`` of the whole workflow; its report and research, or why it failed."""
    runs_dir = work / qid
    command = [
        relay,
        "run",
        question,
        "--questions",
        str(questions),
        "--auto-approve",
        "--runs-dir",
        str(runs_dir),
    ]
    if corpus is not None:
        command += ["--corpus", str(corpus)]
    started = time.perf_counter()
    try:
        proc = subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=os.environ.copy())
    except subprocess.TimeoutExpired:
        return RunOutcome(qid, False, time.perf_counter() - started, f"timed out after {timeout:.0f} s")
    wall = time.perf_counter() - started
    report = next(iter(sorted(runs_dir.glob("*/artifacts/report.md"))), None)
    research = next(iter(sorted(runs_dir.glob("*/artifacts/research.json"))), None)
    if proc.returncode != 0 or report is None or research is None:
        tail = (proc.stderr.strip() or proc.stdout.strip()).splitlines()[-1:] or ["no output"]
        missing = "" if report and research else " (no report.md/research.json)"
        return RunOutcome(qid, False, wall, f"exit {proc.returncode}{missing}: {tail[0][:300]}")
    return RunOutcome(
        qid,
        True,
        wall,
        report=report.read_text(encoding="utf-8"),
        research=research.read_text(encoding="utf-8"),
    )


def run_all(
    relay: str,
    items: list[tuple[str, str]],
    questions: int,
    corpus: Path | None,
    work: Path,
    jobs: int,
    timeout: float,
) -> dict[str, RunOutcome]:
    """Every question's run: the first alone (it may build the corpus's search index),
    the rest ``jobs`` at once."""
    out: dict[str, RunOutcome] = {}

    def one(item: tuple[str, str]) -> RunOutcome:
        outcome = run_relay(relay, item[0], item[1], questions, corpus, work, timeout)
        state = "ok" if outcome.ok else f"FAILED: {outcome.error}"
        print(f"  run {item[0]}: {outcome.wall:5.1f} s {state}", flush=True)
        return outcome

    if items:
        out[items[0][0]] = one(items[0])
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        for outcome in pool.map(one, items[1:]):
            out[outcome.qid] = outcome
    return out


def pct(part: float, whole: float) -> float:
    return 100.0 * part / whole if whole else 0.0


def summary(results: list[QuestionResult], side: str) -> dict[str, Any]:
    """Pooled figures of one side (``pipeline`` or ``baseline``) over a corpus."""
    scored: list[Scored] = [getattr(r, side) for r in results]
    counted = [s for s, r in zip(scored, results, strict=True) if side == "baseline" or r.run_ok]
    facts = sum(len(r.facts) for r in results)
    held = sum(sum(s.held) for s in scored)
    sentences = sum(s.sentences for s in counted)
    per_report = [s.sentences for s in counted]
    out: dict[str, Any] = {
        "facts": facts,
        "facts_held": held,
        "facts_pct": round(pct(held, facts), 1),
        "reports": len(counted),
        "sentences": sentences,
        "sentences_median": statistics.median(per_report) if per_report else 0,
        "sentences_max": max(per_report, default=0),
        "redundancy_pct": round(pct(sum(s.repeated for s in counted), sentences), 1),
        "fragments_pct": round(pct(sum(s.fragments for s in counted), sentences), 1),
    }
    if side == "pipeline":
        planned = sum(s.planned or 0 for s in counted)
        out |= {
            "failed_runs": sum(1 for r in results if not r.run_ok),
            "grounded_pct": round(pct(sum(s.grounded or 0 for s in counted), sentences), 1),
            "questions_planned": planned,
            "questions_answered": sum(s.answered or 0 for s in counted),
            "coverage_pct": round(pct(sum(s.answered or 0 for s in counted), planned), 1),
            "not_covered_claims": sum(len(s.claims) for s in counted),
            "false_not_covered": sum(len(s.false_claims) for s in counted),
            "run_wall_median": round(statistics.median(r.run_wall for r in results), 2) if results else 0,
        }
    return out


def table(pipe: dict[str, Any], base: dict[str, Any], questions: int) -> list[str]:
    """The corpus's table: pipeline, baseline, target, met."""
    sentence_cap = round(SENTENCES_PER_QUESTION * questions)
    facts_floor = max(FACTS_TARGET * 100, base["facts_pct"] + FACTS_OVER_BASELINE * 100)

    def met(ok: bool) -> str:
        return "yes" if ok else "NO"

    rows = [
        (
            "facts held",
            f"{pipe['facts_held']}/{pipe['facts']} {pipe['facts_pct']:.1f} %",
            f"{base['facts_held']}/{base['facts']} {base['facts_pct']:.1f} %",
            f">= 75 % and >= {base['facts_pct'] + 20:.1f} %",
            met(pipe["facts_pct"] >= facts_floor),
        ),
        (
            "sentences per report",
            f"median {pipe['sentences_median']:g}, max {pipe['sentences_max']}",
            f"median {base['sentences_median']:g}, max {base['sentences_max']}",
            f"<= {sentence_cap}",
            met(pipe["sentences_max"] <= sentence_cap),
        ),
        (
            "redundancy",
            f"{pipe['redundancy_pct']:.1f} %",
            f"{base['redundancy_pct']:.1f} %",
            "<= 5 %",
            met(pipe["redundancy_pct"] <= REDUNDANCY_TARGET * 100),
        ),
        (
            "fragments",
            f"{pipe['fragments_pct']:.1f} %",
            f"{base['fragments_pct']:.1f} %",
            "<= 5 %",
            met(pipe["fragments_pct"] <= FRAGMENTS_TARGET * 100),
        ),
        (
            "grounded",
            f"{pipe['grounded_pct']:.1f} %",
            "-",
            ">= 95 %",
            met(pipe["grounded_pct"] >= GROUNDED_TARGET * 100),
        ),
        (
            "question coverage",
            f"{pipe['coverage_pct']:.1f} % ({pipe['questions_answered']}/{pipe['questions_planned']})",
            "-",
            "-",
            "-",
        ),
        (
            "false not-covered",
            f"{pipe['false_not_covered']} (of {pipe['not_covered_claims']} claims)",
            "-",
            "0",
            met(pipe["false_not_covered"] == 0),
        ),
    ]
    widths = [
        max(len(str(r[i])) for r in [("", "pipeline", "baseline", "target", "met"), *rows]) for i in range(5)
    ]
    header = ("", "pipeline", "baseline", "target", "met")
    lines = ["  " + "  ".join(str(c).ljust(w) for c, w in zip(header, widths, strict=True))]
    lines += ["  " + "  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)) for row in rows]
    return lines


def verbose_lines(results: list[QuestionResult], eval_set: qe.EvalSet) -> list[str]:
    by_id = {q.id: q for q in eval_set.questions}
    out = []
    for r in results:
        facts = by_id[r.id].facts
        state = "" if r.run_ok else f"  [run failed: {r.run_error}]"
        out.append(
            f"  {r.id} pipeline {sum(r.pipeline.held)}/{len(facts)}, baseline {sum(r.baseline.held)}/{len(facts)}, "
            f"{r.pipeline.sentences} sentences: {r.question}{state}"
        )
        for fact, p, b in zip(facts, r.pipeline.held, r.baseline.held, strict=True):
            if not (p and b):
                who = " and ".join(n for n, h in (("pipeline", p), ("baseline", b)) if not h)
                out.append(f"      missed by {who}: {fact.fact} ({fact.source})")
        for phrase in r.pipeline.false_claims:
            out.append(f"      false not-covered: “{phrase}” (the corpus states it)")
    return out


def bench_corpus(name: str, args: argparse.Namespace, relay: str, work: Path) -> dict[str, Any]:
    eval_set = qe.load_set(name, heldout=args.heldout)
    questions = list(eval_set.questions[: args.limit] if args.limit else eval_set.questions)
    print(
        f"\n== {name}{' (held-out set)' if args.heldout else ''}: {len(questions)} questions, "
        f"{sum(len(q.facts) for q in questions)} facts",
        flush=True,
    )
    timings: dict[str, float] = {}

    started = time.perf_counter()
    folder = qe.stdlib_folder() if name == "stdlib" else None
    timings["corpus"] = time.perf_counter() - started
    if folder is not None:
        print(f"corpus folder: {folder} ({timings['corpus']:.1f} s)", flush=True)

    started = time.perf_counter()
    index = qe.sentence_index(name, folder=folder)
    index.retriever()
    timings["baseline index"] = time.perf_counter() - started
    print(
        f"baseline index: {len(index.sentences)} prose sentences from {len(index.documents)} documents; "
        f"split {index.split_seconds:.1f} s ({'cached' if index.from_cache else 'built'}), "
        f"BM25 {index.index_seconds:.1f} s",
        flush=True,
    )

    started = time.perf_counter()
    baseline = {
        q.id: score_sentences(qe.bm25_baseline(q.question, index, k=BASELINE_K), list(q.facts))
        for q in questions
    }
    timings["baseline"] = time.perf_counter() - started
    print(f"baseline answers: {timings['baseline']:.1f} s", flush=True)

    started = time.perf_counter()
    print(f"pipeline: relay run --questions {args.questions}, {args.jobs} at once", flush=True)
    runs = run_all(
        relay,
        [(q.id, q.question) for q in questions],
        args.questions,
        folder,
        work / name,
        args.jobs,
        args.timeout,
    )
    timings["pipeline runs"] = time.perf_counter() - started

    started = time.perf_counter()
    results = []
    for q in questions:
        outcome = runs[q.id]
        if outcome.ok:
            try:
                scored = score_report(outcome.report, outcome.research, list(q.facts), index)
            except ValueError as exc:  # an unreadable research.json: counted as a failed run
                outcome = RunOutcome(q.id, False, outcome.wall, f"unreadable research.json: {exc}")
                scored = Scored(held=[False] * len(q.facts))
        else:
            scored = Scored(held=[False] * len(q.facts))
        results.append(
            QuestionResult(
                id=q.id,
                question=q.question,
                facts=[f.fact for f in q.facts],
                pipeline=scored,
                baseline=baseline[q.id],
                run_ok=outcome.ok,
                run_wall=round(outcome.wall, 2),
                run_error=outcome.error,
            )
        )
    timings["scoring"] = time.perf_counter() - started

    pipe, base = summary(results, "pipeline"), summary(results, "baseline")
    print(
        f"\n{name}: pipeline vs BM25 baseline ({len(results)} questions, {pipe['failed_runs']} failed runs, "
        f"median run {pipe['run_wall_median']:.1f} s)"
    )
    print("\n".join(table(pipe, base, args.questions)))
    if args.verbose:
        print("\n".join(verbose_lines(results, eval_set)))
    failed = [r for r in results if not r.run_ok]
    for r in failed:
        print(f"  failed run {r.id}: {r.run_error}")
    print("wall time: " + ", ".join(f"{k} {v:.1f} s" for k, v in timings.items()), flush=True)
    return {
        "corpus": name,
        "questions": len(results),
        "pipeline": pipe,
        "baseline": base,
        "timings_seconds": {k: round(v, 2) for k, v in timings.items()},
        "baseline_index": {
            "sentences": len(index.sentences),
            "documents": len(index.documents),
            "split_seconds": round(index.split_seconds, 2),
            "from_cache": index.from_cache,
            "bm25_seconds": round(index.index_seconds, 2),
        },
        "per_question": [asdict(r) for r in results],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument(
        "--corpus", choices=[*qe.CORPORA, "all"], default="all", help="which evaluation set (default all)"
    )
    parser.add_argument(
        "--heldout",
        action="store_true",
        help="use each corpus's held-out set (<corpus>_heldout.json) instead of <corpus>.json",
    )
    parser.add_argument("--limit", type=int, default=0, help="only the first N questions of each set")
    parser.add_argument("--questions", type=int, default=3, help="sub-questions per relay run (default 3)")
    parser.add_argument("--jobs", type=int, default=2, help="relay runs at once (default 2)")
    parser.add_argument(
        "--timeout", type=float, default=900, help="seconds before a run is abandoned (default 900)"
    )
    parser.add_argument(
        "--relay",
        default=str(Path(sys.executable).with_name("relay")),
        help="the relay executable (default: this venv's)",
    )
    parser.add_argument(
        "--keep-runs", type=Path, default=None, metavar="DIR", help="keep the run folders under DIR"
    )
    parser.add_argument(
        "--verbose", action="store_true", help="per question: facts held and which were missed"
    )
    parser.add_argument("--json", type=Path, default=None, metavar="PATH", help="write every figure to PATH")
    args = parser.parse_args(argv)
    if not Path(args.relay).exists():
        print(f"bench_quality: no relay executable at {args.relay} (pip install -e . first)", file=sys.stderr)
        return 2
    names = list(qe.CORPORA) if args.corpus == "all" else [args.corpus]
    work = args.keep_runs or Path(tempfile.mkdtemp(prefix="relay-bench-quality-"))
    started = time.perf_counter()
    try:
        corpora = [bench_corpus(name, args, args.relay, work) for name in names]
    finally:
        if args.keep_runs is None:
            shutil.rmtree(work, ignore_errors=True)
    total = time.perf_counter() - started
    print(f"\ntotal wall time {total:.1f} s" + (f"; run folders kept in {work}" if args.keep_runs else ""))
    if args.json:
        config = {
            "questions": args.questions,
            "jobs": args.jobs,
            "limit": args.limit,
            "heldout": args.heldout,
            "baseline_k": BASELINE_K,
        }
        args.json.write_text(
            json.dumps(
                {"config": config, "total_seconds": round(total, 2), "corpora": corpora},
                indent=2,
                ensure_ascii=False,
            )
            + "\n",
            encoding="utf-8",
        )
        print(f"figures written to {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
