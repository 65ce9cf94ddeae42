"""The runtime registry: one entry makes a runtime creatable, listable and documented."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import wasmtime

from compiler import RUNTIMES, BuildFailed, BuildLog, BuildRequest, BuildResult, Runtime
from gateway.settings import Settings
from tests.e2e.wasm import HELLO_WAT
from tests.gateway.conftest import KEY


class WatBuilder:
    """A toy language: WebAssembly text, assembled by wasmtime."""

    runtime = "wat"

    def __init__(self, config: object = None) -> None:
        pass

    def build(self, request: BuildRequest, workdir: Path, log: BuildLog) -> BuildResult:
        (name, text), *_ = sorted((request.files or {}).items())
        try:
            data = wasmtime.wat2wasm(text)
        except wasmtime.WasmtimeError as exc:
            raise BuildFailed(f"{name}: {exc}") from None
        artifact = workdir / "toy.wasm"
        artifact.write_bytes(bytes(data))
        log.write(f"assembled {name}")
        return BuildResult(artifact=artifact, kind="module", runtime_version="wat 1")


TOY = Runtime(
    "wat", "source", "wat", WatBuilder, aliases=("webassembly-text",), forms=("program",),
    memory_floor_mb=20, reuse_allowed=False, description="toy: WebAssembly text",
)  # fmt: skip


def test_the_route_lists_every_builtin_runtime_with_its_facts(client):
    resp = client.simulate_get("/api/v1/runtimes")
    assert resp.status_code == 200
    runtimes = {r["name"]: r for r in resp.json["runtimes"]}
    assert list(runtimes) == ["go", "rust", "c", "python", "javascript", "wasm", "native"]
    python = runtimes["python"]
    assert python["aliases"] == ["python3.11", "python3"]
    assert python["extension"] == "py" and python["default_handler"] == "handler.main"
    assert python["kind"] == "source" and python["memory_floor_mb"] == 32
    assert python["reuse_allowed"] is True and python["native_allowed"] is False
    assert python["code_size_limit"] == 512 * 1024
    assert runtimes["javascript"]["extensions"] == ["js", "mjs", "cjs"]
    assert runtimes["native"]["reuse_allowed"] is False
    assert runtimes["native"]["kind"] == "binary"
    assert runtimes["native"]["code_size_limit"] == 50 * 1024 * 1024
    assert {n for n, r in runtimes.items() if r["native_allowed"]} == {"c", "go", "native"}
    # floors never go under the server's MIN_MEMORY_MB
    assert runtimes["c"]["memory_floor_mb"] == Settings().min_memory_mb


def test_one_runtime_by_name_or_alias_and_404_otherwise(client):
    assert client.simulate_get("/api/v1/runtimes/node20").json["name"] == "javascript"
    resp = client.simulate_get("/api/v1/runtimes/cobol")
    assert resp.status_code == 404 and resp.json["error"]["code"] == "not_found"
    assert "javascript" in resp.json["error"]["message"]


def test_the_routes_need_the_api_key(client):
    resp = client.simulate_get("/api/v1/runtimes", headers={"Authorization": ""})
    assert resp.status_code == 401


def _wait_ready(client, name: str) -> dict:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        fn = client.simulate_get(f"/api/v1/functions/{name}").json
        if fn["status"] != "creating":
            return fn
        time.sleep(0.05)
    raise AssertionError(f"{name} still building")


def test_a_toy_runtime_registered_once_is_creatable_listable_filterable_and_documented(client):
    with RUNTIMES.registered(TOY):
        listed = {r["name"]: r for r in client.simulate_get("/api/v1/runtimes").json["runtimes"]}
        assert listed["wat"]["extension"] == "wat" and listed["wat"]["reuse_allowed"] is False

        resp = client.simulate_post(
            "/api/v1/functions",
            json={"name": "toy", "runtime": "webassembly-text", "code": HELLO_WAT},
            params={"wait": "true"},
        )
        assert resp.status_code == 201, resp.text
        assert resp.json["runtime"] == "wat" and resp.json["status"] == "active"
        assert resp.json["memory_mb"] == 128
        code = client.simulate_get("/api/v1/functions/toy/code")
        assert code.status_code == 200 and "handler.wat" in code.text
        result = client.simulate_post("/api/v1/functions/toy/invoke", json={})
        assert result.status_code == 200 and result.json == {"hello": "world"}

        low = client.simulate_put("/api/v1/functions/toy", json={"memory_mb": 19})
        assert low.status_code == 422 and "between 20 and" in low.json["error"]["message"]

        found = client.simulate_get("/api/v1/functions", params={"runtime": "webassembly-text"})
        assert [f["name"] for f in found.json["functions"]] == ["toy"]

        document = client.simulate_get("/openapi.json").json
        create = document["components"]["schemas"]["FunctionCreate"]["properties"]["runtime"]
        assert "wat" in create["enum"] and "webassembly-text" in create["enum"]

    document = client.simulate_get("/openapi.json").json
    create = document["components"]["schemas"]["FunctionCreate"]["properties"]["runtime"]
    assert "wat" not in create["enum"] and "python3.11" in create["enum"]
    resp = client.simulate_post(
        "/api/v1/functions", json={"name": "toy2", "runtime": "wat", "code": HELLO_WAT}
    )
    assert resp.status_code == 422 and "unknown runtime 'wat'" in resp.text


@pytest.mark.parametrize(
    ("runtime", "handler", "stored"),
    [
        ("python", "main.handler", "main.py"),
        ("javascript", "main.handler", "main.js"),
        ("python", None, "handler.py"),
        ("go", "handler", "handler.go"),
        ("c", "lib/entry.handler", "lib/entry.c"),
    ],
)
def test_the_handler_names_the_file_of_a_single_code(runtime, handler, stored):
    assert RUNTIMES[runtime].code_filename(handler) == stored


def test_registering_a_taken_name_or_alias_is_refused():
    with pytest.raises(ValueError, match="already registered"):
        RUNTIMES.register(Runtime("js", "source", "js", WatBuilder))
    assert RUNTIMES.canonical("js") == "javascript"


def test_a_toy_runtime_registered_once_is_known_to_the_cli(client, tmp_path, monkeypatch):
    """`nimbus runtimes` lists it and `nimbus deploy FILE` picks it from the extension,
    with no edit of the CLI (it reads the server's registry)."""
    import httpx
    from click.testing import CliRunner

    from cli.main import main as nimbus

    transport = httpx.WSGITransport(app=client.app)
    real_client = httpx.Client
    monkeypatch.setattr(httpx, "Client", lambda **kw: real_client(transport=transport, **kw))
    source = tmp_path / "hello.wat"
    source.write_text(HELLO_WAT)
    api = ["--api-url", "http://nimbus.test", "--api-key", KEY, "-o", "json"]
    with RUNTIMES.registered(TOY):
        listed = CliRunner().invoke(nimbus, ["runtimes", *api])
        assert listed.exit_code == 0, listed.output
        assert "webassembly-text" in listed.output
        deployed = CliRunner().invoke(nimbus, ["deploy", "toy-cli", str(source), *api])
        assert deployed.exit_code == 0, deployed.output
        fn = client.simulate_get("/api/v1/functions/toy-cli").json
        assert fn["runtime"] == "wat" and fn["status"] == "active"
        called = CliRunner().invoke(nimbus, ["invoke", "toy-cli", *api])
        assert called.exit_code == 0 and '"hello": "world"' in called.output, called.output
