"""docs/api.md's route table is the OpenAPI document's (a route cannot go undocumented), and
its errors table holds every error code the server raises."""

from __future__ import annotations

import re
from pathlib import Path

from gateway.api import errors
from gateway.api.apidoc import API_DOC, current_page

REPO = Path(__file__).resolve().parents[2]


def test_the_api_page_lists_every_route():
    text = API_DOC.read_text()
    assert text == current_page(text), (
        "docs/api.md's route table is stale: run `.venv/bin/python -m gateway.api.apidoc`"
    )


def test_every_error_code_the_server_raises_is_in_the_errors_table():
    # A code given anywhere (`errors.Conflict(…, code="name_taken")`, a class's own) and the
    # codes of Falcon's own errors: a user who meets one finds it in docs/api.md.
    raised = {
        code
        for package in ("gateway", "store", "sandbox", "compiler")
        for path in (REPO / package).rglob("*.py")
        for code in re.findall(r'\bcode="([a-z_]+)"', path.read_text())
    }
    raised |= set(re.findall(r'\d{3}: "([a-z_]+)"', Path(errors.__file__).read_text()))
    text = API_DOC.read_text()
    table = text[text.index("| status | codes | when |") : text.index("## Targets")]
    missing = sorted(code for code in raised if f"`{code}`" not in table)
    assert not missing, f"docs/api.md's errors table lacks {missing}"
