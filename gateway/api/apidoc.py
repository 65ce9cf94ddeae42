"""`python -m gateway.api.apidoc`: rewrite docs/api.md's route table from the OpenAPI document.

The page's prose is written by hand; its `## Routes` table is generated, so
a new route needs only its OpenAPI operation and this command
(tests/gateway/test_api_doc.py checks the page is current).
"""

from __future__ import annotations

import sys
from pathlib import Path

from .openapi import document

API_DOC = Path(__file__).resolve().parents[2] / "docs" / "api.md"
TABLE_HEAD = "| route | what it does |\n|---|---|\n"


def routes_table() -> str:
    rows = set()
    for path, item in document("docs")["paths"].items():
        for method, op in item.items():
            if method == "parameters":
                continue
            shown = "ANY" if path.startswith("/webhook/") else method.upper()
            rows.add((path, shown, op["summary"].replace("|", "\\|")))
    return TABLE_HEAD + "".join(f"| `{m} {p}` | {s} |\n" for p, m, s in sorted(rows))


def current_page(text: str) -> str:
    """The page with its route table (everything after the table's head) regenerated."""
    return text[: text.index(TABLE_HEAD)] + routes_table()


def main() -> int:
    text = API_DOC.read_text()
    API_DOC.write_text(current_page(text))
    print(f"wrote {API_DOC}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
