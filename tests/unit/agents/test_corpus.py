from __future__ import annotations

import os

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws
from relay_agents.corpus import (
    PASSAGE_MAX_CHARS,
    PASSAGES_PER_DOCUMENT,
    BotocoreDocsCorpus,
    FolderCorpus,
    KnowledgeBaseCorpus,
    S3Corpus,
    corpus_from_settings,
    split_passages,
)
from relay_agents.settings import AgentSettings
from relay_core.errors import InvalidInput, KnowledgeBaseThrottled

pytestmark = pytest.mark.unit


def test_folder_corpus_reads_md_txt_and_html(folder_corpus, docs_folder):
    # When searching each file's distinctive words / Then that file ranks first with its title and file URI
    md = folder_corpus.search("heartbeat timeouts worker task token", k=3)
    assert md[0].title == "Callback task tokens"
    assert md[0].uri == (docs_folder / "task-tokens.md").as_uri()
    txt = folder_corpus.search("MaxConcurrency iterations", k=3)
    assert txt[0].uri.endswith("notes/map-state.txt") and txt[0].title == "map state"
    html = folder_corpus.search("approval email signed link", k=3)
    assert html[0].title == "Human approval pattern"
    assert "signed link" in html[0].text and "script text" not in html[0].text and "p{}" not in html[0].text


def test_missing_folder_is_invalid_input(tmp_path):
    with pytest.raises(InvalidInput, match=r"corpus: folder .*nowhere does not exist"):
        FolderCorpus(tmp_path / "nowhere")
    with pytest.raises(InvalidInput, match="does not exist"):
        corpus_from_settings(AgentSettings(corpus=str(tmp_path / "nowhere")))


def test_long_documents_are_split_into_bounded_passages(tmp_path):
    sentence = "Step Functions standard workflows can run for up to one year. "
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "long.md").write_text("# Long\n\n" + sentence * 200)
    corpus = FolderCorpus(tmp_path / "d", cache_dir=tmp_path / "c")
    assert corpus.size > 1
    assert all(len(p) <= PASSAGE_MAX_CHARS for p in split_passages(sentence * 200))
    hits = corpus.search("standard workflows one year", k=5)
    assert len(hits) == PASSAGES_PER_DOCUMENT  # at most that many passages of one document
    assert len({h.doc_id for h in hits}) == len(hits)


def test_index_cache_is_reused_by_a_second_instance(docs_folder, tmp_path):
    # Given an index built by one instance
    first = FolderCorpus(docs_folder, cache_dir=tmp_path / "cache")
    first.search("task token")
    assert first.loaded_from_cache is False
    index_dir = first.index_dir()
    stamp = os.stat(index_dir / "passages.json").st_mtime_ns
    # When a second instance (as in a second process) searches
    second = FolderCorpus(docs_folder, cache_dir=tmp_path / "cache")
    hits = second.search("task token")
    # Then it loads the cached index instead of rebuilding it
    assert second.loaded_from_cache is True
    assert os.stat(index_dir / "passages.json").st_mtime_ns == stamp
    assert [h.uri for h in hits] == [h.uri for h in first.search("task token")]


def test_changed_folder_rebuilds_the_index(docs_folder, tmp_path):
    FolderCorpus(docs_folder, cache_dir=tmp_path / "cache").search("task")
    (docs_folder / "new.md").write_text(
        "# Express workflows\n\nExpress workflows run for at most five minutes."
    )
    corpus = FolderCorpus(docs_folder, cache_dir=tmp_path / "cache")
    assert corpus.search("express workflows five minutes")[0].title == "Express workflows"
    assert corpus.loaded_from_cache is False


def test_botocore_default_corpus_finds_step_functions_task_token_docs(botocore_corpus):
    hits = botocore_corpus.search("How do AWS Step Functions task tokens work?", k=5)
    uris = [h.uri for h in hits]
    assert "botocore://stepfunctions/SendTaskSuccess" in uris[:3]
    assert all(h.title.startswith("AWS Step Functions") for h in hits[:3])
    assert all(len(h.text) <= PASSAGE_MAX_CHARS for h in hits)


def test_botocore_cache_loads_without_rebuilding(botocore_corpus):
    botocore_corpus.search("SendTaskSuccess")
    again = BotocoreDocsCorpus(cache_dir=botocore_corpus.cache_dir)
    assert again.search("SendTaskSuccess task token")[0].uri.startswith("botocore://stepfunctions/")
    assert again.loaded_from_cache is True


def test_corpus_from_settings_is_cached_and_defaults_to_botocore(docs_folder, tmp_path):
    assert isinstance(corpus_from_settings(AgentSettings(cache_dir=tmp_path)), BotocoreDocsCorpus)
    folder_settings = AgentSettings(corpus=str(docs_folder), cache_dir=tmp_path)
    assert corpus_from_settings(folder_settings) is corpus_from_settings(folder_settings)
    assert isinstance(corpus_from_settings(folder_settings), FolderCorpus)


@mock_aws
def test_s3_corpus_under_moto(aws_credentials, tmp_path):
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket="corpus-bucket")
    s3.put_object(
        Bucket="corpus-bucket",
        Key="docs/a.md",
        Body=b"# Activities\n\nActivity workers poll GetActivityTask for work.",
    )
    s3.put_object(
        Bucket="corpus-bucket",
        Key="docs/b.html",
        Body=b"<title>Quotas</title><p>Execution history is limited to 25,000 events.</p>",
    )
    s3.put_object(Bucket="corpus-bucket", Key="docs/skip.bin", Body=b"\x00\x01")
    s3.put_object(
        Bucket="corpus-bucket", Key="other/c.md", Body=b"# Elsewhere\n\nActivity workers elsewhere."
    )
    corpus = S3Corpus("corpus-bucket", "docs/", client=s3, cache_dir=tmp_path)
    hits = corpus.search("activity workers poll", k=5)
    assert [h.uri for h in hits] == ["s3://corpus-bucket/docs/a.md"]
    assert corpus.search("execution history events")[0].title == "Quotas"
    assert (
        S3Corpus("corpus-bucket", "docs/", client=s3, cache_dir=tmp_path)
        .search("activity")[0]
        .uri.endswith("a.md")
    )


def test_knowledge_base_corpus_maps_retrieve_results():
    client = boto3.client(
        "bedrock-agent-runtime", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
    )
    stubber = Stubber(client)
    stubber.add_response(
        "retrieve",
        {
            "retrievalResults": [
                {
                    "content": {"text": "Task tokens identify a waiting task."},
                    "location": {"type": "S3", "s3Location": {"uri": "s3://kb-docs/callbacks.md"}},
                    "score": 0.82,
                }
            ]
        },
        {
            "knowledgeBaseId": "KB12345678",
            "retrievalQuery": {"text": "task tokens"},
            "retrievalConfiguration": {"vectorSearchConfiguration": {"numberOfResults": 3}},
        },
    )
    stubber.add_client_error("retrieve", service_error_code="ThrottlingException", http_status_code=429)
    with stubber:
        corpus = KnowledgeBaseCorpus("KB12345678", client=client)
        hits = corpus.search("task tokens", k=3)
        assert (
            hits[0].uri == "s3://kb-docs/callbacks.md"
            and hits[0].title == "callbacks.md"
            and hits[0].score == 0.82
        )
        with pytest.raises(KnowledgeBaseThrottled):
            corpus.search("again")
    stubber.assert_no_pending_responses()


def test_knowledge_base_wins_over_corpus_setting(tmp_path):
    settings = AgentSettings(knowledge_base_id="KB12345678", corpus=str(tmp_path), cache_dir=tmp_path)
    assert isinstance(corpus_from_settings(settings), KnowledgeBaseCorpus)


# ----- check_folder / check_corpus: the corpus is checked before anything starts --------
from pathlib import Path  # noqa: E402

from relay_agents.corpus import CorpusError, check_corpus, check_folder  # noqa: E402


def _good(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "tokens.md").write_text("# Task tokens\n\nA task token resumes a paused callback task.\n")
    return folder


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda p: None, r"folder .*corpus does not exist"),
        (lambda p: p.write_text("not a folder"), r"corpus is a file, not a folder"),
        (lambda p: p.mkdir(), r"folder .*corpus is empty"),
        (
            lambda p: (p.mkdir(), (p / "photo.png").write_bytes(b"\x89PNG\r\n\x1a\n\x00")),
            r"has no \.md, .*\.htm file",
        ),
        (
            lambda p: (p.mkdir(), (p / "blob.txt").write_bytes(b"\x00\x01\x02")),
            r"no document with text to index; 1 skipped, e\.g\. blob\.txt: binary file",
        ),
        (
            lambda p: (p.mkdir(), (p / "latin1.txt").write_bytes("café".encode("latin-1"))),
            r"1 skipped, e\.g\. latin1\.txt: not UTF-8 text",
        ),
        (lambda p: (p.mkdir(), (p / "blank.md").write_text("\n  \n")), r"no document with text to index$"),
        (
            lambda p: (p.mkdir(), (p / "empty.html").write_text("<html><body></body></html>")),
            r"no document with text to index$",
        ),
        (
            lambda p: (p.mkdir(), (p / "a.md").symlink_to(p / "b.md"), (p / "b.md").symlink_to(p / "a.md")),
            r"a\.md: cannot read it \(symlink loop\)",
        ),
        (
            lambda p: (p.symlink_to(p.parent / "other"), (p.parent / "other").symlink_to(p)),
            r"corpus is a symlink loop, not a folder",
        ),
    ],
    ids=[
        "missing",
        "a-file",
        "empty",
        "only-binary-types",
        "only-nul-bytes",
        "only-non-utf8",
        "only-blank",
        "html-without-text",
        "only-looping-symlinks",
        "folder-is-a-symlink-loop",
    ],
)
def test_a_corpus_that_cannot_be_researched_is_refused_with_the_reason(tmp_path, make, reason):
    # Given a corpus folder in a bad shape
    target = tmp_path / "corpus"
    make(target)
    # When it is checked / Then one CorpusError names the reason (an InvalidInput: the runtime answers 400)
    with pytest.raises(CorpusError, match=reason) as raised:
        check_folder(target)
    assert isinstance(raised.value, InvalidInput) and "\n" not in str(raised.value)


def test_unreadable_files_in_a_good_corpus_are_skipped_by_the_check_and_the_index(tmp_path, monkeypatch):
    # Given a good corpus with a broken symlink, a symlink loop, a binary, a non-UTF-8 and an unreadable file
    folder = _good(tmp_path / "docs")
    (folder / "gone.md").symlink_to(folder / "nowhere.md")
    (folder / "loop.md").symlink_to(folder / "loop.md")
    (folder / "blob.txt").write_bytes(b"MZ\x00\x00binary")
    (folder / "latin1.txt").write_bytes("résumé of task tokens".encode("latin-1"))
    (folder / "secret.md").write_text("# Secret\n\ntask token secrets")
    (folder / "self").symlink_to(folder)  # a folder symlink loop: not followed
    real_read = Path.read_bytes

    def read_bytes(self: Path) -> bytes:
        if self.name == "secret.md":  # tests run as root here, so chmod cannot make it unreadable
            raise PermissionError(13, "Permission denied", str(self))
        return real_read(self)

    monkeypatch.setattr(Path, "read_bytes", read_bytes)
    # When the folder is checked
    check = check_folder(folder)
    # Then the good document counts and each bad file is one warning line with its reason
    assert check.documents == 1
    assert dict(check.skipped) == {
        "blob.txt": "binary file (holds NUL bytes), not text",
        "gone.md": "cannot read it (does not exist (a broken symlink?))",
        "latin1.txt": "not UTF-8 text (invalid byte at offset 1)",
        "loop.md": "cannot read it (symlink loop)",
        "secret.md": "cannot read it (permission denied)",
    }
    assert check.warnings()[0] == "skipped blob.txt: binary file (holds NUL bytes), not text"
    # And the index skips the same files instead of crashing
    corpus = FolderCorpus(folder, cache_dir=tmp_path / "cache")
    assert corpus.size == 1
    assert [hit.title for hit in corpus.search("task token", k=5)] == ["Task tokens"]


def test_a_folder_that_cannot_be_listed_is_refused(tmp_path, monkeypatch):
    # Given a corpus folder whose listing fails (as root, chmod cannot make that happen)
    folder = _good(tmp_path / "docs")
    real_scandir = os.scandir

    def scandir(path=None):
        if Path(path) == folder:
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    # Then the check names it
    with pytest.raises(CorpusError, match=r"cannot read folder .*docs: permission denied"):
        check_folder(folder)


def test_an_unlistable_sub_folder_is_skipped_with_a_warning(tmp_path, monkeypatch):
    folder = _good(tmp_path / "docs")
    (folder / "private").mkdir()
    real_scandir = os.scandir

    def scandir(path=None):
        if Path(path) == folder / "private":
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    check = check_folder(folder)
    assert check.documents == 1 and check.skipped == (("private/", "permission denied"),)


def test_check_corpus_checks_folders_only(tmp_path):
    # The default (botocore) and S3 prefixes need no local check; a folder is checked
    assert check_corpus(None) is None
    assert check_corpus("s3://relay-docs/guides/") is None
    with pytest.raises(CorpusError, match="not a valid s3://bucket/prefix"):
        check_corpus("s3://Bad_Bucket")
    with pytest.raises(CorpusError, match="must not be empty"):
        check_corpus("  ")
    check = check_corpus(str(_good(tmp_path / "docs")))
    assert check is not None and check.documents == 1 and check.skipped == ()
    assert check.folder == (tmp_path / "docs").resolve()
