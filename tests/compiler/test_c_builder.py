"""The `c` builder with the real zig toolchain: forms, glue, messages, hostile sources."""

from __future__ import annotations

import subprocess

import orjson
import pytest
import wasmtime

import compiler
from compiler import BuildConfig, BuildFailed, BuildLog, BuildRequest, parse_build_errors
from tests.compiler.wasi import custom_sections, run
from tests.e2e.server import REPO

EXAMPLES = REPO / "examples" / "c"


def build(tmp_path, files, *, form=None, handler=None, config=None, target=None):
    if isinstance(files, str):
        files = {"handler.c": files}
    out = tmp_path / "out"
    out.mkdir(parents=True, exist_ok=True)
    log = BuildLog(tmp_path / "build.log")
    request = BuildRequest("fn_c", 1, "c", handler, form, target, files=files)
    try:
        builder = compiler.builder_for("c", config or BuildConfig())
        return builder.build(request, out, log), log.text()
    finally:
        log.close()


def test_handler_form_with_the_glue(tmp_path, sandboxed):
    result, log = build(tmp_path, (EXAMPLES / "hello.c").read_text())
    assert result.kind == "module" and result.runtime_version.startswith("c (zig 0.")
    assert "(handler form)" in log
    done = sandboxed(result.artifact, {"name": "Ada"}, name="greeter")
    assert done.error is None, done.logs
    assert orjson.loads(done.output) == {"message": "Hello, Ada!", "function": "greeter"}
    assert done.logs == b"greeting Ada\n"


def test_a_handlers_printf_is_log_never_result(tmp_path, sandboxed):
    source = (
        "#include <stdio.h>\n#include <string.h>\n"
        "char *handler(const char *event_json, const char *context_json) {\n"
        '    printf("debug: got %s\\n", event_json);\n'
        '    printf("no newline yet");\n'
        '    fprintf(stderr, "on stderr\\n");\n'
        '    return strdup("{\\"ok\\":true}");\n'
        "}\n"
    )
    result, _ = build(tmp_path, source)
    done = sandboxed(result.artifact, {"n": 1})
    assert done.error is None, done.logs
    assert done.output == b'{"ok":true}'
    assert b'debug: got {"n":1}\n' in done.logs and b"no newline yet" in done.logs
    assert b"on stderr\n" in done.logs


def test_names_are_kept_and_debug_info_dropped(tmp_path):
    result, _ = build(tmp_path, (EXAMPLES / "hello.c").read_text())
    sections = custom_sections(result.artifact)
    assert "name" in sections
    assert not [s for s in sections if s.startswith(".debug")]
    assert result.artifact.stat().st_size < 200_000


def test_memory_starts_small_with_a_one_mib_stack(tmp_path):
    # The pool resets up to POOL_KEEP_RESIDENT_KB of a memory after every call, touched
    # or not: zig's default 16 MiB stack made that 0.75 ms of CPU per call.
    result, _ = build(tmp_path, (EXAMPLES / "hello.c").read_text())
    module = wasmtime.Module.from_file(wasmtime.Engine(), result.artifact)
    (memory,) = [e.type for e in module.exports if isinstance(e.type, wasmtime.MemoryType)]
    assert memory.limits.min * 64 * 1024 <= 2 * 1024 * 1024


def test_a_stack_overflow_is_a_clean_error_not_corruption(tmp_path, sandboxed):
    source = (
        "#include <string.h>\n"
        "static int deep(int n) {\n"
        "    volatile char frame[64 * 1024];\n"
        "    memset((char *)frame, n, sizeof frame);\n"
        "    return n == 0 ? frame[7] : deep(n - 1) + frame[n];\n"
        "}\n"
        "char *handler(const char *event_json, const char *context_json) {\n"
        '    return deep(event_json[0] == \'{\' ? 40 : 1) ? strdup("{}") : strdup("{}");\n'
        "}\n"
    )
    result, _ = build(tmp_path, source)
    done = sandboxed(result.artifact, {"n": 1})
    assert done.error is not None and done.output in (b"", None), done
    assert done.error.type == "Trap", done.error


def test_native_target_links_libm_and_keeps_printf_out_of_the_result(tmp_path):
    """The same glue in a static Linux binary (run in a container in production; the
    binary is run directly here): <math.h> links, and the result is stdout alone."""
    source = (
        "#include <math.h>\n#include <stdio.h>\n#include <stdlib.h>\n#include <string.h>\n"
        "char *handler(const char *event_json, const char *context_json) {\n"
        '    printf("rounding\\n");\n'
        "    char *out = malloc(32);\n"
        '    snprintf(out, 32, "%lld", llround(strlen(event_json) * 0.75));\n'
        "    return out;\n"
        "}\n"
    )
    result, log = build(tmp_path, source, target="native")
    assert result.kind == "native", log
    done = subprocess.run(
        [str(result.artifact)], input=b"{}", capture_output=True, timeout=10, env={}
    )
    assert (done.returncode, done.stdout, done.stderr) == (0, b"2", b"rounding\n")


def test_error_record_from_nimbus_set_error(tmp_path, sandboxed):
    source = (
        "#include <stdio.h>\n"
        "char *handler(const char *event_json, const char *context_json) {\n"
        '    printf("checking the quota\\n");\n'
        '    nimbus_set_error_type("QuotaError", "used %d of %d", 11, 10);\n'
        "    return NULL;\n"
        "}\n"
    )
    result, _ = build(tmp_path, source)
    done = sandboxed(result.artifact)
    assert done.output == b""
    assert done.logs == b"checking the quota\n"  # printed before the record, not in it
    error = done.error
    assert (error.type, error.message, error.stack) == (
        "QuotaError",
        "used 11 of 10",
        ["at handler (handler.c:4)"],
    )


def test_null_without_an_error_is_still_an_error(tmp_path, sandboxed):
    result, _ = build(tmp_path, "char *handler(const char *e, const char *c) { return 0; }\n")
    error = sandboxed(result.artifact).error
    assert error.message == "handler returned NULL without calling nimbus_set_error"


def test_program_form_is_detected_and_can_be_forced(tmp_path):
    program = '#include <stdio.h>\nint main(void) { printf("{\\"ok\\":true}"); return 3; }\n'
    result, log = build(tmp_path, {"main.c": program})
    assert "(program form)" in log
    done = run(result.artifact, {}, tmp_path)
    assert (done.code, done.json()) == (3, {"ok": True})
    with pytest.raises(BuildFailed, match=r"redefinition of 'main'|duplicate symbol: main"):
        build(tmp_path / "forced", {"main.c": program}, form="handler")


def test_several_files_and_a_named_handler(tmp_path, sandboxed):
    files = {
        "util.h": "int twice(int x);\n",
        "util.c": '#include "util.h"\nint twice(int x) { return 2 * x; }\n',
        "handler.c": (
            '#include <stdio.h>\n#include <stdlib.h>\n#include "util.h"\n'
            "char *Handle(const char *e, const char *c) {\n"
            "    char *out = malloc(16);\n"
            '    snprintf(out, 16, "%d", twice(21));\n'
            "    return out;\n}\n"
        ),
    }
    result, _ = build(tmp_path, files, handler="handler.Handle")
    assert sandboxed(result.artifact).output == b"42"


def test_compile_errors_name_the_users_file_and_line(tmp_path):
    source = "char *handler(const char *e, const char *c) {\n    return undefined_thing;\n}\n"
    with pytest.raises(BuildFailed) as failed:
        build(tmp_path, source)
    assert failed.value.message.startswith("compile error:\n")
    assert "handler.c:2:12: error: use of undeclared identifier 'undefined_thing'" in (
        failed.value.message
    )


def test_a_wrong_handler_signature_is_a_compile_error_at_its_line(tmp_path):
    with pytest.raises(BuildFailed) as failed:
        build(tmp_path, "char *handler(int x) { return 0; }\n")
    message = failed.value.message
    assert "handler.c:1:7: error: conflicting types for 'handler'" in message
    # The note names the glue's prototype where the jail shows it, not the server's
    # folders (it read "/work/…/compiler/glue/c/nimbus.h:26:7").
    assert "/nimbus/glue/c/nimbus.h:" in message and "note: previous declaration" in message
    log = (tmp_path / "build.log").read_text()
    assert str(REPO) not in message and str(REPO) not in log
    assert [(e.file, e.line) for e in parse_build_errors(message)] == [("handler.c", 1)]


def test_include_of_a_host_file_finds_nothing(tmp_path):
    source = '#include "/etc/passwd"\nchar *handler(const char *e, const char *c) { return 0; }\n'
    with pytest.raises(BuildFailed) as failed:
        build(tmp_path, source)
    assert "'/etc/passwd' file not found" in failed.value.message
    assert "root:" not in failed.value.message


_BOMB = "".join(f"#define A{i + 1} A{i} A{i}\n" for i in range(30))
BOMB = f"#define A0 x+x\n{_BOMB}int x;\nint y = A30;\n" + (
    "char *handler(const char *e, const char *c) { return 0; }\n"
)


def test_a_compile_that_eats_memory_is_stopped(tmp_path):
    with pytest.raises(BuildFailed, match=r"ran out of memory|was killed|timed out"):
        build(tmp_path, BOMB, config=BuildConfig(memory_mb=256, timeout_sec=60))


def test_a_compile_that_never_ends_times_out(tmp_path):
    with pytest.raises(BuildFailed, match="build timed out after 3 s"):
        build(tmp_path, BOMB, config=BuildConfig(memory_mb=8192, timeout_sec=3))


@pytest.mark.parametrize(
    "files, message",
    [
        ({"notes.txt": "hi"}, "at least one .c file"),
        ({"../escape.c": "int x;"}, "invalid file name"),
        ({"/abs.c": "int x;"}, "invalid file name"),
        ({".nimbus/x.c": "int x;"}, "invalid file name"),
        # A compiler would read these as options / a response file of options.
        ({"handler.c": "int x;", "-wrapper": "x"}, "invalid file name"),
        ({"handler.c": "int x;", "@opts.c": "-wrapper x"}, "invalid file name"),
        ({"handler.c": "int x;", "sub/-o.c": "int y;"}, "invalid file name"),
        # Were internal build errors naming the server's build folder (ENAMETOOLONG,
        # EEXIST); a line break split the compiler's messages.
        ({"handler.c": "int x;", "a" * 300 + ".c": ""}, "is too long"),
        ({"handler.c": "int x;", "handler.c/x.h": ""}, "'handler.c' is both a file and a folder"),
        ({"handler.c": "int x;", "a\nb.c": ""}, "invalid file name"),
    ],
)
def test_bad_file_sets(tmp_path, files, message):
    with pytest.raises(BuildFailed, match=message):
        build(tmp_path, files)


def test_cache_key_follows_what_the_artifact_is_made_from():
    builder = compiler.builder_for("c")
    source = "char *handler(const char *e, const char *c) { return 0; }"

    def key(function_id="fn", **changes):
        fields = dict(handler=None, form=None, target=None, files={"handler.c": source})
        fields.update(changes)
        return builder.cache_key(BuildRequest(function_id, 1, "c", **fields))

    assert key() == key() == key(function_id="fn_other")
    assert key(files={"handler.c": "int main(void) { return 0; }"}) != key()
    assert key(files={"handler.c": source, "extra.h": ""}) != key()
    assert key(handler="other") != key()
    assert key(form="program") != key()
