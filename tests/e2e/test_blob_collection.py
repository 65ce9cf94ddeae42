"""Pruned versions and deleted functions give their bytes back, through a real 2-worker
server on the local store and on SeaweedFS, while every live version still invokes."""

from __future__ import annotations

import contextlib
import json
import os
import time

from store import Store, errors, open_store
from tests.e2e import wasm as w
from tests.e2e.test_observability import once

KEEP = 3  # MAX_VERSIONS_PER_FUNCTION
GRACE = 2.0  # ARTIFACT_GC_GRACE_SEC: a round every 0.5 s, each held for 2 s store-wide
FILLER = 48 * 1024  # random bytes per module, so each version's wasm is its own ~48 KB


def module(n: int) -> str:
    """Prints {"v":n}; carries random filler, so no two versions share bytes."""
    filler = "".join(f"\\{b:02x}" for b in os.urandom(FILLER))
    return w.constant_wat(b'{"v":%d}' % n).replace(
        '(func (export "_start")', f'(data (i32.const 8192) "{filler}")\n  (func (export "_start")'
    )


def server_store(server, monkeypatch) -> Store:
    env = server.env
    if "NIMBUS_STORE" not in env:
        return open_store(str(server.data_dir))
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_EC2_METADATA_DISABLED"):
        monkeypatch.setenv(name, env[name])
    return open_store(env["NIMBUS_STORE"], endpoint_url=env["S3_ENDPOINT_URL"],
                      region=env["AWS_REGION"])  # fmt: skip


def held(store: Store, sha: str | None = None) -> tuple[int, int]:
    """(objects, bytes) under blobs/sha256/ and precompiled/ (of one sha, if given)."""
    blobs, forms = ("blobs/sha256/", "precompiled/") if sha is None else (
        f"blobs/sha256/{sha}", f"precompiled/{sha}/")  # fmt: skip
    sizes = []
    for key in [*store.list(blobs), *store.list(forms)]:
        with contextlib.suppress(errors.NotFound):  # deleted since the listing
            sizes.append(len(store.get(key).data))
    return len(sizes), sum(sizes)


def wait_until(check, timeout: float = 30.0) -> float:
    started = time.monotonic()
    while not check():
        assert time.monotonic() - started < timeout, "not collected in time"
        time.sleep(0.25)
    return time.monotonic() - started


def test_pruned_versions_and_a_deleted_function_give_their_bytes_back(
    make_server, backend_env, name, monkeypatch
):
    env = {**backend_env, "MAX_VERSIONS_PER_FUNCTION": str(KEEP),
           "ARTIFACT_GC_GRACE_SEC": str(GRACE)}  # fmt: skip
    server = make_server(env).start()
    store = server_store(server, monkeypatch)
    body = {"name": name, "runtime": "wasm", "artifact_base64": w.b64(w.wat(module(1)))}
    resp = once(server, "POST", "/api/v1/functions?wait=true", json=body)
    assert resp.status_code == 201, resp.text
    shas: dict[int, str] = {}
    stored = [0, 0]  # what the 8 versions stored: their wasm and its precompiled forms
    for n in range(1, 9):
        if n > 1:
            resp = once(server, "PUT", f"/api/v1/functions/{name}?wait=true",
                        json={"artifact_base64": w.b64(w.wat(module(n)))})  # fmt: skip
            assert resp.status_code == 200 and resp.json()["active_version"] == n, resp.text
        called = once(server, "POST", f"/api/v1/functions/{name}/invoke?version={n}", json={})
        assert called.json() == {"v": n}  # its precompiled form is in the store now
        shas[n] = once(server, "GET", f"/api/v1/functions/{name}/versions/{n}").json()["sha256"]
        objects, size = held(store, shas[n])
        stored = [stored[0] + objects, stored[1] + size]

    versions = once(server, "GET", f"/api/v1/functions/{name}/versions").json()["versions"]
    live = sorted(v["version"] for v in versions)
    assert live == [6, 7, 8]
    gone = {shas[n] for n in range(1, 6)}
    took = wait_until(lambda: all(held(store, sha) == (0, 0) for sha in gone))  # and forms
    after = held(store)
    assert set(store.list("blobs/sha256/")) == {f"blobs/sha256/{shas[n]}" for n in live}
    assert after[1] < stored[1] - 5 * FILLER, (stored, after)
    for n in live:  # every live version still serves, on either worker
        for _ in range(4):
            resp = once(server, "POST", f"/api/v1/functions/{name}/invoke?version={n}", json={})
            assert resp.status_code == 200 and resp.json() == {"v": n}, resp.text
    print(f"\npruned 5 of 8 versions: stored {stored}, held {after} (objects, bytes); "
          f"the last pruned freed {took:.1f}s after the last update")  # fmt: skip

    assert once(server, "DELETE", f"/api/v1/functions/{name}").status_code == 204
    took = wait_until(lambda: [*store.list("blobs/"), *store.list("precompiled/")] == [])
    final = held(store)  # (0, 0): the function's blobs, their forms and marks are gone
    print(f"deleted the function: {after} -> {final} in {took:.1f}s")
    store.close()


def test_a_python_functions_pruned_code_goes_and_the_shared_runtime_stays(
    make_server, backend_env, name, monkeypatch
):
    """Built versions name a source, a bundle, the shared runtime and its stdlib mount:
    the first two go with the pruned version; the runtime's blobs stay while anything
    uses them (and the installed runtime always), so every live function still runs."""
    env = {**backend_env, "MAX_VERSIONS_PER_FUNCTION": "2", "ARTIFACT_GC_GRACE_SEC": str(GRACE)}
    server = make_server(env).start()
    store = server_store(server, monkeypatch)

    def deploy(fn: str, n: int, method: str = "POST") -> dict:
        code = f"def main(event, context):\n    return {{'v': {n}, 'fn': {fn!r}}}\n"
        path = "/api/v1/functions" if method == "POST" else f"/api/v1/functions/{fn}"
        body = {"files": {"handler.py": code}}
        if method == "POST":
            body |= {"name": fn, "runtime": "python"}
        resp = once(server, method, path + "?wait=true", json=body)
        assert resp.status_code in (200, 201) and resp.json()["status"] == "active", resp.text
        return resp.json()

    def record(fn_id: str, n: int) -> dict:
        return json.loads(store.get(f"versions/{fn_id}/{n:08d}.json").data)

    other = deploy(f"{name}-b", 1)
    fn_id = deploy(name, 1)["id"]
    first = record(fn_id, 1)
    own = {first["source_key"], first["build"]["bundle_key"]}
    shared = {first["build"]["artifact_key"], *(m["key"] for m in first["build"]["mounts"])}
    for n in (2, 3):
        deploy(name, n, "PUT")
    wait_until(lambda: not any(store.exists(key) for key in own), timeout=60)
    assert all(store.exists(key) for key in shared)
    for fn, n in ((name, 3), (f"{name}-b", 1)):
        resp = once(server, "POST", f"/api/v1/functions/{fn}/invoke", json={})
        assert resp.status_code == 200 and resp.json() == {"v": n, "fn": fn}, resp.text
    assert once(server, "DELETE", f"/api/v1/functions/{name}").status_code == 204
    assert once(server, "DELETE", f"/api/v1/functions/{other['id']}").status_code == 204
    runtime = first["build"]["artifact_key"]  # installed: never collected
    wait_until(lambda: set(store.list("blobs/sha256/")) == {runtime}, timeout=60)
    store.close()
