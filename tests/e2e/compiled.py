"""Helpers for the compiled languages' end-to-end suites (C, Go): one local-store
server per module, create-and-wait, invoke, build logs."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator

import httpx

from tests.e2e.server import REPO, NimbusProcess

EXAMPLES = REPO / "examples"


@contextlib.contextmanager
def serving(tmp_path_factory, **env: str) -> Iterator[httpx.Client]:
    """A server on the local store for one test module (`env`: its settings), and a
    client of it (the toolchains live in the repository's .cache/toolchains, warm after
    `make install`)."""
    proc = NimbusProcess(tmp_path_factory.mktemp("compiled") / "data", env=env or None)
    proc.start()
    try:
        with proc.client(timeout=900) as client:
            yield client
    finally:
        proc.stop()


def create(api: httpx.Client, runtime: str, name: str, files, **extra) -> dict:
    """Create a function and wait for its build; returns the record (any outcome)."""
    if isinstance(files, str):
        files = {f"handler.{'c' if runtime == 'c' else 'go'}": files}
    body = {"name": name, "runtime": runtime, "files": files, **extra}
    resp = api.post("/api/v1/functions?wait=true", json=body)
    assert resp.status_code == 201, resp.text
    return resp.json()


def deployed(api: httpx.Client, runtime: str, name: str, files, **extra) -> dict:
    fn = create(api, runtime, name, files, **extra)
    assert fn["status"] == "active", (fn, build_log(api, name))
    return fn


def update(api: httpx.Client, name: str, files) -> dict:
    resp = api.put(f"/api/v1/functions/{name}", json={"files": files})
    assert resp.status_code == 200, resp.text
    version = resp.json()["latest_version"]
    for _ in range(600):
        build = api.get(f"/api/v1/functions/{name}/build", params={"version": version}).json()
        if build["status"] in ("ready", "failed"):
            return build
        time.sleep(0.2)
    raise AssertionError(f"the build of {name} v{version} did not finish")


def invoke(api: httpx.Client, name: str, event=None, **kw) -> httpx.Response:
    return api.post(
        f"/api/v1/functions/{name}/invoke", json=event if event is not None else {}, **kw
    )


def build_log(api: httpx.Client, name: str, version: int | None = None) -> str:
    params = {"version": version} if version else {}
    return api.get(f"/api/v1/functions/{name}/build", params=params).json()["log"]


def log_lines(api: httpx.Client, name: str, resp: httpx.Response) -> list[str]:
    """The log lines (stream "stderr": what the function logged, not its result) of
    the invocation that answered `resp`, oldest first; written off the request
    path, so polled for a while."""
    params = {"invocation_id": resp.headers["X-Nimbus-Invocation-Id"]}
    lines: list[str] = []
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and not lines:
        entries = api.get(f"/api/v1/functions/{name}/logs", params=params).json()["entries"]
        lines = [e["line"] for e in reversed(entries) if e["stream"] == "stderr"]
        time.sleep(0 if lines else 0.2)
    return lines


def function_error(resp: httpx.Response) -> dict:
    assert resp.status_code == 500, resp.text
    assert resp.headers["X-Nimbus-Function-Error"] == "true"
    error = resp.json()["error"]
    assert error["code"] == "function_error", error
    return error


ORDER = {
    "order_id": "A-1001",
    "customer": {"name": "Ada Lovelace", "email": "ADA@Example.com"},
    "currency": "EUR",
    "items": [
        {"sku": "BK-1", "name": "Notebook", "price": 4.5, "qty": 3},
        {"sku": "PN-2", "name": "Pen", "price": 1.25, "qty": 4},
    ],
    "coupon": {"code": "SAVE10", "percent": 10},
}
SUMMARY = {
    "order_id": "A-1001",
    "customer": "ada@example.com",
    "currency": "EUR",
    "lines": [{"sku": "BK-1", "amount": 13.5}, {"sku": "PN-2", "amount": 5}],
    "item_count": 7,
    "subtotal": 18.5,
    "discount": 1.85,
    "total": 16.65,
}
