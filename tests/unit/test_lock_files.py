"""The lock files in requirements/ (what `make setup-run`, `setup-test` and `setup-llm` install
with ``pip install --require-hashes --no-deps``) match pyproject.toml: every requirement of an
extra is locked at a version it allows, every locked package has hashes, and the lock files
agree with each other. A change to pyproject.toml's dependencies fails here until `make lock`
has run."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from relay.local import moto_patches

pytestmark = pytest.mark.unit

ROOT = Path(__file__).parents[2]
LOCKS = ROOT / "requirements"
#: The locks are one universal resolution (the Makefile's ``lock`` target), with markers where
#: platforms or Pythons differ; these tests read them as CI installs them: CPython 3.11 on x86-64 Linux.
MARKER_ENV = {
    "python_version": "3.11",
    "python_full_version": "3.11.0",
    "sys_platform": "linux",
    "platform_system": "Linux",
    "platform_machine": "x86_64",
    "os_name": "posix",
    "implementation_name": "cpython",
    "platform_python_implementation": "CPython",
}
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;]+)(?:\s*;\s*([^\\]+))?")


def _locked(name: str) -> dict[str, tuple[Version, int]]:
    """``{package: (version, number of hashes)}`` of ``requirements/<name>.txt``, the lines
    whose markers hold for :data:`MARKER_ENV`.

    Raises:
        AssertionError: two lines for one package both hold.
    """
    pins: dict[str, tuple[Version, int]] = {}
    current = ""
    for line in (LOCKS / f"{name}.txt").read_text().splitlines():
        if match := _PIN.match(line):
            current = canonicalize_name(match[1])
            if match[3] and not Marker(match[3].strip()).evaluate(MARKER_ENV):
                current = ""
                continue
            assert current not in pins, f"requirements/{name}.txt locks {current} twice for {MARKER_ENV}"
            pins[current] = (Version(match[2]), 0)
        elif line.strip().startswith("--hash=sha256:") and current:
            version, hashes = pins[current]
            pins[current] = (version, hashes + 1)
    return pins


def _required(extra: str) -> list[Requirement]:
    """pyproject.toml's direct requirements for ``pip install .[extra]``, with the extras it
    names of relay itself expanded (``relay[local,cdk]``)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    found = [Requirement(line) for line in project["dependencies"]]
    pending, seen = [extra], set()
    while pending:
        name = pending.pop()
        if name in seen:
            continue
        seen.add(name)
        for line in project["optional-dependencies"][name]:
            requirement = Requirement(line)
            if canonicalize_name(requirement.name) == "relay":
                pending += sorted(requirement.extras)
            else:
                found.append(requirement)
    return [r for r in found if r.marker is None or r.marker.evaluate(MARKER_ENV)]


@pytest.mark.parametrize("extra", ["local", "dev", "llm"])
def test_each_requirement_of_the_extra_is_locked_at_a_version_it_allows(extra):
    # Given the extra's lock file and pyproject.toml's requirements for the extra
    pins = _locked(extra)
    for requirement in _required(extra):
        name = canonicalize_name(requirement.name)
        # Then each is locked, at a version its specifier allows
        assert name in pins, f"requirements/{extra}.txt lacks {requirement}: run make lock"
        version, _ = pins[name]
        assert requirement.specifier.contains(version, prereleases=True), (
            f"requirements/{extra}.txt locks {name}=={version}, outside {requirement}: run make lock"
        )


@pytest.mark.parametrize("lock", ["build", "local", "dev", "llm", "llm-model", "awscli"])
def test_every_locked_package_has_hashes(lock):
    pins = _locked(lock)
    assert pins
    unhashed = sorted(name for name, (_, hashes) in pins.items() if not hashes)
    assert not unhashed, f"requirements/{lock}.txt: no --hash for {unhashed}"


def test_the_locks_that_share_a_virtualenv_agree_on_every_version():
    # Given the lock files installed into .venv (setup-llm then setup-test, all --no-deps)
    constraints = _locked("constraints")
    for lock in ("build", "local", "dev", "llm"):
        # Then each package has the one version of the joint resolution
        for name, (version, _) in _locked(lock).items():
            assert constraints.get(name, (None,))[0] == version, (
                f"requirements/{lock}.txt locks {name}=={version}, "
                f"requirements/constraints.txt {constraints.get(name, ('nothing',))[0]}: run make lock"
            )


def test_the_locked_moto_is_the_one_the_patches_support():
    version, _ = _locked("local")["moto"]
    assert version in moto_patches.SUPPORTED_MOTO
