"""C functions end to end: a real server on the local store, the real zig toolchain."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

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
    log_lines,
    serving,
    update,
)

pytestmark = pytest.mark.timeout(900)  # a fresh machine installs zig on the first build

HELLO = (EXAMPLES / "c" / "hello.c").read_text()
TRANSFORM = (EXAMPLES / "c" / "transform.c").read_text()


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    with serving(tmp_path_factory) as client:
        yield client


def test_handler_form_hello(api):
    fn = deployed(api, "c", "c-hello", HELLO)
    assert fn["runtime_version"].startswith("c (zig ")
    resp = invoke(api, "c-hello", {"name": 'Ada "the first"'})
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"message": 'Hello, Ada "the first"!', "function": "c-hello"}
    assert "compiling handler.c (handler form)" in build_log(api, "c-hello")


def test_transform_example_and_its_validation_error(api):
    deployed(api, "c", "c-transform", TRANSFORM)
    resp = invoke(api, "c-transform", ORDER)
    assert resp.status_code == 200, resp.text
    assert resp.json() == SUMMARY
    error = function_error(invoke(api, "c-transform", {**ORDER, "items": []}))
    assert error["type"] == "ValidationError"
    assert error["message"] == "items must be a non-empty array"
    line = TRANSFORM.splitlines().index(
        '    nimbus_set_error_type("ValidationError", "%s", message);'
    )
    assert error["stack"] == [f"at fail (handler.c:{line + 1})"]


def test_a_handlers_printf_goes_to_the_log_not_the_result(api):
    source = (
        "#include <stdio.h>\n#include <string.h>\n"
        "char *handler(const char *event_json, const char *context_json) {\n"
        '    printf("debug: handling %s\\n", event_json);\n'
        '    return strdup("{\\"answer\\":42}");\n'
        "}\n"
    )
    deployed(api, "c", "c-prints", source)
    resp = invoke(api, "c-prints", {"q": 1})
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"answer": 42}
    assert log_lines(api, "c-prints", resp) == ['debug: handling {"q":1}']


def test_nimbus_set_error_is_a_function_error_with_its_message(api):
    source = (
        "#include <stdio.h>\n"
        "char *handler(const char *event_json, const char *context_json) {\n"
        '    fprintf(stderr, "about to fail\\n");\n'
        '    nimbus_set_error("no %s today", "luck");\n'
        "    return NULL;\n"
        "}\n"
    )
    deployed(api, "c", "c-fails", source)
    resp = invoke(api, "c-fails")
    error = function_error(resp)
    assert (error["type"], error["message"]) == ("Error", "no luck today")
    assert error["stack"] == ["at handler (handler.c:4)"]
    logs = api.get("/api/v1/functions/c-fails/logs", params={"limit": 50})
    assert logs.status_code == 200


def test_program_form_reads_stdin_and_the_context(api):
    source = (
        '#include <stdio.h>\n#include <stdlib.h>\n#include "nimbus.h"\n'
        "int main(int argc, char **argv) {\n"
        "    char event[256] = {0};\n"
        "    fread(event, 1, sizeof event - 1, stdin);\n"
        '    nimbus_json *context = nimbus_json_parse(getenv("NIMBUS_CONTEXT"));\n'
        '    printf("{\\"argv0\\":\\"%s\\",\\"event\\":%s,\\"version\\":%g}", argv[0], event,\n'
        '           nimbus_json_number(nimbus_json_get(context, "version"), -1));\n'
        "    return 0;\n"
        "}\n"
    )
    fn = deployed(api, "c", "c-program", {"main.c": source})
    assert "program form" in build_log(api, "c-program")
    resp = invoke(api, "c-program", {"x": 1})
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"argv0": "c-program", "event": {"x": 1}, "version": 1}
    assert fn["active_version"] == 1


def test_compile_error_names_the_users_line(api):
    source = "char *handler(const char *e, const char *c) {\n    int x = 1\n    return 0;\n}\n"
    fn = create(api, "c", "c-broken", source)
    assert fn["status"] == "failed"
    error = fn["latest_build"]["error"]
    assert error.startswith("compile error:")
    assert "handler.c:2:14: error: expected ';'" in error


def test_a_failed_update_leaves_the_previous_version_serving(api):
    deployed(api, "c", "c-update", HELLO)
    build = update(api, "c-update", {"handler.c": HELLO.replace("nimbus_buf out", "nimbus_buf")})
    assert build["status"] == "failed" and "handler.c:" in build["error"]
    fn = api.get("/api/v1/functions/c-update").json()
    assert fn["status"] == "active" and fn["active_version"] == 1 and fn["latest_version"] == 2
    assert invoke(api, "c-update", {"name": "still"}).json()["message"] == "Hello, still!"


def test_an_unchanged_function_is_not_rebuilt(api):
    deployed(api, "c", "c-cache-1", HELLO)
    started = time.monotonic()
    fn = deployed(api, "c", "c-cache-2", HELLO)
    assert "unchanged since the build of" in build_log(api, "c-cache-2")
    assert "compiling" not in build_log(api, "c-cache-2")
    assert time.monotonic() - started < 10
    first = api.get("/api/v1/functions/c-cache-1").json()
    assert fn["runtime_version"] == first["runtime_version"]
    assert invoke(api, "c-cache-2", {"name": "twin"}).json()["function"] == "c-cache-2"


def test_a_hostile_include_fails_the_build_without_reading_the_file(api):
    source = '#include "/etc/passwd"\nchar *handler(const char *e, const char *c) { return 0; }\n'
    fn = create(api, "c", "c-hostile", source)
    assert fn["status"] == "failed"
    assert "'/etc/passwd' file not found" in fn["latest_build"]["error"]
    assert "root:" not in build_log(api, "c-hostile")


def test_four_concurrent_builds_all_finish(api):
    def make(i: int) -> dict:
        source = HELLO.replace('"Hello, %s!"', f'"Hello {i}, %s!"')
        return create(api, "c", f"c-many-{i}", source)

    with ThreadPoolExecutor(4) as pool:
        made = list(pool.map(make, range(4)))
    assert [fn["status"] for fn in made] == ["active"] * 4, made
    for i in range(4):
        assert invoke(api, f"c-many-{i}", {"name": "x"}).json()["message"] == f"Hello {i}, x!"


def test_a_trap_names_the_functions_on_its_stack(api):
    source = (
        "__attribute__((noinline)) static void explode(void) { __builtin_trap(); }\n"
        "char *handler(const char *e, const char *c) { explode(); return 0; }\n"
    )
    deployed(api, "c", "c-trap", source)
    error = function_error(invoke(api, "c-trap"))
    assert error["type"] == "Unreachable"
    frames = " ".join(error["stack"])
    assert "explode" in frames and "handler" in frames, error
