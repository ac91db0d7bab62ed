"""How the ``relay`` client commands print an answer: indented JSON for scripts (stdout not
a terminal, or ``--json``), rich tables for people; every value as one line of plain text."""

from __future__ import annotations

import re
import sys
from typing import Any

#: Control characters (C0, C1, DEL) and the Unicode line and paragraph separators.
CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def one_line(text: str, limit: int = 1000) -> str:
    """``text`` safe to print as one line: control characters (newlines included) and
    unpaired surrogates escaped, cut at ``limit`` characters."""
    text = CONTROL.sub(lambda m: m.group(0).encode("unicode_escape").decode("ascii"), str(text))
    text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def is_terminal(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


def show(command: str, answer: Any, as_json: bool = False) -> None:
    """Print a client command's answer: indented JSON when stdout is not a terminal (scripts
    parse it) or ``--json`` asks for it, else rich tables (:func:`render`)."""
    if as_json or not is_terminal(sys.stdout):
        import json

        print(json.dumps(answer, indent=2, sort_keys=False))
    else:
        render(command, answer)


#: Rich styles of the statuses a workflow, its record, its approval or its execution can have.
STATUS_STYLES = {
    "SUCCEEDED": "green", "COMPLETED": "green", "APPROVED": "green",
    "RUNNING": "cyan", "AWAITING_APPROVAL": "yellow", "PENDING": "yellow",
    "FAILED": "red", "TIMED_OUT": "red", "ABORTED": "red",
    "REJECTED": "magenta", "CANCELLED": "magenta", "EXPIRED": "dim", "SUPERSEDED": "dim",
}  # fmt: skip


def render(command: str, answer: Any) -> None:
    """``answer`` as rich tables on the terminal: ``list`` one row per workflow, ``history``
    one row per event, any other answer one row per field (nested fields as ``a.b``). Every
    value is shown as plain text (never as rich markup), on one line."""
    from relay_core.history import event_details
    from rich import box
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    def cell(value: Any, limit: int = 300) -> Text:
        if value is None or value == "":
            return Text("-", style="dim")
        text = one_line(str(value), limit)
        return Text(text, style=STATUS_STYLES.get(text, ""))

    console = Console(highlight=False)
    page = answer if isinstance(answer, dict) else {}
    if command == "list" and isinstance(page.get("items"), list):
        table = Table("workflow id", "status", "created", "updated", "revisions", "topic", box=box.SIMPLE_HEAD)
        for item in page["items"]:
            item = item if isinstance(item, dict) else {}
            fields = ("workflow_id", "status", "created_at", "updated_at", "revisions", "topic")
            table.add_row(*(cell(item.get(name)) for name in fields))
        console.print(table if page["items"] else Text("no workflows", style="dim"))
    elif command == "history" and isinstance(page.get("events"), list):
        table = Table("id", "time", "type", "state / detail", box=box.SIMPLE_HEAD)
        for event in page["events"]:
            event = event if isinstance(event, dict) else {}
            details = event_details(event)
            detail = details.get("name") or " ".join(str(details[k]) for k in ("error", "cause") if details.get(k))
            table.add_row(cell(event.get("id")), cell(event.get("timestamp")), cell(event.get("type")), cell(detail, 160))
        console.print(table if page["events"] else Text("no events", style="dim"))
    else:
        table = Table(box=box.SIMPLE, show_header=False)
        table.add_column(style="bold")
        table.add_column()
        for name, value in leaves(answer):
            table.add_row(name, cell(value))
        console.print(table)
    if page.get("next_token"):
        console.print(Text(f"more: relay {command} … --next-token {page['next_token']}", style="dim"))


def leaves(value: Any, prefix: str = "") -> list[tuple[str, Any]]:
    """``value``'s leaves as ``(dotted name, value)`` pairs, in order."""
    if isinstance(value, dict) and value:
        return [pair for key, item in value.items() for pair in leaves(item, f"{prefix}{key}.")]
    return [(prefix.rstrip(".") or "value", value)]
