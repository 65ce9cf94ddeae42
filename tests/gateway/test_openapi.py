"""The OpenAPI document covers every route the app serves, and is a valid OpenAPI 3.1 document."""

from __future__ import annotations

import jsonschema
from openapi_spec_validator import validate

from gateway.api.app import create_app
from gateway.api.openapi import app_routes, openapi_path, responders
from tests.gateway.conftest import KEY

ERRORS = {"400", "401", "404", "409", "413", "415", "422", "429", "503"}


def _document(client) -> dict:
    resp = client.simulate_get("/openapi.json", headers={"Authorization": ""})
    assert resp.status_code == 200
    return resp.json


def test_every_route_and_method_is_documented_and_nothing_else(client, platform):
    routes = app_routes(create_app(platform, KEY))
    served = {(openapi_path(t), m) for t, resource in routes for m in responders(resource)}
    paths = _document(client)["paths"]
    documented = {
        (path, method) for path, item in paths.items() for method in item if method != "parameters"
    }
    assert sorted(served - documented) == [], "routes without an OpenAPI operation"
    assert sorted(documented - served) == [], "operations without a route"
    assert len(served) > 50  # functions, invoke, async, webhooks, schedules, workflows, …


def test_the_document_is_valid_and_names_the_errors_on_every_api_operation(client):
    document = _document(client)
    validate(document)
    for path, item in document["paths"].items():
        for method, op in item.items():
            if method == "parameters":
                continue
            if path.startswith("/api/v1/"):
                assert set(op["responses"]) >= ERRORS, (path, method)
                error = op["responses"]["422"]["content"]["application/json"]["schema"]
                assert error == {"$ref": "#/components/schemas/ErrorResponse"}
            else:
                assert op.get("security") == [], f"{path} is public"


def test_path_parameters_come_from_the_route_templates(client):
    paths = _document(client)["paths"]
    assert "/webhook/{key}/{path}" in paths
    params = paths["/webhook/{key}/{path}"]["parameters"]
    assert {p["name"] for p in params if p["in"] == "path"} == {"key", "path"}
    invocation = paths["/api/v1/invocations/{invocation_id}"]["parameters"]
    assert invocation == [
        {"name": "invocation_id", "in": "path", "required": True, "schema": {"type": "string"}}
    ]
    invoke = paths["/api/v1/functions/{ref}/invoke"]["post"]
    headers = {p["name"] for p in invoke["parameters"] if p["in"] == "header"}
    assert {"X-Nimbus-Log-Type", "X-Nimbus-Context"} <= headers
    assert "X-Nimbus-Log-Tail" in invoke["responses"]["200"]["headers"]


def test_every_answer_with_a_body_has_a_schema(client):
    """Each 2xx but 204 says what it sends (a media type and a schema), as do the errors."""
    missing = []
    for path, item in _document(client)["paths"].items():
        for method, op in item.items():
            if method in ("parameters", "head"):
                continue
            for status, response in op["responses"].items():
                if status == "204":
                    continue
                content = response.get("content") or {}
                if not content or any("schema" not in media for media in content.values()):
                    missing.append(f"{method.upper()} {path} {status}")
    assert missing == []


def test_the_documented_health_and_ready_bodies_are_what_they_send(client):
    schemas = _document(client)["components"]["schemas"]
    jsonschema.validate(client.simulate_get("/ready").json, schemas["ReadyView"])
    jsonschema.validate(client.simulate_get("/health").json, schemas["HealthView"])
