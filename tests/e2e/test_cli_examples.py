"""`nimbus deploy` of the repository's examples, as a new user types it (one server)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from cli.main import main
from tests.e2e import wasm as w
from tests.e2e.server import REPO, NimbusProcess


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[NimbusProcess]:
    proc = NimbusProcess(tmp_path_factory.mktemp("cli-examples") / "data").start()
    yield proc
    proc.stop()


def nimbus(server: NimbusProcess, *args: str):
    return CliRunner().invoke(main, ["--url", server.url, "--api-key", server.api_key, *args])


def folder_of(root: Path, name: str, file: str, text: str) -> Path:
    """A folder holding one source file, as a user's project."""
    (root / name).mkdir()
    (root / name / file).write_text(text)
    return root / name


def test_an_example_named_like_a_function_of_another_runtime_is_refused_clearly(server, tmp_path):
    # The quick start's `hello` is a wasm module; examples/c/hello.c would update it.
    module = tmp_path / "hello.wasm"
    module.write_bytes(w.hello_module())
    assert nimbus(server, "deploy", str(module)).exit_code == 0
    example = REPO / "examples" / "c" / "hello.c"
    out = nimbus(server, "-o", "table", "deploy", str(example))
    # a refusal of the API's, as any: exit 1 (was a click usage error: exit 2, a banner)
    assert out.exit_code == 1, out.output
    said = "hello is a wasm function, not c: a function's runtime cannot change. Deploy the "
    assert said in out.stderr and "Usage:" not in out.stderr, out.stderr
    out = nimbus(server, "-o", "json", "deploy", str(example))
    assert out.exit_code == 1, out.output
    error = json.loads(out.stdout)["error"]
    assert (error["status"], error["code"]) == (422, "validation_error"), error
    assert error["details"][0]["field"] == "runtime" and said in error["message"]
    record = json.loads(nimbus(server, "get", "hello").stdout)
    assert (record["runtime"], record["latest_version"]) == ("wasm", 1)  # untouched


def test_an_example_folder_deploys_with_its_function_json(server):
    example = REPO / "examples" / "python" / "wordstats"
    settings = json.loads((example / "function.json").read_text())
    out = nimbus(server, "deploy", str(example))
    assert out.exit_code == 0, out.output
    fn = json.loads(out.stdout)
    assert (fn["status"], fn["memory_mb"], fn["timeout_sec"]) == (
        "active", settings["memory_mb"], settings["timeout_sec"],
    )  # fmt: skip
    with server.client() as api:
        code = api.get("/api/v1/functions/wordstats/code").json()
    assert sorted(code["files"]) == ["handler.py", "text_tools.py"]  # not function.json
    out = nimbus(server, "invoke", "wordstats", "-d", '{"text": "a b a"}')
    assert out.exit_code == 0 and json.loads(out.stdout)["words"] == 3
    # a flag wins over the file
    out = nimbus(server, "deploy", str(example), "--memory", "128")
    assert out.exit_code == 0 and json.loads(out.stdout)["memory_mb"] == 128


def test_create_from_a_file_needs_no_runtime_flag_but_code_does(server, tmp_path):
    source = tmp_path / "app.py"
    source.write_text("def main(event):\n    return {'made': 'from a file'}\n")
    out = nimbus(server, "create", "from-file", "--file", str(source))
    assert out.exit_code == 0, out.output
    fn = json.loads(out.stdout)
    assert (fn["runtime"], fn["handler"], fn["status"]) == ("python", "app.main", "active")
    out = nimbus(server, "create", "from-code", "--code", "def main(e): return e")
    assert out.exit_code == 2 and "--code needs --runtime" in out.output


def test_the_cloudflare_workers_example_deploys_as_it_is(server):
    """examples/javascript/worker, a Workers module, answers on its webhook URL."""
    out = nimbus(server, "deploy", str(REPO / "examples" / "javascript" / "worker"))
    assert out.exit_code == 0, out.output
    url = json.loads(out.stdout)["webhook_url"]
    resp = httpx.get(url + "/api/greet?name=Ada")
    assert resp.json() == {"hello": "Ada"}
    assert resp.headers["access-control-allow-origin"] == "https://shop.example"
    preflight = httpx.options(url + "/api/orders", headers={"Origin": "https://shop.example"})
    assert preflight.status_code == 204
    assert "POST" in preflight.headers["access-control-allow-methods"]
    resp = httpx.post(url + "/api/orders", json={"sku": "BK-1", "quantity": 2})
    assert resp.status_code == 201, resp.text
    assert resp.headers["location"] == f"/api/orders/{resp.json()['id']}"
    resp = httpx.post(url + "/api/orders", json={"sku": "BK-1", "quantity": 0})
    assert resp.status_code == 422 and "quantity" in resp.json()["error"]
    resp = httpx.get(url + "/pixel.png")
    assert resp.headers["content-type"] == "image/png" and resp.content.startswith(b"\x89PNG")
    # It redirected to {url.origin}/api/greet: https on an http server, without the
    # /webhook/KEY prefix (a Worker's request.url holds only the path after the key).
    resp = httpx.get(url + "/docs")
    assert resp.status_code == 302 and resp.headers["location"] == "api/greet"
    assert httpx.get(url + "/docs", follow_redirects=True).json() == {"hello": "world"}
    assert httpx.get(url + "/nowhere").status_code == 404


def test_a_wrangler_project_deploys_as_it_is(server, tmp_path):
    """A Workers project as `npm create cloudflare` lays it out: wrangler.toml names the
    function, its entry (`main`) and its `[vars]`; wrangler itself is a devDependency."""
    root = tmp_path / "project"
    (root / "src").mkdir(parents=True)
    (root / "wrangler.toml").write_text(
        'name = "edge-hello"\nmain = "src/index.ts"\ncompatibility_date = "2024-09-23"\n\n'
        '[vars]\nGREETING = "hello"\nLIMITS = { max = 3 }\n'
    )
    (root / "package.json").write_text(
        '{"name": "edge-hello", "private": true, "devDependencies": {"wrangler": "^3.80.0"}}'
    )
    (root / "src" / "index.ts").write_text(
        "export default {\n"
        "  async fetch(request: Request, env: Record<string, string>): Promise<Response> {\n"
        "    const path = new URL(request.url).pathname;\n"
        "    return new Response(`${env.GREETING} from ${path}, ${env.LIMITS}`);\n"
        "  },\n};\n"
    )
    out = nimbus(server, "deploy", str(root))
    assert out.exit_code == 0, out.output
    fn = json.loads(out.stdout)
    assert (fn["name"], fn["handler"]) == ("edge-hello", "src/index.main")
    reply = httpx.get(fn["webhook_url"] + "/hi")
    assert reply.text == 'hello from /hi, {"max": 3}'


def test_a_service_worker_script_is_told_what_nimbus_calls(server, tmp_path):
    folder = folder_of(
        tmp_path, "sw", "index.js",
        'addEventListener("fetch", (event) => {\n'
        '  event.respondWith(new Response("Hello World!"));\n});\n',
    )  # fmt: skip
    out = nimbus(server, "-o", "table", "deploy", str(folder))
    assert out.exit_code == 1, out.output
    assert "index.js does not export 'main'" in out.stderr
    assert "Cloudflare Workers script in the service-worker syntax" in out.stderr
    assert "`export default { async fetch(request, env, ctx)" in out.stderr


# What the Lambda console makes for a new Python and for a new Node.js function.
LAMBDA_HELLOS = {
    "lambda_function.py": "import json\n\ndef lambda_handler(event, context):\n"
    "    return {'statusCode': 200, 'body': json.dumps('Hello from Lambda!')}\n",
    "index.mjs": "export const handler = async (event) => {\n"
    "  const response = {statusCode: 200, body: JSON.stringify('Hello from Lambda!')};\n"
    "  return response;\n};\n",
}


@pytest.mark.parametrize("file", sorted(LAMBDA_HELLOS))
def test_aws_lambdas_hello_functions_deploy_unchanged_and_answer_on_the_webhook(
    server, tmp_path, file
):
    folder = folder_of(tmp_path, f"hello-{file.split('.')[1]}", file, LAMBDA_HELLOS[file])
    out = nimbus(server, "deploy", str(folder))
    assert out.exit_code == 0, out.output
    fn = json.loads(out.stdout)
    reply = httpx.get(fn["webhook_url"])
    assert (reply.status_code, reply.json()) == (200, "Hello from Lambda!"), fn["handler"]


def test_logs_of_a_function_never_called_say_so(server, tmp_path):
    module = tmp_path / "quiet.wasm"
    module.write_bytes(w.hello_module())
    assert nimbus(server, "deploy", str(module)).exit_code == 0
    out = nimbus(server, "-o", "table", "logs", "quiet")
    assert out.exit_code == 0 and out.stdout == "" and "no log lines" in out.stderr
    out = nimbus(server, "-o", "json", "logs", "quiet", "--since", "5m")
    assert out.exit_code == 0 and out.output == ""  # scripts get nothing but the data


def test_the_list_says_a_function_whose_only_build_failed_serves_none(server, tmp_path):
    folder = folder_of(tmp_path, "broken", "handler.py", "def main(event):\n    return (\n")
    assert nimbus(server, "deploy", str(folder)).exit_code == 1
    out = nimbus(server, "-o", "table", "list", "--name", "broken")
    row = next(line for line in out.stdout.splitlines() if line.startswith("broken "))
    assert "failed  none (latest v1)" in row, row  # was "v- (latest v1)"


def test_update_takes_new_code_as_create_does(server, tmp_path):
    # `nimbus create --code` made it; `update --code` was "No such option"
    created = nimbus(server, "create", "recode", "-r", "python", "--code", "def main(e): return 1")
    assert created.exit_code == 0, created.output
    out = nimbus(server, "update", "recode", "--code", "def main(e): return 2")
    assert out.exit_code == 0, out.output
    assert json.loads(out.stdout)["active_version"] == 2
    handler = tmp_path / "handler.py"
    handler.write_text("def main(e):\n    return 3\n")
    assert nimbus(server, "update", "recode", "--file", str(handler)).exit_code == 0
    time.sleep(1.1)  # every worker sees a record change within 1 s
    assert nimbus(server, "invoke", "recode").stdout.strip() == "3"
    out = nimbus(server, "update", "recode", "--file", str(REPO / "examples" / "c" / "hello.c"))
    assert out.exit_code == 1 and "recode is a python function, not c: " in out.stderr


def test_an_empty_listing_says_none_under_its_header(server, tmp_path):
    module = tmp_path / "bare.wasm"
    module.write_bytes(w.hello_module())
    assert nimbus(server, "deploy", str(module)).exit_code == 0
    out = nimbus(server, "-o", "table", "alias", "list", "bare")
    # a bare header read as if the command had stopped halfway
    assert out.exit_code == 0 and out.stdout.splitlines()[1:] == ["(none)"], out.stdout
    assert nimbus(server, "-o", "json", "alias", "list", "bare").stdout.count("(none)") == 0


def test_a_single_c_file_keeps_its_name_in_build_errors_and_traces(server, tmp_path):
    # `nimbus deploy NAME calc.c` sent `code`, stored as handler.c: errors said handler.c:4
    source = tmp_path / "calc.c"
    source.write_text("char *handler(const char *e, const char *c) {\n    (void)c;\n"
                      "    return (char *)e\n}\n")  # fmt: skip
    out = nimbus(server, "deploy", "calc", str(source))
    assert out.exit_code == 1
    assert "calc.c:3" in out.output and "handler.c" not in out.output, out.output
    source.write_text("char *handler(const char *e, const char *c) {\n    (void)c; (void)e;\n"
                      '    nimbus_set_error("no");\n    return NULL;\n}\n')  # fmt: skip
    assert nimbus(server, "deploy", "calc", str(source)).exit_code == 0
    out = nimbus(server, "invoke", "calc")
    assert out.exit_code == 3, out.output  # the function failed
    assert "calc.c:3" in out.output and "handler.c" not in out.output, out.output


def test_a_single_go_file_go_build_would_skip_builds_under_its_name(server, tmp_path):
    # go build leaves *_test.go out: the function was the glue alone, "no function handler"
    source = tmp_path / "handler_test.go"
    source.write_text("func handler(event any) any {\n\treturn missing\n}\n")
    out = nimbus(server, "deploy", "gotest", str(source))
    assert out.exit_code == 1
    assert "handler_test.go:2:9: undefined: missing" in out.output, out.output
    source.write_text('func handler(event any) any {\n\tpanic("no")\n}\n')
    assert nimbus(server, "deploy", "gotest", str(source)).exit_code == 0
    out = nimbus(server, "invoke", "gotest")
    assert out.exit_code == 3, out.output  # the function failed
    assert "handler_test.go:2" in out.output and "nimbus_source" not in out.output, out.output
