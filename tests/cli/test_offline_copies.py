"""What the client carries of the server's facts (it may not import server packages):
`nimbus init` works without a server, so it keeps the registry's aliases and a template per
source runtime; `invocations list --trigger` offers the trigger enum. These tests fail when
a copy drifts from its source (compiler/registry.py, store/records.py)."""

from __future__ import annotations

from cli.commands.init import ALIASES, FUNCTION_NAME
from cli.commands.invoke import TRIGGERS
from cli.templates import TEMPLATES
from compiler import RUNTIMES
from store.records import NAME_RE, Trigger


def test_init_knows_exactly_the_registry_aliases_of_its_runtimes():
    registry = {alias: rt.name for rt in RUNTIMES for alias in rt.aliases if rt.name in TEMPLATES}
    assert registry == ALIASES


def test_every_template_is_a_source_runtime_stored_under_its_default_file():
    for name, files in TEMPLATES.items():
        runtime = RUNTIMES[name]
        assert runtime.name == name and runtime.kind == "source"
        assert list(files) == [runtime.code_filename(None)], name
    templated = {rt.name for rt in RUNTIMES if rt.kind == "source"}
    assert set(TEMPLATES) == templated


def test_the_trigger_choices_are_the_trigger_enum():
    assert list(TRIGGERS) == [trigger.value for trigger in Trigger]


def test_init_checks_names_by_the_servers_rule():
    assert f"^{FUNCTION_NAME.pattern}\\Z" == NAME_RE.pattern
