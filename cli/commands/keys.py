"""`nimbus keys`: API keys with scopes (needs an admin key)."""

from __future__ import annotations

from urllib.parse import quote

import click
from rich.console import Console

from ..output import ago, table
from ..session import Session, api_options, pass_session

SCOPES = ("admin", "deploy", "invoke", "read")


@click.group()
def keys() -> None:
    """API keys with scopes: admin, deploy, invoke, read."""


@keys.command("list")
@api_options
@pass_session
def list_keys(session: Session) -> None:
    """List the keys (their prefix, never the key)."""
    page = session.client.json("GET", "/api/v1/keys")

    def render(console: Console) -> None:
        grid = table("ID", "NAME", "SCOPES", "PREFIX", "CREATED", "LAST USED")
        for k in page["keys"]:
            grid.add_row(k["id"], k["name"], ",".join(k["scopes"]), k["prefix"],
                         ago(k["created_at"]), ago(k.get("last_used_at")))  # fmt: skip
        console.print(grid)

    session.output.emit(page, render)


@keys.command("create")
@click.argument("name")
@click.option("--scope", "scopes", multiple=True, required=True, type=click.Choice(SCOPES),
              help="repeatable")  # fmt: skip
@api_options
@pass_session
def create_key(session: Session, name: str, scopes: tuple[str, ...]) -> None:
    """Make a key; it is printed once, here (only its SHA-256 is kept)."""
    created = session.client.json("POST", "/api/v1/keys", json={"name": name, "scopes": scopes})

    def render(console: Console) -> None:
        console.print(created["key"])
        session.output.note(f"{created['id']} ({', '.join(created['scopes'])}): "
                            "shown once — store it now")  # fmt: skip

    session.output.emit(created, render)


@keys.command("revoke")
@click.argument("key_id", metavar="ID|NAME")
@api_options
@pass_session
def revoke(session: Session, key_id: str) -> None:
    """Revoke a key by its id, or by its name when one key has it (every worker refuses
    it within a second)."""
    key_id = session.id_by_name("/api/v1/keys", "keys", "key_", key_id)
    session.client.request("DELETE", f"/api/v1/keys/{quote(key_id, safe='')}")
    session.output.emit({"revoked": key_id}, lambda c: c.print(f"revoked {key_id}"))
