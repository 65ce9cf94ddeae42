"""`nimbus config`: profiles of servers and keys in the config file."""

from __future__ import annotations

import os
import sys

import click

from .. import config
from ..session import OUTPUT_OPTION, Session, pass_session


@click.group("config")
def config_group() -> None:
    """Where the CLI finds its server: profiles in $XDG_CONFIG_HOME/nimbus/config.toml."""


@config_group.command()
@click.option("--api-url", "--url", "api_url", required=True, help="the server's base URL")
@click.option("--api-key", help="default: $NIMBUS_API_KEY, else asked for")
@click.option("--api-key-file", type=click.Path(dir_okay=False),
              help="read the key from a file (e.g. the server's data/api_key)")  # fmt: skip
@click.option("--profile", "-p", "profile", default=None, help="default: the default profile")
@click.option("--no-check", is_flag=True, help="do not try the server")
@OUTPUT_OPTION
@pass_session
def init(session: Session, api_url, api_key, api_key_file, profile, no_check) -> None:
    """Save a server's URL and API key (the file is readable by you only)."""
    if api_key_file:
        api_key = config.read_key_file(api_key_file)
    api_key = api_key or os.environ.get("NIMBUS_API_KEY")
    if not api_key and not sys.stdin.isatty():
        api_key = sys.stdin.readline().strip()  # `cat data/api_key | nimbus config init …`
    if not api_key:
        api_key = click.prompt("API key", hide_input=True).strip()
    api_url = config.server_url(api_url)
    data = config.load()
    name = profile or data.get("default_profile") or config.DEFAULT_PROFILE
    data.setdefault("profiles", {})[name] = {"api_url": api_url, "api_key": api_key}
    data.setdefault("default_profile", name)
    path = config.save(data)
    checked = None if no_check else _check(api_url, api_key)
    result = {"profile": name, "path": str(path), "api_url": api_url,
              "default": data["default_profile"] == name, "check": checked}  # fmt: skip

    def render(console) -> None:
        console.print(f"saved profile [bold]{name}[/bold] to {path}")
        if checked and checked["ok"]:
            console.print(f"[green]connected[/green] to {api_url}")
        elif checked:
            session.output.note(f"[yellow]warning[/yellow]: {checked['error']}")

    session.output.emit(result, render)


def _check(url: str, key: str) -> dict:
    """One authenticated call, so a wrong URL or key shows now, not on first use."""
    from ..client import Client
    from ..errors import ApiError

    client = Client(url, key, timeout=10)
    try:
        client.list_functions(limit=1)
    except ApiError as exc:
        return {"ok": False, "error": str(exc)}
    finally:
        client.close()
    return {"ok": True}


@config_group.command()
@click.option("--profile", "-p", "profile", help="default: the one in use")
@OUTPUT_OPTION
@pass_session
def show(session: Session, profile) -> None:
    """Show the server and key in use, and where each came from (the key masked)."""
    session.overrides.profile = profile or session.overrides.profile
    conn = session.connection
    key = conn.key
    masked = f"{key[:4]}…{key[-4:]}" if key and len(key) > 12 else ("set" if key else None)
    result = {"profile": conn.profile, "api_url": conn.url, "api_key": masked,
              "sources": conn.sources, "path": str(config.config_path())}  # fmt: skip

    def render(console) -> None:
        console.print(f"profile  {conn.profile}  [dim]({result['path']})[/dim]")
        console.print(f"api_url  {conn.url}  [dim]({conn.sources.get('api_url')})[/dim]")
        console.print(f"api_key  {masked or '[red]none[/red]'}  "
                      f"[dim]({conn.sources.get('api_key', '-')})[/dim]")  # fmt: skip

    session.output.emit(result, render)


@config_group.command("list")
@OUTPUT_OPTION
@pass_session
def list_profiles(session: Session) -> None:
    """List the profiles."""
    data = config.load()
    default = data.get("default_profile")
    rows = [{"profile": name, "api_url": p.get("api_url"), "default": name == default}
            for name, p in sorted(data.get("profiles", {}).items())]  # fmt: skip

    def render(console) -> None:
        for row in rows:
            mark = "*" if row["default"] else " "
            console.print(f"{mark} {row['profile']:<16} {row['api_url']}")

    session.output.emit({"profiles": rows}, render)


@config_group.command()
@click.argument("profile")
@OUTPUT_OPTION
@pass_session
def use(session: Session, profile: str) -> None:
    """Make PROFILE the default."""
    data = config.load()
    if profile not in data.get("profiles", {}):
        raise config.ConfigError(f"no profile {profile!r} in {config.config_path()}")
    data["default_profile"] = profile
    config.save(data)
    session.output.emit({"default_profile": profile},
                        lambda c: c.print(f"default profile: [bold]{profile}[/bold]"))  # fmt: skip
