"""The corpora ``search_documents`` searches: a local folder, an S3 prefix, a Bedrock
Knowledge Base, or (the default) the AWS service documentation shipped inside botocore.

Local corpora are BM25-indexed with ``bm25s`` (Lucene BM25, k1=1.5, b=0.75). Building
an index can take seconds (botocore: ~22,000 operations across ~440 services), so each
index is cached on disk under ``RELAY_CACHE_DIR/indexes/`` keyed by what it was built
from (botocore version; folder path and file mtimes/sizes; S3 keys and ETags) and by
:data:`INDEX_FORMAT`. A second process loads it instead of rebuilding. Index directories
are written to a temporary name and renamed into place, so a concurrent reader never
sees a half-written index.
"""

from __future__ import annotations

import errno
import gzip
import hashlib
import json
import os
import re
import shutil
import tempfile
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from relay_core.errors import (
    ConfigurationError,
    InvalidInput,
    KnowledgeBaseThrottled,
    KnowledgeBaseUnavailable,
)
from relay_core.observability import logger

from .settings import AgentSettings, parse_s3_uri
from .text import html_to_text, split_sentences, tokenize

#: Bump when tokenisation or passage splitting changes: old cached indexes are then ignored.
INDEX_FORMAT = "relay-index-v3"
#: Longest passage returned by a search, in characters (keeps tool results, and so the
#: model's context, bounded: 5 hits ≈ 7.5 kB).
PASSAGE_MAX_CHARS = 1500
#: Most passages of one document a search returns.
PASSAGES_PER_DOCUMENT = 3
#: File types a folder or S3 corpus reads.
TEXT_SUFFIXES = (".md", ".markdown", ".txt", ".html", ".htm")


@dataclass(frozen=True)
class Hit:
    """One search result.

    Attributes:
        doc_id: stable id of the passage (``<document>#<n>`` for split documents).
        title: document title.
        uri: where the document lives (``file://…``, ``s3://…``, ``botocore://service/Operation``).
        text: the passage, at most :data:`PASSAGE_MAX_CHARS` characters.
        score: retrieval score (BM25, or the Knowledge Base's relevance score); higher is better.
    """

    doc_id: str
    title: str
    uri: str
    text: str
    score: float


@dataclass(frozen=True)
class Passage:
    """One indexed passage. ``aliases`` are other names of the document (a service's
    abbreviation and id, e.g. ``Amazon SQS sqs``): indexed with the title, never shown."""

    doc_id: str
    title: str
    uri: str
    text: str
    aliases: str = ""


class Corpus(ABC):
    """Something ``search_documents`` can search."""

    #: A short description for logs and the README, e.g. ``folder /data/docs``.
    description: str = "corpus"

    @abstractmethod
    def search(self, query: str, k: int = 5) -> list[Hit]:
        """The ``k`` best passages for ``query``, best first (fewer if the corpus is small)."""


def split_passages(text: str, limit: int = PASSAGE_MAX_CHARS) -> list[str]:
    """Pack paragraphs (then sentences, then hard cuts) into passages of ≤ ``limit`` chars.

    A paragraph is a block between blank lines when the text has blank lines (Markdown,
    hard-wrapped docstrings: a passage never ends inside a wrapped sentence), else a line.
    """
    pieces: list[str] = []
    blank_lines = re.search(r"\n\s*\n", text) is not None
    blocks = re.split(r"\n\s*\n", text) if blank_lines else text.split("\n")
    joiner = "\n\n" if blank_lines else "\n"
    for paragraph in (p.strip() for p in blocks):
        if not paragraph:
            continue
        if len(paragraph) <= limit:
            pieces.append(paragraph)
            continue
        for sentence in split_sentences(paragraph):
            while len(sentence) > limit:
                pieces.append(sentence[:limit])
                sentence = sentence[limit:]
            if sentence:
                pieces.append(sentence)
    passages: list[str] = []
    current = ""
    for piece in pieces:
        if current and len(current) + len(joiner) + len(piece) > limit:
            passages.append(current)
            current = piece
        else:
            current = f"{current}{joiner}{piece}" if current else piece
    if current:
        passages.append(current)
    return passages


#: How many times a passage's title (and aliases) are indexed: a field boost in the manner
#: of BM25F (Robertson, Zaragoza & Taylor, 2004), so a document whose title names the
#: query's subject outranks one that only mentions it.
TITLE_WEIGHT = 2


def index_text(passage: Passage) -> str:
    """What is tokenised for a passage: its title and aliases :data:`TITLE_WEIGHT` times,
    then its text."""
    heading = f"{passage.title} {passage.aliases}".strip()
    return "\n".join([heading] * TITLE_WEIGHT + [passage.text])


def document_passages(doc_id: str, title: str, uri: str, text: str) -> list[Passage]:
    """A document as passages (``doc_id`` kept for a single passage, else ``doc_id#n``)."""
    parts = split_passages(text)
    if len(parts) <= 1:
        return [Passage(doc_id, title, uri, parts[0] if parts else "")] if parts else []
    return [Passage(f"{doc_id}#{n}", title, uri, part) for n, part in enumerate(parts, 1)]


def read_text_document(name: str, raw: bytes) -> tuple[str, str]:
    """``(title, text)`` of a ``.md``/``.txt``/``.html`` file's bytes (UTF-8, errors replaced).

    The title is the HTML ``<title>``, else the first Markdown heading, else the file stem.
    """
    body = raw.decode("utf-8", errors="replace")
    stem = Path(name).stem.replace("_", " ").replace("-", " ").strip() or name
    if name.lower().endswith((".html", ".htm")):
        title, text = html_to_text(body)
        return title or stem, text
    for line in body.splitlines():
        if line.startswith("#"):
            return line.lstrip("#").strip() or stem, body
        if line.strip():
            break
    return stem, body


class CorpusError(InvalidInput):
    """A corpus that cannot be researched: missing, not a folder, unreadable, a symlink
    loop, or without one indexable document. The message is the reason, without the
    option's name (the caller knows whether it came from ``--corpus`` or ``RELAY_CORPUS``).
    A subclass of :class:`InvalidInput`, so the researcher runtime answers it as a 400."""


class SkippedDocument(Exception):
    """One corpus file that is not indexed; the message is the reason (one line)."""


@dataclass(frozen=True)
class CorpusCheck:
    """What :func:`check_folder` found.

    Attributes:
        folder: the resolved corpus folder.
        documents: readable text files (by :data:`TEXT_SUFFIXES`) that will be indexed.
        skipped: ``(relative path, reason)`` of every file or folder that is not indexed
            because it cannot be read or is not UTF-8 text.
    """

    folder: Path
    documents: int
    skipped: tuple[tuple[str, str], ...] = ()

    def warnings(self) -> list[str]:
        """One line per skipped file: ``skipped <path>: <reason>``."""
        return [f"skipped {path}: {reason}" for path, reason in self.skipped]


def _reason(exc: OSError) -> str:
    """A short reason for a filesystem error (``symlink loop``, ``permission denied``…)."""
    if exc.errno == errno.ELOOP:
        return "symlink loop"
    if exc.errno == errno.ENOENT:
        return "does not exist (a broken symlink?)"
    return (exc.strerror or type(exc).__name__).lower()


def _text_files(root: Path, skipped: list[tuple[str, str]] | None = None) -> Iterator[Path]:
    """The files a folder corpus indexes: every ``.md``/``.markdown``/``.txt``/``.html``/
    ``.htm`` file under ``root``, recursively, in sorted order; hidden files and folders
    (a leading ``.``) are skipped and symlinked folders are not followed (so a symlink
    loop cannot recurse). Sub-folders that cannot be listed are added to ``skipped``.

    Raises:
        CorpusError: ``root`` itself cannot be listed.
    """

    def onerror(exc: OSError) -> None:
        where = Path(exc.filename or root)
        if where == root:
            raise CorpusError(f"cannot read folder {root}: {_reason(exc)}") from None
        if skipped is not None:
            skipped.append((f"{where.relative_to(root).as_posix()}/", _reason(exc)))

    for folder, dirs, files in os.walk(root, onerror=onerror):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if not name.startswith(".") and name.lower().endswith(TEXT_SUFFIXES):
                yield Path(folder) / name


def read_folder_document(path: Path) -> tuple[str, str]:
    """``(title, text)`` of one corpus file (see :func:`read_text_document`).

    Raises:
        SkippedDocument: the file cannot be read (permission, symlink loop, gone), or is
            not text: it holds a NUL byte (binary) or is not valid UTF-8.
    """
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise SkippedDocument(f"cannot read it ({_reason(exc)})") from None
    if b"\x00" in raw:
        raise SkippedDocument("binary file (holds NUL bytes), not text")
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SkippedDocument(f"not UTF-8 text (invalid byte at offset {exc.start})") from None
    return read_text_document(path.name, raw)


def _resolve_folder(path: str | Path) -> Path:
    """``path`` made absolute with symlinks resolved.

    Raises:
        CorpusError: it does not exist, is a symlink loop, or is not a folder.
    """
    given = Path(path).expanduser()
    try:
        resolved = given.resolve(strict=True)
    except FileNotFoundError:
        raise CorpusError(f"folder {given} does not exist") from None
    except RuntimeError:  # Python < 3.13 reports a symlink loop this way
        raise CorpusError(f"{given} is a symlink loop, not a folder") from None
    except OSError as exc:
        raise CorpusError(f"{given}: {_reason(exc)}") from None
    if not resolved.is_dir():
        raise CorpusError(f"{given} is a file, not a folder")
    return resolved


def check_folder(path: str | Path) -> CorpusCheck:
    """Walk a corpus folder once, with the same file rules as the index
    (:class:`FolderCorpus`), and say whether it can be researched. Cheap: every file is
    read once (bytes and UTF-8 check); HTML is only parsed until one document with text
    is found.

    Returns:
        What was found; unreadable or undecodable files are listed in ``skipped``
        (the index skips them too).

    Raises:
        CorpusError: naming the reason: the folder does not exist, is a file or a symlink
            loop, cannot be listed, is empty, holds no ``.md``/``.txt``/``.html`` file, or
            none of them can be read or holds any text.
    """
    root = _resolve_folder(path)
    skipped: list[tuple[str, str]] = []
    readable = 0
    has_text = False
    candidates = 0
    for file in _text_files(root, skipped):
        candidates += 1
        rel = file.relative_to(root).as_posix()
        try:
            title, text = read_folder_document(file)
        except SkippedDocument as exc:
            skipped.append((rel, str(exc)))
            continue
        readable += 1
        has_text = has_text or bool(text.strip())
    if not has_text:
        if candidates == 0 and not skipped:
            try:
                anything = next(os.scandir(root), None) is not None
            except OSError:
                anything = True
            if not anything:
                raise CorpusError(f"folder {root} is empty")
            raise CorpusError(f"folder {root} has no {', '.join(TEXT_SUFFIXES)} file")
        detail = f"; {len(skipped)} skipped, e.g. {skipped[0][0]}: {skipped[0][1]}" if skipped else ""
        raise CorpusError(f"folder {root} has no document with text to index{detail}")
    return CorpusCheck(folder=root, documents=readable, skipped=tuple(skipped))


def check_corpus(corpus: str | None) -> CorpusCheck | None:
    """:func:`check_folder` for a folder corpus; ``None`` for the default (botocore's
    documentation, always present) and for ``s3://`` prefixes (checked when the index is
    built: listing them needs AWS credentials).

    Raises:
        CorpusError: see :func:`check_folder`; also an ``s3://`` value that is not a
            valid ``s3://bucket/prefix`` URI.
    """
    if corpus is None:
        return None
    if corpus.startswith("s3://"):
        try:
            parse_s3_uri(corpus)
        except InvalidInput:
            raise CorpusError(f"{corpus!r} is not a valid s3://bucket/prefix URI") from None
        return None
    if not corpus.strip():
        raise CorpusError("must not be empty (a folder of .md, .txt or .html files)")
    return check_folder(corpus)


class IndexedCorpus(Corpus):
    """A local BM25 index over passages, built once and cached on disk.

    Subclasses give :meth:`cache_key` (what the index depends on) and :meth:`passages`.

    Attributes:
        loaded_from_cache: ``True`` when this instance loaded its index from disk,
            ``False`` when it built it, ``None`` before the first search.
        build_seconds: time spent building or loading the index.
    """

    kind = "index"

    def __init__(self, cache_dir: Path | str | None = None):
        self.cache_dir = Path(cache_dir).expanduser() if cache_dir else AgentSettings.from_env().cache_dir
        self.loaded_from_cache: bool | None = None
        self.build_seconds: float | None = None
        self._lock = threading.Lock()
        self._retriever: Any = None
        self._passages: list[list[str]] = []

    @abstractmethod
    def cache_key(self) -> str:
        """A string that changes whenever the indexed content changes."""

    @abstractmethod
    def passages(self) -> Iterable[Passage]:
        """Every passage to index."""

    def index_dir(self) -> Path:
        digest = hashlib.sha256(f"{INDEX_FORMAT}\n{self.cache_key()}".encode()).hexdigest()[:20]
        return self.cache_dir / "indexes" / f"{self.kind}-{digest}"

    def _ensure_index(self) -> None:
        if self._retriever is not None:
            return
        with self._lock:
            if self._retriever is not None:
                return
            started = time.perf_counter()
            target = self.index_dir()
            if (target / "passages.json").exists():
                try:
                    self._load(target)
                    self.loaded_from_cache = True
                except (OSError, ValueError) as exc:
                    logger.warning(
                        "search index cache unreadable; rebuilding",
                        extra={"index": str(target), "error": str(exc)},
                    )
                    self._build(target)
                    self.loaded_from_cache = False
            else:
                self._build(target)
                self.loaded_from_cache = False
            self.build_seconds = time.perf_counter() - started
            logger.info(
                "search index ready",
                extra={
                    "corpus": self.description,
                    "passages": len(self._passages),
                    "from_cache": self.loaded_from_cache,
                    "seconds": round(self.build_seconds, 3),
                },
            )

    def _load(self, target: Path) -> None:
        import bm25s

        with open(target / "passages.json", encoding="utf-8") as fh:
            passages = json.load(fh)
        retriever = bm25s.BM25.load(str(target / "bm25"), mmap=False, show_progress=False)
        self._passages = passages
        self._retriever = retriever

    def _build(self, target: Path) -> None:
        import bm25s

        indexed = [p for p in self.passages() if p.text.strip()]
        passages = [[p.doc_id, p.title, p.uri, p.text] for p in indexed]
        if not passages:
            raise CorpusError(f"corpus: {self.description} has no .md, .txt or .html documents")
        tokens = [tokenize(index_text(p)) or ["_empty_"] for p in indexed]
        retriever = bm25s.BM25()
        retriever.index(tokens, show_progress=False)
        self._passages = passages
        self._retriever = retriever
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
            retriever.save(str(tmp / "bm25"), show_progress=False)
            with open(tmp / "passages.json", "w", encoding="utf-8") as fh:
                json.dump(passages, fh, ensure_ascii=False, separators=(",", ":"))
            (tmp / "meta.json").write_text(
                json.dumps({"format": INDEX_FORMAT, "corpus": self.description, "passages": len(passages)})
            )
            try:
                os.replace(tmp, target)
            except OSError:  # another process won the race; its index is equivalent
                shutil.rmtree(tmp, ignore_errors=True)
        except OSError as exc:
            logger.warning("could not cache search index", extra={"index": str(target), "error": str(exc)})

    @property
    def size(self) -> int:
        """Number of indexed passages (builds or loads the index)."""
        self._ensure_index()
        return len(self._passages)

    def search(self, query: str, k: int = 5) -> list[Hit]:
        """BM25 search; at most :data:`PASSAGES_PER_DOCUMENT` passages per document URI,
        best first (a long document answers with the parts that match, a short one
        with its only passage).

        Args:
            query: free text; tokenised like the documents.
            k: most hits to return (≥ 1).
        """
        self._ensure_index()
        vocab = self._retriever.vocab_dict
        tokens = [t for t in tokenize(query) if t in vocab]
        if not tokens or k <= 0:
            return []
        depth = min(len(self._passages), max(k * 4, 20))
        ids, scores = self._retriever.retrieve([tokens], k=depth, show_progress=False, n_threads=1)
        hits: list[Hit] = []
        seen: dict[str, int] = {}
        for idx, score in zip(ids[0], scores[0], strict=True):
            if score <= 0:
                break
            doc_id, title, uri, text = self._passages[int(idx)]
            if seen.get(uri, 0) >= PASSAGES_PER_DOCUMENT:
                continue
            seen[uri] = seen.get(uri, 0) + 1
            hits.append(Hit(doc_id=doc_id, title=title, uri=uri, text=text, score=round(float(score), 4)))
            if len(hits) == k:
                break
        return hits


class FolderCorpus(IndexedCorpus):
    """Every ``.md``, ``.txt`` and ``.html`` file under ``path`` (recursive; hidden files and
    folders skipped). Long documents are split into passages.

    Files that cannot be read or are not UTF-8 text are skipped with a logged warning
    (:func:`read_folder_document`); :func:`check_folder` finds them before a run starts.

    Raises:
        CorpusError: ``path`` does not exist, is a symlink loop or is not a folder.
    """

    kind = "folder"

    def __init__(self, path: str | Path, cache_dir: Path | str | None = None):
        try:
            self.path = _resolve_folder(path)
        except CorpusError as exc:
            raise CorpusError(f"corpus: {exc}") from None
        super().__init__(cache_dir)
        self.description = f"folder {self.path}"

    def _files(self) -> Iterator[Path]:
        return _text_files(self.path)

    def cache_key(self) -> str:
        entries = []
        for f in self._files():
            try:
                st = f.stat()
                entries.append(f"{f.relative_to(self.path)}:{st.st_mtime_ns}:{st.st_size}")
            except OSError as exc:
                entries.append(f"{f.relative_to(self.path)}:unreadable:{exc.errno}")
        return f"{self.path}\n" + "\n".join(entries)

    def passages(self) -> Iterator[Passage]:
        for f in self._files():
            rel = f.relative_to(self.path).as_posix()
            try:
                title, text = read_folder_document(f)
            except SkippedDocument as exc:
                logger.warning(
                    "corpus file skipped", extra={"corpus": self.description, "file": rel, "reason": str(exc)}
                )
                continue
            yield from document_passages(rel, title, f.as_uri(), text)


class S3Corpus(IndexedCorpus):
    """Every ``.md``, ``.txt`` and ``.html`` object under ``s3://bucket/prefix``.

    The index cache key is the object keys and ETags, so a changed object rebuilds it.
    """

    kind = "s3"

    def __init__(
        self, bucket: str, prefix: str = "", *, client: Any | None = None, cache_dir: Path | str | None = None
    ):
        super().__init__(cache_dir)
        self.bucket = bucket
        self.prefix = prefix
        self._client = client
        self._listing: list[tuple[str, str]] | None = None
        self.description = f"s3://{bucket}/{prefix}"

    @property
    def client(self) -> Any:
        if self._client is None:
            import boto3

            self._client = boto3.client("s3")
        return self._client

    def _objects(self) -> list[tuple[str, str]]:
        if self._listing is None:
            listing = []
            paginator = self.client.get_paginator("list_objects_v2")
            for page in paginator.paginate(Bucket=self.bucket, Prefix=self.prefix):
                for obj in page.get("Contents", []):
                    if obj["Key"].lower().endswith(TEXT_SUFFIXES):
                        listing.append((obj["Key"], obj.get("ETag", "")))
            self._listing = sorted(listing)
        return self._listing

    def cache_key(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}\n" + "\n".join(f"{k}:{e}" for k, e in self._objects())

    def passages(self) -> Iterator[Passage]:
        for key, _etag in self._objects():
            raw = self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read()
            title, text = read_text_document(key.rsplit("/", 1)[-1], raw)
            yield from document_passages(key, title, f"s3://{self.bucket}/{key}", text)


def botocore_data_dir() -> Path:
    import botocore

    return Path(botocore.__file__).parent / "data"


class BotocoreDocsCorpus(IndexedCorpus):
    """The AWS service documentation shipped inside botocore: one document per operation
    (operation documentation plus its request parameters' documentation), titled
    ``"<service full name> — <Operation>"`` with URI ``botocore://<service>/<Operation>``,
    and one per service overview (``botocore://<service>``). The newest API version of each
    service is used (``botocore/data/<service>/<version>/service-2.json[.gz]``).
    """

    kind = "botocore"
    description = "botocore service documentation"

    def __init__(self, cache_dir: Path | str | None = None, data_dir: Path | str | None = None):
        super().__init__(cache_dir)
        self.data_dir = Path(data_dir) if data_dir else botocore_data_dir()

    def cache_key(self) -> str:
        import botocore

        return f"botocore {botocore.__version__}\n{self.data_dir}"

    def _service_files(self) -> Iterator[tuple[str, Path]]:
        for service in sorted(os.listdir(self.data_dir)):
            service_dir = self.data_dir / service
            if not service_dir.is_dir():
                continue
            versions = sorted(v for v in os.listdir(service_dir) if (service_dir / v).is_dir())
            for version in reversed(versions):
                for name in ("service-2.json.gz", "service-2.json"):
                    path = service_dir / version / name
                    if path.exists():
                        yield service, path
                        break
                else:
                    continue
                break

    @staticmethod
    def _load_json(path: Path) -> dict[str, Any]:
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rb") as fh:
            return json.load(fh)

    def passages(self) -> Iterator[Passage]:
        for service, path in self._service_files():
            model = self._load_json(path)
            meta = model.get("metadata", {})
            full_name = meta.get("serviceFullName") or service
            aliases = " ".join(dict.fromkeys(filter(None, [meta.get("serviceAbbreviation"), meta.get("serviceId"), service])))
            shapes = model.get("shapes", {})
            if model.get("documentation"):
                _, overview = html_to_text(model["documentation"])
                for passage in document_passages(service, full_name, f"botocore://{service}", overview):
                    yield Passage(passage.doc_id, passage.title, passage.uri, passage.text, aliases)
            for op_name, op in sorted(model.get("operations", {}).items()):
                _, op_text = html_to_text(op.get("documentation", ""))
                params = []
                input_shape = shapes.get(op.get("input", {}).get("shape", ""), {})
                for member, spec in input_shape.get("members", {}).items():
                    if spec.get("documentation"):
                        _, member_text = html_to_text(spec["documentation"])
                        params.append(f"{member}: {member_text}")
                text = op_text
                if params:
                    text += "\nRequest parameters:\n" + "\n".join(params)
                if not text.strip():
                    continue
                # One passage per operation: the overview first, parameters as room allows.
                text = text[:PASSAGE_MAX_CHARS].rsplit("\n", 1)[0] if len(text) > PASSAGE_MAX_CHARS else text
                yield Passage(
                    f"{service}/{op_name}",
                    f"{full_name} — {op_name}",
                    f"botocore://{service}/{op_name}",
                    text,
                    aliases,
                )


class KnowledgeBaseCorpus(Corpus):
    """A Bedrock Knowledge Base, searched with ``bedrock-agent-runtime`` ``Retrieve``.

    Raises (from :meth:`search`):
        KnowledgeBaseThrottled: the Retrieve call was throttled.
        InvalidInput: the Knowledge Base does not exist or access is denied.
        KnowledgeBaseUnavailable: any other service fault.
    """

    def __init__(self, knowledge_base_id: str, *, client: Any | None = None):
        self.knowledge_base_id = knowledge_base_id
        self._client = client
        self.description = f"Bedrock Knowledge Base {knowledge_base_id}"

    @property
    def client(self) -> Any:
        if self._client is None:
            import boto3

            self._client = boto3.client("bedrock-agent-runtime")
        return self._client

    def search(self, query: str, k: int = 5) -> list[Hit]:
        from botocore.exceptions import ClientError

        try:
            response = self.client.retrieve(
                knowledgeBaseId=self.knowledge_base_id,
                retrievalQuery={"text": query},
                retrievalConfiguration={"vectorSearchConfiguration": {"numberOfResults": max(1, k)}},
            )
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code in {"ThrottlingException", "TooManyRequestsException"}:
                raise KnowledgeBaseThrottled(f"knowledge base {self.knowledge_base_id}: {code}") from exc
            if code in {"ResourceNotFoundException", "AccessDeniedException", "ValidationException"}:
                raise ConfigurationError(f"RELAY_KNOWLEDGE_BASE_ID: {code} for {self.knowledge_base_id}") from exc
            raise KnowledgeBaseUnavailable(f"knowledge base {self.knowledge_base_id}: {code or exc}") from exc
        hits = []
        for n, result in enumerate(response.get("retrievalResults", [])[:k], 1):
            location = result.get("location", {})
            uri = _location_uri(location) or f"kb://{self.knowledge_base_id}/{n}"
            title = (result.get("metadata") or {}).get("title") or uri.rstrip("/").rsplit("/", 1)[-1] or uri
            text = result.get("content", {}).get("text", "")[:PASSAGE_MAX_CHARS]
            hits.append(
                Hit(
                    doc_id=f"{uri}#{n}",
                    title=str(title),
                    uri=uri,
                    text=text,
                    score=float(result.get("score", 0.0)),
                )
            )
        return hits


def _location_uri(location: dict[str, Any]) -> str | None:
    """The URI of a Retrieve result location (S3, web, Confluence, SharePoint, Salesforce, custom)."""
    for key, field in (
        ("s3Location", "uri"),
        ("webLocation", "url"),
        ("confluenceLocation", "url"),
        ("sharePointLocation", "url"),
        ("salesforceLocation", "url"),
        ("kendraDocumentLocation", "uri"),
        ("customDocumentLocation", "id"),
    ):
        value = location.get(key, {}).get(field)
        if value:
            return str(value)
    return None


@lru_cache(maxsize=8)
def _corpus_for(corpus: str | None, knowledge_base_id: str | None, cache_dir: str) -> Corpus:
    if knowledge_base_id:
        return KnowledgeBaseCorpus(knowledge_base_id)
    if corpus is None:
        return BotocoreDocsCorpus(cache_dir=cache_dir)
    if corpus.startswith("s3://"):
        bucket, prefix = parse_s3_uri(corpus)
        return S3Corpus(bucket, prefix, cache_dir=cache_dir)
    return FolderCorpus(corpus, cache_dir=cache_dir)


def corpus_from_settings(settings: AgentSettings | None = None) -> Corpus:
    """The corpus the settings name (cached per process: the index is loaded once).

    Raises:
        InvalidInput: a folder corpus that does not exist (``corpus: folder … does not exist``).
    """
    settings = settings or AgentSettings.from_env()
    return _corpus_for(settings.corpus, settings.knowledge_base_id, str(settings.cache_dir))


corpus_from_settings.cache_clear = _corpus_for.cache_clear  # type: ignore[attr-defined]
