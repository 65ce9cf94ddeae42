"""Opt-in warm reuse through a real one-worker server: globals survive between calls of
one version only with `reuse`, never across versions, and a killed instance is dropped."""

from __future__ import annotations

import pytest

COUNTER_PYTHON = """
calls = 0

def main(event, context):
    global calls
    calls += 1
    if event.get("spin"):
        while True:
            pass
    if event.get("hog"):
        hoard = [bytearray(1 << 20) for _ in range(10_000)]
    return {"calls": calls, "tag": TAG}

TAG = "%s"
"""
COUNTER_JS = """
exports.main = (event) => {
  globalThis.calls = (globalThis.calls || 0) + 1;
  if (event.spin) { for (;;) {} }
  return {calls: globalThis.calls, tag: "%s"};
};
"""
SOURCES = {"python": COUNTER_PYTHON, "javascript": COUNTER_JS}


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    from tests.e2e.server import NimbusProcess

    # One worker, so consecutive calls meet the same warm instance.
    server = NimbusProcess(tmp_path_factory.mktemp("reuse") / "data", workers=1).start()
    with server.client() as client:
        yield client
    server.stop()


def deploy(api, name: str, runtime: str, **fields) -> dict:
    body = {"name": name, "runtime": runtime, "code": SOURCES[runtime] % "v1", "timeout_sec": 2,
            **fields}  # fmt: skip
    resp = api.post("/api/v1/functions?wait=true", json=body)
    assert resp.status_code == 201 and resp.json()["status"] == "active", resp.text
    return resp.json()


def calls(api, name: str, n: int = 3, **event) -> list[int]:
    out = []
    for _ in range(n):
        resp = api.post(f"/api/v1/functions/{name}/invoke", json=event)
        assert resp.status_code == 200, resp.text
        out.append(resp.json()["calls"])
    return out


@pytest.mark.parametrize("runtime", ["python", "javascript"])
def test_a_global_counter_is_one_without_reuse_and_grows_with_it(api, runtime):
    fresh = deploy(api, f"fresh-{runtime}", runtime)
    assert fresh["reuse"] is False
    assert calls(api, f"fresh-{runtime}") == [1, 1, 1]
    warm = deploy(api, f"warm-{runtime}", runtime, reuse=True)
    assert warm["reuse"] is True
    assert calls(api, f"warm-{runtime}") == [1, 2, 3]


@pytest.mark.parametrize("runtime", ["python", "javascript"])
def test_no_reuse_across_versions_or_functions(api, runtime):
    deploy(api, f"v-{runtime}", runtime, reuse=True)
    deploy(api, f"other-{runtime}", runtime, reuse=True)
    assert calls(api, f"v-{runtime}", 2) == [1, 2]
    assert calls(api, f"other-{runtime}", 1) == [1]  # the same source, another function
    resp = api.put(f"/api/v1/functions/v-{runtime}?wait=true",
                   json={"code": SOURCES[runtime] % "v2"})  # fmt: skip
    assert resp.status_code == 200, resp.text
    assert resp.json()["latest_version"] == 2
    # (?version=2: the worker's function record may be up to 1 s stale)
    first = api.post(f"/api/v1/functions/v-{runtime}/invoke?version=2", json={}).json()
    assert first == {"calls": 1, "tag": "v2"}  # version 2 starts from its own fresh instance
    again = api.post(f"/api/v1/functions/v-{runtime}/invoke?version=1", json={}).json()
    assert again == {"calls": 3, "tag": "v1"}  # version 1's warm instance is still its own


@pytest.mark.parametrize("runtime", ["python", "javascript"])
def test_a_timed_out_instance_is_dropped(api, runtime):
    deploy(api, f"spin-{runtime}", runtime, reuse=True)
    assert calls(api, f"spin-{runtime}", 2) == [1, 2]
    resp = api.post(f"/api/v1/functions/spin-{runtime}/invoke", json={"spin": True})
    assert resp.status_code == 504, resp.text
    assert calls(api, f"spin-{runtime}", 2) == [1, 2]


def test_a_memory_killed_instance_is_dropped(api):
    deploy(api, "hog", "python", reuse=True, memory_mb=64)
    assert calls(api, "hog", 2) == [1, 2]
    resp = api.post("/api/v1/functions/hog/invoke", json={"hog": True})
    assert resp.status_code == 500 and resp.json()["error"]["code"] == "memory_limit_exceeded"
    assert calls(api, "hog", 2) == [1, 2]


def test_reuse_is_refused_for_native_binaries(api):
    body = {"name": "native-reuse", "runtime": "c", "target": "native", "reuse": True,
            "code": "int main(void) { return 0; }"}  # fmt: skip
    resp = api.post("/api/v1/functions", json=body)
    assert resp.status_code == 422, resp.text
    assert "reuse" in resp.text
