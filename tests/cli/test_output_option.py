"""`--output json` is accepted by every command (the servers excepted), before or after
its name: scripts never meet a command that can only print a table."""

from __future__ import annotations

import click
import pytest

from cli.main import main

SERVERS = {"serve", "mcp"}  # they run until stopped; they print no result


def _leaves(group: click.Group, ctx: click.Context, path: tuple[str, ...] = ()):
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        if isinstance(command, click.Group):
            yield from _leaves(command, ctx, (*path, name))
        else:
            yield (*path, name), command


LEAVES = dict(_leaves(main, click.Context(main)))


def test_the_tree_is_all_there():
    assert len(LEAVES) > 50 and ("config", "use") in LEAVES and ("invoke",) in LEAVES


@pytest.mark.parametrize("path", sorted(p for p in LEAVES if p[0] not in SERVERS), ids=" ".join)
def test_every_command_takes_output_json(path):
    options = {opt for param in LEAVES[path].params for opt in getattr(param, "opts", ())}
    assert {"--output", "-o"} <= options
