"""docs/api.md names every path of the OpenAPI document (a route cannot go undocumented)."""

from __future__ import annotations

from pathlib import Path

from gateway.api.openapi import document

API_DOC = Path(__file__).resolve().parents[2] / "docs" / "api.md"


def test_every_path_is_on_the_api_page():
    text = API_DOC.read_text()
    missing = [path for path in document("test")["paths"] if f" {path}`" not in text]
    assert missing == [], f"add these routes to {API_DOC.name}"
