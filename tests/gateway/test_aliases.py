"""Aliases in-process: validation, routing arithmetic, what refers to them."""

from __future__ import annotations

import time

from gateway.services.aliases import choose
from store.records import Alias, Function, Schedule
from store.schedules import ScheduleRepo
from tests.gateway.test_versions import FN, deploy, deploy_broken


def alias(client, body: dict, status: int, field: str | None = None):
    resp = client.simulate_post(f"{FN}/aliases", json=body)
    assert resp.status_code == status, resp.text
    if field:
        assert resp.json["error"]["details"][0]["field"] == field, resp.json
    return resp


def test_alias_bodies_are_checked(client):
    deploy(client, 1)
    deploy(client, 2)
    broken = deploy_broken(client)
    alias(client, {"name": "123", "version": 1}, 422, "name")
    alias(client, {"name": "latest", "version": 1}, 422, "name")
    alias(client, {"name": "Bad_Name", "version": 1}, 422, "name")
    alias(client, {"name": "prod", "version": 1, "routing": {"2": 60, "3": 50}}, 422, "routing")
    alias(client, {"name": "prod", "version": 1, "routing": {"1": 10}}, 422, "routing")
    alias(client, {"name": "prod", "version": 1, "routing": {"2": 0}}, 422, "routing.2")
    alias(client, {"name": "prod", "version": 1, "routing": {"x": 5}}, 422, "routing")
    assert alias(client, {"name": "prod", "version": 9}, 404).json["error"]["code"] == "not_found"
    failed = alias(client, {"name": "prod", "version": 1, "routing": {str(broken): 5}}, 409)
    assert failed.json["error"]["code"] == "build_failed"
    alias(client, {"name": "prod", "version": 1, "routing": {"2": 25}}, 201)
    assert alias(client, {"name": "prod", "version": 2}, 409).json["error"]["code"] == (
        "alias_exists"
    )
    listed = client.simulate_get(f"{FN}/aliases").json["aliases"]
    assert [(a["name"], a["version"], a["routing"]) for a in listed] == [("prod", 1, {"2": 25.0})]
    versions = client.simulate_get(f"{FN}/versions").json["versions"]
    assert {v["version"]: v["aliases"] for v in versions}[2] == ["prod"]
    assert client.simulate_get(f"{FN}/aliases/nope").status_code == 404
    resp = client.simulate_put(f"{FN}/aliases/prod", json={"name": "other", "version": 1})
    assert resp.status_code == 422


def test_invoking_an_alias_and_deleting_one_a_schedule_uses(client, platform):
    fn = deploy(client, 1)
    deploy(client, 2)
    alias(client, {"name": "prod", "version": 1}, 201)
    resp = client.simulate_post(f"{FN}:prod/invoke", json={})
    assert resp.json == {"v": 1} and resp.headers["X-Nimbus-Alias"] == "prod"
    resp = client.simulate_post(f"{FN}/invoke", params={"alias": "prod"}, json={},
                                headers={"X-Nimbus-Version-Override": "2"})  # fmt: skip
    assert resp.json == {"v": 2}
    bad = client.simulate_post(f"{FN}/invoke", json={},
                               headers={"X-Nimbus-Version-Override": "two"})  # fmt: skip
    assert bad.status_code == 422
    ScheduleRepo(platform.store).create(Schedule(
        id="sch_aaaaaaaaaaaaaaaa", function_id=fn["id"], expression="rate(1 day)", qualifier="prod",
        enabled=False))  # fmt: skip
    resp = client.simulate_delete(f"{FN}/aliases/prod")
    assert resp.status_code == 409 and resp.json["error"]["code"] == "in_use"
    ScheduleRepo(platform.store).delete(fn["id"], "sch_aaaaaaaaaaaaaaaa")
    assert client.simulate_delete(f"{FN}/aliases/prod").status_code == 204
    assert client.simulate_get(f"{FN}/aliases/prod").status_code == 404


def test_deleting_an_alias_a_workflow_task_names_is_409_in_use(client):
    deploy(client, 1)
    alias(client, {"name": "prod", "version": 1}, 201)
    definition = {"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": "hello:prod",
                                                   "End": True}}}  # fmt: skip
    made = client.simulate_post("/api/v1/workflows", json={"name": "flow",
                                                           "definition": definition})  # fmt: skip
    assert made.status_code == 201, made.text
    resp = client.simulate_delete(f"{FN}/aliases/prod")
    assert resp.status_code == 409 and resp.json["error"]["code"] == "in_use"
    assert resp.json["error"]["details"] == ["workflow flow"]
    assert client.simulate_delete("/api/v1/workflows/flow").status_code == 204
    assert client.simulate_delete(f"{FN}/aliases/prod").status_code == 204


def test_weights_walk_in_version_order_and_the_rest_goes_to_the_alias_version():
    a = Alias(name="a", version=1, routing={3: 10, 2: 20})
    assert [choose(a, p) for p in (0, 19.99, 20, 29.99, 30, 99.99)] == [2, 2, 3, 3, 1, 1]
    assert Function(id="fn_x", name="x", runtime="wasm").aliases == {}


def test_an_alias_has_its_own_webhook_url_on_request(client):
    deploy(client, 1)
    deploy(client, 2)
    made = alias(client, {"name": "prod", "version": 1, "webhook": True}, 201).json
    path = made["webhook_url"].split("://", 1)[1].split("/", 1)[1]
    resp = client.simulate_post(f"/{path}", json={})
    assert resp.status_code == 200 and resp.json == {"v": 1}  # the alias's, not the latest
    pinned = client.simulate_post(f"/{path}", json={}, headers={"X-Nimbus-Version-Override": "2"})
    assert pinned.json == {"v": 1}  # the pin header needs an API key: not on a public URL
    function_url = client.simulate_get(FN).json["webhook_url"].split("/webhook/")[1]
    assert client.simulate_post(f"/webhook/{function_url}", json={}).json == {"v": 2}
    moved = client.simulate_put(f"{FN}/aliases/prod", json={"version": 2})
    assert moved.json["webhook_url"] == made["webhook_url"]  # the URL follows the alias
    split = client.simulate_put(f"{FN}/aliases/prod", json={"version": 1, "routing": {"2": 50}})
    assert split.status_code == 200
    time.sleep(1.1)  # the worker's record cache
    for key in ("alice", "bob", "carol"):  # a public caller's routing key sticks too
        served = {client.simulate_post(f"/{path}", json={},
                                       headers={"X-Nimbus-Routing-Key": key}).json["v"]
                  for _ in range(6)}  # fmt: skip
        assert len(served) == 1, (key, served)
    off = client.simulate_put(f"{FN}/aliases/prod", json={"version": 2, "webhook": False})
    assert off.json["webhook_url"] is None
    time.sleep(1.1)  # the worker's record cache
    assert client.simulate_post(f"/{path}", json={}).status_code == 404
