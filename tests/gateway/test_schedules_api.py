"""`/api/v1/functions/{ref}/schedules` in-process: the contract, and every bad input's 4xx."""

from __future__ import annotations

import collections
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from falcon import testing

from gateway.api.app import create_app
from gateway.platform import Platform
from gateway.settings import Settings
from store import errors
from store.records import Schedule
from tests.e2e.wasm import b64, hello_module
from tests.gateway.conftest import KEY


@pytest.fixture
def platform(tmp_path) -> Platform:
    settings = Settings(data_dir=tmp_path, nimbus_api_key=KEY, max_schedules_per_function=3,
                        preload_runtimes=False)  # fmt: skip
    platform = Platform.open(settings)  # not started: schedules need no running jobs here
    yield platform
    platform.stop()


@pytest.fixture
def fn(client) -> dict:
    body = {"name": "ticked", "runtime": "wasm", "artifact_base64": b64(hello_module())}
    created = client.simulate_post("/api/v1/functions", json=body)
    assert created.status_code == 201, created.text
    return created.json


def _url(fn: dict, *rest: str) -> str:
    return "/".join(["/api/v1/functions", fn["name"], "schedules", *rest])


def test_create_returns_the_schedule_with_its_next_run(client, fn):
    before = datetime.now(UTC)
    resp = client.simulate_post(_url(fn), json={
        "expression": "0 9 * * mon-fri", "timezone": "Europe/Berlin", "event": {"job": "report"},
        "description": "weekday report"})  # fmt: skip
    assert resp.status_code == 201, resp.text
    got = resp.json
    assert got["id"].startswith("sch_") and resp.headers["Location"].endswith(got["id"])
    assert got["function_id"] == fn["id"]
    assert got["expression"] == "0 9 * * mon-fri" and got["timezone"] == "Europe/Berlin"
    assert got["summary"] == "At 09:00 on Monday through Friday"
    assert got["event"] == {"job": "report"} and got["description"] == "weekday report"
    assert got["enabled"] is True and got["qualifier"] is None
    assert got["last_run_at"] is None and got["last_invocation_id"] is None
    next_run = datetime.fromisoformat(got["next_run_at"])
    local = next_run.astimezone(ZoneInfo("Europe/Berlin"))
    assert next_run > before and (local.hour, local.minute, local.weekday() < 5) == (9, 0, True)


def test_defaults_list_get_update_delete(client, fn):
    made = client.simulate_post(_url(fn), json={"expression": "rate(5 minutes)"}).json
    assert (made["timezone"], made["event"], made["summary"]) == ("UTC", {}, "Every 5 minutes")
    other = client.simulate_post(_url(fn), json={"expression": "@hourly", "enabled": False}).json
    assert other["next_run_at"] is None  # disabled

    listed = client.simulate_get(_url(fn)).json
    assert listed["total"] == 2
    assert [s["id"] for s in listed["schedules"]] == [made["id"], other["id"]]  # oldest first
    by_id = client.simulate_get(f"/api/v1/functions/{fn['id']}/schedules/{made['id']}")
    assert by_id.status_code == 200 and by_id.json["id"] == made["id"]

    changed = client.simulate_put(_url(fn, made["id"]), json={
        "expression": "*/10 * * * * *", "qualifier": 1, "event": [1, 2]})  # fmt: skip
    assert changed.status_code == 200, changed.text
    got = changed.json
    assert got["expression"] == "*/10 * * * * *" and got["summary"].startswith("Every 10th second")
    assert got["qualifier"] == "1" and got["event"] == [1, 2]
    assert got["updated_at"] > made["updated_at"]
    assert datetime.fromisoformat(got["next_run_at"]).second % 10 == 0

    cleared = client.simulate_put(_url(fn, made["id"]), json={"qualifier": None}).json
    assert cleared["qualifier"] is None and cleared["expression"] == "*/10 * * * * *"

    assert client.simulate_delete(_url(fn, made["id"])).status_code == 204
    assert client.simulate_get(_url(fn, made["id"])).status_code == 404
    assert client.simulate_delete(_url(fn, made["id"])).status_code == 404
    assert client.simulate_get(_url(fn)).json["total"] == 1


def test_deleting_the_function_deletes_its_schedules(client, fn):
    made = client.simulate_post(_url(fn), json={"expression": "@daily"}).json
    assert client.simulate_delete(f"/api/v1/functions/{fn['id']}").status_code == 204
    client.simulate_post("/api/v1/functions", json={
        "name": fn["name"], "runtime": "wasm", "artifact_base64": b64(hello_module())})  # fmt: skip
    assert client.simulate_get(_url(fn)).json == {"schedules": [], "total": 0}
    assert client.simulate_get(_url(fn, made["id"])).status_code == 404


def _nested(depth: int) -> list:
    value: list = []
    for _ in range(depth - 1):
        value = [value]
    return value


@pytest.mark.parametrize(
    ("body", "field", "says"),
    [
        ({"expression": "61 * * * *"}, "expression", "bad minute"),
        ({"expression": "every day"}, "expression", "has 2 fields"),
        ({"expression": "rate(1 fortnight)"}, "expression", "is not a rate"),
        ({"expression": "@hourly", "timezone": "Berlin"}, "timezone", "IANA"),
        ({"expression": "@hourly", "qualifier": "7"}, "qualifier", "no version 7"),
        ({"expression": "@hourly", "qualifier": "prod"}, "qualifier", "no alias named 'prod'"),
        ({"expression": "@hourly", "qualifier": "0"}, "qualifier", "numbered from 1"),
        ({"expression": "@hourly", "qualifier": "Prod!"}, "qualifier", "neither a version"),
        ({"expression": ""}, "expression", "at least 1 character"),
        ({}, "expression", "Field required"),
        ({"expression": "@hourly", "every": 5}, "every", "unknown field"),
        ({"expression": "@hourly", "enabled": "sometimes"}, "enabled", "boolean"),
        ({"expression": "@hourly", "event": "x" * 300_000}, "event", "262144 bytes"),
        # orjson writes 254 levels at most: this one was a 500
        ({"expression": "@hourly", "event": {"a": _nested(300)}}, "event", "nests deeper"),
    ],
)
def test_bad_bodies_are_422_naming_the_field(client, fn, body, field, says):
    resp = client.simulate_post(_url(fn), json=body)
    assert resp.status_code == 422, resp.text
    error = resp.json["error"]
    assert error["code"] == "validation_error"
    assert [d["field"] for d in error["details"]] == [field]
    assert says in error["details"][0]["message"]


def test_bad_update_is_422_and_changes_nothing(client, fn):
    made = client.simulate_post(_url(fn), json={"expression": "@hourly"}).json
    resp = client.simulate_put(_url(fn, made["id"]), json={"expression": "0 0 31 2 *"})
    assert resp.status_code == 422 and "expression" in resp.json["error"]["message"]
    assert client.simulate_get(_url(fn, made["id"])).json["expression"] == "@hourly"


def test_unknowns_malformed_bodies_and_the_quota(client, fn):
    assert client.simulate_get("/api/v1/functions/nope/schedules").status_code == 404
    post = client.simulate_post("/api/v1/functions/nope/schedules", json={"expression": "@daily"})
    assert post.status_code == 404
    for sid in ("sch_aaaaaaaaaaaaaaaa", "sch_../../x", "fn_x"):
        assert client.simulate_get(_url(fn, sid)).status_code == 404
    json_type = {"Content-Type": "application/json"}
    bad_json = client.simulate_post(_url(fn), body="{", headers=json_type)
    assert bad_json.status_code == 400 and bad_json.json["error"]["code"] == "invalid_json"
    text = client.simulate_post(_url(fn), body="x", headers={"Content-Type": "text/plain"})
    assert text.status_code == 415
    for _ in range(3):  # max_schedules_per_function=3 in this fixture
        assert client.simulate_post(_url(fn), json={"expression": "@daily"}).status_code == 201
    full = client.simulate_post(_url(fn), json={"expression": "@daily"})
    assert full.status_code == 409 and full.json["error"]["code"] == "quota_exceeded"


def test_schedule_routes_need_the_api_key(fn, client):
    resp = client.simulate_get(_url(fn), headers={"Authorization": "Bearer wrong"})
    assert resp.status_code == 401


def test_an_alias_the_function_has_is_a_qualifier(client, platform, fn):
    def aliases(function, alias: str) -> int:  # as the versions service installs it
        if alias != "prod":
            raise errors.NotFound(f"no alias {alias!r}")
        return 1

    platform.invocations.resolve_alias = aliases
    made = client.simulate_post(_url(fn), json={"expression": "@daily", "qualifier": "prod"})
    assert made.status_code == 201 and made.json["qualifier"] == "prod"
    other = client.simulate_post(_url(fn), json={"expression": "@daily", "qualifier": "beta"})
    assert other.status_code == 422 and "no alias named 'beta'" in other.text


def test_workflow_schedules_share_the_routes_shape(client):
    definition = {"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}}
    flow = {"name": "flow", "definition": definition}
    assert client.simulate_post("/api/v1/workflows", json=flow).status_code == 201
    made = client.simulate_post("/api/v1/workflows/flow/schedules", json={"expression": "@hourly"})
    assert made.status_code == 201, made.text
    got = made.json
    assert got["workflow_id"].startswith("wf_") and got["function_id"] is None
    url = f"/api/v1/workflows/flow/schedules/{got['id']}"
    assert client.simulate_get(url).json["summary"] == "At the start of every hour"
    assert client.simulate_get("/api/v1/workflows/flow/schedules").json["total"] == 1
    assert client.simulate_put(url, json={"enabled": False}).json["next_run_at"] is None
    assert client.simulate_get("/api/v1/workflows/nope/schedules").status_code == 404
    assert client.simulate_delete(url).status_code == 204
    assert client.simulate_get(url).status_code == 404


def test_deleting_a_workflow_deletes_its_schedules(client, platform):
    definition = {"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}}
    flow = client.simulate_post(
        "/api/v1/workflows", json={"name": "brief", "definition": definition}
    )
    made = client.simulate_post("/api/v1/workflows/brief/schedules", json={"expression": "@daily"})
    assert made.status_code == 201
    assert client.simulate_delete("/api/v1/workflows/brief").status_code == 204
    assert platform.schedules.repo.list_for(flow.json["id"]) == []  # no tick fires for it
    again = client.simulate_post(
        "/api/v1/workflows", json={"name": "brief", "definition": definition}
    )
    assert again.status_code == 201
    assert client.simulate_get("/api/v1/workflows/brief/schedules").json["total"] == 0


# -- GET /api/v1/schedules: every function's and workflow's, a page at a time -------------


def _function(client, name: str) -> dict:
    body = {"name": name, "runtime": "wasm", "artifact_base64": b64(hello_module())}
    created = client.simulate_post("/api/v1/functions", json=body)
    assert created.status_code == 201, created.text
    return created.json


def test_every_schedule_is_listed_with_its_owner_oldest_first(client, fn):
    other = _function(client, "nightly")
    definition = {"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}}
    flow = client.simulate_post(
        "/api/v1/workflows", json={"name": "flow", "definition": definition}
    )
    made = [
        client.simulate_post(_url(fn), json={"expression": "rate(5 minutes)"}).json,
        client.simulate_post(
            _url(other), json={"expression": "0 3 * * *", "timezone": "Europe/Berlin"}
        ).json,
        client.simulate_post(
            "/api/v1/workflows/flow/schedules", json={"expression": "@hourly", "enabled": False}
        ).json,
    ]
    resp = client.simulate_get("/api/v1/schedules")
    assert resp.status_code == 200, resp.text
    page = resp.json
    assert (page["total"], page["limit"], page["offset"]) == (3, 20, 0)
    assert [s["id"] for s in page["schedules"]] == [m["id"] for m in made]
    first, second, third = page["schedules"]
    assert (first["function_id"], first["function_name"]) == (fn["id"], "ticked")
    assert first["workflow_name"] is None and first["summary"] == "Every 5 minutes"
    assert (second["function_name"], second["timezone"]) == ("nightly", "Europe/Berlin")
    assert second["next_run_at"] == made[1]["next_run_at"]  # as the function's own list
    assert (third["workflow_id"], third["workflow_name"]) == (flow.json["id"], "flow")
    assert third["function_id"] is None and third["function_name"] is None
    assert third["enabled"] is False and third["next_run_at"] is None
    own = client.simulate_get(_url(fn)).json["schedules"]
    assert own == [first]  # the function's own list shows the same view


def test_the_list_pages_and_filters_as_the_functions_list_does(client, fn):
    other = _function(client, "nightly")
    ids = []
    for owner, enabled in ((fn, True), (other, False), (fn, False), (other, True)):
        body = {"expression": "@daily", "enabled": enabled}
        ids.append(client.simulate_post(_url(owner), json=body).json["id"])

    def listed(query: str) -> dict:
        resp = client.simulate_get("/api/v1/schedules", query_string=query)
        assert resp.status_code == 200, resp.text
        return resp.json

    page = listed("limit=2&offset=1")
    assert [s["id"] for s in page["schedules"]] == ids[1:3]
    assert (page["total"], page["limit"], page["offset"]) == (4, 2, 1)
    assert listed("offset=4")["schedules"] == []
    assert [s["id"] for s in listed("name=night")["schedules"]] == [ids[1], ids[3]]
    assert [s["id"] for s in listed("enabled=false")["schedules"]] == ids[1:3]
    both = listed("name=tick&enabled=true")
    assert ([s["id"] for s in both["schedules"]], both["total"]) == ([ids[0]], 1)
    assert listed("name=nobody") == {"schedules": [], "total": 0, "limit": 20, "offset": 0}


def test_enabled_is_read_as_wait_is(client, fn):
    """`?enabled=` takes the spellings every boolean query parameter of the API takes
    (`?wait=True` builds and waits): Python's requests sends `params={"enabled": True}` as
    `enabled=True`, which answered 422 "must be true or false"."""
    on = client.simulate_post(_url(fn), json={"expression": "@daily"}).json["id"]
    off = client.simulate_post(_url(fn), json={"expression": "@daily", "enabled": False}).json
    for spelling, expected in (("True", on), ("1", on), ("yes", on), ("False", off["id"]),
                               ("0", off["id"]), ("off", off["id"])):  # fmt: skip
        resp = client.simulate_get("/api/v1/schedules", query_string=f"enabled={spelling}")
        assert resp.status_code == 200, (spelling, resp.text)
        assert [s["id"] for s in resp.json["schedules"]] == [expected], spelling


@pytest.mark.parametrize(
    ("query", "field", "says"),
    [
        ("limit=0", "limit", "between 1 and 100"),
        ("limit=101", "limit", "between 1 and 100"),
        ("limit=ten", "limit", "not an integer"),
        ("offset=-1", "offset", "must not be negative"),
        ("enabled=maybe", "enabled", 'must be "true" or "false"'),
    ],
)
def test_bad_list_parameters_are_422_naming_them(client, query, field, says):
    resp = client.simulate_get("/api/v1/schedules", query_string=query)
    assert resp.status_code == 422, resp.text
    details = resp.json["error"]["details"]
    assert [d["field"] for d in details] == [field] and says in details[0]["message"]


def test_a_schedule_whose_function_is_being_deleted_is_left_out(client, platform, fn):
    """A function's delete removes its record before its schedules: one listed in between
    has no owner to name, and is not shown (nor counted)."""
    kept = client.simulate_post(_url(fn), json={"expression": "@daily"}).json
    orphan = Schedule(id="sch_" + "a" * 16, function_id="fn_" + "b" * 16, expression="@daily")
    platform.schedules.repo.create(orphan)
    page = client.simulate_get("/api/v1/schedules").json
    assert ([s["id"] for s in page["schedules"]], page["total"]) == ([kept["id"]], 1)


def test_a_deleted_functions_schedules_leave_the_list(client, fn):
    client.simulate_post(_url(fn), json={"expression": "@daily"})
    assert client.simulate_get("/api/v1/schedules").json["total"] == 1
    assert client.simulate_delete(f"/api/v1/functions/{fn['id']}").status_code == 204
    assert client.simulate_get("/api/v1/schedules").json["total"] == 0
    resp = client.simulate_get("/api/v1/schedules", headers={"Authorization": "Bearer wrong"})
    assert resp.status_code == 401


def _counting_reads(monkeypatch, store) -> collections.Counter:
    """Count the store's reads (the real store, each call passed on)."""
    reads: collections.Counter = collections.Counter()
    for name in ("get", "head", "list", "exists"):
        real = getattr(store, name)

        def counted(*args, _real=real, _name=name, **kwargs):
            reads[_name] += 1
            return _real(*args, **kwargs)

        monkeypatch.setattr(store, name, counted)
    return reads


def test_a_page_reads_the_store_once_per_owner_not_once_per_schedule(
    client, platform, fn, monkeypatch, tmp_path
):
    """The console's System page polls the list: a page costs one HEAD of the change note,
    one read per function or workflow and one per shown schedule's last run, however many
    schedules there are (it read every schedule record on every call). The schedules are
    read again when the note moves: another worker's change shows on the next call."""
    other = _function(client, "nightly")

    def page_cost() -> tuple[int, dict]:
        first = client.simulate_get("/api/v1/schedules", query_string="limit=1")
        reads = _counting_reads(monkeypatch, platform.schedules.repo.store)
        again = client.simulate_get("/api/v1/schedules", query_string="limit=1")
        monkeypatch.undo()
        assert again.json == first.json
        return sum(reads.values()), first.json

    costs = []
    for _ in range(3):  # 1, 2, then 3 schedules each (the fixture's most per function)
        for owner in (fn, other):
            client.simulate_post(_url(owner), json={"expression": "@daily"})
        costs.append(page_cost()[0])
    assert costs == [1 + 2 + 1] * 3  # the change note, two owners, one last run

    elsewhere = Platform.open(
        Settings(data_dir=tmp_path, nimbus_api_key=KEY, preload_runtimes=False)
    )
    try:  # another worker sharing the store turns the oldest schedule off
        headers = {"Authorization": f"Bearer {KEY}"}
        other_client = testing.TestClient(create_app(elsewhere, KEY), headers=headers)
        oldest = other_client.simulate_get("/api/v1/schedules").json["schedules"][0]
        url = _url(fn, oldest["id"])
        assert other_client.simulate_put(url, json={"enabled": False}).status_code == 200
    finally:
        elsewhere.stop()
    cost, page = page_cost()
    assert (page["schedules"][0]["id"], page["schedules"][0]["enabled"]) == (oldest["id"], False)
    assert cost == 4
