"""How commands print: rich tables on a terminal, JSON for scripts (`--output json`)."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from datetime import datetime
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

MODES = ("auto", "table", "json")
PIPE_WIDTH = 200
UNBROKEN = ("ID", "NAME", "ALIAS")  # columns a person copies from: never wrapped


class Output:
    def __init__(self, mode: str = "auto") -> None:
        self.json = mode == "json" or (mode == "auto" and not sys.stdout.isatty())
        # NOTE: a pipe or a file has no width; rich's 80 columns would wrap and crop ids
        width = None if sys.stdout.isatty() else PIPE_WIDTH
        self.console = Console(highlight=False, soft_wrap=True, width=width)
        self.err = Console(stderr=True, highlight=False, soft_wrap=True)

    def emit(self, data: Any, render: Callable[[Console], None] | None = None) -> None:
        """`data` as JSON, or as `render` draws it for a person."""
        if self.json or render is None:
            print_json(data)
        else:
            render(self.console)

    def note(self, message: str) -> None:
        """A line for the person at the terminal (stderr: never mixed into the data)."""
        self.err.print(message)


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
    sys.stdout.flush()


class _Listing(Table):
    """A table that says "(none)" under its header when it has no rows: a bare header
    read as if the command had stopped halfway."""

    def __rich_console__(self, console, options):
        yield from super().__rich_console__(console, options)
        if not self.row_count:
            yield Text("(none)", style="dim")


def table(*columns: str) -> Table:
    grid = _Listing(box=None, pad_edge=False, header_style="bold")
    for column in columns:
        grid.add_column(column, no_wrap=column in UNBROKEN)
    return grid


def fields(data: dict, keys: list[str]) -> Table:
    """A two-column key/value view of a record."""
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    for key in keys:
        value = data.get(key)
        if value in (None, "", [], {}):
            continue
        if isinstance(value, dict | list):
            value = json.dumps(value, ensure_ascii=False)
        grid.add_row(key, str(value))
    return grid


STATUS_STYLES = {
    "active": "green", "ready": "green", "succeeded": "green",
    "creating": "yellow", "queued": "yellow", "building": "yellow", "running": "yellow",
    "failed": "red", "timed_out": "red", "offline": "dim",
}  # fmt: skip


def status(value: str | None) -> str:
    if not value:
        return ""
    style = STATUS_STYLES.get(value)
    return f"[{style}]{value}[/{style}]" if style else value


def ago(stamp: str | None) -> str:
    """`2026-12-05T09:00:00Z` → `3m ago`."""
    if not stamp:
        return ""
    try:
        moment = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except ValueError:
        return stamp
    seconds = max((datetime.now(moment.tzinfo) - moment).total_seconds(), 0)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{int(seconds // size)}{unit} ago"
    return f"{int(seconds)}s ago"
