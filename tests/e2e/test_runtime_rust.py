"""Rust functions end to end: a real `nimbus serve` on the local store, the real toolchain.

The toolchain and its warm dependency build live in the repository's
.cache/toolchains (`make install`); a fresh machine installs them on the first
build, which takes minutes once.
"""

from __future__ import annotations

import time

import httpx
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
    update,
)

pytestmark = pytest.mark.timeout(1800)

HELLO = (EXAMPLES / "rust" / "hello.rs").read_text()
TRANSFORM = (EXAMPLES / "rust" / "transform.rs").read_text()


@pytest.fixture
def api(make_server) -> httpx.Client:
    server = make_server().start()
    with server.client(timeout=900) as client:
        yield client


def test_handler_form_builds_then_serves(api):
    fn = deployed(api, "rust", "rs-hello", {"handler.rs": HELLO})
    assert fn["runtime_version"].startswith("rust 1.")
    assert fn["runtime_version"].endswith("(wasm32-wasip1)")
    assert "compiling handler.rs (handler form, fn handler)" in build_log(api, "rs-hello")
    resp = invoke(api, "rs-hello", {"name": 'Ada "the first"'})
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"message": 'Hello, Ada "the first"!', "function": "rs-hello"}
    assert resp.headers["X-Nimbus-Version"] == "1"

    # The shared order transform, on typed serde structs; its own error type.
    deployed(api, "rust", "rs-transform", {"handler.rs": TRANSFORM})
    resp = invoke(api, "rs-transform", ORDER)
    assert resp.status_code == 200, resp.text
    assert resp.json() == SUMMARY
    error = function_error(invoke(api, "rs-transform", {**ORDER, "items": []}))
    assert (error["type"], error["message"]) == (
        "ValidationError",
        "items must be a non-empty array",
    )


def test_err_and_panic_are_function_errors_with_their_messages(api):
    source = (
        "fn handler(event: serde_json::Value, _context: &Context)\n"
        "    -> Result<serde_json::Value, String> {\n"
        '    eprintln!("checking {event}");\n'
        '    match event["mode"].as_str() {\n'
        '        Some("panic") => panic!("mode {} is not allowed", event["mode"]),\n'
        '        _ => Err(format!("no luck with {}", event["mode"])),\n'
        "    }\n"
        "}\n"
    )
    deployed(api, "rust", "rs-fails", {"handler.rs": source})
    resp = invoke(api, "rs-fails", {"mode": "err"})
    error = function_error(resp)
    assert (error["type"], error["message"]) == ("Error", 'no luck with "err"')
    assert error["stack"] == ["at handler (handler.rs)"]

    error = function_error(invoke(api, "rs-fails", {"mode": "panic"}))
    assert (error["type"], error["message"]) == ("Panic", 'mode "panic" is not allowed')
    assert error["stack"] == ["at handler.rs:5:26", "in handler (handler.rs)"]

    invocation = resp.headers["X-Nimbus-Invocation-Id"]
    for _ in range(50):
        logs = api.get("/api/v1/functions/rs-fails/logs", params={"invocation_id": invocation})
        lines = [entry["line"] for entry in logs.json()["entries"]]
        if lines:
            break
        time.sleep(0.2)
    assert any('checking {"mode":"err"}' in line for line in lines), lines


def test_program_form(api):
    source = (
        "use std::io::Read;\n\n"
        "fn main() {\n"
        "    let mut event = String::new();\n"
        "    std::io::stdin().read_to_string(&mut event).unwrap();\n"
        "    let event: serde_json::Value = serde_json::from_str(&event).unwrap();\n"
        "    let name = std::env::args().next().unwrap_or_default();\n"
        '    if event["fail"] == true {\n'
        '        eprintln!("failing on purpose");\n'
        "        std::process::exit(3);\n"
        "    }\n"
        '    let doubled = event["n"].as_i64().unwrap_or(0) * 2;\n'
        '    print!("{}", serde_json::json!({"argv0": name, "doubled": doubled}));\n'
        "}\n"
    )
    deployed(api, "rust", "rs-program", {"main.rs": source})
    assert "compiling main.rs (program form)" in build_log(api, "rs-program")
    resp = invoke(api, "rs-program", {"n": 21})
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"argv0": "rs-program", "doubled": 42}
    error = function_error(invoke(api, "rs-program", {"fail": True}))
    assert error["exit_code"] == 3


def test_compile_errors_fail_the_version_and_a_failed_update_keeps_serving(api):
    broken = HELLO.replace('unwrap_or("world")', "unwrap_or(42)")
    fn = create(api, "rust", "rs-broken", {"handler.rs": broken})
    assert fn["status"] == "failed"
    error = fn["latest_build"]["error"]
    assert error.startswith("error[E0308]: mismatched types"), error
    assert "--> handler.rs:5:" in error, error

    deployed(api, "rust", "rs-update", {"handler.rs": HELLO})
    typo = HELLO.replace("Ok(serde_json::json!", "Ok(serde_json::jsn!")
    build = update(api, "rs-update", {"handler.rs": typo})
    assert build["status"] == "failed"
    assert "cannot find `jsn` in `serde_json`" in build["error"]
    assert "--> handler.rs:7:20" in build["error"]
    fn = api.get("/api/v1/functions/rs-update").json()
    assert (fn["status"], fn["active_version"], fn["latest_version"]) == ("active", 1, 2)
    resp = invoke(api, "rs-update", {"name": "still"})
    assert resp.status_code == 200, resp.text
    assert resp.json()["message"] == "Hello, still!"
    assert resp.headers["X-Nimbus-Version"] == "1"


def test_a_handlers_println_goes_to_the_log_not_the_result(api):
    source = (
        "fn handler(event: serde_json::Value, _c: &Context)"
        " -> Result<serde_json::Value, String> {\n"
        '    println!("debug: handling {event}");\n'
        '    Ok(serde_json::json!({"answer": 42}))\n'
        "}\n"
    )
    deployed(api, "rust", "rs-prints", {"handler.rs": source})
    resp = invoke(api, "rs-prints", {"q": 1})
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"answer": 42}
    assert log_lines(api, "rs-prints", resp) == ['debug: handling {"q":1}']
