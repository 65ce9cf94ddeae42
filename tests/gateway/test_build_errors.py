"""`GET …/build` locates a failed build's errors: `errors: [{file, line, column, message}]`,
from each compiler's real output (C, Go, Rust, Python and JavaScript syntax)."""

from __future__ import annotations

import pytest

from compiler import parse_build_errors

BROKEN = {
    "c": (
        "#include <stdlib.h>\nchar *handler(const char *e, const char *c) {\n"
        "  return undefined_thing;\n}\n",
        ("handler.c", 3, 10, "undefined_thing"),
    ),
    "go": (
        "package main\n\nfunc handler(event interface{}, context map[string]string)"
        " interface{} {\n\treturn undefinedThing\n}\n",
        ("handler.go", 4, 9, "undefined: undefinedThing"),
    ),
    "rust": (
        "fn handler(event: serde_json::Value, _c: &Context)"
        " -> Result<serde_json::Value, String> {\n    Ok(evnt)\n}\n",
        ("handler.rs", 2, 8, "cannot find value `evnt`"),
    ),
    "python": (
        "def main(event):\n    x = 1\n    return x +\n",
        ("handler.py", 3, 15, "SyntaxError"),  # the end of `    return x +` (was None)
    ),
    "javascript": (
        "exports.main = (e) => {\n  const x = 1;\n  return x +* 2;\n};\n",
        ("handler.js", 3, 13, "Unexpected"),  # the `*`, counted from 1 (esbuild said 12)
    ),
}


@pytest.mark.parametrize("runtime", list(BROKEN))
def test_a_failed_build_points_at_the_users_line(client, runtime):
    code, (file, line, column, words) = BROKEN[runtime]
    resp = client.simulate_post(
        "/api/v1/functions",
        json={"name": f"broken-{runtime}", "runtime": runtime, "code": code},
        params={"wait": "true"},
    )
    assert resp.status_code == 201 and resp.json["status"] == "failed", resp.text
    build = client.simulate_get(f"/api/v1/functions/broken-{runtime}/build").json
    assert build["errors"], build["error"]
    first = build["errors"][0]
    assert (first["file"], first["line"]) == (file, line), build["errors"]
    if column is not None:
        assert first["column"] == column, build["errors"]
    assert words in first["message"], build["errors"]


def test_a_good_build_has_no_errors(client):
    resp = client.simulate_post(
        "/api/v1/functions",
        json={"name": "fine", "runtime": "python", "code": "def main(e):\n    return e\n"},
        params={"wait": "true"},
    )
    assert resp.json["status"] == "active"
    assert client.simulate_get("/api/v1/functions/fine/build").json["errors"] == []


def test_only_the_users_files_are_named():
    text = (
        "./handler.go:4:9: undefined: x\n"
        ".nimbus/nimbus_handler.go:3:28: cannot use handler\n"
        "/usr/include/stdio.h:10:1: error: in the toolchain\n"
        "handler.c:2:1: warning: only a warning\n"
        "lib/util.c:7:3: error: expected ';'\n"
    )
    assert [(e.file, e.line, e.column, e.message) for e in parse_build_errors(text)] == [
        ("handler.go", 4, 9, "undefined: x"),
        ("lib/util.c", 7, 3, "expected ';'"),
    ]


def test_a_python_syntax_error_has_its_column_as_python_counts_it(client):
    """`def main(e)` without its `:` said column null; Python's offset is 12."""
    code = "import json\n\ndef main(e)\n    return e\n\n\tx = 'ab\n"
    resp = client.simulate_post(
        "/api/v1/functions",
        json={"name": "nocolon", "runtime": "python", "code": code},
        params={"wait": "true"},
    )
    assert resp.json["status"] == "failed", resp.text
    build = client.simulate_get("/api/v1/functions/nocolon/build").json
    assert build["errors"][0] == {
        "file": "handler.py", "line": 3, "column": 12, "message": "SyntaxError: expected ':'"
    }  # fmt: skip
    assert build["error"].startswith("SyntaxError: handler.py, line 3, column 12: expected ':'")
    try:
        compile(code.replace("def main(e)\n", "def main(e):\n"), "handler.py", "exec")
    except SyntaxError as exc:  # the same rule on a line indented by a tab (the host's Python)
        tab = exc
    fixed = client.simulate_put(
        "/api/v1/functions/nocolon",
        json={"code": code.replace("def main(e)\n", "def main(e):\n")},
        params={"wait": "true"},
    )
    assert fixed.json["latest_build"]["status"] == "failed", fixed.text
    errors = client.simulate_get("/api/v1/functions/nocolon/build").json["errors"]
    assert (errors[0]["line"], errors[0]["column"]) == (tab.lineno, tab.offset), errors


LAMBDA_SHAPED = {
    "python": ("def lambda_handler(event, context):\n    return event\n", "handler.lambda_handler"),
    "javascript": (
        "export const handler = async (event) => event;\n",
        "handler.handler",
    ),
}


@pytest.mark.parametrize("runtime", list(LAMBDA_SHAPED))
def test_a_lambda_shaped_function_deployed_without_a_handler_is_told_what_to_set(client, runtime):
    """AWS Lambda's `lambda_handler` / `handler`: the build said "defines no `main`" and no more."""
    code, wanted = LAMBDA_SHAPED[runtime]
    name = f"from-lambda-{runtime}"
    resp = client.simulate_post(
        "/api/v1/functions",
        json={"name": name, "runtime": runtime, "code": code},
        params={"wait": "true"},
    )
    assert resp.status_code == 201 and resp.json["status"] == "failed", resp.text
    error = client.simulate_get(f"/api/v1/functions/{name}/build").json["error"]
    assert f"set the function's handler to '{wanted}'" in error, error
    assert f"--handler {wanted}" in error

    resp = client.simulate_put(
        f"/api/v1/functions/{name}", json={"handler": wanted}, params={"wait": "true"}
    )
    assert resp.json["status"] == "active", resp.text
    assert client.simulate_post(f"/api/v1/functions/{name}/invoke", json={"a": 1}).json == {"a": 1}
