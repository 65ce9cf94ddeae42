"""The `rust` builder with the real toolchain and the real jail; artifacts run in the sandbox.

The toolchain is the repository's (.cache/toolchains, installed by
scripts/toolchains/rust.sh on the first build if missing — minutes, once);
later builds start from the warm dependency build and take seconds.
"""

from __future__ import annotations

import re
from pathlib import Path

import orjson
import pytest

from compiler import BuildConfig, BuildFailed, BuildLog, BuildRequest, parse_build_errors
from compiler.runtimes import rust

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples" / "rust"
pytestmark = pytest.mark.timeout(1800)  # a fresh machine installs the toolchain first

HANDLER = """\
fn handler(event: serde_json::Value, context: &Context) -> Result<serde_json::Value, String> {
    let name = event["name"].as_str().unwrap_or("world");
    if name == "nobody" {
        return Err(format!("no greeting for {name}"));
    }
    if name == "crash" {
        let parts: Vec<&str> = Vec::new();
        eprintln!("about to index {} parts", parts.len());
        let third = parts[2];
        return Ok(serde_json::json!(third));
    }
    Ok(serde_json::json!({"hello": name, "function": context.function_name,
                          "version": context.version, "caller": context.get("user")}))
}
"""


@pytest.fixture(scope="module")
def builder() -> rust.RustBuilder:
    return rust.RustBuilder(BuildConfig(toolchains_dir=REPO / ".cache" / "toolchains"))


@pytest.fixture
def build(builder, tmp_path: Path):
    def build_(files: dict[str, str], handler=None, form=None, function_id="fn_rusttest"):
        out = tmp_path / f"out{len(list(tmp_path.glob('out*')))}"
        out.mkdir()
        request = BuildRequest(function_id, 1, "rust", handler, form, None, files=files)
        log = BuildLog(out / "build.log")
        try:
            result = builder.build(request, out, log)
        except BuildFailed as exc:
            exc.log = log.text()
            raise
        finally:
            log.close()
        return result, log.text()

    return build_


@pytest.fixture
def run(sandboxed):
    """Run a built module in the real sandbox, as the gateway would."""

    def run_(result, event: dict | None = None, context: dict | None = None, name="rust-fn"):
        return sandboxed(result.artifact, event, context, name)

    return run_


def _has_name_section(wasm: bytes) -> bool:
    return b"\x04name" in wasm  # the custom section's length-prefixed name


def test_handler_form_builds_and_runs(build, run):
    result, log = build({"handler.rs": HANDLER})
    assert result.kind == "module"
    assert result.runtime_version == f"rust {rust.RUST.version} (wasm32-wasip1)"
    assert "compiling handler.rs (handler form, fn handler)" in log
    assert _has_name_section(result.artifact.read_bytes())
    out = run(result, {"name": "Ada"}, {"invocation_id": "inv_1", "user": "u-7"})
    assert out.error is None, out.error
    assert orjson.loads(out.output) == {
        "hello": "Ada",
        "function": "rust-fn",
        "version": 3,
        "caller": "u-7",
    }


def test_err_and_panic_are_function_errors_naming_the_users_lines(build, run):
    result, _ = build({"handler.rs": HANDLER})
    error = run(result, {"name": "nobody"}).error
    assert (error.type, error.message) == ("Error", "no greeting for nobody")
    assert error.stack == ["at handler (handler.rs)"]

    crashed = run(result, {"name": "crash"})
    error = crashed.error
    assert error.type == "Panic"
    assert error.message == "index out of bounds: the len is 0 but the index is 2"
    line = HANDLER.splitlines().index("        let third = parts[2];") + 1
    assert error.stack[0].startswith(f"at handler.rs:{line}:")
    assert error.stack[1:] == ["in handler (handler.rs)"]
    assert b"about to index 0 parts" in crashed.logs
    assert b"\x1e" not in crashed.logs  # the record is not part of the log


@pytest.mark.parametrize("name", ["build.rs", 'my "first" fünction.rs'])
def test_a_lone_file_builds_whatever_its_name(build, run, name):
    """`nimbus deploy FILE.rs` sends the file under its own name: build.rs was refused as a
    build script, and a name outside [A-Za-z0-9_./-] could not be the function's file."""
    result, log = build({name: HANDLER})
    assert f"compiling {name} (handler form, fn handler)" in log
    assert orjson.loads(run(result, {"name": "Ada"}).output)["hello"] == "Ada"
    error = run(result, {"name": "crash"}).error
    line = HANDLER.splitlines().index("        let third = parts[2];") + 1
    assert error.stack[0].startswith(f"at {name}:{line}:")
    assert error.stack[1:] == [f"in handler ({name})"]


def test_a_file_name_stays_one_string_in_the_generated_rust():
    text = rust._fill_glue("main.rs", 'a\\"b{handler_fn}.rs', "handle")
    assert '#[path = "a\\\\\\"b{handler_fn}.rs"]\nmod handler;' in text


def test_a_handlers_println_is_log_never_result(build, run):
    source = (
        "fn handler(event: serde_json::Value, _c: &Context)"
        " -> Result<serde_json::Value, String> {\n"
        '    println!("debug: got {event}");\n'
        '    print!("no newline yet");\n'
        '    eprintln!("on stderr");\n'
        '    Ok(serde_json::json!({"ok": true}))\n'
        "}\n"
    )
    result, _ = build({"handler.rs": source})
    done = run(result, {"n": 1})
    assert done.error is None, done.logs
    assert done.output == b'{"ok":true}'
    assert b'debug: got {"n":1}\n' in done.logs and b"no newline yet" in done.logs
    assert b"on stderr\n" in done.logs


def test_examples_typed_events_and_error_types(build, run):
    hello, _ = build({"handler.rs": (EXAMPLES / "hello.rs").read_text()})
    out = run(hello, {"name": 'Ada "the first"'}, name="rust-hello")
    assert orjson.loads(out.output) == {
        "message": 'Hello, Ada "the first"!',
        "function": "rust-hello",
    }
    assert out.logs == b'greeting Ada "the first"\n'

    transform, _ = build({"handler.rs": (EXAMPLES / "transform.rs").read_text()})
    order = {
        "order_id": "A-1",
        "customer": {"email": "ADA@Example.com"},
        "items": [
            {"sku": "BK-1", "price": 4.5, "qty": 3},
            {"sku": "PN-2", "price": 1.25, "qty": 4},
        ],
        "coupon": {"code": "SAVE10", "percent": 10},
    }
    assert orjson.loads(run(transform, order).output) == {
        "order_id": "A-1",
        "customer": "ada@example.com",
        "currency": "EUR",
        "lines": [{"sku": "BK-1", "amount": 13.5}, {"sku": "PN-2", "amount": 5.0}],
        "item_count": 7,
        "subtotal": 18.5,
        "discount": 1.85,
        "total": 16.65,
    }
    error = run(transform, {**order, "items": []}).error
    assert (error.type, error.message) == ("ValidationError", "items must be a non-empty array")
    error = run(transform, {**order, "items": "many"}).error
    assert error.type == "EventError"
    assert 'invalid type: string "many", expected a sequence' in error.message


def test_program_form_detected_and_forced(build, run):
    program = """\
use std::io::Read;

fn main() {
    let mut event = String::new();
    std::io::stdin().read_to_string(&mut event).unwrap();
    let context: serde_json::Value =
        serde_json::from_str(&std::env::var("NIMBUS_CONTEXT").unwrap()).unwrap();
    let name = std::env::args().next().unwrap();
    print!("{}", serde_json::json!({"argv0": name, "event": event.trim(),
                                     "version": context["version"]}));
}
"""
    result, log = build({"main.rs": program})
    assert "compiling main.rs (program form)" in log
    assert orjson.loads(run(result, {"x": 1}, name="prog").output) == {
        "argv0": "prog",
        "event": '{"x":1}',
        "version": 3,
    }
    # A file with a main is a program unless `form` says otherwise.
    both = HANDLER + "\nfn main() {}\n"
    result, log = build({"handler.rs": both}, form="handler")
    assert "handler form" in log
    assert orjson.loads(run(result, {"name": "x"}).output)["hello"] == "x"


def test_modules_cargo_toml_and_handler_setting(build, run):
    files = {
        "Cargo.toml": '[package]\nname = "mine"\nedition = "2024"\n\n'
        '[dependencies]\nitoa = "1"\nserde_json = { version = "1" }\n\n'
        "[dev-dependencies]\nanything = '9'\n",
        "src/api.rs": "mod util;\n\n"
        "pub fn respond(event: serde_json::Value, _context: &Context)"
        " -> Result<serde_json::Value, String> {\n"
        '    Ok(serde_json::json!({"n": util::render(event["n"].as_u64().unwrap_or(0))}))\n}\n',
        "src/util.rs": "pub fn render(n: u64) -> String {\n"
        '    assert!(n < 1000, "too big: {n}");\n'
        "    itoa::Buffer::new().format(n).to_string()\n}\n",
    }
    result, log = build(files, handler="src/api.respond")
    assert "Cargo.toml: ignoring [dev-dependencies]" in log
    assert orjson.loads(run(result, {"n": 42}).output) == {"n": "42"}
    error = run(result, {"n": 5000}).error
    assert (error.type, error.message) == ("Panic", "too big: 5000")
    assert error.stack == ["at src/util.rs:2:5", "in respond (src/api.rs)"]


def test_compile_error_names_the_users_file_and_line(build):
    source = HANDLER.replace('let name = event["name"]', 'let name = evnt["name"]')
    with pytest.raises(BuildFailed) as failed:
        build({"handler.rs": source})
    message = failed.value.message
    assert "error[E0425]: cannot find value `evnt` in this scope" in message
    assert "--> handler.rs:2:16" in message
    assert ".nimbus" not in message and "/work" not in message
    assert "--> handler.rs:2:16" in failed.value.log


# A handler of 20 lines; each case breaks one line in its middle.
LONG_HANDLER = """\
#[derive(serde::Deserialize)]
struct Order {
    items: Vec<u64>,
    note: Option<String>,
}

fn total(items: &[u64]) -> u64 {
    items.iter().sum()
}

fn handler(order: Order, context: &Context) -> Result<serde_json::Value, String> {
    let sum = total(&order.items);
    if sum > 1000 {
        return Err(format!("order too large: {sum}"));
    }
    Ok(serde_json::json!({
        "total": sum, "note": order.note, "function": context.function_name,
    }))
}
"""


@pytest.mark.parametrize(
    ("broken", "replacement", "message", "line"),
    [
        # An unclosed `{`: rustc's message sat past the file's 20 lines, in the glue
        # appended to it ("--> handler.rs:28:3").
        (
            "    if sum > 1000 {\n",
            "    if sum > 1000 {\n    if sum > 0 {\n",
            "unclosed delimiter",
            20,
        ),
        # The handler's last `}` forgotten.
        ("    }))\n}\n", "    }))\n", "unclosed delimiter", 18),
        # A type error in the middle of the file (named right before this fix too).
        (
            "    let sum = total(&order.items);",
            "    let sum: String = total(&order.items);",
            "mismatched types",
            12,
        ),
    ],
    ids=["unclosed-if", "unclosed-fn", "type-error"],
)
def test_errors_name_the_users_file_and_line_never_the_glue(
    build, broken, replacement, message, line
):
    source = LONG_HANDLER.replace(broken, replacement)
    with pytest.raises(BuildFailed) as failed:
        build({"handler.rs": source})
    text = failed.value.message
    assert message in text
    found = parse_build_errors(text)
    assert [(e.file, e.line) for e in found][:1] == [("handler.rs", line)], text
    assert all(e.file == "handler.rs" and e.line <= source.count("\n") + 1 for e in found)
    # Nothing of the glue shows: not its lines, not the handler-shape note.
    assert "__nimbus_main" not in text and "nimbus::" not in text
    assert "a handler-form function is" not in text
    assert "__nimbus_main" not in failed.value.log


def test_a_handler_of_the_wrong_shape_says_what_it_should_be(build):
    with pytest.raises(BuildFailed) as failed:
        build({"handler.rs": "fn handler(event: serde_json::Value) -> String { String::new() }\n"})
    assert "note: a handler-form function is `fn handler(event: serde_json::Value" in (
        failed.value.message
    )
    with pytest.raises(BuildFailed, match=re.escape("handler.rs has no `fn handler`")):
        build({"handler.rs": "fn helper() {}\n"})


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        ({"handler.rs": HANDLER, "build.rs": "fn main() {}"}, "build.rs: build scripts"),
        (
            {"handler.rs": HANDLER, "Cargo.toml": "[build-dependencies]\ncc = '1'\n"},
            "`build-dependencies` is not supported",
        ),
        (
            {"handler.rs": HANDLER, "Cargo.toml": "[package]\nbuild = 'gen.rs'\n"},
            "`package.build` is not supported",
        ),
        (
            {"handler.rs": HANDLER, "Cargo.toml": "[lib]\nproc-macro = true\n"},
            "`lib` is not supported",
        ),
        (
            {"handler.rs": HANDLER, "Cargo.toml": "[dependencies]\nregex = '1'\n"},
            "the crate 'regex' is not available",
        ),
        (
            {"handler.rs": HANDLER, "Cargo.toml": "[dependencies]\nserde = { path = '/etc' }\n"},
            "'path' is not supported",
        ),
        (
            {"handler.rs": HANDLER, "Cargo.toml": "[profile.release]\nopt-level = 0\n"},
            "`profile` is not supported",
        ),
        ({"handler.rs": HANDLER, ".cargo/config.toml": ""}, "reserved for the platform"),
        ({"a.rs": "fn handler() {}", "b.rs": "fn main() {}"}, "cannot tell which file"),
        ({"README.md": "hi"}, "at least one .rs file"),
    ],
)
def test_refused_before_anything_runs(build, files, expected):
    with pytest.raises(BuildFailed, match=re.escape(expected)):
        build(files)


def test_hostile_sources_cannot_read_the_host(build):
    with pytest.raises(BuildFailed) as failed:
        build({"handler.rs": HANDLER + 'const HOST: &str = include_str!("/etc/hostname");\n'})
    assert "couldn't read `/etc/hostname`" in failed.value.message
    assert f"--> handler.rs:{HANDLER.count(chr(10)) + 1}:" in failed.value.message
    with pytest.raises(BuildFailed) as failed:
        build({"handler.rs": HANDLER + 'const HOME: &str = env!("HOME");\n'})
    assert "environment variable `HOME` not defined at compile time" in failed.value.message


def test_a_compile_that_never_ends_or_eats_memory_is_stopped(builder, tmp_path):
    builder.prepare(BuildLog(tmp_path / "prepare.log"))  # the warm build, under normal limits
    tight = rust.RustBuilder(
        BuildConfig(toolchains_dir=builder.config.toolchains_dir, timeout_sec=10, memory_mb=512)
    )
    endless = (
        "#![allow(long_running_const_eval)]\n"
        "const SPIN: u64 = { let mut i = 1u64; loop { i = i.wrapping_add(1);"
        " if i == 0 { break i; } } };\n" + HANDLER
    )
    hungry = "const BIG: [u8; 1 << 30] = [7; 1 << 30];\n" + HANDLER
    for name, source, expected in (
        ("endless", endless, "build timed out after 10 s"),
        ("hungry", hungry, "tried to allocate more memory than available to compiler"),
    ):
        out = tmp_path / name
        out.mkdir()
        request = BuildRequest("fn_h", 1, "rust", None, None, None, files={"handler.rs": source})
        with pytest.raises(BuildFailed, match=expected):
            tight.build(request, out, BuildLog(out / "build.log"))


def test_cache_key_follows_what_the_artifact_is_made_from(builder):
    def key(files, **kw):
        fields = {"handler": None, "form": None, **kw}
        return builder.cache_key(
            BuildRequest("fn_a", 1, "rust", fields["handler"], fields["form"], None, files=files)
        )

    base = key({"handler.rs": HANDLER})
    assert base == key({"handler.rs": HANDLER})
    assert base != key({"handler.rs": HANDLER + "\n"})
    assert base == key({"handler.rs": HANDLER}, handler="handler.rs")  # the same handler
    assert base != key({"handler.rs": HANDLER}, form="program")
    other = HANDLER.replace("fn handler(", "fn other(")
    assert key({"handler.rs": other}, handler="other") != key({"handler.rs": HANDLER})
