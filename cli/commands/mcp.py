"""`nimbus mcp` (and the `nimbus-mcp` entry point): the MCP server for AI tools."""

from __future__ import annotations

import logging
import sys

import click

from ..config import ConfigError
from ..errors import ApiError
from ..session import CONNECTION_OPTIONS, Session, pass_session


def _connection_options(command):
    for option in reversed(CONNECTION_OPTIONS):
        command = option(command)
    return command


@click.command()
@click.option("--read-only", is_flag=True, help="only the tools that read (no deploy, no invoke)")
@click.option("--http", "http", is_flag=True, help="serve streamable HTTP instead of stdio")
@click.option("--host", default="127.0.0.1", show_default=True, help="with --http")
@click.option("--port", type=int, default=8765, show_default=True, help="with --http")
@_connection_options
@pass_session
def mcp(session: Session, read_only: bool, http: bool, host: str, port: int) -> None:
    """Serve Nimbus to an MCP host (Claude Desktop, IDEs) over stdio, or HTTP with --http.

    \b
    {"mcpServers": {"nimbus": {"command": "nimbus-mcp",
                               "args": ["--api-url", "http://localhost:8080"]}}}
    """
    try:
        client = session.client
    except (ConfigError, ApiError) as exc:
        raise click.ClickException(str(exc)) from None
    from ..mcp_server import build_server

    server = build_server(client, read_only=read_only)
    # NOTE: the host keeps stderr as the server's log; httpx's INFO line per API request
    # ("HTTP Request: GET …") would fill it. Its warnings still show.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    if http:
        click.echo(f"MCP over streamable HTTP at http://{host}:{port}/mcp", err=True)
        server.run("streamable-http", host=host, port=port)
    else:
        server.run("stdio")


def standalone() -> None:
    """The `nimbus-mcp` entry point: `nimbus mcp` under its own name."""
    sys.exit(mcp.main(prog_name="nimbus-mcp"))
