"""Shell completion of names from the server (click's completion calls these on Tab).

A completion must never hang a shell or print an error into it: a short timeout, and
any failure completes nothing.
"""

from __future__ import annotations

from collections.abc import Callable

import click
from click.shell_completion import CompletionItem

from .session import Session

TIMEOUT_SEC = 2.0


def _names(ctx: click.Context, list_names: Callable, incomplete: str) -> list[CompletionItem]:
    try:
        from .client import Client

        connection = ctx.ensure_object(Session).connection
        client = Client(connection.url, connection.key, timeout=TIMEOUT_SEC)
        try:
            names = list_names(client)
        finally:
            client.close()
    except Exception:  # NOTE: anything at all: a shell's Tab must stay quiet
        return []
    return [CompletionItem(name) for name in sorted(names) if name.startswith(incomplete)]


def function_names(ctx: click.Context, _param, incomplete: str) -> list[CompletionItem]:
    """`hel` → `hello`; `hello:` → the function's aliases (`hello:prod`)."""
    function, colon, _ = incomplete.partition(":")
    if colon:
        return _names(ctx, lambda c: [f"{function}:{a['name']}" for a in
                                      c.list_aliases(function)["aliases"]], incomplete)  # fmt: skip
    page = lambda c: c.list_functions(name=incomplete or None, limit=100)  # noqa: E731
    return _names(ctx, lambda c: [f["name"] for f in page(c)["functions"]], incomplete)


def workflow_names(ctx: click.Context, _param, incomplete: str) -> list[CompletionItem]:
    return _names(ctx, lambda c: [w["name"] for w in c.json(
        "GET", "/api/v1/workflows", params={"limit": 100})["workflows"]], incomplete)  # fmt: skip


def function_argument(name: str = "name", **kw) -> Callable:
    """A function's NAME argument that completes from the server."""
    return click.argument(name, shell_complete=function_names, **kw)
