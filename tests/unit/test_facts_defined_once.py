"""Each fact once: a second definition of a shared fact anywhere in the project's source
(not in ``tests/``) fails here, naming the file and line.

- the status-change event's ``detail-type`` and the redrivable statuses:
  :mod:`relay_core.contracts` only;
- the table of failure events and the function that finds an event's details:
  :mod:`relay_core.history` only (the console's view, the cost and the status-change
  function read them there); the table is checked against the Step Functions API model.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import botocore.session
from relay_core.contracts import REDRIVABLE_STATUSES, STATUS_CHANGE_DETAIL_TYPE, ExecutionStatus
from relay_core.history import EXECUTION_FAILURE_EVENTS, FAILURE_EVENTS, event_details

from tests.support.sources import ROOT, collection_literals, python_sources, string_constants

CONTRACTS = ROOT / "layers" / "common" / "python" / "relay_core" / "contracts.py"
HISTORY = ROOT / "layers" / "common" / "python" / "relay_core" / "history.py"


def where(path: Path, line: int, root: Path = ROOT) -> str:
    return f"{path.relative_to(root)}:{line}"


def literal_uses(value: str, root: Path = ROOT) -> list[str]:
    """Every string constant equal to ``value`` in the project's Python source."""
    return [where(path, line, root) for path in python_sources(root) for line, text in string_constants(path) if text == value]


def redrivable_tables(root: Path = ROOT) -> list[str]:
    """Every collection literal whose execution statuses are exactly the redrivable ones."""
    statuses = {str(status) for status in ExecutionStatus}
    redrivable = {str(status) for status in REDRIVABLE_STATUSES}
    return [
        where(path, line, root)
        for path in python_sources(root)
        for line, values in collection_literals(path)
        if values & statuses == redrivable
    ]


def tables_of(names: set[str], least: int, root: Path = ROOT) -> list[str]:
    """Every collection literal holding ``least`` or more of ``names``."""
    return [
        where(path, line, root)
        for path in python_sources(root)
        for line, values in collection_literals(path)
        if len(values & names) >= least
    ]


def details_finders(root: Path = ROOT) -> list[str]:
    """Every ``….endswith("EventDetails")``: code that looks for an event's details member."""
    return [
        where(path, node.lineno, root)
        for path in python_sources(root)
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "endswith"
        and any(isinstance(a, ast.Constant) and a.value == "EventDetails" for a in node.args)
    ]  # fmt: skip


def test_the_status_change_detail_type_is_written_only_in_contracts():
    assert literal_uses(STATUS_CHANGE_DETAIL_TYPE) == [where(CONTRACTS, _line_of(CONTRACTS, "STATUS_CHANGE_DETAIL_TYPE = "))]


def test_the_redrivable_statuses_are_listed_only_in_contracts():
    # no collection of exactly these statuses in Python (contracts builds it from ExecutionStatus) ...
    assert redrivable_tables() == []
    # ... nor in the console's templates and scripts
    quoted = re.compile(r"""['"](?:FAILED|TIMED_OUT|ABORTED)['"]\s*,\s*['"](?:FAILED|TIMED_OUT|ABORTED)['"]""")
    pages = [p for p in (ROOT / "relay").rglob("*") if p.suffix in {".html", ".js"} and "node_modules" not in p.parts]
    assert [str(p.relative_to(ROOT)) for p in pages if quoted.search(p.read_text())] == []


def test_the_failure_events_are_tabled_only_in_history():
    assert [t for t in tables_of(set(FAILURE_EVENTS), least=3) if not t.startswith(str(HISTORY.relative_to(ROOT)))] == []
    assert details_finders() == [where(HISTORY, _line_of(HISTORY, '.endswith("EventDetails")'))]


def test_the_failure_table_is_the_apis():
    # Given the Step Functions service model botocore ships
    model = botocore.session.get_session().get_service_model("stepfunctions")
    event_types = set(model.shape_for("HistoryEventType").enum)
    details = model.shape_for("HistoryEvent").members
    with_error = {
        member[0].upper() + member[1:].removesuffix("EventDetails")
        for member, shape in details.items()
        if member.endswith("EventDetails") and {"error", "cause"} <= set(getattr(shape, "members", {}))
    }
    # Then every event that carries an error and a cause is in the table, and every name in it is an event type
    assert with_error <= FAILURE_EVENTS <= event_types
    assert FAILURE_EVENTS - with_error == {"MapStateFailed", "ParallelStateFailed"}  # failures with no details
    assert {e for e in FAILURE_EVENTS if e.startswith("Execution")} == EXECUTION_FAILURE_EVENTS


def test_event_details_finds_the_one_details_member():
    event = {"id": 3, "type": "TaskFailed", "taskFailedEventDetails": {"error": "E", "cause": "C"}, "timestamp": "t"}
    assert event_details(event) == {"error": "E", "cause": "C"}
    assert event_details({"id": 4, "type": "MapStateFailed"}) == {}


def test_the_scans_find_a_second_definition(tmp_path):
    # control: a module that defines the facts again is caught by each scan
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "copy.py").write_text(
        f"DETAIL = {STATUS_CHANGE_DETAIL_TYPE!r}\n"
        "REDRIVABLE = frozenset({'FAILED', 'TIMED_OUT', 'ABORTED'})\n"
        "FAILURES = {'TaskFailed': 'taskFailedEventDetails', 'TaskTimedOut': 'x', 'MapRunFailed': 'y'}\n"
        "def details(event):\n    return next(v for k, v in event.items() if k.endswith('EventDetails'))\n"
    )
    assert literal_uses(STATUS_CHANGE_DETAIL_TYPE, tmp_path) == ["pkg/copy.py:1"]
    assert redrivable_tables(tmp_path) == ["pkg/copy.py:2"]
    assert tables_of(set(FAILURE_EVENTS), 3, tmp_path) == ["pkg/copy.py:3"]
    assert details_finders(tmp_path) == ["pkg/copy.py:5"]


def _line_of(path: Path, text: str) -> int:
    return next(n for n, line in enumerate(path.read_text().splitlines(), start=1) if text in line)
