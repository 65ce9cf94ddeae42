"""Go functions end to end: a real server on the local store, the real Go toolchain."""

from __future__ import annotations

import pytest

from tests.e2e.compiled import (
    EXAMPLES,
    ORDER,
    SUMMARY,
    build_log,
    create,
    deployed,
    function_error,
    invoke,
    serving,
    update,
)

pytestmark = pytest.mark.timeout(900)  # a fresh machine installs Go on the first build

HELLO = (EXAMPLES / "go" / "hello.go").read_text()
TRANSFORM = (EXAMPLES / "go" / "transform.go").read_text()

PANICS = """\
import "errors"

func handler(event interface{}) (interface{}, error) {
	fields := event.(map[string]interface{})
	if fields["fail"] == true {
		return nil, errors.New("asked to fail")
	}
	var items []int
	return items[len(fields)], nil
}
"""


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    with serving(tmp_path_factory) as client:
        yield client


def test_handler_form_without_a_package_clause(api):
    fn = deployed(api, "go", "go-hello", HELLO)
    assert fn["runtime_version"].startswith("go 1.")
    resp = invoke(api, "go-hello", {"name": "Ada"})
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"message": "Hello, Ada!", "function": "go-hello"}
    assert "compiling handler form" in build_log(api, "go-hello")


def test_transform_example_and_its_typed_error(api):
    deployed(api, "go", "go-transform", TRANSFORM)
    resp = invoke(api, "go-transform", ORDER)
    assert resp.status_code == 200, resp.text
    assert resp.json() == SUMMARY
    error = function_error(invoke(api, "go-transform", {**ORDER, "items": []}))
    assert (error["type"], error["message"]) == (
        "ValidationError",
        "items must be a non-empty array",
    )


def test_returned_errors_and_panics_are_function_errors(api):
    deployed(api, "go", "go-panics", PANICS)
    error = function_error(invoke(api, "go-panics", {"fail": True}))
    assert (error["type"], error["message"]) == ("errorString", "asked to fail")
    error = function_error(invoke(api, "go-panics", {"a": 1}))
    assert error["type"] == "Panic"
    assert error["message"] == "runtime error: index out of range [1] with length 0"
    # The user's file had no package clause: //line keeps its line numbers.
    assert error["stack"] == ["at main.handler (handler.go:9)"]


def test_program_form(api):
    source = """package main

import (
	"encoding/json"
	"fmt"
	"os"
)

func main() {
	var event map[string]interface{}
	json.NewDecoder(os.Stdin).Decode(&event)
	var context map[string]interface{}
	json.Unmarshal([]byte(os.Getenv("NIMBUS_CONTEXT")), &context)
	out, _ := json.Marshal(map[string]interface{}{
		"argv0": os.Args[0], "event": event, "version": context["version"]})
	fmt.Print(string(out))
}
"""
    deployed(api, "go", "go-program", {"main.go": source})
    assert "compiling program form" in build_log(api, "go-program")
    resp = invoke(api, "go-program", {"x": 1})
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"argv0": "go-program", "event": {"x": 1}, "version": 1}


def test_compile_error_names_the_users_line(api):
    source = 'import "fmt"\n\nfunc handler(event interface{}) interface{} {\n\treturn x\n}\n'
    fn = create(api, "go", "go-broken", source)
    assert fn["status"] == "failed"
    error = fn["latest_build"]["error"]
    assert "./handler.go:4:9: undefined: x" in error
    assert '"fmt" imported and not used' in error


def test_a_wrong_handler_signature_is_explained(api):
    source = "func handler(event string) string {\n\treturn event\n}\n"
    fn = create(api, "go", "go-signature", source)
    assert fn["status"] == "failed"
    assert "handler has the wrong signature" in fn["latest_build"]["error"]


def test_a_failed_update_leaves_the_previous_version_serving(api):
    deployed(api, "go", "go-update", HELLO)
    build = update(api, "go-update", {"handler.go": HELLO.replace("name := ", "name = ")})
    assert build["status"] == "failed" and "handler.go:" in build["error"]
    fn = api.get("/api/v1/functions/go-update").json()
    assert fn["status"] == "active" and fn["active_version"] == 1 and fn["latest_version"] == 2
    assert invoke(api, "go-update", {"name": "still"}).json()["message"] == "Hello, still!"


VENDORED = {
    "go.mod": "module example.com/orders\n\ngo 1.22\n\nrequire github.com/acme/slug v1.0.0\n",
    "handler.go": (
        'import "github.com/acme/slug"\n\n'
        "func handler(event interface{}) interface{} {\n"
        '\treturn slug.Make(event.(map[string]interface{})["title"].(string))\n'
        "}\n"
    ),
    # as `go mod vendor` writes them
    "vendor/modules.txt": (
        "# github.com/acme/slug v1.0.0\n## explicit; go 1.22\ngithub.com/acme/slug\n"
    ),
    "vendor/github.com/acme/slug/slug.go": (
        'package slug\n\nimport "strings"\n\n'
        "func Make(s string) string {\n"
        '\treturn strings.Join(strings.Fields(strings.ToLower(s)), "-")\n'
        "}\n"
    ),
}


def test_third_party_modules_build_offline_when_vendored(api):
    deployed(api, "go", "go-vendored", VENDORED, handler="handler.handler")
    resp = invoke(api, "go-vendored", {"title": "  Big Summer   Sale "})
    assert resp.status_code == 200, resp.text
    assert resp.json() == "big-summer-sale"
    # Without vendor/ the module cannot be fetched: the error says what to send.
    unvendored = {k: v for k, v in VENDORED.items() if not k.startswith("vendor/")}
    fn = create(api, "go", "go-unvendored", unvendored, handler="handler.handler")
    assert fn["status"] == "failed"
    assert "run `go mod vendor`" in fn["latest_build"]["error"]
