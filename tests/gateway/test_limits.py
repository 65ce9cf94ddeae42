"""Size limits are defined once (compiler/_limits.py, gateway/limits.py, the sandbox's result
cap) and are what the API publishes; no other module keeps its own copy of one."""

from __future__ import annotations

import ast
from pathlib import Path

from gateway import limits

REPO = Path(__file__).resolve().parents[2]
KiB, MiB = 1024, 1024 * 1024
DOCUMENTED = {
    "SOURCE_LIMIT": 512 * KiB,
    "BINARY_LIMIT": 50 * MiB,
    "EVENT_LIMIT": 6 * MiB,
    "ASYNC_EVENT_LIMIT": 256 * KiB,
    "RESULT_LIMIT": 6 * MiB,
    "WORKFLOW_PAYLOAD_LIMIT": 256 * KiB,
}
HOMES = {"compiler/_limits.py", "gateway/limits.py", "sandbox/_types.py"}


def test_the_limits_are_the_documented_ones():
    defined = {name: getattr(limits, name) for name in DOCUMENTED}
    assert defined == DOCUMENTED


def test_the_api_publishes_the_same_limits(client):
    quota = client.simulate_get("/api/v1/quota").json["limits"]
    assert quota["code_size_bytes"] == {
        "source": limits.SOURCE_LIMIT,
        "binary": limits.BINARY_LIMIT,
    }
    assert quota["event_size_bytes"] == limits.EVENT_LIMIT
    runtimes = {r["name"]: r for r in client.simulate_get("/api/v1/runtimes").json["runtimes"]}
    assert runtimes["python"]["code_size_limit"] == limits.SOURCE_LIMIT
    assert runtimes["wasm"]["code_size_limit"] == limits.BINARY_LIMIT


def _constant(node: ast.expr) -> int | None:
    try:
        value = eval(compile(ast.Expression(node), "<limit>", "eval"), {"__builtins__": {}})
    except Exception:
        return None
    return value if isinstance(value, int) else None


def test_no_module_keeps_its_own_copy_of_a_limit():
    sizes = {limits.SOURCE_LIMIT, limits.BINARY_LIMIT, limits.EVENT_LIMIT, limits.ASYNC_EVENT_LIMIT}
    copies = []
    for package in ("gateway", "compiler", "sandbox", "store", "cli"):
        for path in (REPO / package).rglob("*.py"):
            rel = path.relative_to(REPO).as_posix()
            if rel in HOMES:
                continue
            for node in ast.parse(path.read_text()).body:
                if not isinstance(node, ast.Assign | ast.AnnAssign) or node.value is None:
                    continue
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                names = [t.id for t in targets if isinstance(t, ast.Name)]
                limit_like = any("LIMIT" in n or n.startswith(("MAX", "_MAX")) for n in names)
                if limit_like and _constant(node.value) in sizes:
                    copies.append(f"{rel}:{node.lineno} {names[0]}")
    assert copies == [], "import the limit from gateway/limits.py (or compiler) instead"


def test_a_413_names_the_limit_it_met_and_what_to_do(client):
    """It said "the request body is 307213 bytes; the limit is 262144": not that this is an
    async event's limit, nor that a sync invoke takes 6 MB."""
    # the size is checked from Content-Length, before the function is looked up
    event = b'"' + b"x" * (300 * KiB) + b'"'
    resp = client.simulate_post("/api/v1/functions/big/async", body=event,
                                headers={"Content-Type": "application/json"})  # fmt: skip
    assert resp.status_code == 413 and resp.json["error"]["code"] == "too_large"
    assert resp.json["error"]["message"] == (
        f"an async event may be at most 256 KB (262,144 bytes); this one is {len(event):,}"
        " bytes (it is stored; POST …/invoke takes up to 6 MB)"
    )
    event = b'"' + b"x" * (7 * MiB) + b'"'
    resp = client.simulate_post("/api/v1/functions/big/invoke", body=event,
                                headers={"Content-Type": "application/json"})  # fmt: skip
    assert resp.status_code == 413
    assert resp.json["error"]["message"] == (
        f"an event may be at most 6 MB (6,291,456 bytes); this one is {len(event):,} bytes"
    )
