"""The function API of DESIGN.md, through a real gunicorn server, on both store backends."""

from __future__ import annotations

import base64
import socket
import time
import uuid

import httpx
import pytest

from tests.e2e.wasm import b64, hello_module, module_with
from tests.sandbox.guests import missing_import_component

HELLO = hello_module()


def create_wasm(api: httpx.Client, name: str, wait: bool = True, **extra) -> dict:
    body = {"name": name, "runtime": "wasm", "artifact_base64": b64(HELLO), **extra}
    resp = api.post("/api/v1/functions", params={"wait": wait}, json=body)
    assert resp.status_code == 201, resp.text
    return resp.json()


def assert_error(resp: httpx.Response, status: int, code: str) -> dict:
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert body["error"]["code"] == code, body
    assert body["error"]["message"]
    return body["error"]


# -- create and read ----------------------------------------------------------


def test_create_wasm_becomes_active(api, name, server):
    fn = create_wasm(api, name, tags=["a", "b"], env_vars={"SECRET": "s3cret"})
    assert fn["id"].startswith("fn_") and fn["name"] == name
    assert fn["status"] == "active"
    assert fn["active_version"] == fn["latest_version"] == 1
    assert fn["latest_build"] == {"version": 1, "status": "ready", "error": None}
    assert fn["code_size"] == len(HELLO) and fn["code_size_limit"] == 50 * 1024 * 1024
    assert fn["env_vars"] == {"SECRET": "****"}  # values never leave the server
    assert fn["webhook_url"].startswith(server.url + "/webhook/")
    assert fn["runtime_version"]
    assert fn["created_at"].endswith("Z")
    by_id = api.get(f"/api/v1/functions/{fn['id']}").json()
    by_name = api.get(f"/api/v1/functions/{name}").json()
    assert by_id == by_name
    assert by_id["status"] == "active"


def test_create_returns_before_build_without_wait(api, name):
    # A module that takes ~1 s to compile and that no other test made (a different
    # function count, so no precompiled artifact to reuse): a server that waited
    # for the build would answer "active".
    slow = module_with(4000 + uuid.uuid4().int % 1000)
    resp = api.post("/api/v1/functions", json={"name": name, "runtime": "wasm",
                                               "artifact_base64": b64(slow)})  # fmt: skip
    assert resp.status_code == 201, resp.text
    fn = resp.json()
    assert fn["status"] == "creating"
    assert fn["latest_build"]["status"] in ("queued", "building")
    deadline = time.monotonic() + 120
    while fn["status"] == "creating" and time.monotonic() < deadline:
        time.sleep(0.2)
        fn = api.get(f"/api/v1/functions/{name}").json()
    assert fn["status"] == "active"  # and the build does finish on its own


def test_garbage_upload_fails_its_build(api, name):
    body = {"name": name, "runtime": "wasm", "artifact_base64": b64(b"not wasm at all")}
    fn = api.post("/api/v1/functions?wait=true", json=body).json()
    assert fn["status"] == "failed"
    assert fn["active_version"] is None
    assert "not a WebAssembly binary" in fn["latest_build"]["error"]
    build = api.get(f"/api/v1/functions/{name}/build").json()
    assert build["status"] == "failed"
    assert "not a WebAssembly binary" in build["log"]


def test_a_component_importing_what_the_host_lacks_fails_its_build(api, name):
    """It became active and failed every invoke at instantiation; now its build fails
    naming the import, the way Spin refuses to load it."""
    body = {"name": name, "runtime": "wasm", "artifact_base64": b64(missing_import_component())}
    fn = api.post("/api/v1/functions?wait=true", json=body).json()
    assert fn["status"] == "failed" and fn["active_version"] is None
    error = fn["latest_build"]["error"]
    assert error.startswith("the artifact does not load: component imports instance ")
    assert "`acme:kv/store@1.0.0`, and Nimbus provides no matching implementation" in error
    assert error in api.get(f"/api/v1/functions/{name}/build").json()["log"]
    assert_error(api.post(f"/api/v1/functions/{name}/invoke", json={}), 409, "build_failed")


def test_runtime_aliases_map_to_real_names(api, name):
    body = {"name": name, "runtime": "nodejs", "code": "exports.main = e => e"}
    fn = api.post("/api/v1/functions", json=body).json()
    assert fn["runtime"] == "javascript"
    listed = api.get("/api/v1/functions", params={"runtime": "node20", "name": name}).json()
    assert [f["name"] for f in listed["functions"]] == [name]


def test_multipart_upload(api, name):
    files = {
        "artifact": ("hello.wasm", HELLO, "application/wasm"),
        "metadata": (None, f'{{"name": "{name}", "runtime": "wasm"}}', "application/json"),
    }
    resp = api.post("/api/v1/functions?wait=true", files=files)
    assert resp.status_code == 201, resp.text
    assert resp.json()["status"] == "active"
    code = api.get(f"/api/v1/functions/{name}/code")
    assert code.content == HELLO
    assert code.headers["X-Nimbus-Version"] == "1"


def test_get_code_of_source_function(api, name):
    src = "def main(event):\n    return event\n"
    api.post("/api/v1/functions", json={"name": name, "runtime": "python", "code": src})
    code = api.get(f"/api/v1/functions/{name}/code").json()
    assert code["files"] == {"handler.py": src}
    assert code["handler"] == "handler.main"


# -- update and versions ------------------------------------------------------


def test_update_config_makes_a_new_version_and_keeps_the_rest(api, name):
    fn = create_wasm(api, name, env_vars={"A": "1"}, memory_mb=64)
    resp = api.put(f"/api/v1/functions/{fn['id']}?wait=true", json={"timeout_sec": 5})
    assert resp.status_code == 200, resp.text
    updated = resp.json()
    assert updated["latest_version"] == 2 and updated["active_version"] == 2
    assert updated["timeout_sec"] == 5
    assert updated["memory_mb"] == 64  # carried over from version 1
    assert updated["env_vars"] == {"A": "****"}
    v1 = api.get(f"/api/v1/functions/{name}/build", params={"version": 1}).json()
    assert v1["status"] == "ready" and v1["version"] == 1


def test_metadata_update_makes_no_version(api, name):
    create_wasm(api, name)
    updated = api.put(f"/api/v1/functions/{name}", json={"tags": ["x"], "description": "d"}).json()
    assert updated["latest_version"] == 1
    assert updated["tags"] == ["x"] and updated["description"] == "d"


def test_failed_update_leaves_previous_version_serving(api, name):
    create_wasm(api, name)
    bad = {"artifact_base64": b64(b"\0asm\x01\0\0\0garbage")}
    fn = api.put(f"/api/v1/functions/{name}?wait=true", json=bad).json()
    assert fn["latest_version"] == 2
    assert fn["latest_build"]["status"] == "failed"
    assert fn["active_version"] == 1
    assert fn["status"] == "active"


def test_offline_and_back(api, name):
    create_wasm(api, name)
    assert api.put(f"/api/v1/functions/{name}", json={"status": "offline"}).json()["status"] == (
        "offline"
    )
    assert api.put(f"/api/v1/functions/{name}", json={"status": "active"}).json()["status"] == (
        "active"
    )


def test_one_worker_serves_its_own_status_switch_at_once(make_server, name):
    """A status switched by a PUT held for up to 1 s on the very worker that wrote it
    (its invoke cache): a script switching a function on and calling it got 409 offline."""
    server = make_server(workers=1).start()
    with server.client() as api:
        create_wasm(api, name)
        seen = []
        for _ in range(20):
            for status in ("offline", "active"):
                assert api.put(f"/api/v1/functions/{name}", json={"status": status}).is_success
                seen.append((status, api.post(f"/api/v1/functions/{name}/invoke").status_code))
    assert seen == [(s, c) for _ in range(20) for s, c in (("offline", 409), ("active", 200))]


def test_webhook_can_be_turned_off(api, name):
    fn = create_wasm(api, name, webhook=False)
    assert fn["webhook_url"] is None
    assert api.put(f"/api/v1/functions/{name}", json={"webhook": True}).json()["webhook_url"]


# -- list ---------------------------------------------------------------------


def test_list_filters_and_pagination(api):
    tag = uuid.uuid4().hex[:8]
    names = [f"list-{tag}-{i}" for i in range(5)]
    for i, n in enumerate(names):
        create_wasm(api, n, wait=False, tags=[tag, "even" if i % 2 == 0 else "odd"])
    page = api.get("/api/v1/functions", params={"name": tag, "limit": 2, "offset": 1}).json()
    assert page["total"] == 5 and page["limit"] == 2 and page["offset"] == 1
    assert [f["name"] for f in page["functions"]] == names[1:3]
    even = api.get("/api/v1/functions", params={"tags": f"{tag},even"}).json()
    assert sorted(f["name"] for f in even["functions"]) == names[0::2]
    none = api.get("/api/v1/functions", params={"name": tag, "runtime": "go"}).json()
    assert none["total"] == 0


def test_list_rejects_bad_parameters(api):
    assert_error(api.get("/api/v1/functions", params={"limit": 101}), 422, "validation_error")
    assert_error(api.get("/api/v1/functions", params={"limit": "x"}), 422, "validation_error")
    assert_error(api.get("/api/v1/functions", params={"runtime": "cobol"}), 422, "validation_error")
    # a misspelt status is an error, not an empty list that looks like "no such functions"
    error = assert_error(api.get("/api/v1/functions", params={"status": "activ"}), 422,
                         "validation_error")  # fmt: skip
    assert error["message"] == (
        "status: unknown status 'activ'; use one of creating, active, failed, offline"
    )


# -- delete and bulk ----------------------------------------------------------


def test_delete_frees_the_name(api, name):
    fn = create_wasm(api, name)
    assert api.delete(f"/api/v1/functions/{name}").status_code == 204
    assert_error(api.get(f"/api/v1/functions/{fn['id']}"), 404, "not_found")
    assert create_wasm(api, name)["id"] != fn["id"]


def test_bulk_update_and_delete(api):
    tag = uuid.uuid4().hex[:8]
    ids = [create_wasm(api, f"bulk-{tag}-{i}")["id"] for i in range(3)]
    res = api.post(
        "/api/v1/functions/bulk-update",
        json={"ids": [*ids, "fn_missing"], "status": "offline", "tags": [tag, "bulk"]},
    ).json()
    assert sorted(res["success"]) == sorted(ids)
    assert res["failed"][0]["id"] == "fn_missing"
    assert res["failed"][0]["error"]["code"] == "not_found"
    for fid in ids:
        fn = api.get(f"/api/v1/functions/{fid}").json()
        assert fn["status"] == "offline" and fn["tags"] == [tag, "bulk"]
    res = api.post("/api/v1/functions/bulk-delete", json={"ids": ids}).json()
    assert sorted(res["success"]) == sorted(ids) and res["failed"] == []
    assert api.get("/api/v1/functions", params={"tags": tag}).json()["total"] == 0
    too_many = {"ids": [f"fn_{i}" for i in range(101)]}
    assert_error(api.post("/api/v1/functions/bulk-delete", json=too_many), 422, "validation_error")


# -- errors -------------------------------------------------------------------


def test_auth_is_required_on_every_api_route(server, name):
    routes = [
        ("GET", "/api/v1/functions"),
        ("POST", "/api/v1/functions"),
        ("GET", f"/api/v1/functions/{name}"),
        ("PUT", f"/api/v1/functions/{name}"),
        ("DELETE", f"/api/v1/functions/{name}"),
        ("GET", f"/api/v1/functions/{name}/code"),
        ("GET", f"/api/v1/functions/{name}/build"),
        ("POST", "/api/v1/functions/bulk-delete"),
        ("POST", "/api/v1/functions/bulk-update"),
    ]
    for key in (None, "wrong-key"):
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        for method, path in routes:
            resp = httpx.request(method, server.url + path, headers=headers)
            assert_error(resp, 401, "unauthorized")
    assert httpx.get(server.url + "/health").status_code == 200
    assert httpx.get(server.url + "/api/health").json() == {"status": "ok"}
    assert httpx.get(server.url + "/ready").json() == {"status": "ready"}


def test_malformed_json_is_400(api):
    resp = api.post(
        "/api/v1/functions", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert_error(resp, 400, "invalid_json")


def test_wrong_media_type_is_415(api):
    resp = api.post("/api/v1/functions", content=b"x", headers={"Content-Type": "text/plain"})
    assert_error(resp, 415, "unsupported_media_type")


@pytest.mark.parametrize(
    "body, field",
    [
        ({"name": "Bad_Name", "runtime": "wasm", "artifact_base64": "AA=="}, "name"),
        ({"name": "fn_abc", "runtime": "wasm", "artifact_base64": "AA=="}, "name"),
        ({"name": "ok-name", "runtime": "cobol", "code": "x"}, "runtime"),
        ({"name": "ok-name", "runtime": "wasm"}, "artifact_base64"),
        ({"name": "ok-name", "runtime": "python"}, "code"),
        ({"name": "ok-name", "runtime": "python", "code": "x", "memory_mb": 8}, "memory_mb"),
        ({"name": "ok-name", "runtime": "wasm", "artifact_base64": "AA==", "memory_mb": 5000},
         "memory_mb"),
        ({"name": "ok-name", "runtime": "wasm", "artifact_base64": "AA==", "timeout_sec": 301},
         "timeout_sec"),
        ({"name": "ok-name", "runtime": "wasm", "artifact_base64": "!!"}, "artifact_base64"),
        ({"name": "ok-name", "runtime": "python", "code": "x", "artifact_base64": "AA=="},
         "artifact_base64"),
        ({"name": "ok-name", "runtime": "python", "code": "x", "env_vars": {"1X": "v"}},
         "env_vars"),
        ({"name": "ok-name", "runtime": "python", "files": {"../x.py": "x"}}, "files"),
        ({"name": "ok-name", "runtime": "python", "code": "x", "surprise": 1}, "surprise"),
        ({"name": "ok-name", "runtime": "python", "code": "x", "handler": "main"}, "handler"),
        ({"name": "ok-name", "runtime": "js", "code": "x", "handler": "main.my-fn"}, "handler"),
        ({"name": "ok-name", "runtime": "rust", "code": "x", "target": "native"}, "target"),
        ({"name": "ok-name", "runtime": "python", "code": "x", "target": "native"}, "target"),
    ],
)  # fmt: skip
def test_validation_errors_name_the_field(api, body, field):
    error = assert_error(api.post("/api/v1/functions", json=body), 422, "validation_error")
    assert field in str(error["details"]) or field in error["message"]
    assert api.get("/api/v1/functions/ok-name").status_code == 404  # nothing was created


def test_a_validation_message_says_what_is_wrong_not_only_where(api):
    # A client that shows the message alone (the CLI, the MCP tools) must not leave the
    # user with "invalid fields: memory_mb".
    body = {"name": "ok-name", "runtime": "python", "code": "x", "memory_mb": "lots"}
    error = assert_error(api.post("/api/v1/functions", json=body), 422, "validation_error")
    assert error["message"] == (
        "memory_mb: Input should be a valid integer, unable to parse string as an integer"
    )
    body = {"name": "Bad_Name", "runtime": "python", "code": "x", "env_vars": {"1X": "v"}}
    error = assert_error(api.post("/api/v1/functions", json=body), 422, "validation_error")
    assert sorted(error["message"].split("; ")) == [
        "env_vars: '1X' is not a valid environment variable name",
        "name: must be a DNS label: 1-63 of a-z, 0-9 and '-', not at the ends",
    ]
    assert sorted(d["field"] for d in error["details"]) == ["env_vars", "name"]
    assert "Value error" not in str(error["details"])


def test_a_handler_that_is_not_module_function_is_refused_before_any_build(api, name):
    body = {"name": name, "runtime": "python", "code": "def main(e): return e", "handler": "main"}
    error = assert_error(api.post("/api/v1/functions", json=body), 422, "validation_error")
    assert error["message"] == (
        "handler: 'main' is not module.function (e.g. 'handler.main': the function main in "
        "handler.py)"
    )
    body["handler"] = "app.main"  # a good one builds
    created = api.post("/api/v1/functions", params={"wait": True}, json=body).json()
    assert created["status"] == "active", created
    error = assert_error(api.put(f"/api/v1/functions/{name}", json={"handler": "app."}), 422,
                         "validation_error")  # fmt: skip
    assert error["details"][0]["field"] == "handler"


def test_files_without_the_handlers_module_are_refused_before_any_build(api, name):
    # An agent (MCP deploy_function) sent files {"app.py": …}: 201, then a failed build
    # saying "no handler.py among the function's files for handler module"
    body = {"name": name, "runtime": "python", "files": {"app.py": "def main(e): return 5"}}
    error = assert_error(api.post("/api/v1/functions", json=body), 422, "validation_error")
    assert error["message"] == (
        "handler: the default handler 'handler.main' calls handler.py, which is not among the "
        'files (app.py): send "handler": "app.<function>" to call a function of app.py'
    )
    assert api.get(f"/api/v1/functions/{name}").status_code == 404  # nothing made
    created = api.post("/api/v1/functions", params={"wait": True},
                       json={**body, "handler": "app.main"}).json()  # fmt: skip
    assert created["status"] == "active", created
    # an update's files are checked against the handler it keeps
    update = {"files": {"other.py": "def main(e): return 6"}}
    error = assert_error(api.put(f"/api/v1/functions/{name}", json=update), 422,
                         "validation_error")  # fmt: skip
    assert error["message"].startswith(
        "handler: the function's handler 'app.main' calls app.py, which is not among the files"
    )
    js = {"name": f"{name}-js", "runtime": "javascript", "handler": "src/index.main",
          "files": {"src/index.mjs": "export function main(e) { return 7 }"}}  # fmt: skip
    assert api.post("/api/v1/functions", json=js).status_code == 201
    js = {**js, "name": f"{name}-js2", "handler": "index.main"}
    error = assert_error(api.post("/api/v1/functions", json=js), 422, "validation_error")
    assert (
        "'index.main' calls index.js, which is not among the files (src/index.mjs)"
        in (error["message"])
    )


def test_the_record_and_each_version_say_which_handler_is_called(api, name):
    # As Lambda's GetFunction shows Handler: what runs, without reading the code.
    body = {"name": name, "runtime": "python", "code": "def go(e): return e", "handler": "app.go"}
    created = api.post("/api/v1/functions", params={"wait": True}, json=body).json()
    assert created["handler"] == "app.go"
    code = "def main(e): return 2"
    updated = api.put(f"/api/v1/functions/{name}", json={"code": code, "handler": "handler.main"})
    assert updated.json()["handler"] == "handler.main"
    versions = api.get(f"/api/v1/functions/{name}/versions").json()["versions"]
    assert [(v["version"], v["handler"]) for v in versions] == [(2, "handler.main"), (1, "app.go")]
    assert create_wasm(api, f"{name}-w")["handler"] is None  # a module runs its entry point


def test_duplicate_name_is_409(api, name):
    create_wasm(api, name)
    resp = api.post(
        "/api/v1/functions", json={"name": name, "runtime": "wasm", "artifact_base64": b64(HELLO)}
    )
    assert_error(resp, 409, "name_taken")


def test_unknown_function_is_404(api):
    for path in ("fn_doesnotexist", "no-such-fn", "no-such-fn/code", "no-such-fn/build"):
        assert_error(api.get(f"/api/v1/functions/{path}"), 404, "not_found")
    assert_error(api.put("/api/v1/functions/no-such-fn", json={"tags": []}), 404, "not_found")
    assert_error(api.delete("/api/v1/functions/no-such-fn"), 404, "not_found")


def test_a_target_where_a_function_is_asked_says_to_name_the_function_alone(api, name):
    create_wasm(api, name)
    for path in (f"{name}:prod", f"{name}:1/logs", f"{name}:1/versions"):
        error = assert_error(api.get(f"/api/v1/functions/{path}"), 404, "not_found")
        qualified = path.split("/")[0]
        assert error["message"] == (
            f"function {qualified!r} not found: name:alias and name:version are for invoking "
            f"(…/invoke, …/async); here name the function alone ({name!r})"
        )


def test_a_wrong_method_or_path_says_what_there_is(api, name):
    create_wasm(api, name)
    error = assert_error(api.get(f"/api/v1/functions/{name}/invoke"), 405, "method_not_allowed")
    assert (
        error["message"] == f"GET is not allowed on /api/v1/functions/{name}/invoke; it takes POST"
    )
    error = assert_error(api.post("/api/v1/function", json={}), 404, "not_found")
    assert (
        error["message"] == "no route POST /api/v1/function (GET /openapi.json lists every route)"
    )


def test_a_query_parameter_of_the_wrong_type_is_a_422_naming_it(api, name):
    create_wasm(api, name)
    for path, problem in (
        (f"/api/v1/functions/{name}/invoke?version=ten", "the value must be an integer"),
        (f"/api/v1/functions/{name}/invoke?version=0", "the value must be at least 1"),
    ):
        error = assert_error(api.post(path, json={}), 422, "validation_error")  # was 400
        assert error["message"] == f"version: {problem}", error
        assert error["details"] == [{"field": "version", "message": problem}]
    error = assert_error(api.get(f"/api/v1/functions/{name}/stats?version=x"), 422,
                         "validation_error")  # fmt: skip
    assert error["details"][0]["field"] == "version"


def test_immutable_fields_are_422(api, name):
    create_wasm(api, name)
    error = assert_error(
        api.put(f"/api/v1/functions/{name}", json={"name": "other"}), 422, "validation_error"
    )
    assert "name" in error["message"]
    error = assert_error(
        api.put(f"/api/v1/functions/{name}", json={"runtime": "go"}), 422, "validation_error"
    )
    assert "runtime" in error["message"]


def test_too_large_is_413_before_reading(api, name, server):
    big = b"\0" * (50 * 1024 * 1024 + 1)
    resp = api.post(
        "/api/v1/functions",
        json={"name": name, "runtime": "wasm", "artifact_base64": base64.b64encode(big).decode()},
    )
    assert_error(resp, 413, "too_large")
    src = {"name": name, "runtime": "python", "code": "#" * (512 * 1024 + 1)}
    assert_error(api.post("/api/v1/functions", json=src), 413, "too_large")
    # The declared size alone is enough: the server answers without waiting for the body.
    host, port = server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as conn:
        conn.sendall(
            b"POST /api/v1/functions HTTP/1.1\r\nHost: x\r\n"
            b"Authorization: Bearer " + server.api_key.encode() + b"\r\n"
            b"Content-Type: application/json\r\nContent-Length: 83886080\r\n\r\n{"
        )
        status_line = conn.recv(4096).split(b"\r\n", 1)[0]
    assert b" 413 " in status_line
    assert api.get(f"/api/v1/functions/{name}").status_code == 404


def test_openapi_document_is_valid(server):
    from openapi_spec_validator import validate

    doc = httpx.get(server.url + "/openapi.json").json()
    validate(doc)
    assert doc["openapi"].startswith("3.1")
    assert "/api/v1/functions" in doc["paths"]
    assert "FunctionCreate" in doc["components"]["schemas"]


def _raw_get(server, path: str, method: str = "GET") -> int:
    """The status of a request sent exactly as written (as `curl --path-as-is` does)."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        head = f"{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n"
        sock.sendall(f"{head}Connection: close\r\n\r\n".encode())
        status_line = sock.makefile("rb").readline().decode()
    return int(status_line.split()[1])


@pytest.mark.parametrize(
    "path",
    ["//api/v1/functions", "/./api/v1/functions", "/api//v1/functions", "/%2Fapi/v1/functions"],
)
def test_no_spelling_of_the_path_skips_the_key(server, path):
    assert _raw_get(server, path) in (401, 404)
    assert _raw_get(server, "/api/v1/functions") == 401


@pytest.mark.parametrize(
    ("method", "spelling"),
    [
        ("GET", "//api/v1/functions/{name}/code"),
        ("GET", "/api/v1/./functions/{name}/code"),
        ("GET", "/api/v1%2Ffunctions/{name}/code"),
        ("GET", "/API/v1/functions/{name}/code"),
        ("GET", "/api/v1/functions/x/../{name}/code"),
        ("POST", "//api/v1/functions/{name}/invoke"),
        ("POST", "/api//v1/functions/{name}/webhook/rotate"),
        ("DELETE", "//api/v1/functions/{name}"),
        ("DELETE", "/%2Fapi/v1/functions/{name}"),
        ("DELETE", "/api/v1/Functions/{name}"),
    ],
)
def test_no_spelling_reads_invokes_or_deletes_a_function_without_the_key(
    server, api, name, method, spelling
):
    """As an outside caller would try it: raw request lines against a real function."""
    create = api.post("/api/v1/functions", json={"name": name, "runtime": "wasm",
                                                  "artifact_base64": b64(HELLO)})  # fmt: skip
    assert create.status_code == 201, create.text
    before = api.get(f"/api/v1/functions/{name}").json()
    assert _raw_get(server, spelling.format(name=name), method) in (401, 404)
    after = api.get(f"/api/v1/functions/{name}")
    assert after.status_code == 200
    assert after.json()["webhook_url"] == before["webhook_url"]  # not rotated


def _chunked(*pieces: bytes):
    yield from pieces  # a generator body: httpx sends it chunked, with no Content-Length


def test_multipart_takes_one_artifact_part_only(api, name):
    boundary = "nimbus-test-boundary"
    part = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="artifact"; '
            'filename="a.wasm"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
        + HELLO
        + b"\r\n"
    )
    headers = {"Content-Type": f"multipart/form-data; boundary={boundary}"}
    end = f"--{boundary}--\r\n".encode()
    resp = api.post("/api/v1/functions", content=part + part + end, headers=headers)
    assert_error(resp, 422, "validation_error")
    # Chunked (no Content-Length): a clear 411, never a 500.
    resp = api.post("/api/v1/functions", content=_chunked(part, end), headers=headers)
    assert_error(resp, 411, "length_required")


def test_a_large_body_without_an_artifact_is_refused_before_it_is_parsed(api):
    # Malformed on purpose: a server that parsed it first would answer 400 invalid_json.
    body = b'{"name": "big", "runtime": "python", "code": "' + b"x" * (3 << 20)
    resp = api.post("/api/v1/functions", content=body, headers={"Content-Type": "application/json"})
    assert_error(resp, 413, "too_large")


ENV_CODE = "import os\n\n\ndef main(event):\n    return {k: os.environ.get(k) for k in 'ABC'}\n"


def test_a_masked_env_value_sent_back_keeps_the_saved_one(api, name):
    body = {"name": name, "runtime": "python", "code": ENV_CODE, "env_vars": {"A": "1", "B": "2"}}
    assert api.post("/api/v1/functions?wait=true", json=body).json()["status"] == "active"
    # What the console sends after editing B and adding C: A as the record showed it.
    resp = api.put(f"/api/v1/functions/{name}?wait=true",
                   json={"env_vars": {"A": "****", "B": "two", "C": "3"}})  # fmt: skip
    assert resp.status_code == 200 and resp.json()["active_version"] == 2, resp.text
    assert resp.json()["env_vars"] == {"A": "****", "B": "****", "C": "****"}
    assert api.post(f"/api/v1/functions/{name}/invoke", json={}).json() == {
        "A": "1", "B": "two", "C": "3"
    }  # fmt: skip
    # A mask with nothing saved behind it is refused, field by field; nothing changes.
    resp = api.put(f"/api/v1/functions/{name}", json={"env_vars": {"D": "****"}})
    details = assert_error(resp, 422, "validation_error")["details"]
    assert [d["field"] for d in details] == ["env_vars.D"]
    assert api.get(f"/api/v1/functions/{name}").json()["latest_version"] == 2
