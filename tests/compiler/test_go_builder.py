"""The `go` builder with the real Go toolchain: forms, glue, //line, messages."""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

import pytest

import compiler
from compiler import BuildConfig, BuildFailed, BuildLog, BuildRequest
from compiler._toolchains import Toolchains, copy_tree
from compiler.runtimes import go as go_runtime
from compiler.runtimes.go import as_main_package, left_out
from tests.compiler.wasi import custom_sections, run
from tests.e2e.server import REPO

EXAMPLES = REPO / "examples" / "go"


def build(tmp_path, files, *, form=None, handler=None, target=None, config=None):
    if isinstance(files, str):
        files = {"handler.go": files}
    out = tmp_path / "out"
    out.mkdir(parents=True, exist_ok=True)
    log = BuildLog(tmp_path / "build.log")
    request = BuildRequest("fn_go", 1, "go", handler, form, target, files=files)
    try:
        builder = compiler.builder_for("go", config or BuildConfig())
        return builder.build(request, out, log), log.text()
    finally:
        log.close()


ERRORS = """\
import (
	"errors"
	"fmt"
)

type QuotaError struct{ Used int }

func (e *QuotaError) Error() string { return fmt.Sprintf("used %d", e.Used) }

func handler(event interface{}, context map[string]string) (interface{}, error) {
	fmt.Println("prints are the log")
	switch event.(map[string]interface{})["do"] {
	case "plain":
		return nil, errors.New("plain failure")
	case "typed":
		return nil, &QuotaError{11}
	case "panic":
		panic("gave up")
	}
	return context, nil
}
"""


def test_handler_form_without_package_clause(tmp_path):
    result, log = build(tmp_path, (EXAMPLES / "hello.go").read_text())
    assert result.kind == "module" and result.runtime_version.startswith("go 1.")
    assert "compiling handler form" in log
    done = run(result.artifact, {"name": "Ada"}, tmp_path, {"function_name": "greeter"})
    assert done.code == 0, done.stderr
    assert done.json() == {"message": "Hello, Ada!", "function": "greeter"}
    assert done.stderr == "greeting Ada\n"
    assert "name" in custom_sections(result.artifact)


def test_errors_and_panics_become_error_records(tmp_path):
    result, _ = build(tmp_path, ERRORS)
    ok = run(result.artifact, {"do": "nothing"}, tmp_path, {"version": 3, "tenant": "acme"})
    assert ok.stderr == "prints are the log\n"
    assert ok.json() == {"function_name": "fn-name", "deadline_ms": "1", "version": "3",
                         "tenant": "acme"}  # fmt: skip
    assert run(result.artifact, {"do": "plain"}, tmp_path).record() == {
        "type": "errorString", "message": "plain failure", "stack": []}  # fmt: skip
    typed = run(result.artifact, {"do": "typed"}, tmp_path).record()
    assert (typed["type"], typed["message"]) == ("QuotaError", "used 11")
    panicked = run(result.artifact, {"do": "panic"}, tmp_path).record()
    assert (panicked["type"], panicked["message"]) == ("Panic", "gave up")
    assert panicked["stack"] == ["at main.handler (handler.go:18)"]


def test_any_json_value_is_an_event(tmp_path):
    result, _ = build(tmp_path, (EXAMPLES / "hello.go").read_text())
    done = run(result.artifact, "a string", tmp_path)
    assert done.json() == {"message": "Hello, world!", "function": "fn-name"}


@pytest.mark.parametrize(
    "signature",
    [
        "func handler(event interface{}, context map[string]string) interface{} { return 1 }",
        "func handler(event any, context map[string]string) (any, error) { return 1, nil }",
        "func handler(event interface{}) interface{} { return 1 }",
        "func handler(event interface{}) (interface{}, error) { return 1, nil }",
    ],
)
def test_every_handler_signature_builds(tmp_path, signature):
    result, _ = build(tmp_path, signature + "\n")
    if "(event interface{}) interface{}" in signature:  # PERF(tests): Go modules load slowly
        assert run(result.artifact, {}, tmp_path).json() == 1


def test_a_wrong_signature_and_a_missing_handler_are_explained(tmp_path):
    with pytest.raises(BuildFailed, match="handler has the wrong signature for a handler"):
        build(tmp_path, "func handler(event string) string { return event }\n")
    with pytest.raises(BuildFailed, match="no function Handle in the Go source"):
        build(tmp_path / "named", "func handler(event any) any { return 1 }\n", handler="Handle")


def test_program_form_and_other_package_names(tmp_path):
    program = 'package tool\n\nimport "fmt"\n\nfunc main() { fmt.Print(`{"ok":true}`) }\n'
    result, log = build(tmp_path, {"main.go": program})
    assert "compiling program form" in log
    assert run(result.artifact, {}, tmp_path).json() == {"ok": True}


def test_compile_errors_keep_the_users_lines(tmp_path):
    source = "// a comment\n\nfunc handler(event any) any {\n\treturn undefinedThing\n}\n"
    with pytest.raises(BuildFailed) as failed:
        build(tmp_path, source)
    assert "./handler.go:4:9: undefined: undefinedThing" in failed.value.message
    assert not failed.value.message.splitlines()[1].startswith("#")


def test_a_file_its_build_constraint_leaves_out_fails_without_the_servers_path(tmp_path):
    """go build names the folder it built in: the message showed the server's build path."""
    source = "//go:build linux\n\npackage main\n\nfunc main() {}\n"
    with pytest.raises(BuildFailed) as failed:
        build(tmp_path, source, form="program")
    message = failed.value.message
    assert "build constraints exclude all Go files in ." in message
    assert str(tmp_path) not in message and str(tmp_path.resolve()) not in message


def test_no_module_downloads(tmp_path):
    source = 'import "github.com/example/lib"\n\nfunc handler(e any) any { return lib.X }\n'
    with pytest.raises(BuildFailed, match=r"github\.com/example/lib"):
        build(tmp_path, source)


def test_as_main_package_keeps_line_numbers():
    wrapped = "package main\n//line a.go:1:1\nfunc f() {}\n"
    assert as_main_package("a.go", "func f() {}\n") == wrapped
    text = "// Doc.\n/* block */\npackage handlers // trailing\n\nfunc f() {}\n"
    assert as_main_package("a.go", text) == text.replace("package handlers", "package main")
    assert as_main_package("a.go", "package main\n") == "package main\n"


PANICS = """\
func handler(event any) any {
	if event == nil {
		return undefinedThing
	}
	panic("gave up")
}
"""


@pytest.mark.parametrize(
    ("name", "text", "line"),
    [
        ("handler_test.go", "package handlers\n\n" + PANICS, 7),
        ("main_linux.go", PANICS, 5),
        ("_draft.go", "// notes\npackage main\n\n" + PANICS, 8),
        ("x_wasip1.go", PANICS, 5),  # the target's own suffix: go build takes it
    ],
    ids=["handler_test.go", "main_linux.go", "_draft.go", "x_wasip1.go"],
)
def test_a_lone_file_go_build_would_leave_out_builds_under_its_own_name(tmp_path, name, text, line):
    """go build skips `*_test.go`, `_x.go` and `x_linux.go` on wasip1: deployed alone, such a
    file built only the glue ("no function handler in the Go source")."""
    result, log = build(tmp_path, {name: text.replace("return undefinedThing", "return 1")})
    panicked = run(result.artifact, {"x": 1}, tmp_path).record()
    assert (panicked["message"], panicked["stack"]) == (
        "gave up", [f"at main.handler ({name}:{line})"])  # fmt: skip
    assert run(result.artifact, None, tmp_path).json() == 1
    assert ("built as the function's only file" in log) == (name != "x_wasip1.go")
    with pytest.raises(BuildFailed) as failed:
        build(tmp_path / "broken", {name: text})
    assert f"{name}:{line - 2}:10: undefined: undefinedThing" in failed.value.message


def test_a_file_go_build_leaves_out_among_others_stays_out(tmp_path):
    """Go's own platform split: util_windows.go is not built for wasip1, and says so."""
    windows_only = "package main\n\nfunc helper() int { return syscallOnlyOnWindows }\n"
    files = {"handler.go": (EXAMPLES / "hello.go").read_text(), "util_windows.go": windows_only}
    result, log = build(tmp_path, files)
    assert run(result.artifact, {"name": "Ada"}, tmp_path).json()["message"] == "Hello, Ada!"
    assert (
        "util_windows.go left out: go builds *_windows.go files only for windows, "
        "Nimbus for wasip1/wasm"
    ) in log


def test_when_go_build_would_leave_out_every_file_the_build_names_them(tmp_path):
    files = {"handler_test.go": "func handler(e any) any { return 1 }\n", "b_js.go": ""}
    with pytest.raises(BuildFailed) as failed:
        build(tmp_path, files)
    assert failed.value.message == (
        "go build would leave out every .go file: b_js.go (go builds *_js.go files only for "
        "js, Nimbus for wasip1/wasm), handler_test.go (go builds *_test.go files only as "
        "tests). Rename the one to build, e.g. to handler.go"
    )


@pytest.mark.parametrize(
    ("name", "wasm", "native"),
    [
        ("handler.go", None, None),
        ("linux.go", None, None),  # no prefix: not a constraint
        ("x_wasip1.go", None, "only for wasip1, Nimbus for linux/amd64"),
        ("x_wasm.go", None, "only for wasm, Nimbus for linux/amd64"),
        ("x_linux.go", "only for linux, Nimbus for wasip1/wasm", None),
        ("x_linux_amd64.go", "only for linux/amd64, Nimbus for wasip1/wasm", None),
        ("x_linux_arm64.go", "only for linux/arm64, Nimbus for wasip1/wasm", "linux/arm64"),
        ("x_windows_test.go", "only as tests", "only as tests"),
        ("x_linux.v2.go", "only for linux", None),  # go/build cuts the name at its first dot
        ("x_linux_windows.go", "only for windows", "only for windows"),
        ("my_handler.go", None, None),
        ("x_unix.go", None, None),  # unix is a build tag, never a file suffix
        (".hidden.go", "start with '_' or '.'", "start with '_' or '.'"),
    ],
)
def test_left_out_follows_go_builds_file_name_rules(name, wasm, native):
    for target, expected in (("wasm", wasm), ("native", native)):
        reason = left_out(name, target)
        assert (reason is None) if expected is None else (expected in reason), (target, reason)


def test_native_target_is_a_static_linux_binary_with_the_same_glue(tmp_path):
    """`"target": "native"`: run in a container in production; run directly here."""
    result, log = build(tmp_path, ERRORS, target="native")
    assert result.kind == "native", log
    assert result.runtime_version.endswith("(native x86-64, static)")
    assert "GOOS=linux GOARCH=amd64" in log
    done = subprocess.run(
        [str(result.artifact)],
        input=b'{"n": 1}',
        capture_output=True,
        timeout=30,
        env={"NIMBUS_CONTEXT": '{"function_name": "fn"}'},
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["function_name"] == "fn"
    assert done.stderr == b"prints are the log\n"  # never in the result
    failed = subprocess.run(
        [str(result.artifact)], input=b'{"do": "typed"}', capture_output=True, timeout=30, env={}
    )
    assert failed.returncode != 0 and failed.stdout == b""
    record = json.loads(failed.stderr.rsplit(b"\x1e", 1)[1])
    assert (record["type"], record["message"]) == ("QuotaError", "used 11")


# What a compiler bug could make `go build` do in its jail: every way of changing
# an entry of the shared warm cache, or of keeping a handle to write through later.
ATTACK = """
shared=$1
body=$(find "$shared" -name '*-d' -size +1k | head -n 1)
record=$(find "$shared" -name '*-a' | head -n 1)
[ -n "$body" ] && [ -n "$record" ] || { echo "the shared cache is not visible"; exit 0; }
try() { if "$@" 2>/dev/null; then echo "ALLOWED: $*"; else echo "refused: $*"; fi; }
try sh -c "echo poison > $body"
try sh -c "echo poison >> $record"
try truncate -s 0 "$body"
try chmod 666 "$body"
try touch "$body"
try mv "$body" "$body.old"
try rm -f "$record"
try ln "$body" "$HOME/link"
try ln -s "$HOME" "$shared/link"
try mkdir "$shared/poison"
try cp "$record" "$shared/00/"
"""
ATTEMPTS = ATTACK.count("\ntry ")


def _snapshot(folder: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        info = path.lstat()
        digest.update(f"{path.relative_to(folder)} {info.st_mode} {info.st_mtime_ns}\n".encode())
        if path.is_file():
            digest.update(path.read_bytes())
    return digest.hexdigest()


@pytest.fixture
def own_toolchains(tmp_path):
    """A toolchains folder with the real Go and a copy of its warm cache, for a test that
    attacks the cache: if the attack got through, it would spoil only this copy."""
    log = BuildLog(tmp_path / "prepare.log")
    real = BuildConfig()
    warm = compiler.builder_for("go", real).prepare(log)
    log.close()
    root = tmp_path / "toolchains"
    home = Toolchains(real).home(go_runtime.GO)
    root.mkdir()
    (root / home.name).symlink_to(home)
    copy_tree(warm, root / warm.relative_to(real.toolchains_dir))
    return BuildConfig(toolchains_dir=root)


def test_a_build_cannot_change_the_shared_cache_the_next_build_reads(
    tmp_path, monkeypatch, own_toolchains
):
    """Builds read the warm cache in place: the jail must keep it read-only for them."""
    log = BuildLog(tmp_path / "prepare.log")
    warm = compiler.builder_for("go", own_toolchains).prepare(log)
    log.close()
    before = _snapshot(warm)
    report: list[str] = []
    jail = go_runtime.run_jailed

    def compromised(cmd, **jailed):  # the attack first, in the very jail the build gets
        lines: list[str] = []
        jail(["/bin/sh", "-c", ATTACK, "attack", str(warm)], **{**jailed, "output": lines})
        report.extend(lines)
        return jail(cmd, **jailed)

    monkeypatch.setattr(go_runtime, "run_jailed", compromised)
    hello = (EXAMPLES / "hello.go").read_text()
    build(tmp_path / "attacked", hello, config=own_toolchains)
    monkeypatch.undo()

    assert [line for line in report if not line.startswith("refused: ")] == []
    assert len(report) == ATTEMPTS
    assert _snapshot(warm) == before
    result, _ = build(tmp_path / "next", hello, config=own_toolchains)
    done = run(result.artifact, {"name": "Ada"}, tmp_path)
    assert done.json() == {"message": "Hello, Ada!", "function": "fn-name"}
