"""Versions: `versions NAME [VERSION]`, `rollback NAME VERSION`, `history NAME`."""

from __future__ import annotations

import click
from rich.console import Console

from ..completion import function_argument
from ..output import ago, fields, table
from ..output import status as styled
from ..session import Session, api_options, pass_session

VERSION_FIELDS = ["version", "status", "active", "aliases", "error", "runtime_version",
                  "memory_mb", "timeout_sec", "env_vars", "code_size", "sha256",
                  "artifact_sha256", "description", "created_at"]  # fmt: skip


@click.command()
@function_argument()
@click.argument("version", type=click.IntRange(1), required=False)
@click.option("--limit", type=click.IntRange(1, 100), default=20, show_default=True)
@click.option("--offset", type=click.IntRange(0), default=0)
@api_options
@pass_session
def versions(session: Session, name: str, version: int | None, limit: int, offset: int) -> None:
    """List a function's versions, newest first (or show one: `versions hello 3`).

    The active one is marked `*`; ALIASES are those that point or route to it.
    """
    if version is not None:
        record = session.client.get_version(name, version)
        view = dict(record, status=styled(record["status"]))
        session.output.emit(record, lambda c: c.print(fields(view, VERSION_FIELDS)))
        return
    page = session.client.list_versions(name, limit=limit, offset=offset)

    def render(console: Console) -> None:
        grid = table("", "VERSION", "STATUS", "ALIASES", "SIZE", "CREATED", "DESCRIPTION")
        for v in page["versions"]:
            grid.add_row("*" if v["active"] else "", f"v{v['version']}", styled(v["status"]),
                         ", ".join(v["aliases"]), _size(v["code_size"]), ago(v["created_at"]),
                         v.get("error") or v.get("description") or "")  # fmt: skip
        console.print(grid)
        shown = offset + len(page["versions"])
        if page["total"] > shown:
            console.print(f"[dim]{shown} of {page['total']} (--offset for more)[/dim]")

    session.output.emit(page, render)


@click.command()
@function_argument()
@click.argument("version", type=click.IntRange(1))
@click.option("--reason", help="why, for the history")
@api_options
@pass_session
def rollback(session: Session, name: str, version: int, reason: str | None) -> None:
    """Serve VERSION again at once (no rebuild; every worker within a second).

    A version still building or one that failed is refused (exit 1), and nothing changes.
    """
    before = session.client.get_function(name).get("active_version")
    fn = session.client.rollback(name, version, reason)
    was = "" if before in (None, version) else f" (was v{before})"
    session.output.emit(fn, lambda c: c.print(f"[bold]{fn['name']}[/bold] serves v{version}{was}"))


@click.command()
@function_argument()
@click.option("--limit", type=click.IntRange(1, 100), default=20, show_default=True)
@click.option("--offset", type=click.IntRange(0), default=0)
@api_options
@pass_session
def history(session: Session, name: str, limit: int, offset: int) -> None:
    """Who changed what a function serves: rollbacks, alias changes, canary decisions."""
    page = session.client.history(name, limit=limit, offset=offset)

    def render(console: Console) -> None:
        grid = table("WHEN", "ACTION", "ALIAS", "FROM", "TO", "BY", "REASON")
        for e in page["entries"]:
            grid.add_row(ago(e["at"]), e["action"], e.get("alias") or "",
                         _v(e.get("from_version")), _v(e.get("to_version")), e["actor"],
                         e.get("reason") or "")  # fmt: skip
        console.print(grid)

    session.output.emit(page, render)


def _v(number: int | None) -> str:
    return "" if number is None else f"v{number}"


def _size(count: int) -> str:
    for unit, size in (("MB", 1 << 20), ("KB", 1 << 10)):
        if count >= size:
            return f"{count / size:.1f} {unit}"
    return f"{count} B"
