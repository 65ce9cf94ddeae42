"""`/api/v1/alerts`: create, read, update, switch, delete; 404s, 422s naming the field, scopes."""

from __future__ import annotations

import pytest
from falcon import testing

from gateway.api.app import create_app
from gateway.platform import Platform
from gateway.services.outbound import OutboundClient, Refused, check_url
from gateway.settings import Settings
from store import errors
from tests.gateway.conftest import KEY
from tests.webhook_receiver import webhook_receiver

HOOK = "https://hooks.example.com/nimbus"


def make(client, **fields) -> dict:
    body = {"name": "errors", "metric": "error_rate", "op": ">", "threshold": 0.1,
            "window_sec": 60, "notify": {"webhook_url": HOOK}, **fields}  # fmt: skip
    resp = client.simulate_post("/api/v1/alerts", json=body)
    assert resp.status_code == 201, resp.text
    return resp.json


@pytest.fixture
def fn(client) -> str:
    resp = client.simulate_post("/api/v1/functions", json={
        "name": "checkout", "runtime": "wasm",
        "artifact_base64": "AGFzbQEAAAA="})  # fmt: skip
    assert resp.status_code == 201, resp.text
    return resp.json["id"]


def test_create_get_list_update_and_delete(client, fn):
    created = make(client, function="checkout", for_sec=30, description="pager")
    assert created["id"].startswith("alr_") and created["state"] == "ok"
    assert created["function"] == {"id": fn, "name": "checkout"}
    assert (created["op"], created["for_sec"], created["enabled"]) == (">", 30, True)
    assert created["evaluate_every_sec"] == 10 and created["value"] is None
    secret = created["notify"]["secret"]
    assert secret.startswith("nas_") and len(secret) > 40  # generated, shown this once

    one = client.simulate_get(f"/api/v1/alerts/{created['id']}").json
    assert one["notify"] == {"webhook_url": HOOK, "secret": None}
    listed = client.simulate_get("/api/v1/alerts").json
    assert listed["total"] == 1 and listed["alerts"][0]["id"] == created["id"]
    assert client.simulate_get("/api/v1/alerts", params={"function": fn}).json["total"] == 1
    assert client.simulate_get("/api/v1/alerts", params={"state": "firing"}).json["total"] == 0

    assert created["repeat_sec"] is None
    changed = client.simulate_put(f"/api/v1/alerts/{created['id']}", json={
        "threshold": 0.25, "op": "gte", "window_sec": 600, "repeat_sec": 3600})  # fmt: skip
    assert changed.status_code == 200, changed.text
    assert (changed.json["threshold"], changed.json["op"]) == (0.25, ">=")
    assert changed.json["evaluate_every_sec"] == 60 and changed.json["name"] == "errors"
    assert changed.json["repeat_sec"] == 3600
    off_again = client.simulate_put(f"/api/v1/alerts/{created['id']}", json={"repeat_sec": None})
    assert off_again.json["repeat_sec"] is None and off_again.json["threshold"] == 0.25
    off = client.simulate_post(f"/api/v1/alerts/{created['id']}/disable")
    assert off.status_code == 200 and off.json["enabled"] is False
    on = client.simulate_post(f"/api/v1/alerts/{created['id']}/enable")
    assert on.json["enabled"] is True

    history = client.simulate_get(f"/api/v1/alerts/{created['id']}/history").json
    assert [e["state"] for e in history["events"]] == ["enabled", "disabled", "updated",
                                                       "updated", "created"]  # fmt: skip
    assert history["events"][0]["by"] == "admin key"
    assert history["events"][3]["detail"] == "changed: op, repeat_sec, threshold, window_sec"

    assert client.simulate_delete(f"/api/v1/alerts/{created['id']}").status_code == 204
    for method in ("GET", "PUT", "DELETE"):
        gone = client.simulate_request(method, f"/api/v1/alerts/{created['id']}", json={})
        assert gone.status_code == 404 and gone.json["error"]["code"] == "not_found"
    assert client.simulate_get(f"/api/v1/alerts/{created['id']}/history").status_code == 404
    assert client.simulate_post("/api/v1/alerts/alr_nope/enable").status_code == 404


def test_a_secret_given_is_never_shown_and_a_password_in_the_url_is_masked(client):
    created = make(client, notify={"webhook_url": "https://bot:hunter2hunter2@hooks.example.com/x",
                                   "secret": "my-own-secret-123"})  # fmt: skip
    assert created["notify"] == {"webhook_url": "https://bot:****@hooks.example.com/x",
                                 "secret": None}  # fmt: skip


BAD_RULES = [
    ({"name": ""}, "name"),
    ({"metric": "latency"}, "metric"),
    ({"op": "=="}, "op"),
    ({"threshold": 1.5}, "threshold"),  # an error rate is 0–1
    ({"threshold": -1, "metric": "throttles"}, "threshold"),
    ({"threshold": "NaN"}, "threshold"),
    ({"window_sec": 5}, "window_sec"),
    ({"window_sec": 15}, "window_sec"),  # a multiple of the 10 s slot
    ({"window_sec": 90000}, "window_sec"),
    ({"for_sec": -1}, "for_sec"),
    ({"repeat_sec": 30}, "repeat_sec"),
    ({"function": "no-such-function"}, "function"),
    ({"function": "checkout:prod"}, "function"),
    ({"notify": {"webhook_url": "ftp://example.com/x"}}, "notify.webhook_url"),
    ({"notify": {"webhook_url": "file:///etc/passwd"}}, "notify.webhook_url"),
    ({"notify": {"webhook_url": "http://169.254.169.254/latest"}}, "notify.webhook_url"),
    ({"notify": {"webhook_url": "http://127.0.0.1:8080/x"}}, "notify.webhook_url"),
    ({"notify": {"webhook_url": "http://[::1]/x"}}, "notify.webhook_url"),
    ({"notify": {"webhook_url": "https:///nohost"}}, "notify.webhook_url"),
    ({"notify": {"webhook_url": HOOK, "secret": "short"}}, "notify.secret"),
    ({"notify": {"webhook_url": HOOK, "extra": 1}}, "notify.extra"),
    ({"notify": None}, "notify"),
    ({"colour": "red"}, "colour"),
]  # fmt: skip


def test_bad_rules_are_422_naming_the_field(client):
    for change, field in BAD_RULES:  # one platform for all (each takes ~1 s to open)
        body = {"name": "e", "metric": "error_rate", "op": ">", "threshold": 0.1,
                "window_sec": 60, "notify": {"webhook_url": HOOK}, **change}  # fmt: skip
        resp = client.simulate_post("/api/v1/alerts", json=body)
        assert resp.status_code == 422, (change, resp.text)
        assert field in {d["field"] for d in resp.json["error"]["details"]}, (change, resp.json)
    assert client.simulate_get("/api/v1/alerts").json["total"] == 0


def test_bad_updates_and_queries_are_422_too(client):
    alert = make(client)
    path = f"/api/v1/alerts/{alert['id']}"
    for change, field in (
        ({"window_sec": 25}, "window_sec"),
        ({"op": "~"}, "op"),
        ({"threshold": 2}, "threshold"),
        ({"notify": {"webhook_url": "gopher://x"}}, "notify.webhook_url"),
    ):
        resp = client.simulate_put(path, json=change)
        assert resp.status_code == 422 and resp.json["error"]["details"][0]["field"] == field
    assert client.simulate_get(path).json["threshold"] == 0.1  # nothing changed
    assert client.simulate_get("/api/v1/alerts", params={"state": "on"}).status_code == 422
    unknown = client.simulate_get("/api/v1/alerts", params={"function": "nope"})
    assert unknown.status_code == 422 and unknown.json["error"]["details"][0]["field"] == "function"
    resp = client.simulate_get(path + "/history", params={"limit": "0"})
    assert resp.status_code == 422 and resp.json["error"]["details"][0]["field"] == "limit"
    assert client.simulate_post("/api/v1/alerts", body="{").status_code == 400


def test_reads_need_read_and_changes_need_deploy(client):
    alert = make(client)
    keys = {}
    for scope in ("read", "invoke", "deploy"):
        made = client.simulate_post("/api/v1/keys", json={"name": scope, "scopes": [scope]})
        keys[scope] = {"Authorization": f"Bearer {made.json['key']}"}
    body = {"name": "e", "metric": "invocations", "op": "<", "threshold": 1, "window_sec": 60,
            "notify": {"webhook_url": HOOK}}  # fmt: skip
    assert client.simulate_get("/api/v1/alerts", headers=keys["read"]).status_code == 200
    assert client.simulate_get("/api/v1/alerts", headers=keys["invoke"]).status_code == 403
    assert client.simulate_post("/api/v1/alerts", json=body,
                                headers=keys["read"]).status_code == 403  # fmt: skip
    assert client.simulate_post(f"/api/v1/alerts/{alert['id']}/disable",
                                headers=keys["read"]).status_code == 403  # fmt: skip
    assert client.simulate_post("/api/v1/alerts", json=body,
                                headers=keys["deploy"]).status_code == 201  # fmt: skip


def test_private_addresses_are_refused_at_delivery_too_unless_allowed():
    # a name is only resolved when sending: the guard checks what it connects to
    assert check_url("http://localhost:9/x", allow_private=False) == "http://localhost:9/x"
    guarded = OutboundClient(allow_private=False, timeout_sec=1)
    for url in (
        "http://localhost:9/x",
        "http://127.0.0.1:9/x",
        "http://[::ffff:127.0.0.1]:9/",
        "http://2130706433:9/x",
        "http://0x7f.1:9/x",
    ):  # 127.0.0.1 spelled otherwise
        with pytest.raises(Refused, match="non-public"):
            guarded.post(url, b"{}", {})
    assert check_url("http://10.1.2.3/x", allow_private=True) == "http://10.1.2.3/x"
    with pytest.raises(errors.Invalid):
        check_url("http://10.1.2.3/x", allow_private=False)


def test_a_test_notification_is_signed_and_recorded(tmp_path):
    settings = Settings(data_dir=tmp_path, nimbus_api_key=KEY, alert_webhook_allow_private=True)
    platform = Platform.open(settings)
    client = testing.TestClient(create_app(platform, KEY),
                                headers={"Authorization": f"Bearer {KEY}"})  # fmt: skip
    try:
        with webhook_receiver(statuses=[200, 410]) as receiver:
            alert = make(client, notify={"webhook_url": receiver.url})
            secret = alert["notify"]["secret"]
            first = client.simulate_post(f"/api/v1/alerts/{alert['id']}/test")
            assert first.status_code == 200, first.text
            assert first.json["delivered"] is True and first.json["status_code"] == 200
            (sent,) = receiver.requests
            assert sent.signed_with(secret) and sent.json["state"] == "test"
            assert sent.headers["x-nimbus-event"] == "alert.test"
            assert sent.headers["x-nimbus-delivery"] == first.json["delivery_id"]
            second = client.simulate_post(f"/api/v1/alerts/{alert['id']}/test").json
            assert (second["delivered"], second["status_code"]) == (False, 410)
            assert second["error"] == "the receiver answered 410"
        assert client.simulate_get(f"/api/v1/alerts/{alert['id']}").json["state"] == "ok"
        events = client.simulate_get(f"/api/v1/alerts/{alert['id']}/history").json["events"]
        assert [(e["state"], e["outcome"]) for e in events[:2]] == [
            ("test", "failed"),
            ("test", "delivered"),
        ]
    finally:
        platform.stop()


def test_a_name_resolving_to_a_private_address_is_refused_when_sending(client):
    alert = make(client, notify={"webhook_url": "http://localhost:9/hook"})  # saved: a name
    resp = client.simulate_post(f"/api/v1/alerts/{alert['id']}/test")
    assert resp.status_code == 200 and resp.json["delivered"] is False
    assert resp.json["status_code"] is None and "non-public" in resp.json["error"]
