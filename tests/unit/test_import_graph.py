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
DOMAIN = {"steps", "approvals", "workflows_api", "pages", "reconcile"}
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


# ----- no cycles -----------------------------------------------------------------------------
def module_of(path: Path) -> str:
    """The dotted module name of a source file (``functions/x/app.py`` → ``functions.x``)."""
    relative = path.relative_to(ROOT)
    if relative.parts[0] == "functions":
        return f"functions.{relative.parts[1]}"
    anchor = CORE.parent if path.is_relative_to(CORE) else AGENTS.parent if path.is_relative_to(AGENTS) else ROOT
    return ".".join(path.relative_to(anchor).with_suffix("").parts).removesuffix(".__init__")


def edges(files: list[Path]) -> dict[str, set[str]]:
    """Module → the Relay modules it imports (lazy imports too; ``from a import b`` counts
    as importing the module ``a.b`` when there is one). A module's import of its own
    package (a package that re-exports its modules) is not an edge."""
    known = {module_of(path): path for path in files}
    graph: dict[str, set[str]] = {}
    for name, path in known.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                candidates = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package
                    for _ in range(node.level - 1):
                        anchor = anchor.rpartition(".")[0]
                    base = f"{anchor}.{node.module}" if node.module else anchor
                candidates = [f"{base}.{alias.name}" for alias in node.names] + [base]
            else:
                continue
            for candidate in candidates:
                parts = candidate.split(".")
                target = next((m for m in (".".join(parts[:i]) for i in range(len(parts), 0, -1)) if m in known), None)
                if target and target != name and not name.startswith(f"{target}."):
                    found.add(target)
        graph[name] = found
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Each set of modules that import one another, round (Tarjan's strongly connected
    components of more than one module), sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for other in sorted(graph[node]):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while (top := stack.pop()) != node:
                component.append(top)
            if component:
                found.append(sorted([node, *component]))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(found)


def test_no_modules_import_each_other() -> None:
    assert cycles(edges(sources())) == []


def test_a_cycle_is_found(monkeypatch: pytest.MonkeyPatch) -> None:
    # A control: stacks/layer_build.py importing stacks/budget.py again (budget imports layer_build).
    layer_build = ROOT / "stacks" / "layer_build.py"
    text = layer_build.read_text() + "\n\ndef main():\n    from .budget import print_artifact_budget\n"
    original = Path.read_text
    monkeypatch.setattr(Path, "read_text", lambda self, *a, **k: text if self == layer_build else original(self, *a, **k))
    assert cycles(edges(sources())) == [["stacks.budget", "stacks.layer_build"]]


# ----- the API client -------------------------------------------------------------------------
def reached(graph: dict[str, set[str]], start: str) -> set[str]:
    """Every module ``start`` imports, directly or through others (lazy imports too)."""
    seen, todo = {start}, [start]
    while todo:
        for other in graph.get(todo.pop(), ()):
            if other not in seen:
                seen.add(other)
                todo.append(other)
    return seen - {start}


def test_the_api_client_loads_nothing_of_the_local_runtime() -> None:
    # relay.client talks to a deployed API too: it, and all it imports, must work without relay.local
    modules = reached(edges(sources()), "relay.client")
    assert {"relay.mailbox", "relay.discovery"} <= modules
    assert sorted(m for m in modules if m == "relay.local" or m.startswith("relay.local.")) == []


def test_a_local_runtime_import_reached_by_the_client_is_found(monkeypatch: pytest.MonkeyPatch) -> None:
    # A control: relay.mailbox (which the client imports) importing the local runtime again.
    mailbox = ROOT / "relay" / "mailbox.py"
    text = mailbox.read_text() + "\n\ndef later():\n    from relay.local.durable import write_atomic\n"
    original = Path.read_text
    monkeypatch.setattr(Path, "read_text", lambda self, *a, **k: text if self == mailbox else original(self, *a, **k))
    assert "relay.local.durable" in reached(edges(sources()), "relay.client")
