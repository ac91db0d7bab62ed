"""The evaluation sets, the fact matcher, the corpora's documents and the BM25 baseline.

* An evaluation set (``botocore.json``, ``stdlib.json`` beside this file) is a list of
  questions a user would ask, each with 3–5 reference facts the corpus states plainly.
  A fact's ``match`` is its nugget: groups of alternatives. A sentence **holds** the fact
  when every group has an alternative in it: case-insensitive, on the sentence with
  backticks, ``*`` and ``_`` emphasis removed and whitespace collapsed (:func:`normalise`,
  applied to the alternatives too), an alternative matching as a word prefix (a word
  boundary on its left: ``retr`` matches ``retries``, not ``metric``). A set of sentences
  holds a fact when one of them does (:func:`facts_held`).
  Each corpus also has a held-out set (``botocore_heldout.json``, ``stdlib_heldout.json``)
  of other questions, on other services and modules, that is not used to tune the pipeline.
* :func:`corpus_documents` gives each corpus's documents as Relay searches them: the
  botocore documentation through Relay's own :class:`~relay_agents.corpus.BotocoreDocsCorpus`
  (one document per operation, ``botocore://service/Operation``, and one per service),
  the standard library corpus from its folder (:mod:`stdlib_corpus`), one per file.
* The baseline (:func:`bm25_baseline`) is a plain extractive retriever: every document
  split into sentences (:func:`relay_core.prose.split_sentences`), sentences that are not
  prose dropped (:func:`relay_core.prose.fragment_kind`), ranked by BM25 (``bm25s``, tokens
  from :func:`relay_agents.text.tokenize`) against the question; the ``k`` best that do not
  repeat an already kept one (:func:`relay_core.quality.repeats`) are its answer. The
  sentence split of a corpus is cached on disk under ``$RELAY_CACHE_DIR/bench/``
  (default ``~/.cache/relay``), keyed by the corpus and the splitter's source.
* :func:`not_covered_claims` finds a report's lines that call something not covered or
  unanswered; :meth:`SentenceIndex.contradicts` says whether the corpus states it.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
#: The corpora with an evaluation set.
CORPORA = ("botocore", "stdlib")
#: Bump when the cached sentence split's layout changes.
SENTENCES_FORMAT = "relay-bench-sentences-v1"
MIN_QUESTIONS = 12
MIN_FACTS, MAX_FACTS = 3, 5
MIN_GROUPS, MAX_GROUPS = 2, 4

_BACKTICK_EMPHASIS_RE = re.compile(r"[`*]+")
#: An underscore that is not between two word characters (``_word_``, ``__init__``'s
#: outer ones), so ``INSUFFICIENT_DATA`` and ``side_effect`` keep theirs.
_UNDERSCORE_EMPHASIS_RE = re.compile(r"(?<![A-Za-z0-9])_+|_+(?![A-Za-z0-9])")
_QUOTES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u201c": '"', "\u201d": '"', "\u00a0": " "})


def normalise(sentence: str) -> str:
    """``sentence`` lower-cased, without backticks, ``*`` and ``_`` emphasis, curly quotes
    made straight, whitespace collapsed."""
    text = _BACKTICK_EMPHASIS_RE.sub("", sentence.translate(_QUOTES))
    text = _UNDERSCORE_EMPHASIS_RE.sub("", text)
    return " ".join(text.lower().split())


# ----- the evaluation sets ------------------------------------------------------------------
@dataclass(frozen=True)
class Fact:
    """One reference fact.

    Attributes:
        fact: the fact in words (for people).
        source: the document that states it (``botocore://service/Operation``, or the
            standard library module's file name, ``contextlib.md``).
        match: the nugget: groups of alternatives (see the module docstring).
    """

    fact: str
    source: str
    match: tuple[tuple[str, ...], ...]


@dataclass(frozen=True)
class Question:
    id: str
    question: str
    facts: tuple[Fact, ...]


@dataclass(frozen=True)
class EvalSet:
    corpus: str
    questions: tuple[Question, ...]

    @property
    def facts(self) -> int:
        return sum(len(q.facts) for q in self.questions)


def parse_set(data: dict[str, Any], name: str) -> EvalSet:
    """An evaluation set from its JSON form, validated.

    Raises:
        ValueError: naming the problem: fewer than :data:`MIN_QUESTIONS` questions, a
            question without 3–5 facts, a repeated id, a fact without 2–4 non-empty
            match groups, or another corpus's set.
    """
    if data.get("corpus") != name:
        raise ValueError(f"{name}: the set is for corpus {data.get('corpus')!r}")
    questions = []
    for raw in data.get("questions", []):
        qid = str(raw.get("id", ""))
        if not qid or not str(raw.get("question", "")).strip():
            raise ValueError(f"{name}: a question without an id or text: {raw!r:.80}")
        facts = []
        for f in raw.get("facts", []):
            groups = tuple(tuple(str(a) for a in group) for group in f.get("match", []))
            if not MIN_GROUPS <= len(groups) <= MAX_GROUPS or not all(groups):
                raise ValueError(
                    f"{name} {qid}: fact {f.get('fact')!r} needs {MIN_GROUPS}-{MAX_GROUPS} match groups"
                )
            if any(not normalise(a) for group in groups for a in group):
                raise ValueError(f"{name} {qid}: fact {f.get('fact')!r} has an empty alternative")
            if not f.get("fact") or not f.get("source"):
                raise ValueError(f"{name} {qid}: a fact without its text or source")
            facts.append(Fact(fact=str(f["fact"]), source=str(f["source"]), match=groups))
        if not MIN_FACTS <= len(facts) <= MAX_FACTS:
            raise ValueError(f"{name} {qid}: {len(facts)} facts, not {MIN_FACTS}-{MAX_FACTS}")
        questions.append(Question(id=qid, question=str(raw["question"]).strip(), facts=tuple(facts)))
    ids = [q.id for q in questions]
    if len(set(ids)) != len(ids):
        raise ValueError(f"{name}: question ids repeat: {sorted({i for i in ids if ids.count(i) > 1})}")
    if len(questions) < MIN_QUESTIONS:
        raise ValueError(f"{name}: {len(questions)} questions, fewer than {MIN_QUESTIONS}")
    return EvalSet(corpus=name, questions=tuple(questions))


def load_set(name: str, *, heldout: bool = False) -> EvalSet:
    """The evaluation set of corpus ``name`` (``botocore`` or ``stdlib``), validated
    (:func:`parse_set`): ``<name>.json``, or with ``heldout`` its held-out set
    ``<name>_heldout.json`` (questions no one tunes the pipeline on)."""
    if name not in CORPORA:
        raise ValueError(f"no evaluation set for corpus {name!r} (one of {', '.join(CORPORA)})")
    with open(HERE / f"{name}{'_heldout' if heldout else ''}.json", encoding="utf-8") as fh:
        return parse_set(json.load(fh), name)


# ----- the matcher --------------------------------------------------------------------------
Match = Sequence[Sequence[str]]


@lru_cache(maxsize=4096)
def _patterns(match: tuple[tuple[str, ...], ...]) -> tuple[re.Pattern[str], ...]:
    return tuple(
        re.compile("|".join(r"(?<![a-z0-9_])" + re.escape(normalise(a)) for a in group)) for group in match
    )


def _groups(fact: Fact | Match) -> tuple[tuple[str, ...], ...]:
    match = fact.match if isinstance(fact, Fact) else fact
    return tuple(tuple(group) for group in match)


def holds(sentence: str, fact: Fact | Match) -> bool:
    """Whether ``sentence`` holds ``fact``: each match group has an alternative in it."""
    text = normalise(sentence)
    return all(p.search(text) for p in _patterns(_groups(fact)))


def facts_held(sentences: Iterable[str], facts: Sequence[Fact | Match]) -> list[bool]:
    """For each fact, whether one of ``sentences`` holds it."""
    texts = [normalise(s) for s in sentences]
    out = []
    for fact in facts:
        patterns = _patterns(_groups(fact))
        out.append(any(all(p.search(t) for p in patterns) for t in texts))
    return out


# ----- the corpora --------------------------------------------------------------------------
def cache_dir() -> Path:
    """``$RELAY_CACHE_DIR/bench`` (default ``~/.cache/relay/bench``)."""
    return Path(os.environ.get("RELAY_CACHE_DIR") or "~/.cache/relay").expanduser() / "bench"


def _botocore_corpus(services: frozenset[str] | None) -> Any:
    from relay_agents.corpus import BotocoreDocsCorpus

    class Services(BotocoreDocsCorpus):
        """Relay's botocore corpus, limited to some services (the test's fast path)."""

        def _service_files(self):  # type: ignore[no-untyped-def]
            for service, path in super()._service_files():
                if services is None or service in services:
                    yield service, path

    return Services(cache_dir=cache_dir())


def stdlib_folder() -> Path:
    """The standard library corpus folder (built on first use; see :mod:`stdlib_corpus`)."""
    from .stdlib_corpus import default_folder, write_corpus

    return write_corpus(default_folder())


def corpus_documents(
    name: str, *, sources: Iterable[str] | None = None, folder: Path | None = None
) -> dict[str, str]:
    """``{source id: text}`` of corpus ``name``, as Relay searches it.

    Args:
        name: ``botocore`` (ids ``botocore://service/Operation`` and ``botocore://service``:
            the text of Relay's botocore corpus, its passages joined) or ``stdlib`` (ids are
            file names, ``contextlib.md``; the text as Relay's folder corpus reads it).
        sources: only these documents (the botocore corpus then reads only their services).
        folder: the standard library corpus folder (default: :func:`stdlib_folder`).
    """
    wanted = set(sources) if sources is not None else None
    if name == "botocore":
        services = None
        if wanted is not None:
            services = frozenset(s.removeprefix("botocore://").split("/", 1)[0] for s in wanted)
        docs: dict[str, list[str]] = {}
        for passage in _botocore_corpus(services).passages():
            if wanted is None or passage.uri in wanted:
                docs.setdefault(passage.uri, []).append(passage.text)
        return {uri: "\n".join(parts) for uri, parts in docs.items()}
    if name == "stdlib":
        from relay_agents.corpus import read_folder_document

        root = folder or stdlib_folder()
        out = {}
        for path in sorted(root.glob("*.md")):
            if wanted is None or path.name in wanted:
                out[path.name] = read_folder_document(path)[1]
        return out
    raise ValueError(f"unknown corpus {name!r} (one of {', '.join(CORPORA)})")


def _corpus_key(name: str, folder: Path | None) -> str:
    """What a corpus's sentence split depends on: the corpus (for botocore, its version and
    Relay's reader of it) and the splitter's code."""
    import relay_core.prose

    parts = [SENTENCES_FORMAT, name, Path(relay_core.prose.__file__).read_text(encoding="utf-8")]
    if name == "botocore":
        import botocore
        import relay_agents.corpus
        import relay_agents.text

        parts.append(botocore.__version__)
        parts += [
            Path(m.__file__).read_text(encoding="utf-8") for m in (relay_agents.corpus, relay_agents.text)
        ]
    else:
        root = folder or stdlib_folder()
        for path in sorted(root.glob("*.md")):
            st = path.stat()
            parts.append(f"{path.name}:{st.st_size}:{st.st_mtime_ns}")
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def prose_sentences(text: str) -> list[str]:
    """The prose sentences of ``text`` (split, fragments dropped)."""
    from relay_core.prose import fragment_kind, split_sentences

    return [s for s in split_sentences(text) if fragment_kind(s) is None]


@dataclass
class SentenceIndex:
    """A corpus's prose sentences and a BM25 index over them.

    Attributes:
        corpus: the corpus name.
        sentences: every prose sentence, in document order.
        sources: the source id of each sentence.
        documents: the documents' text (for the false not-covered check).
        split_seconds: time to split the corpus (or load the cached split).
        index_seconds: time to build the BM25 index.
        from_cache: the split was loaded from the disk cache.
    """

    corpus: str
    sentences: list[str]
    sources: list[str]
    documents: dict[str, str]
    split_seconds: float = 0.0
    index_seconds: float = 0.0
    from_cache: bool = False
    _retriever: Any = field(default=None, repr=False)
    _lowered: str | None = field(default=None, repr=False)

    def retriever(self) -> Any:
        if self._retriever is None:
            import bm25s
            from relay_agents.text import tokenize

            started = time.perf_counter()
            retriever = bm25s.BM25()
            retriever.index([tokenize(s) or ["_empty_"] for s in self.sentences], show_progress=False)
            self._retriever = retriever
            self.index_seconds = time.perf_counter() - started
        return self._retriever

    def mentions(self, phrase: str) -> bool:
        """Whether ``phrase`` occurs in the corpus text (case-insensitive, normalised)."""
        if self._lowered is None:
            self._lowered = "\n".join(normalise(t) for t in self.documents.values())
        wanted = normalise(phrase)
        return bool(wanted) and wanted in self._lowered

    def states_all_words(self, text: str, depth: int = 500) -> bool:
        """Whether one prose sentence of the corpus holds every content word of ``text``
        (:func:`relay_core.prose.content_tokens`), among the ``depth`` best by BM25."""
        from relay_agents.text import tokenize
        from relay_core.prose import content_tokens

        wanted = set(content_tokens(text))
        if not wanted or not self.sentences:
            return False
        retriever = self.retriever()
        tokens = [t for t in tokenize(text) if t in retriever.vocab_dict]
        if not tokens:
            return False
        ids, scores = retriever.retrieve(
            [tokens], k=min(len(self.sentences), depth), show_progress=False, n_threads=1
        )
        for idx, score in zip(ids[0], scores[0], strict=True):
            if score <= 0:
                break
            if wanted <= set(content_tokens(self.sentences[int(idx)])):
                return True
        return False

    def contradicts(self, claim: Claim) -> bool:
        """Whether the corpus says what ``claim`` calls not covered: a quoted phrase that
        occurs in the corpus text, or a listed question whose content words are all in
        one corpus sentence."""
        return self.mentions(claim.phrase) if claim.kind == "quoted" else self.states_all_words(claim.phrase)


def sentence_index(name: str, *, folder: Path | None = None) -> SentenceIndex:
    """The prose sentences of corpus ``name``, split once and cached on disk (see the
    module docstring); the BM25 index is built on first use."""
    started = time.perf_counter()
    documents = corpus_documents(name, folder=folder)
    path = cache_dir() / f"sentences-{name}-{_corpus_key(name, folder)}.json"
    sentences: list[str] = []
    sources: list[str] = []
    from_cache = False
    try:
        with open(path, encoding="utf-8") as fh:
            cached = json.load(fh)
        sentences, sources = cached["sentences"], cached["sources"]
        from_cache = True
    except (OSError, ValueError, KeyError):
        for source, text in documents.items():
            for sentence in prose_sentences(text):
                sentences.append(sentence)
                sources.append(source)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}-", dir=path.parent)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump({"sentences": sentences, "sources": sources}, fh, ensure_ascii=False)
        os.replace(tmp, path)
    return SentenceIndex(
        corpus=name,
        sentences=sentences,
        sources=sources,
        documents=documents,
        split_seconds=time.perf_counter() - started,
        from_cache=from_cache,
    )


def bm25_baseline(question: str, sentences_index: SentenceIndex, k: int = 12) -> list[str]:
    """The baseline's answer to ``question``: the ``k`` best prose sentences of the corpus
    by BM25, skipping any that :func:`relay_core.quality.repeats` one already kept."""
    from relay_agents.text import tokenize
    from relay_core.quality import repeats

    retriever = sentences_index.retriever()
    tokens = [t for t in tokenize(question) if t in retriever.vocab_dict]
    if not tokens or k <= 0:
        return []
    depth = min(len(sentences_index.sentences), max(20 * k, 200))
    ids, scores = retriever.retrieve([tokens], k=depth, show_progress=False, n_threads=1)
    kept: list[str] = []
    for idx, score in zip(ids[0], scores[0], strict=True):
        if score <= 0:
            break
        sentence = sentences_index.sentences[int(idx)]
        if any(repeats(sentence, other) for other in kept):
            continue
        kept.append(sentence)
        if len(kept) == k:
            break
    return kept


# ----- "not covered" claims ------------------------------------------------------------------
_CLAIM_RE = re.compile(
    r"\b(?:not covered|no source|not (?:answered|found|mentioned|addressed|documented|discussed)|unanswered|"
    r"(?:does|do) not (?:cover|mention|say|state|answer)|doesn't (?:cover|mention|say)|"
    r"no (?:sentence|answer|information|passage|mention))",
    re.IGNORECASE,
)
_QUOTED_RE = re.compile(
    r"[\u201c\"]([^\u201d\"\n]{2,200})[\u201d\"]|\u2018([^\u2019\n]{2,200})\u2019|\*\*([^*\n]{2,200})\*\*"
)
#: The question a claim line lists: its last ``: ``-separated part, ending with ``?``.
_LISTED_QUESTION_RE = re.compile(r":\s+((?:[^:]|:(?!\s))+\?)[\s.]*$")


@dataclass(frozen=True)
class Claim:
    """A line that says something is not covered or unanswered.

    Attributes:
        line: the line, stripped.
        phrase: what it says is missing: the quoted phrase, or the listed question.
        kind: ``quoted`` (``Not covered by any source: “X”``) or ``question`` (an
            unanswered question listed without quotes).
    """

    line: str
    phrase: str
    kind: str


def not_covered_claims(markdown: str) -> list[Claim]:
    """Every claim in ``markdown`` (any line: body, Open questions…) that something is not
    covered or unanswered, naming what: one per quoted phrase, or else the question the
    line lists (``Not answered by the sources found: q1: How …?``). A line saying so
    without naming anything (``No sentence states a limit.``) is no claim."""
    out = []
    for raw in markdown.splitlines():
        line = raw.strip()
        if not _CLAIM_RE.search(line):
            continue
        quoted = [
            next(g for g in m.groups() if g is not None).strip().rstrip(".,;:")
            for m in _QUOTED_RE.finditer(line)
        ]
        if any(quoted):
            out += [Claim(line, phrase, "quoted") for phrase in quoted if phrase]
            continue
        question = _LISTED_QUESTION_RE.search(line)
        if question:
            out.append(Claim(line, question.group(1).strip(), "question"))
    return out
