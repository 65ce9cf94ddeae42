"""A store written by an older Nimbus keeps working under this code.

`old_stores/a400c43/objects` is a local store as Nimbus a400c43 (2026-12-05, the end of
the first session with versions, aliases, canaries, schedules, workflows, alert rules and
scoped keys) left it, written through its API by one `nimbus serve` (WORKERS=1,
wasmtime 50) and then killed -9 with work in flight:

- `echo` (wasm): versions 1-3 (v2: memory 256, v3: timeout 10 s), rolled back to v2;
  alias `prod` → v2 with 25 % on v3 and its own webhook; alias `live` → v1 with a canary
  to v3 at step 0 (written before canaries had on_idle, idle_intervals, held, carried);
  env var TOKEN; two schedules (rate(1 minute); a disabled cron on `prod`); an alert rule.
- `nap` (wasm, sleeps 0.5 s): six async calls, four `running` under the dead worker's
  lease, two `queued`.
- workflow `flow` (Task echo:prod → Wait 2 s → Pass): one execution succeeded, one left
  in its Wait.
- keys `ci` (deploy), `caller` (invoke), and `gone` (read, revoked); their secrets below.

Its precompiled artifacts (wasmtime 50's) were left out: this code makes its own.
Records written before a field existed must read with the field's default.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest
from falcon import testing

from store.readiness import READY_KEY
from tests.gateway.conftest import running_platform

OLD_STORE = Path(__file__).parent / "old_stores" / "a400c43" / "objects"
CI_KEY = "nk_jhewas2ol5usrlen.8Hd-wFggYBleKDACoYFTymVFLes5LJGfAYFCjXz9ohU"
CALLER_KEY = "nk_neozy7cwhtsagp7d.-h-yN1UNuNRCQmx0LR5hNyhHBFe-5V8dHkUc0vx_M0A"
REVOKED_KEY = "nk_2k7l4i6li5chzxhv.sp0P3X8EHVPriBtDBbHissR4x_Ci3ENaNUq9AZk6HNo"
IN_FLIGHT = [f"inv_3obpyegt000000{n}" for n in ("20", "22", "24", "26", "28", "2a")]
FINISHED_ASYNC = "inv_3obpyegt00000014"
WAITING_EXECUTION = "ex_ia6ogqx6hjeoendz"
FINISHED_EXECUTION = "ex_u4tvgbkhnttidl6e"
RATE_SCHEDULE = "sch_5wmlxvh36dnt6d3p"
CRON_SCHEDULE = "sch_373ztgrbecmzpy7r"
ALERT = "alr_jtihqmomtr5bseru"


# The store's clock stopped on 2026-12-06: nothing that ages records may act on them while
# these tests read them, whenever they run (retention sweeps, the year an execution may
# run, a canary step and an alert rule judged against a later now).
AGELESS = {
    "log_retention_hours": 10**6,
    "invocation_retention_hours": 10**6,
    "workflow_max_duration_sec": 10**10,
    "canary_scan_sec": 10**6,
    "alert_scan_sec": 10**6,
}


@pytest.fixture
def old(tmp_path):
    shutil.copytree(OLD_STORE, tmp_path / "objects")
    settings = {"async_poll_sec": 0.1, "workflow_scan_sec": 0.2, **AGELESS}
    with running_platform(tmp_path, **settings) as (platform, client):
        yield platform, client


def until(read, done, timeout: float = 30):
    deadline = time.monotonic() + timeout
    while True:
        value = read()
        if done(value) or time.monotonic() > deadline:
            return value
        time.sleep(0.1)


def test_an_old_store_is_ready_and_gets_the_object_ready_reads(old):
    platform, client = old
    assert platform.store.head(READY_KEY) is None  # older servers wrote none
    assert client.simulate_get("/ready").status_code == 200
    assert platform.store.head(READY_KEY) is not None
    assert client.simulate_get("/ready").status_code == 200


def test_functions_versions_and_aliases_read_with_their_defaults(old):
    _, client = old
    listed = client.simulate_get("/api/v1/functions").json
    assert sorted(f["name"] for f in listed["functions"]) == ["echo", "nap"]
    echo = client.simulate_get("/api/v1/functions/echo").json
    assert (echo["status"], echo["active_version"], echo["latest_version"]) == ("active", 2, 3)
    assert echo["env_vars"] == {"TOKEN": "****"} and echo["tags"] == ["team-a"]

    versions = client.simulate_get("/api/v1/functions/echo/versions").json["versions"]
    assert [(v["version"], v["status"], v["active"]) for v in versions] == [
        (3, "ready", False),
        (2, "ready", True),
        (1, "ready", False),
    ]
    history = client.simulate_get("/api/v1/functions/echo/history").json["entries"]
    assert [e["action"] for e in history] == [
        "canary_started",
        "alias_created",
        "alias_created",
        "rollback",
    ]

    aliases = {
        a["name"]: a for a in client.simulate_get("/api/v1/functions/echo/aliases").json["aliases"]
    }
    assert aliases["prod"]["routing"] == {"3": 25.0} and aliases["prod"]["webhook_url"]
    canary = aliases["live"]["canary"]
    assert (canary["status"], canary["step"], canary["version"]) == ("progressing", 0, 3)
    # fields canaries gained after a400c43 read as their defaults
    assert (canary["on_idle"], canary["idle_intervals"], canary["held"]) == ("hold", 3, 0)


def test_old_versions_invoke_and_old_webhook_urls_answer(old):
    _, client = old
    plain = client.simulate_post("/api/v1/functions/echo/invoke", json={"a": 1})
    assert plain.status_code == 200, plain.text
    assert (plain.json, plain.headers["x-nimbus-version"]) == ({"a": 1}, "2")
    assert client.simulate_post("/api/v1/functions/echo/invoke", params={"version": "3"},
                                json={}).headers["x-nimbus-version"] == "3"  # fmt: skip
    prod = client.simulate_post("/api/v1/functions/echo:prod/invoke", json={})
    assert prod.status_code == 200 and prod.headers["x-nimbus-version"] in ("2", "3")

    echo = client.simulate_get("/api/v1/functions/echo").json
    prod_alias = client.simulate_get("/api/v1/functions/echo/aliases/prod").json
    for url in (echo["webhook_url"], prod_alias["webhook_url"]):
        path = "/webhook/" + url.split("/webhook/", 1)[1]
        hook = testing.TestClient(client.app).simulate_post(path, json={"w": 1})
        assert hook.status_code == 200, (url, hook.text)
        assert hook.json["rawPath"] == "/"


def test_old_keys_keep_their_scopes_and_a_revoked_one_stays_revoked(old):
    _, client = old
    anonymous = testing.TestClient(client.app)

    def call(method: str, path: str, key: str, **kw):
        headers = {"Authorization": f"Bearer {key}"}
        return anonymous.simulate_request(method, path, headers=headers, **kw).status_code

    assert call("GET", "/api/v1/functions", CI_KEY) == 200
    assert call("PUT", "/api/v1/functions/nap", CI_KEY, json={"description": "naps"}) == 200
    assert call("POST", "/api/v1/functions/echo/invoke", CALLER_KEY, json={}) == 200
    assert call("PUT", "/api/v1/functions/nap", CALLER_KEY, json={"description": "no"}) == 403
    assert call("GET", "/api/v1/functions", REVOKED_KEY) == 401
    names = [k["name"] for k in client.simulate_get("/api/v1/keys").json["keys"]]
    assert sorted(names) == ["caller", "ci"]


def test_async_calls_in_flight_at_the_old_servers_death_finish_once(old):
    _, client = old
    finished = client.simulate_get(f"/api/v1/invocations/{FINISHED_ASYNC}").json
    assert (finished["status"], finished["result"]) == ("succeeded", {"done": True})

    def statuses():
        return [client.simulate_get(f"/api/v1/invocations/{i}").json for i in IN_FLIGHT]

    records = until(statuses, lambda rs: all(r["status"] == "succeeded" for r in rs))
    assert [r["status"] for r in records] == ["succeeded"] * 6, records
    assert all(r["result"] == {"slept": True} for r in records)
    # the four the dead worker held ran again (at-least-once), the two queued ran once
    assert sorted(r["attempts"] for r in records) == [1, 1, 2, 2, 2, 2]


def test_an_execution_left_in_its_wait_finishes_and_old_ones_read(old):
    _, client = old
    done = client.simulate_get(f"/api/v1/executions/{FINISHED_EXECUTION}").json
    assert done["status"] == "succeeded" and done["output"]["echo"] == {"n": 1}
    events = client.simulate_get(f"/api/v1/executions/{FINISHED_EXECUTION}/history").json
    assert events["events"][-1]["type"] == "ExecutionSucceeded"

    def read():
        return client.simulate_get(f"/api/v1/executions/{WAITING_EXECUTION}").json

    waiting = until(read, lambda ex: ex["status"] != "running")
    assert waiting["status"] == "succeeded", waiting
    assert waiting["output"] == {"n": 2, "echo": {"n": 2}}
    again = client.simulate_post("/api/v1/workflows/flow/executions", json={"n": 3}).json
    assert until(lambda: client.simulate_get(f"/api/v1/executions/{again['id']}").json,
                 lambda ex: ex["status"] != "running")["status"] == "succeeded"  # fmt: skip


def test_schedules_list_fire_and_change(old):
    _, client = old
    listed = client.simulate_get("/api/v1/functions/echo/schedules").json["schedules"]
    by_id = {s["id"]: s for s in listed}
    assert by_id[RATE_SCHEDULE]["expression"] == "rate(1 minute)"
    assert by_id[RATE_SCHEDULE]["next_run_at"] is not None
    cron = by_id[CRON_SCHEDULE]
    assert (cron["enabled"], cron["timezone"], cron["qualifier"]) == (
        False,
        "Europe/Berlin",
        "prod",
    )

    path = f"/api/v1/functions/echo/schedules/{CRON_SCHEDULE}"
    assert client.simulate_put(path, json={"enabled": True}).json["next_run_at"] is not None
    path = f"/api/v1/functions/echo/schedules/{RATE_SCHEDULE}"
    assert client.simulate_put(path, json={"expression": "rate(1 second)"}).status_code == 200
    fired = until(lambda: client.simulate_get(path).json, lambda s: s["last_invocation_id"])
    tick = client.simulate_get(f"/api/v1/invocations/{fired['last_invocation_id']}").json
    assert tick["trigger"] == "schedule" and tick["schedule_id"] == RATE_SCHEDULE


def test_alert_rules_logs_and_stats_read(old):
    _, client = old
    rule = client.simulate_get(f"/api/v1/alerts/{ALERT}").json
    assert (rule["metric"], rule["threshold"], rule["function"]["name"]) == (
        "error_rate",
        0.5,
        "echo",
    )
    changed = client.simulate_put(f"/api/v1/alerts/{ALERT}", json={"threshold": 0.9})
    assert changed.status_code == 200 and changed.json["threshold"] == 0.9
    events = client.simulate_get(f"/api/v1/alerts/{ALERT}/history").json["events"]
    assert [e["state"] for e in events] == ["updated", "created"]  # "created": the old server's

    logs = client.simulate_get("/api/v1/functions/echo/logs").json["entries"]
    assert len({e["invocation_id"] for e in logs}) >= 3
    stats = client.simulate_get("/api/v1/stats").json
    assert stats["total_invocations"] >= 6
