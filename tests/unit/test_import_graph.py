"""Dependencies point one way. Read from the source (``ast``, so lazy imports inside
functions count too), every import edge between Relay's parts must go down this order:

    stacks, relay (CLI and local runtime)          -- deploy / run
    functions/*/app.py, relay_agents.agentcore_app   -- composition roots
    relay_agents                                   -- the agents
    relay_core.adapters                            -- boto3 lives here
    relay_core domain (steps, approvals, workflows_api, pages)
    relay_core base (contracts, models, errors, ports, transitions, ...)

A new upward edge (the shared layer importing an agent, the domain importing boto3 or
an adapter, an agent importing the local runtime) fails this test with the file and line.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CORE = ROOT / "layers" / "common" / "python" / "relay_core"
AGENTS = ROOT / "agents" / "relay_agents"
#: relay_core modules that make up the domain; every other non-adapter module is base.
DOMAIN = {"steps", "approvals", "workflows_api", "pages"}
#: Rank of each part: an import may only reach a part of equal or lower rank, and only
#: the parts listed in ALLOWED.
RANK = {"base": 0, "domain": 1, "adapters": 2, "agents": 3, "roots": 4, "relay": 5, "stacks": 5}
#: What each part may import from Relay's own parts.
ALLOWED = {
    "base": {"base"},
    "domain": {"base", "domain"},
    "adapters": {"base", "adapters"},
    "agents": {"base", "agents"},
    "roots": {"base", "domain", "adapters", "agents"},
    "relay": {"base", "domain", "adapters", "agents", "roots", "relay"},
    "stacks": {"base", "stacks"},
}
#: Third-party modules only some parts may import.
AWS_SDK = {"boto3", "botocore"}


def part_of_module(name: str) -> str | None:
    """The part a dotted module name belongs to (None: not one of Relay's)."""
    top = name.split(".")[0]
    if top == "relay_core":
        second = name.split(".")[1] if "." in name else ""
        if second == "adapters":
            return "adapters"
        return "domain" if second in DOMAIN else "base"
    if top == "relay_agents":
        return "roots" if name.startswith("relay_agents.agentcore_app") else "agents"
    if top == "relay":
        return "relay"
    if top == "stacks":
        return "stacks"
    return None


def part_of_file(path: Path) -> str:
    relative = path.relative_to(ROOT)
    if relative.parts[0] == "functions":
        return "roots"
    if path.is_relative_to(CORE):
        module = ".".join(path.relative_to(CORE.parent).with_suffix("").parts)
    elif path.is_relative_to(AGENTS):
        module = ".".join(path.relative_to(AGENTS.parent).with_suffix("").parts)
    else:
        module = ".".join(relative.with_suffix("").parts)
    found = part_of_module(module)
    assert found is not None, path
    return found


def imports(path: Path) -> Iterator[tuple[int, str]]:
    """``(line, absolute module)`` of every import in ``path``, relative ones resolved."""
    package = path.parent
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package
                for _ in range(node.level - 1):
                    base = base.parent
                anchor = CORE.parent if base.is_relative_to(CORE.parent) else AGENTS.parent if base.is_relative_to(AGENTS.parent) else ROOT
                prefix = ".".join(base.relative_to(anchor).parts)
                yield node.lineno, f"{prefix}.{node.module}" if node.module else prefix
            elif node.module:
                yield node.lineno, node.module


def sources() -> list[Path]:
    files = [*CORE.rglob("*.py"), *AGENTS.rglob("*.py"), *(ROOT / "functions").rglob("app.py")]
    files += [*(ROOT / "relay").rglob("*.py"), *(ROOT / "stacks").rglob("*.py")]
    return sorted(files)


def violations(files: list[Path]) -> list[str]:
    found = []
    for path in files:
        part = part_of_file(path)
        for line, module in imports(path):
            where = f"{path.relative_to(ROOT)}:{line}"
            target = part_of_module(module)
            if target is not None and target not in ALLOWED[part]:
                found.append(f"{where}: {part} imports {module} ({target})")
            if module.split(".")[0] in AWS_SDK and part in {"base", "domain"}:
                found.append(f"{where}: {part} imports {module} (only adapters and composition roots hold AWS clients)")
    return found


def test_every_import_edge_points_down() -> None:
    files = sources()
    assert len(files) > 40
    assert violations(files) == []


@pytest.mark.parametrize(
    ("relative", "source"),
    [
        ("layers/common/python/relay_core/steps.py", "from relay_agents.planner import plan_questions\n"),
        ("layers/common/python/relay_core/approvals.py", "def f():\n    from botocore.exceptions import ClientError\n"),
        ("layers/common/python/relay_core/workflows_api.py", "from .adapters.step_functions import executions_for\n"),
        ("agents/relay_agents/writer.py", "import relay.local.servers\n"),
    ],
)
def test_an_upward_edge_is_found(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, relative: str, source: str) -> None:
    # A control: the same check on a copy of one file with an upward import added.
    copy = ROOT / relative
    text = copy.read_text() + "\n" + source
    original = Path.read_text
    monkeypatch.setattr(Path, "read_text", lambda self, *a, **k: text if self == copy else original(self, *a, **k))
    assert violations([copy]) != []


def test_the_parts_are_ranked_consistently() -> None:
    for part, allowed in ALLOWED.items():
        assert all(RANK[target] <= RANK[part] for target in allowed), part
