"""Aliases through a real 2-worker server: weights, sticky routing keys, weight changes."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

from tests.e2e import wasm as w
from tests.e2e.test_observability import (
    cold_count,
    deploy,
    invoke_on_both_workers,
    once,
)


def two_versions(server, name: str) -> None:
    deploy(server, name, w.constant_wat(b'{"v":1}'))
    resp = once(server, "PUT", f"/api/v1/functions/{name}?wait=true",
                json={"artifact_base64": w.b64(w.wat(w.constant_wat(b'{"v":2}')))})  # fmt: skip
    assert resp.json()["active_version"] == 2


def test_a_weighted_alias_splits_calls_within_binomial_bounds(server, name):
    two_versions(server, name)
    resp = once(server, "POST", f"/api/v1/functions/{name}/aliases",
                json={"name": "prod", "version": 1, "routing": {"2": 10}})  # fmt: skip
    assert resp.status_code == 201, resp.text
    assert resp.json()["routing"] == {"2": 10.0}
    time.sleep(1.1)  # every worker's record cache

    def batch(_: int) -> list[str]:
        with server.client() as api:
            out = []
            for _ in range(250):
                r = api.post(f"/api/v1/functions/{name}:prod/invoke", json={})
                assert r.headers["X-Nimbus-Alias"] == "prod"
                assert r.json()["v"] == int(r.headers["X-Nimbus-Version"])
                out.append(r.headers["X-Nimbus-Version"])
            return out

    with ThreadPoolExecutor(4) as pool:
        served = [v for part in pool.map(batch, range(8)) for v in part]
    assert len(served) == 2000
    # 10 % of 2,000: mean 200, standard deviation 13.4; ±4.5 σ
    assert 140 <= served.count("2") <= 260, served.count("2")
    assert served.count("1") + served.count("2") == 2000


def test_a_routing_key_sticks_and_a_weight_change_applies_within_a_second(server, name):
    two_versions(server, name)
    path = f"/api/v1/functions/{name}/invoke"
    once(server, "POST", f"/api/v1/functions/{name}/aliases",
         json={"name": "live", "version": 1, "routing": {"2": 50}})  # fmt: skip
    time.sleep(1.1)
    for key in ("alice", "bob", "carol", "dave"):
        seen = {
            once(
                server,
                "POST",
                path,
                params={"alias": "live"},
                headers={"X-Nimbus-Routing-Key": key},
            ).headers["X-Nimbus-Version"]
            for _ in range(8)
        }  # fmt: skip  (fresh connections: both workers)
        assert len(seen) == 1, (key, seen)
    # the pin header beats the alias
    pinned = once(
        server,
        "POST",
        path,
        params={"alias": "live"},
        headers={"X-Nimbus-Version-Override": "2", "X-Nimbus-Routing-Key": "x"},
    )
    assert pinned.headers["X-Nimbus-Version"] == "2" and pinned.json() == {"v": 2}

    resp = once(server, "PUT", f"/api/v1/functions/{name}/aliases/live",
                json={"version": 2})  # fmt: skip
    assert resp.status_code == 200 and resp.json()["routing"] == {}
    time.sleep(1.0)
    after = [once(server, "POST", path, params={"alias": "live"}).headers["X-Nimbus-Version"]
             for _ in range(30)]  # fmt: skip
    assert after == ["2"] * 30
    history = once(server, "GET", f"/api/v1/functions/{name}/history").json()["entries"]
    assert [(e["action"], e["alias"], e["to_version"]) for e in history] == [
        ("alias_updated", "live", 2),
        ("alias_created", "live", 1),
        ("deploy", None, 2),
        ("deploy", None, 1),
    ]


def test_a_new_alias_serves_on_both_workers_at_once_whatever_their_cache(make_server, backend_env):
    """Each worker caches the function record without the alias (here for 30 s, to make the
    race certain); an alias made on one worker is served by both at once, not a 404."""
    server = make_server({**backend_env, "CACHE_MAX_AGE_SEC": "30"}).start()
    name = "fresh-alias"
    two_versions(server, name)
    invoke_on_both_workers(server, name, 2)  # both cache the record: no aliases, v2 active
    made = once(server, "POST", f"/api/v1/functions/{name}/aliases",
                json={"name": "beta", "version": 1})  # fmt: skip
    assert made.status_code == 201, made.text
    calls = []
    while cold_count(calls) < 2:  # version 1 runs cold once in each worker
        calls.append(once(server, "POST", f"/api/v1/functions/{name}:beta/invoke", json={}))
        assert calls[-1].status_code == 200, calls[-1].text
        assert len(calls) < 100, "the calls never reached the second worker"
    assert {(c.json()["v"], c.headers["X-Nimbus-Version"]) for c in calls} == {(1, "1")}
    unknown = once(server, "POST", f"/api/v1/functions/{name}:nope/invoke", json={})
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "not_found"
