"""Alias arguments as users type them."""

from __future__ import annotations

import click
import pytest

from cli.commands.aliases import _version


@pytest.mark.parametrize("text", ["²", "0", "x"])
def test_a_version_that_is_not_a_number_is_a_usage_error(text):
    """'²' passed isdigit() and crashed int() with a traceback."""
    with pytest.raises(click.BadParameter):
        _version(None, "hello", text)


def test_a_version_number_is_read_without_the_server():
    assert _version(None, "hello", "12") == 12
