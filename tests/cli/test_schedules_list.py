"""`nimbus schedules list` with and without a NAME: which options go with which."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from cli.main import main

# Nothing listens here: a usage error is found before any request.
BASE = ["--url", "http://127.0.0.1:9", "--api-key", "k" * 40]


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--workflow"], "give its NAME"),
        (["ticker", "--name", "tick"], "give no NAME"),
        (["ticker", "--disabled"], "give no NAME"),
        (["ticker", "--limit", "100"], "give no NAME"),  # the default, but given
        (["ticker", "--offset", "0"], "give no NAME"),
    ],
)
def test_options_that_do_not_fit_are_usage_errors(args, says):
    out = CliRunner().invoke(main, [*BASE, "schedules", "list", *args])
    assert out.exit_code == 2, out.output
    assert says in out.output


@pytest.mark.parametrize("args", [["--limit", "0"], ["--limit", "101"], ["--offset", "-1"]])
def test_a_page_out_of_range_is_refused_before_the_request(args):
    out = CliRunner().invoke(main, [*BASE, "schedules", "list", *args])
    assert out.exit_code == 2, out.output
