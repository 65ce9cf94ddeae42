"""The API key guards every route but an explicit public list, however the path is spelled."""

from __future__ import annotations

import re

import pytest
from falcon import testing

from gateway.api.app import create_app
from gateway.api.openapi import app_routes
from gateway.platform import Platform
from gateway.settings import Settings

from .conftest import KEY

# Routes served without a key. Anything else the router knows must answer 401.
PUBLIC = {
    "/health",
    "/api/health",
    "/ready",
    "/metrics",
    "/api/metrics",
    "/openapi.json",
    "/webhook/{key}",
    "/webhook/{key}/{path}",
    "/",  # the web console's shell and assets (the console itself sends the key)
    "/assets/{name}",
}


@pytest.fixture
def anonymous(platform) -> testing.TestClient:
    return testing.TestClient(create_app(platform, KEY))


def _concrete(template: str) -> str:
    return re.sub(r"\{(\w+)(:[^}]*)?\}", lambda m: f"x-{m.group(1)}", template)


@pytest.mark.parametrize(
    "path",
    [
        "//api/v1/functions",
        "///api/v1/functions",
        "/./api/v1/functions",
        "/api/./v1/functions",
        "/api//v1/functions",
        "/api/v1//functions",
        "/api/v1/functions/../functions",
        "/api%2Fv1/functions",
        "/api/v1%2Ffunctions",
        "/%2Fapi/v1/functions",
        "/api/v1/functions%2F..%2F..%2Fapi/v1/functions",
        "/API/v1/functions",
        "/Api/V1/Functions",
        "/api/v1/FUNCTIONS",
    ],
)
def test_odd_spellings_of_a_protected_path_are_never_served(anonymous, path):
    resp = anonymous.simulate_get(path)
    assert resp.status_code in (401, 404), (path, resp.status_code)
    assert "functions" not in resp.json or resp.json.get("error")


def test_every_route_off_the_public_list_needs_the_key(anonymous):
    routes = app_routes(anonymous.app)
    templates = {template for template, _ in routes}
    assert PUBLIC - {t.replace("{path:path}", "{path}") for t in templates} == set()
    checked = 0
    for template, resource in routes:
        if template.replace("{path:path}", "{path}") in PUBLIC:
            continue
        responders = [m[3:].upper() for m in dir(resource) if m.startswith("on_")]
        for method in responders:
            resp = anonymous.simulate_request(method, _concrete(template))
            assert resp.status_code == 401, (method, template, resp.status_code)
            checked += 1
    assert checked >= 15  # the walk really reached the API's routes


def test_public_routes_answer_without_a_key(anonymous):
    assert anonymous.simulate_get("/health").status_code == 200
    assert anonymous.simulate_get("/openapi.json").status_code == 200
    assert anonymous.simulate_get("/metrics").status_code == 200
    assert anonymous.simulate_get("/webhook/unknown-key").status_code == 404


def test_the_right_key_still_opens_the_normal_path(anonymous):
    resp = anonymous.simulate_get("/api/v1/functions", headers={"Authorization": f"Bearer {KEY}"})
    assert resp.status_code == 200 and resp.json["total"] == 0


def test_metrics_token_guards_metrics_when_set(platform):
    platform.settings.metrics_token = "m" * 32
    client = testing.TestClient(create_app(platform, KEY))
    assert client.simulate_get("/metrics").status_code == 401
    assert (
        client.simulate_get("/metrics", headers={"Authorization": f"Bearer {KEY}"}).status_code
        == 401
    )
    resp = client.simulate_get("/metrics", headers={"Authorization": "Bearer " + "m" * 32})
    assert resp.status_code == 200 and "nimbus_" in resp.text


def test_ready_does_not_echo_the_store_error(tmp_path):
    # A platform not started: no background job recreates the folder while it is away
    # (a started one's flusher did, once, in a full run: /ready answered 200).
    data = tmp_path / "data"
    platform = Platform.open(Settings(data_dir=data, nimbus_api_key=KEY))
    try:
        anonymous = testing.TestClient(create_app(platform, KEY))
        assert anonymous.simulate_get("/ready").status_code == 200
        (platform.store.root / "objects").rename(tmp_path / "moved-away")
        resp = anonymous.simulate_get("/ready")
        assert resp.status_code == 503
        assert resp.json == {"status": "unavailable", "store": "unreachable"}
        assert str(tmp_path) not in resp.text
    finally:
        platform.stop()
