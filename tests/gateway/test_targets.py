"""Targets (`name`, `name:version`, `name:alias`): the one parser, and invoke by target."""

from __future__ import annotations

import pytest

from gateway.services.targets import Target, parse_target
from store import errors
from tests.e2e.wasm import b64, constant_wat, wat


@pytest.mark.parametrize(
    ("text", "kw", "expected"),
    [
        ("hello", {}, Target("hello")),
        ("hello:3", {}, Target("hello", version=3)),
        ("hello:prod", {}, Target("hello", alias="prod")),
        ("fn_abc234", {}, Target("fn_abc234")),
        ("hello", {"version": 2}, Target("hello", version=2)),
        ("hello", {"alias": "live"}, Target("hello", alias="live")),
        ("hello:2", {"version": 2}, Target("hello", version=2)),
    ],
)
def test_targets_parse(text, kw, expected):
    target = parse_target(text, **kw)
    assert target == expected
    assert parse_target(str(target)) == expected  # str() gives the target back


@pytest.mark.parametrize(
    ("text", "kw", "field"),
    [
        ("hello:", {}, "target"),
        ("hello:0", {}, "target"),
        ("hello:Prod", {}, "target"),
        ("hello:a:b", {}, "target"),
        ("hello:2", {"version": 3}, "version"),
        ("hello:prod", {"alias": "beta"}, "alias"),
        ("hello:2", {"alias": "beta"}, "target"),
        ("hello", {"alias": "Not An Alias"}, "alias"),
    ],
)
def test_bad_qualifiers_are_422_naming_the_field(text, kw, field):
    with pytest.raises(errors.Invalid) as caught:
        parse_target(text, **kw)
    assert caught.value.details[0]["field"] == field


@pytest.mark.parametrize("text", ["", "Hello", "-x", "a" * 64, "hello world"])
def test_what_cannot_name_a_function_is_unknown(text):
    with pytest.raises((errors.NotFound, errors.Invalid)):
        parse_target(text)


def _deploy_two_versions(client) -> None:
    first = b64(wat(constant_wat(b'{"v":1}')))
    resp = client.simulate_post(
        "/api/v1/functions",
        json={"name": "hello", "runtime": "wasm", "artifact_base64": first},
        params={"wait": "true"},
    )
    assert resp.status_code == 201 and resp.json["status"] == "active", resp.text
    second = b64(wat(constant_wat(b'{"v":2}')))
    resp = client.simulate_put(
        "/api/v1/functions/hello", json={"artifact_base64": second}, params={"wait": "true"}
    )
    assert resp.json["active_version"] == 2, resp.text


def test_invoke_and_async_take_a_version_in_the_path(client):
    _deploy_two_versions(client)
    for path, version in (("hello", 2), ("hello:1", 1), ("hello:2", 2)):
        resp = client.simulate_post(f"/api/v1/functions/{path}/invoke", json={})
        assert resp.status_code == 200 and resp.json == {"v": version}
        assert resp.headers["X-Nimbus-Version"] == str(version)
    fn_id = client.simulate_get("/api/v1/functions/hello").json["id"]
    resp = client.simulate_post(f"/api/v1/functions/{fn_id}:1/invoke", json={})
    assert resp.json == {"v": 1}
    resp = client.simulate_post("/api/v1/functions/hello:1/async", json={})
    assert resp.status_code == 202 and resp.headers["X-Nimbus-Version"] == "1"


def test_invoke_by_target_refuses_what_does_not_exist_or_disagrees(client):
    _deploy_two_versions(client)
    resp = client.simulate_post("/api/v1/functions/hello:9/invoke", json={})
    assert resp.status_code == 404
    resp = client.simulate_post("/api/v1/functions/hello:prod/invoke", json={})
    assert resp.status_code == 404 and "alias 'prod'" in resp.json["error"]["message"]
    resp = client.simulate_post("/api/v1/functions/hello:1/invoke?version=2", json={})
    assert resp.status_code == 422 and resp.json["error"]["details"][0]["field"] == "version"
    resp = client.simulate_post("/api/v1/functions/hello:x_y/invoke", json={})
    assert resp.status_code == 422 and resp.json["error"]["details"][0]["field"] == "target"
    resp = client.simulate_post("/api/v1/functions/nobody:1/invoke", json={})
    assert resp.status_code == 404
