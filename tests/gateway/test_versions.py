"""Versions, rollback, history and pruning in-process (real builds on a local store)."""

from __future__ import annotations

import base64
import json
import time

import pytest

from store import errors
from store.invocations import InvocationRepo
from store.records import Invocation, Schedule
from store.references import version_references
from store.schedules import ScheduleRepo
from tests.e2e.wasm import b64, constant_wat, wat
from tests.gateway.conftest import running_platform

FN = "/api/v1/functions/hello"


def module(n: int) -> str:
    return b64(wat(constant_wat(b'{"v":%d}' % n)))


def deploy(client, n: int, **extra) -> dict:
    body = {"artifact_base64": module(n), **extra}
    if n == 1:
        resp = client.simulate_post(
            "/api/v1/functions",
            json={"name": "hello", "runtime": "wasm", **body},
            params={"wait": "true"},
        )
    else:
        resp = client.simulate_put(FN, json=body, params={"wait": "true"})
    assert resp.status_code in (200, 201), resp.text
    return resp.json


def deploy_broken(client) -> int:
    resp = client.simulate_put(FN, json={"artifact_base64": b64(b"\0asm broken")},
                               params={"wait": "true"})  # fmt: skip
    assert resp.json["latest_build"]["status"] == "failed", resp.text
    return resp.json["latest_version"]


def test_versions_are_listed_newest_first_with_their_facts(client):
    deploy(client, 1, description="first", env_vars={"TOKEN": "secret"})
    deploy(client, 2, memory_mb=64)
    deploy(client, 3)
    page = client.simulate_get(f"{FN}/versions", params={"limit": 2}).json
    assert page["total"] == 3 and page["limit"] == 2 and page["offset"] == 0
    assert [v["version"] for v in page["versions"]] == [3, 2]
    newest = page["versions"][0]
    assert newest["active"] is True and newest["status"] == "ready"
    assert len(newest["sha256"]) == 64 and newest["artifact_sha256"]
    assert newest["env_vars"] == {"TOKEN": "****"} and newest["description"] == "first"
    assert page["versions"][1]["memory_mb"] == 64
    rest = client.simulate_get(f"{FN}/versions", params={"limit": 2, "offset": 2}).json
    assert [v["version"] for v in rest["versions"]] == [1]
    one = client.simulate_get(f"{FN}/versions/1").json
    assert one["version"] == 1 and one["active"] is False and one["memory_mb"] == 128
    assert client.simulate_get(f"{FN}/versions/9").status_code == 404
    assert client.simulate_get(f"{FN}/versions/x").status_code == 404
    bad = client.simulate_get(f"{FN}/versions", params={"limit": 0})
    assert bad.status_code == 422 and bad.json["error"]["details"][0]["field"] == "limit"


def test_rollback_serves_the_version_at_once_and_is_in_the_history(client):
    deploy(client, 1)
    deploy(client, 2)
    resp = client.simulate_post(f"{FN}/versions/1/rollback", json={"reason": "v2 is slow"})
    assert resp.status_code == 200 and resp.json["active_version"] == 1
    assert resp.headers["X-Nimbus-Version"] == "1"
    called = client.simulate_post(f"{FN}/invoke", json={})
    assert called.json == {"v": 1} and called.headers["X-Nimbus-Version"] == "1"
    # a rollback forward again, with no body
    assert client.simulate_post(f"{FN}/versions/2/rollback").json["active_version"] == 2
    history = client.simulate_get(f"{FN}/history").json
    assert history["total"] == 4  # two rollbacks after the two deploys
    latest, first = history["entries"][:2]
    assert (first["action"], first["from_version"], first["to_version"]) == ("rollback", 2, 1)
    assert first["reason"] == "v2 is slow" and first["actor"] == "admin key"
    assert (latest["from_version"], latest["to_version"]) == (1, 2)
    # the version already serving: nothing changes, nothing recorded
    assert client.simulate_post(f"{FN}/versions/2/rollback").status_code == 200
    assert client.simulate_get(f"{FN}/history").json["total"] == 4


def test_rollback_to_a_version_that_cannot_serve_is_refused_and_changes_nothing(client):
    deploy(client, 1)
    broken = deploy_broken(client)
    resp = client.simulate_post(f"{FN}/versions/{broken}/rollback")
    assert resp.status_code == 409 and resp.json["error"]["code"] == "build_failed"
    assert client.simulate_post(f"{FN}/versions/7/rollback").status_code == 404
    bad = client.simulate_post(f"{FN}/versions/1/rollback", json={"nope": 1})
    assert bad.status_code == 422
    fn = client.simulate_get(FN).json
    history = client.simulate_get(f"{FN}/history").json["entries"]
    assert fn["active_version"] == 1 and [e["action"] for e in history] == ["deploy"]


def test_each_version_that_starts_serving_is_in_the_history_with_who_made_it(client):
    deploy(client, 1)
    assert deploy_broken(client) == 2  # never serves: no entry
    deploy(client, 3)
    client.simulate_post(f"{FN}/versions/1/rollback")
    resp = client.simulate_put(FN, json={"memory_mb": 64}, params={"wait": "true"})
    assert resp.json["active_version"] == 4  # a configuration change is a new version too
    deadline = time.monotonic() + 5  # the entry follows the record's write by a moment
    while client.simulate_get(f"{FN}/history").json["total"] < 4 and time.monotonic() < deadline:
        time.sleep(0.02)
    history = client.simulate_get(f"{FN}/history").json["entries"]
    assert [(e["action"], e["from_version"], e["to_version"], e["actor"]) for e in history] == [
        ("deploy", 1, 4, "admin key"),
        ("rollback", 3, 1, "admin key"),
        ("deploy", 1, 3, "admin key"),
        ("deploy", None, 1, "admin key"),
    ]


def test_a_version_still_building_cannot_serve_an_alias_or_a_rollback(client, platform):
    deploy(client, 1)
    platform.builds.stop()  # version 2 stays queued
    resp = client.simulate_put(FN, json={"artifact_base64": module(2)})
    assert resp.status_code == 200 and resp.headers["X-Nimbus-Version"] == "2"
    rollback = client.simulate_post(f"{FN}/versions/2/rollback")
    assert rollback.status_code == 409 and rollback.json["error"]["code"] == "not_ready"
    alias = client.simulate_post(f"{FN}/aliases", json={"name": "next", "version": 2})
    assert alias.status_code == 409 and alias.json["error"]["code"] == "not_ready"
    assert client.simulate_get(f"{FN}/versions/2").json["status"] == "queued"
    assert client.simulate_get(FN).json["active_version"] == 1


def test_the_code_of_each_version_is_served(client):
    deploy(client, 1)
    deploy(client, 2)
    for n in (1, 2):
        code = client.simulate_get(f"{FN}/code", params={"version": n})
        assert code.status_code == 200 and code.headers["X-Nimbus-Version"] == str(n)
        assert code.content == base64.b64decode(module(n))
    assert client.simulate_get(f"{FN}/code", params={"version": 9}).status_code == 404


def test_a_new_build_after_a_rollback_serves_again(client):
    deploy(client, 1)
    deploy(client, 2)
    client.simulate_post(f"{FN}/versions/1/rollback")
    assert deploy(client, 3)["active_version"] == 3


def test_an_update_after_a_rollback_starts_from_the_version_that_serves(client):
    """Rolled back from v2's code, a configuration change made v3 from v2 (the latest):
    the code just rolled back served again. And the record showed v2's memory while v1's
    served."""
    deploy(client, 1)
    deploy(client, 2, memory_mb=256, env_vars={"V2_ONLY": "x"})
    fn = client.simulate_post(f"{FN}/versions/1/rollback").json
    assert (fn["active_version"], fn["memory_mb"], fn["env_vars"]) == (1, 128, {})
    assert client.simulate_get(FN).json["memory_mb"] == 128
    code = client.simulate_get(f"{FN}/code")
    assert code.headers["X-Nimbus-Version"] == "1"
    assert code.content == base64.b64decode(module(1))
    resp = client.simulate_put(FN, json={"timeout_sec": 5}, params={"wait": "true"})
    assert (resp.json["active_version"], resp.json["memory_mb"]) == (3, 128)
    assert client.simulate_post(f"{FN}/invoke", json={}).json == {"v": 1}
    v3 = client.simulate_get(f"{FN}/versions/3").json
    assert (v3["memory_mb"], v3["timeout_sec"], v3["env_vars"]) == (128, 5, {})
    # the next change builds on v3 as usual
    resp = client.simulate_put(FN, json={"memory_mb": 64}, params={"wait": "true"})
    assert resp.json["active_version"] == 4, resp.text
    assert client.simulate_get(f"{FN}/versions/4").json["timeout_sec"] == 5


def test_a_rollback_to_the_version_that_serves_leaves_a_failed_newer_one_behind(client):
    """v1 serves, v2 failed to build: rolling back to v1 (what serves already) makes the
    next update start from v1, not from the failed v2's code; no history entry (nothing
    that serves changed)."""
    deploy(client, 1)
    broken = deploy_broken(client)
    entries = client.simulate_get(f"{FN}/history").json["total"]
    fn = client.simulate_post(f"{FN}/versions/1/rollback").json
    assert fn["active_version"] == 1 and fn["latest_version"] == broken
    assert client.simulate_get(f"{FN}/history").json["total"] == entries
    resp = client.simulate_put(FN, json={"timeout_sec": 5}, params={"wait": "true"})
    assert resp.json["active_version"] == broken + 1, resp.text
    assert client.simulate_post(f"{FN}/invoke", json={}).json == {"v": 1}


def test_a_rollback_forward_to_the_latest_shows_its_configuration_again(client):
    deploy(client, 1)
    deploy(client, 2, memory_mb=256)
    client.simulate_post(f"{FN}/versions/1/rollback")
    fn = client.simulate_post(f"{FN}/versions/2/rollback").json
    assert (fn["active_version"], fn["memory_mb"]) == (2, 256)
    resp = client.simulate_put(FN, json={"timeout_sec": 5}, params={"wait": "true"})
    assert resp.json["active_version"] == 3, resp.text
    assert client.simulate_post(f"{FN}/invoke", json={}).json == {"v": 2}
    assert client.simulate_get(f"{FN}/versions/3").json["memory_mb"] == 256


def test_a_newer_build_that_serves_after_a_rollback_is_what_updates_start_from(
    client, platform, tmp_path
):
    deploy(client, 1)
    deploy(client, 2)
    platform.builds.stop()  # version 3 stays queued through the rollback
    resp = client.simulate_put(FN, json={"artifact_base64": module(3), "memory_mb": 64})
    assert resp.status_code == 200, resp.text
    fn = client.simulate_post(f"{FN}/versions/1/rollback").json
    assert (fn["active_version"], fn["memory_mb"]) == (1, 128)
    with running_platform(tmp_path):  # another worker builds versions 3 and 4
        deadline = time.monotonic() + 30
        while (fn := client.simulate_get(FN).json)["active_version"] != 3:
            assert time.monotonic() < deadline, fn
            time.sleep(0.05)
        assert fn["memory_mb"] == 64
        resp = client.simulate_put(FN, json={"timeout_sec": 5}, params={"wait": "true"})
        assert resp.json["active_version"] == 4, resp.text
    assert client.simulate_post(f"{FN}/invoke", json={}).json == {"v": 3}
    assert client.simulate_get(f"{FN}/versions/4").json["memory_mb"] == 64


def test_a_version_its_maker_never_noted_shows_its_configuration_once_built(
    client, platform, monkeypatch
):
    """The worker that writes a version notes it in the function record next; when that
    write fails (the store away, the worker killed) the build's publish is the first to
    note it. It made it serve and kept showing the version before's memory, env vars and
    handler until the next version."""
    fn = deploy(client, 1)
    real_put = platform.store.put
    failed: list[str] = []

    def put(key, data, **kw):
        # the write that notes version 2 (still queued), and no other
        noting = key == f"functions/{fn['id']}.json" and json.loads(data)["latest_build"] == {
            "version": 2, "status": "queued", "error": None}  # fmt: skip
        if noting and not failed:
            failed.append(key)
            raise errors.Unavailable("the store went away")
        return real_put(key, data, **kw)

    monkeypatch.setattr(platform.store, "put", put)
    resp = client.simulate_put(FN, json={"artifact_base64": module(2), "memory_mb": 256,
                                         "env_vars": {"V2": "x"}})  # fmt: skip
    assert resp.status_code == 503 and failed, resp.text
    deadline = time.monotonic() + 30
    while (shown := client.simulate_get(FN).json)["active_version"] != 2:
        assert time.monotonic() < deadline, shown
        time.sleep(0.05)
    assert (shown["latest_version"], shown["memory_mb"], shown["env_vars"]) == (
        2, 256, {"V2": "****"})  # fmt: skip
    assert client.simulate_post(f"{FN}/invoke", json={}).json == {"v": 2}


@pytest.fixture
def small(tmp_path):
    """A platform that keeps at most 3 versions per function."""
    with running_platform(tmp_path, max_versions_per_function=3) as (platform, client):
        yield platform, client


def versions_kept(client) -> list[int]:
    return sorted(v["version"] for v in client.simulate_get(f"{FN}/versions").json["versions"])


def test_pruning_keeps_the_newest_versions_and_frees_nothing_referenced(small):
    _, client = small
    for n in range(1, 6):
        deploy(client, n)
    assert versions_kept(client) == [3, 4, 5]
    assert client.simulate_get(f"{FN}/versions/1").status_code == 404


def test_pruning_never_removes_the_active_version(small):
    _, client = small
    deploy(client, 1)
    deploy(client, 2)
    client.simulate_post(f"{FN}/versions/1/rollback")
    for _ in range(3):
        deploy_broken(client)  # failed builds never become active
    assert 1 in versions_kept(client) and len(versions_kept(client)) == 3
    assert client.simulate_post(f"{FN}/invoke", json={}).json == {"v": 1}


def test_pruning_never_removes_a_version_with_queued_async_work(small):
    platform, client = small
    fn = deploy(client, 1)
    InvocationRepo(platform.store).accept(
        Invocation(
            id="inv_pinned",
            function_id=fn["id"],
            function_name="hello",
            version=1,
            event="{}",
            not_before=4e9,
        )
    )  # fmt: skip  (not due: stays queued)
    for n in range(2, 6):
        deploy(client, n)
    assert versions_kept(client) == [1, 4, 5]
    refs = version_references(platform.store, platform.repo.get(fn["id"])[0])
    assert refs[1] == ["async invocation inv_pinned"]


def test_references_read_no_other_functions_queued_calls(small, monkeypatch):
    """A prune read every queued async record of the platform (up to ASYNC_MAX_QUEUE_DEPTH,
    10,000) to find its own function's; the queue marker names the function."""
    platform, client = small
    fn = deploy(client, 1)
    queue = InvocationRepo(platform.store)
    for n in range(30):
        queue.accept(Invocation(id=f"inv_other{n}", function_id="fn_other", function_name="o",
                                version=1, event="{}", not_before=4e9))  # fmt: skip
    queue.accept(Invocation(id="inv_mine", function_id=fn["id"], function_name="hello",
                            version=1, event="{}", not_before=4e9))  # fmt: skip
    reads = []
    real_get = platform.store.get
    monkeypatch.setattr(platform.store, "get", lambda key: reads.append(key) or real_get(key))
    refs = version_references(platform.store, platform.repo.get(fn["id"])[0])
    assert refs[1] == ["active version", "async invocation inv_mine"]
    assert [k for k in reads if k.startswith("invocations/")] == ["invocations/inv_mine.json"]


def test_pruning_never_removes_a_version_a_schedule_names(small):
    platform, client = small
    fn = deploy(client, 1)
    ScheduleRepo(platform.store).create(Schedule(
        id="sch_pinned", function_id=fn["id"], expression="rate(1 day)", qualifier="1",
        enabled=False))  # fmt: skip
    for n in range(2, 6):
        deploy(client, n)
    assert versions_kept(client) == [1, 4, 5]


def task(resource: str, **extra) -> dict:
    return {"Type": "Task", "Resource": resource, "End": True, **extra}


def test_pruning_never_removes_a_version_a_workflow_names(small):
    """A Task inside a Parallel branch of a workflow's latest definition names v1; a running
    execution (waiting an hour) follows an older definition that names v2."""
    platform, client = small
    deploy(client, 1)
    deploy(client, 2)
    branch = {"StartAt": "T", "States": {"T": task("hello:1")}}
    nested = {"StartAt": "P", "States": {"P": {"Type": "Parallel", "Branches": [branch],
                                               "End": True}}}  # fmt: skip
    waiting = {"StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": 3600, "Next": "T"},
                                          "T": task("hello:2")}}  # fmt: skip
    for name, definition in (("nested", nested), ("waiting", waiting)):
        body = {"name": name, "definition": definition}
        resp = client.simulate_post("/api/v1/workflows", json=body)
        assert resp.status_code == 201, resp.text
    started = client.simulate_post("/api/v1/workflows/waiting/executions", json={})
    assert started.status_code == 202, started.text
    plain = {"StartAt": "T", "States": {"T": task("hello")}}
    assert client.simulate_put("/api/v1/workflows/waiting",
                               json={"definition": plain}).status_code == 200  # fmt: skip
    for n in range(3, 6):
        deploy(client, n)
    assert versions_kept(client) == [1, 2, 4, 5]  # 3 went; 4 was active when 5 was made
    refs = version_references(platform.store, platform.repo.resolve("hello")[0])
    assert refs[1] == ["workflow nested"] and refs[2] == ["workflow waiting"]


def test_pruning_never_removes_a_version_an_alias_points_or_routes_to(small):
    _, client = small
    deploy(client, 1)
    deploy(client, 2)
    resp = client.simulate_post(
        f"{FN}/aliases", json={"name": "prod", "version": 1, "routing": {"2": 10}}
    )
    assert resp.status_code == 201, resp.text
    for n in range(3, 6):
        deploy(client, n)
    # 3 went; the alias keeps 1 and 2, and 4 was still active when 5 was made
    assert versions_kept(client) == [1, 2, 4, 5]


def test_pruning_never_removes_the_version_a_canary_moves_to(small):
    platform, client = small
    deploy(client, 1)
    deploy(client, 2)
    client.simulate_post(f"{FN}/aliases", json={"name": "prod", "version": 1})
    resp = client.simulate_post(
        f"{FN}/aliases/prod/canary", json={"version": 2, "steps": [10], "interval_sec": 3600}
    )
    assert resp.status_code == 201, resp.text
    fn = platform.repo.resolve("hello")[0]
    assert "canary of alias prod" in version_references(platform.store, fn)[2]
    for n in range(3, 6):
        deploy(client, n)
    assert versions_kept(client) == [1, 2, 4, 5]


def test_numbers_int_cannot_read_are_refused_not_a_500(client):
    """`str.isdigit()` is true for '²' (which `int()` refuses) and for 5000 digits (over
    `int()`'s limit): each number the API reads said 500 `internal` for them."""
    deploy(client, 1)
    deploy(client, 2)
    for odd in ("²", "1" * 5000):
        assert client.simulate_get(f"{FN}/versions/{odd}").status_code == 404
        invoked = client.simulate_post(
            f"{FN}/invoke", json={}, headers={"X-Nimbus-Version-Override": odd}
        )
        assert invoked.status_code == 422, invoked.text
        routed = client.simulate_post(
            f"{FN}/aliases", json={"name": "prod", "version": 1, "routing": {odd: 5}}
        )
        assert routed.status_code == 422, routed.text
        assert routed.json["error"]["details"][0]["field"] == "routing"
        paged = client.simulate_get("/api/v1/alerts/alr_aaaaaaaaaaaaaaaa/history",
                                    params={"limit": odd})  # fmt: skip
        assert paged.status_code == 422, paged.text


def at_the_limit(small):
    """Versions 1-3 of a function that keeps 3; the repository the prune reads through."""
    platform, client = small
    for n in range(1, 4):
        deploy(client, n)
    return client, platform.versions.repo


def prune_after_the_next_version_read(client, repo) -> None:
    """The next check of a version finds it; version 4's prune then deletes version 1."""
    get_version = repo.get_version

    def prune_meanwhile(function_id, number):
        found = get_version(function_id, number)
        del repo.get_version  # the prune reads versions too
        deploy(client, 4)
        return found

    repo.get_version = prune_meanwhile


def test_a_rollback_landing_while_a_prune_decides_keeps_its_version(small):
    # The prune read what refers to each version; a rollback to version 1, the oldest,
    # lands before it deletes anything. Version 1 must stay, and still serve.
    client, repo = at_the_limit(small)
    references = repo.version_references

    def rollback_meanwhile(fn):
        found = references(fn)
        resp = client.simulate_post(f"{FN}/versions/1/rollback")
        assert resp.status_code == 200, resp.text
        return found

    repo.version_references = rollback_meanwhile
    try:
        deploy(client, 4)  # one over the limit of 3: prunes the oldest unreferenced
    finally:
        del repo.version_references
    assert 1 in versions_kept(client)  # (the next version's prune catches up on the limit)
    invoke = client.simulate_post(f"{FN}/invoke", json={}, params={"version": 1})
    assert invoke.json == {"v": 1}, invoke.text


def test_a_rollback_to_a_version_a_prune_claimed_is_404_and_changes_nothing(small):
    # The rollback found version 1 ready; the prune claimed and deleted it before the
    # rollback wrote. The rollback must fail, not point the function at nothing.
    client, repo = at_the_limit(small)
    prune_after_the_next_version_read(client, repo)
    resp = client.simulate_post(f"{FN}/versions/1/rollback")
    assert resp.status_code == 404, resp.text
    assert resp.json["error"]["message"] == "function hello has no version 1"
    assert versions_kept(client) == [2, 3, 4]
    assert client.simulate_post(f"{FN}/invoke", json={}).json == {"v": 4}


def test_a_record_from_before_handlers_were_kept_shows_its_latest_versions(platform, client):
    body = {"name": "older", "runtime": "python", "handler": "app.go",
            "files": {"app.py": "def go(event):\n    return event\n"}}  # fmt: skip
    made = client.simulate_post("/api/v1/functions", json=body)
    assert made.status_code == 201 and made.json["handler"] == "app.go", made.text

    def forget(fn):  # as a server before the field wrote it
        fn.handler = None
        return fn

    platform.repo.update_function(made.json["id"], forget)
    assert client.simulate_get("/api/v1/functions/older").json["handler"] == "app.go"
    listed = client.simulate_get("/api/v1/functions", params={"name": "older"}).json
    assert listed["functions"][0]["handler"] == "app.go"  # was null in every listing

    # a version from before versions kept it either: the runtime's default served it
    code = "export function main(e) { return e }"
    made = client.simulate_post(
        "/api/v1/functions", json={"name": "oldest", "runtime": "javascript", "code": code}
    )
    platform.repo.update_function(made.json["id"], forget)
    platform.repo.update_version(made.json["id"], 1, forget)
    listed = client.simulate_get("/api/v1/functions", params={"name": "oldest"}).json
    assert listed["functions"][0]["handler"] == "handler.main"


def _schedule(client, qualifier: str):
    return client.simulate_post(
        f"{FN}/schedules", json={"expression": "rate(1 hour)", "qualifier": qualifier}
    )


def test_a_schedule_cannot_pin_a_pruned_version(small):
    client, _ = at_the_limit(small)
    deploy(client, 4)
    assert versions_kept(client) == [2, 3, 4]
    resp = _schedule(client, "1")  # was 201: each tick then failed 'no version 1'
    assert resp.status_code == 422, resp.text
    assert resp.json["error"]["message"] == "qualifier: function hello has no version 1"
    assert _schedule(client, "2").status_code == 201


def test_a_schedule_made_while_a_prune_decides_keeps_its_version(small):
    # The prune read what refers to each version; a schedule pinning version 1, the
    # oldest, is made before the prune deletes anything: version 1 must stay.
    client, repo = at_the_limit(small)
    references = repo.version_references

    def schedule_meanwhile(fn):
        found = references(fn)
        if not made:  # the prune's first look, before its claim
            made.append(_schedule(client, "1"))
        return found

    made = []
    repo.version_references = schedule_meanwhile
    try:
        deploy(client, 4)
    finally:
        del repo.version_references
    assert made[0].status_code == 201, made[0].text
    assert 1 in versions_kept(client)  # was pruned: every tick failed 'no version 1'
    assert client.simulate_post(f"{FN}/invoke", json={}, params={"version": 1}).json == {"v": 1}


def test_a_schedule_of_a_version_a_prune_claimed_is_refused(small):
    # The schedule found version 1; the prune claimed and deleted it before the schedule
    # was written. The schedule must not be left pinning nothing.
    client, repo = at_the_limit(small)
    prune_after_the_next_version_read(client, repo)
    resp = _schedule(client, "1")
    assert resp.status_code == 422, resp.text
    assert versions_kept(client) == [2, 3, 4]
    assert client.simulate_get(f"{FN}/schedules").json["schedules"] == []


def test_a_schedule_moved_to_a_version_a_prune_claimed_keeps_its_old_one(small):
    client, repo = at_the_limit(small)
    made = _schedule(client, "3").json
    prune_after_the_next_version_read(client, repo)
    resp = client.simulate_put(f"{FN}/schedules/{made['id']}", json={"qualifier": "1"})
    assert resp.status_code == 422, resp.text
    assert versions_kept(client) == [2, 3, 4]
    assert client.simulate_get(f"{FN}/schedules/{made['id']}").json["qualifier"] == "3"


def test_a_workflow_task_cannot_name_a_pruned_version(small):
    client, _ = at_the_limit(small)
    deploy(client, 4)
    definition = {"StartAt": "A", "States": {"A": {"Type": "Task", "Resource": "hello:1",
                                                   "End": True}}}  # fmt: skip
    resp = client.simulate_post("/api/v1/workflows", json={"name": "wf", "definition": definition})
    assert resp.status_code == 422, resp.text
    assert "hello has no version 1" in resp.json["error"]["message"]
    definition["States"]["A"]["Resource"] = "hello:2"
    assert (
        client.simulate_post(
            "/api/v1/workflows", json={"name": "wf", "definition": definition}
        ).status_code
        == 201
    )
