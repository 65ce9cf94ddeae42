"""What every command shares: the options that pick the server and the output, and the
objects built from them on first use (so a command that needs no server builds none)."""

from __future__ import annotations

import os
from collections.abc import Callable
from functools import cached_property
from typing import TYPE_CHECKING, Any

import click

from . import config

if TYPE_CHECKING:
    from .client import Client
    from .output import Output
    from .runtimes import Catalog

OUTPUT_MODES = ("auto", "table", "json")
# API fields whose flag's value has another name (else the flag's dest is the field)
FIELD_DESTS = {"env_vars": "env", "window_sec": "window", "for_sec": "for_",
               "interval_sec": "interval", "notify.webhook_url": "webhook"}  # fmt: skip


class Session:
    def __init__(self) -> None:
        self.overrides = config.Overrides()
        self.command: click.Command | None = None  # the command running, once parsed

    def in_flags(self, message: str) -> str:
        """An API message with the fields it names ("memory_mb: must be …") as the running
        command's flags ("--memory: must be …"): the user typed flags, not the API's fields."""
        if self.command is None:
            return message
        flags = {}
        for param in self.command.params:
            if isinstance(param, click.Option) and param.name:
                flags[param.name] = max(param.opts, key=len)
        parts = []
        for part in message.split("; "):
            field, sep, rest = part.partition(": ")
            name = FIELD_DESTS.get(field, field)
            parts.append(f"{flags[name]}{sep}{rest}" if sep and name in flags else part)
        return "; ".join(parts)

    @cached_property
    def connection(self) -> config.Connection:
        return config.resolve(self.overrides)

    @cached_property
    def client(self) -> Client:
        from .client import Client

        return Client(self.connection.url, self.connection.key)

    def id_by_name(self, path: str, key: str, prefix: str, given: str) -> str:
        """`given` if it is an id (it starts with `prefix`), else the id of the one item of
        `GET path` named so: listings show names beside ids, and users type the names."""
        if given.startswith(prefix):
            return given
        named = [item["id"] for item in self.client.json("GET", path)[key]
                 if item.get("name") == given]  # fmt: skip
        if len(named) > 1:
            raise click.UsageError(
                f"{len(named)} are named {given!r}: give one's id ({', '.join(named)})"
            )
        return named[0] if named else given

    @cached_property
    def output(self) -> Output:
        from .output import Output

        return Output(self.output_mode)

    @property
    def output_mode(self) -> str:
        mode = self.overrides.output or os.environ.get("NIMBUS_OUTPUT") or "auto"
        return mode if mode in OUTPUT_MODES else "auto"

    @cached_property
    def catalog(self) -> Catalog:
        from . import runtimes

        return runtimes.fetch(self.client)


pass_session = click.make_pass_decorator(Session, ensure=True)


def _remember(field: str) -> Callable[[click.Context, click.Parameter, Any], None]:
    def callback(ctx: click.Context, _param: click.Parameter, value: Any) -> None:
        session = ctx.ensure_object(Session)
        session.command = ctx.command  # the innermost one runs last: errors name its flags
        if value is not None:  # NOTE: a subcommand's flag overrides the group's; None never
            setattr(session.overrides, field, value)

    return callback


def _option(*names: str, field: str, **kw: Any) -> Callable:
    return click.option(*names, expose_value=False, callback=_remember(field), **kw)


OUTPUT_OPTION = _option(
    "--output", "-o", field="output", type=click.Choice(OUTPUT_MODES),
    help="table (people), json (scripts); auto: table on a terminal, else json [NIMBUS_OUTPUT]",
)  # fmt: skip
CONNECTION_OPTIONS = (
    _option("--api-url", "--url", field="api_url", metavar="URL",
            help="the Nimbus server [NIMBUS_API_URL; profile; http://127.0.0.1:8080]"),
    _option("--api-key", field="api_key", metavar="KEY",
            help="the API key [NIMBUS_API_KEY; profile]"),
    _option("--api-key-file", field="api_key_file", metavar="PATH",
            help="read the key from a file, e.g. the server's data/api_key"),
    _option("--profile", "-p", field="profile", metavar="NAME",
            help="a profile of the config file [NIMBUS_PROFILE]"),
)  # fmt: skip


def api_options(command: Callable) -> Callable:
    """The connection and output options, accepted before or after the command name."""
    for option in reversed((*CONNECTION_OPTIONS, OUTPUT_OPTION)):
        command = option(command)
    return command
