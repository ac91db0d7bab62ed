"""A second corpus for the quality bench, written by no one here: the docstrings of a fixed
list of well-known Python standard library modules, one Markdown file per module.

Each file (``<module>.md``) is ``# <module>``, the module docstring (``inspect.getdoc``),
then for every public class, function and method that has a docstring of its own, in
sorted order, ``## <module>.<qualified name>`` and that docstring. Public means: in the
module's ``__all__`` when it has one, else a name without a leading underscore defined in
the module itself (or in its C accelerator, ``_<name>``). Methods are those defined in the
class body, or in a private base class of the same module, without a leading underscore;
properties count as methods.

The folder is written to a temporary name and renamed into place, under
``$RELAY_CACHE_DIR/bench/stdlib-<python version>/`` (default ``~/.cache/relay``), and reused
when present (a hidden ``.format`` file names the builder's :data:`FORMAT`; the corpus
reader skips hidden files). Docstrings differ between Python versions, hence the version
in the folder's name.

``python bench/quality_eval/stdlib_corpus.py [--out DIR]`` builds it (or finds it) and
prints the folder.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import os
import platform
import shutil
import tempfile
from pathlib import Path

#: Bump when the files' layout changes: a cached folder of another format is rebuilt.
FORMAT = "relay-stdlib-corpus-v1"

#: The modules, all importable on every platform Relay supports.
MODULES: tuple[str, ...] = (
    "abc",
    "argparse",
    "ast",
    "asyncio.queues",
    "base64",
    "bisect",
    "calendar",
    "collections",
    "concurrent.futures",
    "configparser",
    "contextlib",
    "copy",
    "csv",
    "dataclasses",
    "datetime",
    "decimal",
    "difflib",
    "enum",
    "fnmatch",
    "fractions",
    "functools",
    "glob",
    "graphlib",
    "gzip",
    "hashlib",
    "heapq",
    "hmac",
    "http.client",
    "inspect",
    "ipaddress",
    "itertools",
    "json",
    "linecache",
    "logging",
    "operator",
    "pathlib",
    "pickle",
    "pprint",
    "queue",
    "random",
    "re",
    "sched",
    "secrets",
    "shlex",
    "shutil",
    "statistics",
    "string",
    "subprocess",
    "tarfile",
    "tempfile",
    "textwrap",
    "threading",
    "traceback",
    "types",
    "typing",
    "unittest.mock",
    "urllib.parse",
    "uuid",
    "warnings",
    "weakref",
    "zipfile",
)


def default_folder() -> Path:
    """``$RELAY_CACHE_DIR/bench/stdlib-<python version>`` (default cache ``~/.cache/relay``)."""
    cache = Path(os.environ.get("RELAY_CACHE_DIR") or "~/.cache/relay").expanduser()
    return cache / "bench" / f"stdlib-{platform.python_version()}"


def _own_doc(obj: object) -> str | None:
    """The object's own docstring, cleaned (``inspect.getdoc`` without inheritance)."""
    doc = getattr(obj, "__doc__", None)
    if not isinstance(doc, str) or not doc.strip():
        return None
    return inspect.cleandoc(doc)


def _escape_headings(doc: str) -> str:
    """A docstring with its lines that start with ``#`` (comments in examples) escaped as
    ``\\#``, so that the only Markdown headings are the module's and its members'."""
    return "\n".join("\\" + line if line.startswith("#") else line for line in doc.splitlines())


def _public_names(module: object, name: str) -> list[str]:
    exported = getattr(module, "__all__", None)
    if exported is not None:
        return sorted({n for n in exported if not n.startswith("_")})
    homes = {name, "_" + name.rsplit(".", 1)[-1]}
    names = []
    for attr, value in vars(module).items():
        if attr.startswith("_") or not (inspect.isclass(value) or callable(value)):
            continue
        if getattr(value, "__module__", None) in homes:
            names.append(attr)
    return sorted(names)


def _class_members(cls: type) -> dict[str, object]:
    """The class body's members, and those it inherits from private bases of its own module
    (``ExitStack`` gets ``enter_context`` from ``_BaseExitStack``), the nearest first."""
    members: dict[str, object] = {}
    for base in cls.__mro__:
        if base is cls or (base.__name__.startswith("_") and base.__module__ == cls.__module__):
            for attr, value in vars(base).items():
                members.setdefault(attr, value)
    return members


def _class_sections(prefix: str, cls: type) -> list[tuple[str, str]]:
    sections = []
    members = _class_members(cls)
    for attr in sorted(members):
        if attr.startswith("_"):
            continue
        value = members[attr]
        if isinstance(value, (staticmethod, classmethod)):
            value = value.__func__
        if not (callable(value) or isinstance(value, property)) or inspect.isclass(value):
            continue
        doc = _own_doc(value)
        if doc:
            sections.append((f"{prefix}.{attr}", doc))
    return sections


def module_markdown(name: str) -> str:
    """The Markdown file of one module (see the module docstring)."""
    module = importlib.import_module(name)
    lines = [f"# {name}", ""]
    doc = inspect.getdoc(module)
    if doc:
        lines += [_escape_headings(doc), ""]
    for attr in _public_names(module, name):
        value = getattr(module, attr, None)
        if value is None or not (inspect.isclass(value) or callable(value)):
            continue
        sections: list[tuple[str, str]] = []
        own = _own_doc(value)
        if own:
            sections.append((f"{name}.{attr}", own))
        if inspect.isclass(value):
            sections += _class_sections(f"{name}.{attr}", value)
        for title, text in sections:
            lines += [f"## {title}", "", _escape_headings(text), ""]
    return "\n".join(lines).rstrip() + "\n"


def write_corpus(folder: Path) -> Path:
    """Write the corpus into ``folder`` (a temporary sibling renamed into place) and return it.

    An existing ``folder`` of this :data:`FORMAT` is reused as it is.
    """
    folder = folder.expanduser().absolute()
    if (folder / ".format").is_file() and (folder / ".format").read_text().strip() == FORMAT:
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent))
    try:
        for name in MODULES:
            (tmp / f"{name}.md").write_text(module_markdown(name), encoding="utf-8")
        (tmp / ".format").write_text(FORMAT + "\n")
        if folder.exists():  # another format: move it away first
            old = Path(tempfile.mkdtemp(prefix=f".{folder.name}-old-", dir=folder.parent))
            os.replace(folder, old / "corpus")
            shutil.rmtree(old, ignore_errors=True)
        try:
            os.replace(tmp, folder)
        except OSError:  # another process renamed its copy first: the same content
            if not (folder / ".format").is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return folder


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, default=None, help="the folder (default: under RELAY_CACHE_DIR)")
    args = parser.parse_args(argv)
    print(write_corpus(args.out or default_folder()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
