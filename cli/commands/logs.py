"""`nimbus logs NAME [--follow] [--invocation ID]`."""

from __future__ import annotations

import json
import sys
import time

import click
from rich.markup import escape

from .. import moments
from ..completion import function_argument
from ..session import Session, api_options, pass_session

STREAM_STYLES = {"stderr": "yellow", "stdout": "", "platform": "dim"}


@click.command()
@function_argument()
@click.option("--follow", "-f", is_flag=True, help="keep printing new lines (Ctrl-C stops)")
@click.option("--invocation", "invocation_id", metavar="ID", help="only this invocation's lines")
@click.option("--since", help="RFC 3339 time, Unix seconds, or an age like 10m, 2h, 1d")
@click.option("--limit", type=click.IntRange(1, 1000), default=100, show_default=True)
@click.option("--interval", type=float, default=1.0, hidden=True)
@api_options
@pass_session
def logs(session: Session, name, follow, invocation_id, since, limit, interval) -> None:
    """Print a function's invocation logs, oldest first (JSON lines with -o json)."""
    seen: set[tuple] = set()
    since = moments.since(since)
    while True:
        entries = session.client.logs(name, since=since, limit=limit, invocation_id=invocation_id)
        if not (entries or seen or follow or session.output.json):  # silence read as a hang
            scope = (" since then" if since else "") + (
                " of that invocation" if invocation_id else ""
            )
            session.output.note(f"[dim]no log lines{scope}[/dim]")
        for entry in entries:
            key = (entry["invocation_id"], entry["ts"], entry["stream"], entry["line"])
            if key in seen:
                continue
            seen.add(key)
            _print(session, entry)
        if not follow:
            return
        if entries:
            since = entries[-1]["ts"]  # NOTE: inclusive: the lines at that instant repeat
        try:
            time.sleep(interval)
        except KeyboardInterrupt:
            return


def _print(session: Session, entry: dict) -> None:
    if session.output.json:
        sys.stdout.write(json.dumps(entry, ensure_ascii=False) + "\n")
        sys.stdout.flush()
        return
    style = STREAM_STYLES.get(entry["stream"], "")
    stamp = entry["ts"][11:23]
    prefix = f"[dim]{stamp} {entry['invocation_id'][-8:]}[/dim] "
    line = escape(entry["line"])  # a log line is text, never rich markup
    session.output.console.print(prefix + (f"[{style}]{line}[/{style}]" if style else line))
