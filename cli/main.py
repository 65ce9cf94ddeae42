"""The `nimbus` command: `serve` runs the platform; the other commands talk to the REST API.

Exit codes: 0 ok, 1 an API error (or a failed build), 2 a usage error, 3 a function error.
"""

from __future__ import annotations

import importlib

import click

from .config import ConfigError
from .errors import ApiError, BuildFailed
from .session import Session, api_options

# Each command's module is imported only when that command runs (PERF: `nimbus serve`
# must not pay for the HTTP client, rich or the MCP SDK).
COMMANDS = {
    "config": "cli.commands.configure:config_group",
    "init": "cli.commands.init:init",
    "create": "cli.commands.functions:create",
    "deploy": "cli.commands.functions:deploy",
    "list": "cli.commands.functions:list_functions",
    "get": "cli.commands.functions:get",
    "update": "cli.commands.functions:update",
    "delete": "cli.commands.functions:delete",
    "build": "cli.commands.functions:build",
    "webhook": "cli.commands.functions:webhook",
    "invoke": "cli.commands.invoke:invoke",
    "invocations": "cli.commands.invoke:invocations",
    "versions": "cli.commands.versions:versions",
    "rollback": "cli.commands.versions:rollback",
    "history": "cli.commands.versions:history",
    "alias": "cli.commands.aliases:alias",
    "canary": "cli.commands.aliases:canary",
    "logs": "cli.commands.logs:logs",
    "runtimes": "cli.commands.functions:runtimes",
    "stats": "cli.commands.stats:stats",
    "quota": "cli.commands.stats:quota",
    "keys": "cli.commands.keys:keys",
    "alerts": "cli.commands.alerts:alerts",
    "schedules": "cli.commands.schedules:schedules",
    "workflows": "cli.commands.workflows:workflows",
    "executions": "cli.commands.workflows:executions",
    "mcp": "cli.commands.mcp:mcp",
    "serve": "cli.commands.serve:serve",
}


class CommandFailed(click.ClickException):
    """An error the API (or the config) reported: its message, never a traceback."""

    exit_code = 1

    def __init__(self, message: str, body: dict | None = None, as_json: bool = False) -> None:
        super().__init__(message)
        self.body = body
        self.as_json = as_json

    def show(self, file=None) -> None:
        if self.as_json and self.body is not None:
            from .output import print_json

            print_json(self.body)
        click.echo(f"Error: {self.message}", err=True)
        for line in _unsaid(self.message, (self.body or {}).get("error", {}).get("details")):
            click.echo(f"  {line}", err=True)


def _unsaid(message: str, details) -> list[str]:
    """The problems in an error's `details` its message leaves out: a workflow
    definition's message names the first and says "(and 2 more)"."""
    if not isinstance(details, list):
        return []
    problems = [d for d in details if isinstance(d, dict) and d.get("message")]
    missing = [d for d in problems if d["message"] not in message]
    if not missing:
        return []
    return [f"{d['field']}: {d['message']}" if d.get("field") else d["message"] for d in problems]


class NimbusGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *COMMANDS})

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in COMMANDS:
            return super().get_command(ctx, name)
        module, attr = COMMANDS[name].split(":")
        return getattr(importlib.import_module(module), attr)

    def invoke(self, ctx: click.Context):
        session = ctx.ensure_object(Session)
        try:
            return super().invoke(ctx)
        except ApiError as exc:
            said = str(exc).replace(exc.message, session.in_flags(exc.message), 1)
            raise CommandFailed(said, exc.body(), session.output.json) from None
        except BuildFailed as exc:
            # The record (its latest_build says failed) is already printed: one JSON document.
            raise CommandFailed(f"the build of v{exc.build.get('version')} failed: {exc}") from None
        except ConfigError as exc:
            raise CommandFailed(str(exc)) from None


@click.group(cls=NimbusGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option("0.1.0", prog_name="nimbus")
@api_options
def main() -> None:
    """Nimbus: a self-hostable WebAssembly function platform.

    \b
      nimbus config init --api-url http://localhost:8080
      nimbus create hello --runtime python --handler main.handler --code 'def handler(e): return e'
      nimbus invoke hello --data '{"name": "World"}'
      nimbus deploy ./my-function        # a folder or a file; the runtime from its files
    """


if __name__ == "__main__":
    main()
