"""`nimbus init` works without a server, so it carries what it needs of the runtime registry:
these tests fail when that copy drifts from compiler/registry.py."""

from __future__ import annotations

from cli.commands.init import ALIASES
from cli.templates import TEMPLATES
from compiler import RUNTIMES


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
