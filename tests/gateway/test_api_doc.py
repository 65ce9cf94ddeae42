"""docs/api.md's route table is the OpenAPI document's (a route cannot go undocumented)."""

from __future__ import annotations

from gateway.api.apidoc import API_DOC, current_page


def test_the_api_page_lists_every_route():
    text = API_DOC.read_text()
    assert text == current_page(text), (
        "docs/api.md's route table is stale: run `.venv/bin/python -m gateway.api.apidoc`"
    )
