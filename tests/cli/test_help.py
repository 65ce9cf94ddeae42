"""What `nimbus --help` and each group's --help list: a summary per command that reads whole."""

from __future__ import annotations

import click
import pytest

from cli.main import main


def _commands(group: click.Group, ctx: click.Context, path=()):
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        if isinstance(command, click.Group):
            yield from _commands(command, ctx, (*path, name))
        else:
            yield " ".join((*path, name)), command


COMMANDS = list(_commands(main, click.Context(main)))


@pytest.mark.parametrize(("path", "command"), COMMANDS, ids=[p for p, _ in COMMANDS])
def test_each_commands_summary_is_a_whole_sentence(path, command):
    # click cuts the summary at the first ". ": "Add a schedule, e.g." was all a user saw
    summary = command.get_short_help_str(limit=1000)
    assert summary, path
    assert not summary.rstrip(".").endswith(("e.g", "i.e", "etc")), (path, summary)


def test_every_since_option_says_it_takes_an_age():
    # the API takes `since=15m` everywhere; `invocations list --since` said only
    # "RFC 3339 time or Unix seconds", so a user typed a date where `10m` does
    helps = {path: p.help for path, c in COMMANDS for p in c.params if p.name == "since"}
    assert len(helps) >= 3, helps
    assert all("an age" in (h or "") for h in helps.values()), helps


def test_alerts_create_says_which_options_it_needs():
    # README's example had --window and --webhook but never said they were required:
    # a user who left them out met "Error: Missing option '--window'"
    from pathlib import Path

    command = dict(COMMANDS)["alerts create"]
    required = [p.opts[0] for p in command.params if isinstance(p, click.Option) and p.required]
    assert required == ["--window", "--webhook"]
    assert "--window and --webhook are required" in command.help
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    bullet = readme[readme.index("- **Alerts**") :].split("\n- ", 1)[0]
    assert "`--window` and `--webhook` are required" in bullet, bullet
