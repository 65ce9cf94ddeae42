"""Precompiled artifacts: keyed by wasm + engine, verified before loading, rebuilt when bad."""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import logging
import os
import subprocess
import sys
import threading
import time

import pytest
import wasmtime

from sandbox import Sandbox, SandboxConfig, _compile
from store import LocalStore, errors

from .conftest import deployment, put_wasm
from .guests import (
    log_flood_component,
    missing_import_component,
    sleep_forever_component,
    start_loop_component,
    wat_component,
    wat_module,
)

EVENT = b'{"x":1}'


def _manifest(store, cwasm_key: str) -> dict:
    return json.loads(store.get(cwasm_key.removesuffix(".cwasm") + ".json").data)


def test_precompiled_key_names_wasm_engine_and_cpu(sandbox, store):
    wasm = wat_module("ECHO")
    key, sha = put_wasm(store, wasm)
    cwasm_key = sandbox.precompile(key, sha)
    version = importlib.metadata.version("wasmtime")
    assert cwasm_key.startswith(f"precompiled/{sha}/wasmtime-{version}-")
    _, _, tag = cwasm_key.removesuffix(".cwasm").rpartition("/")
    config_hash, cpu_hash = tag.removeprefix(f"wasmtime-{version}-").split("-")
    assert len(config_hash) == len(cpu_hash) == 16
    manifest = _manifest(store, cwasm_key)
    blob = store.get(cwasm_key).data
    assert manifest["cwasm_sha256"] == hashlib.sha256(blob).hexdigest()
    assert manifest["wasm_sha256"] == sha
    assert manifest["kind"] == "module"
    assert blob[:4] != b"\0asm"  # native code, not the wasm


def test_precompile_is_idempotent(sandbox, store):
    key, sha = put_wasm(store, wat_module("ECHO"))
    cwasm_key = sandbox.precompile(key, sha)
    etag = store.head(cwasm_key)
    assert sandbox.precompile(key, sha) == cwasm_key
    assert store.head(cwasm_key) == etag


def test_precompile_checks_the_wasm_sha256(sandbox, store):
    key, sha = put_wasm(store, wat_module("ECHO"))
    store.put(key, wat_module("TRAP"))  # the bytes under the key changed
    with pytest.raises(errors.Invalid, match="sha256"):
        sandbox.precompile(key, sha)


def test_user_bytes_are_never_deserialized(sandbox, store):
    """A precompiled module uploaded as the function's 'wasm' is refused, not loaded."""
    native = wasmtime.Module(wasmtime.Engine(), wat_module("ECHO")).serialize()
    key, sha = put_wasm(store, bytes(native))
    with pytest.raises(errors.Invalid):
        sandbox.precompile(key, sha)
    key, sha = put_wasm(store, b"\0asm\x01\0\0\0\x01\xff")  # a module header, then garbage
    with pytest.raises(errors.Invalid, match="invalid module: failed to parse"):
        sandbox.precompile(key, sha)
    with pytest.raises(errors.Invalid):
        sandbox.invoke(deployment(key, sha), EVENT, {})


def test_a_module_whose_imports_do_not_link_fails_its_deploy(sandbox, store):
    """It was stored precompiled and its function became active; every invoke then
    answered 422 'unknown import' (as if the caller's request were wrong)."""
    wasm = bytes(
        wasmtime.wat2wasm(
            '(module (import "evil" "host" (func)) (memory (export "memory") 1)'
            ' (func (export "_start")))'
        )
    )
    key, sha = put_wasm(store, wasm)
    with pytest.raises(errors.Invalid, match="unknown import: `evil::host`"):
        sandbox.precompile(key, sha)


def test_a_component_whose_imports_the_host_lacks_fails_its_deploy(sandbox, store):
    """It was stored precompiled and its function became active; every invoke then
    failed to instantiate it. Spin refuses to load such a component: its deploy fails
    now, naming the import."""
    key, sha = put_wasm(store, missing_import_component())
    with pytest.raises(errors.Invalid) as caught:
        sandbox.precompile(key, sha)
    assert caught.value.message == (
        "component imports instance `acme:kv/store@1.0.0`, and Nimbus provides no matching"
        " implementation (instance export `get` has the wrong type: function implementation"
        " is missing)"
    )
    # What the host provides links (WASI 0.2 here), and nothing of the guest runs to
    # find that out: a start function that never returns does not hold the deploy.
    for wasm in (log_flood_component(), sleep_forever_component(), start_loop_component()):
        started = time.monotonic()
        sandbox.precompile(*put_wasm(store, wasm))
        assert time.monotonic() - started < 5
    key, sha = put_wasm(store, wat_component("C_ECHO"))
    sandbox.precompile(key, sha)
    assert sandbox.invoke(deployment(key, sha, kind="component"), b"{}", {}).output == b"{}"


def test_kind_of(sandbox):
    assert sandbox.kind_of(wat_module("ECHO")) == "module"
    assert sandbox.kind_of(wat_component("C_ECHO")) == "component"
    for garbage in (b"", b"hello world", b"\0asm\x02\0\0\0", b"\x7fELF\x02\x01\x01\0"):
        with pytest.raises(errors.Invalid):
            sandbox.kind_of(garbage)


def test_cold_start_only_on_first_load_in_the_process(make_sandbox, store):
    key, sha = put_wasm(store, wat_module("ECHO"))
    make_sandbox().precompile(key, sha)  # the build pipeline, in another worker
    worker = make_sandbox()
    dep = deployment(key, sha)
    first = worker.invoke(dep, EVENT, {})
    assert first.cold_start and first.init_ms > 0
    assert [worker.invoke(dep, EVENT, {}).cold_start for _ in range(3)] == [False] * 3
    # Another function with the same artifact: already loaded, not cold.
    assert not worker.invoke(deployment(key, sha), EVENT, {}).cold_start
    stats = worker.stats()
    assert (stats["cache_misses"], stats["cache_hits"], stats["cached_artifacts"]) == (1, 4, 1)
    # Another worker process loads it again.
    assert make_sandbox().invoke(dep, EVENT, {}).cold_start


def test_prepare_warms_so_the_first_invoke_is_not_cold(make_sandbox, store):
    key, sha = put_wasm(store, wat_module("ECHO"))
    worker = make_sandbox()
    dep = deployment(key, sha)
    worker.prepare(dep)
    assert not worker.invoke(dep, EVENT, {}).cold_start


def test_lru_evicts_and_reloads(make_sandbox, store):
    worker = make_sandbox(memory_cache_entries=1)
    a = deployment(*put_wasm(store, wat_module("ECHO")))
    b = deployment(*put_wasm(store, wat_module("TEXT")))
    assert worker.invoke(a, EVENT, {}).cold_start
    assert worker.invoke(b, EVENT, {}).cold_start
    assert worker.invoke(a, EVENT, {}).cold_start  # evicted by b, loaded from disk


def test_missing_precompiled_artifact_is_built_on_first_invoke(make_sandbox, store):
    key, sha = put_wasm(store, wat_module("ECHO"))
    result = make_sandbox().invoke(deployment(key, sha), EVENT, {})
    assert result.output == EVENT
    assert any(k.endswith(".cwasm") for k in store.list(f"precompiled/{sha}/"))


def test_tampered_cwasm_in_the_store_is_detected_and_rebuilt(make_sandbox, store, caplog):
    key, sha = put_wasm(store, wat_module("ECHO"))
    cwasm_key = make_sandbox().precompile(key, sha)
    original = store.get(cwasm_key).data
    tampered = bytearray(original)
    tampered[len(tampered) // 2] ^= 0xFF
    store.put(cwasm_key, bytes(tampered))

    caplog.set_level(logging.WARNING, logger="nimbus.sandbox")
    result = make_sandbox().invoke(deployment(key, sha), EVENT, {})
    assert result.output == EVENT
    assert "does not match its manifest" in caplog.text
    # Rebuilt and stored again: the store's artifact matches its manifest once more.
    rebuilt = store.get(cwasm_key).data
    assert hashlib.sha256(rebuilt).hexdigest() == _manifest(store, cwasm_key)["cwasm_sha256"]


def test_tampered_local_cache_file_is_detected(make_sandbox, store, tmp_path, caplog):
    key, sha = put_wasm(store, wat_module("ECHO"))
    cache = tmp_path / "shared-cache"
    make_sandbox(cache_dir=cache).precompile(key, sha)
    (cwasm,) = cache.rglob("*.cwasm")
    data = bytearray(cwasm.read_bytes())
    data[100] ^= 0xFF
    cwasm.write_bytes(bytes(data))

    caplog.set_level(logging.WARNING, logger="nimbus.sandbox")
    result = make_sandbox(cache_dir=cache).invoke(deployment(key, sha), EVENT, {})
    assert result.output == EVENT
    assert "corrupt" in caplog.text


def test_a_cache_file_removed_while_listed_is_passed_over(make_sandbox, store, tmp_path):
    # Another worker may remove a cache file (found bad, or evicted) between this one's
    # listing and its stat: the call goes on with the other files, never a 500. A
    # dangling link is such a file, for good.
    key, sha = put_wasm(store, wat_module("ECHO"))
    cache = tmp_path / "shared-cache"
    make_sandbox(cache_dir=cache).precompile(key, sha)
    (cwasm,) = cache.rglob("*.cwasm")
    os.symlink(cwasm.parent / "gone", cwasm.parent / ("0" * 64 + ".module.cwasm"))
    result = make_sandbox(cache_dir=cache).invoke(deployment(key, sha), EVENT, {})
    assert result.output == EVENT


def test_a_once_verified_cache_file_is_hashed_again_when_tampered(
    make_sandbox, store, tmp_path, caplog
):
    """Later processes skip re-hashing a cache file only while it is the very file that
    was verified: changed in place, with its size and mtime put back, it is caught."""
    key, sha = put_wasm(store, wat_module("ECHO"))
    dep = deployment(key, sha)
    cache = tmp_path / "shared-cache"
    make_sandbox(cache_dir=cache).precompile(key, sha)
    (cwasm,) = cache.rglob("*.cwasm")
    time.sleep(1.1)  # a file written this second is never recorded (coarse ctime clock)
    assert make_sandbox(cache_dir=cache).invoke(dep, EVENT, {}).output == EVENT
    assert len(list(cache.rglob("verified/*.json"))) == 1  # hashed once, recorded
    assert make_sandbox(cache_dir=cache).invoke(dep, EVENT, {}).output == EVENT

    before = cwasm.stat()
    data = bytearray(cwasm.read_bytes())
    data[100] ^= 0xFF
    with open(cwasm, "r+b") as f:  # same inode, same size
        f.write(data)
    os.utime(cwasm, ns=(before.st_atime_ns, before.st_mtime_ns))  # same mtime

    caplog.set_level(logging.WARNING, logger="nimbus.sandbox")
    result = make_sandbox(cache_dir=cache).invoke(dep, EVENT, {})
    assert result.output == EVENT
    assert "corrupt" in caplog.text
    assert all(hashlib.sha256(f.read_bytes()).hexdigest() == f.name.split(".")[0]
               for f in cache.rglob("*.cwasm"))  # fmt: skip


def test_incompatible_artifact_is_rebuilt(make_sandbox, store, caplog):
    """Bytes from an engine with another configuration, even with a matching manifest,
    fail wasmtime's own check and are rebuilt from the wasm."""
    wasm = wat_module("ECHO")
    key, sha = put_wasm(store, wasm)
    cwasm_key = make_sandbox().precompile(key, sha)
    foreign = bytes(wasmtime.Module(wasmtime.Engine(), wasm).serialize())  # no epochs
    manifest = _manifest(store, cwasm_key)
    manifest.update(cwasm_sha256=hashlib.sha256(foreign).hexdigest(), size=len(foreign))
    store.put(cwasm_key, foreign)
    store.put(cwasm_key.removesuffix(".cwasm") + ".json", json.dumps(manifest).encode())

    caplog.set_level(logging.WARNING, logger="nimbus.sandbox")
    result = make_sandbox().invoke(deployment(key, sha), EVENT, {})
    assert result.output == EVENT
    assert "cannot load precompiled" in caplog.text


def test_signed_artifacts(make_sandbox, store, caplog):
    key, sha = put_wasm(store, wat_module("ECHO"))
    dep = deployment(key, sha)
    make_sandbox(signing_key=b"k1").precompile(key, sha)
    assert make_sandbox(signing_key=b"k1").invoke(dep, EVENT, {}).output == EVENT

    caplog.set_level(logging.WARNING, logger="nimbus.sandbox")
    # A worker with another key does not trust it and rebuilds (and re-signs) it.
    assert make_sandbox(signing_key=b"k2").invoke(dep, EVENT, {}).output == EVENT
    assert "signature" in caplog.text


def test_engine_is_made_after_fork(make_sandbox, store):
    """A Sandbox used before fork() makes a new engine in the child (FIELD-NOTES: an
    inherited engine hangs when compiling)."""
    key, sha = put_wasm(store, wat_module("ECHO"))
    worker = make_sandbox()
    dep = deployment(key, sha)
    assert worker.invoke(dep, EVENT, {}).output == EVENT
    other = deployment(*put_wasm(store, wat_module("TEXT")))  # not compiled yet
    pid = os.fork()
    if pid == 0:  # child: compile + run, report by exit status
        try:
            ok = (
                worker.invoke(dep, EVENT, {}).output == EVENT
                and worker.invoke(other, b"{}", {}).output == b"hello, world"
            )
            os._exit(0 if ok else 1)
        except BaseException:
            os._exit(2)
    deadline = time.monotonic() + 30
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() > deadline:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
            pytest.fail("the forked child hung")
        time.sleep(0.02)
    assert os.waitstatus_to_exitcode(status) == 0


def test_config_is_explicit(tmp_path):
    """No environment reads; constructing a Sandbox makes no engine."""
    sb = Sandbox(LocalStore(tmp_path / "s"), SandboxConfig(cache_dir=str(tmp_path / "c")))
    assert set(sb.stats().values()) == {0}
    assert not (tmp_path / "c").exists()
    sb.close()


def test_the_compile_child_loads_only_what_compiling_needs():
    """PERF: neither package's __init__ (the Sandbox, the store, pydantic: 0.2 s of
    CPU a compile), only wasmtime, the engine's settings and store.errors."""
    what_main_imports = "from wasmtime import component; import sandbox._engine"
    probe = _compile._CHILD.replace(
        "sys.exit(main(sys.argv[1:]))", f"{what_main_imports}; print(*sys.modules)"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe, str(1 << 31), _compile._PACKAGES],
        capture_output=True,
        text=True,
    )
    loaded = set(done.stdout.split())
    assert {"wasmtime", "sandbox._engine", "store.errors"} <= loaded, done.stderr
    assert not loaded & {"pydantic", "sandbox._sandbox", "store.records", "store.leases"}


def test_large_wasm_compiles_in_a_child_process(make_sandbox, store):
    """(Every wasm counts as large here.) The child's artifact loads and runs, and
    the child's compile error is the deploy's."""
    sandbox = make_sandbox(child_compile_bytes=0)
    for wasm, kind, event in ((wat_module("ECHO"), "module", EVENT),
                              (wat_component("C_ECHO"), "component", b'"hi"')):  # fmt: skip
        key, sha = put_wasm(store, wasm)
        sandbox.precompile(key, sha)
        assert sandbox.invoke(deployment(key, sha, kind=kind), event, {}).output == event
    key, sha = put_wasm(store, b"\0asm\x01\0\0\0\x01\xff")  # a module header, then garbage
    with pytest.raises(errors.Invalid, match="invalid module: failed to parse"):
        sandbox.precompile(key, sha)


def _empty_functions(count: int) -> bytes:
    """A command module of `count` empty functions, ~4 bytes of wasm each."""

    def leb(n: int) -> bytes:
        out = bytearray()
        while True:
            byte, n = n & 0x7F, n >> 7
            out.append(byte | (0x80 if n else 0))
            if not n:
                return bytes(out)

    def section(number: int, data: bytes) -> bytes:
        return bytes([number]) + leb(len(data)) + data

    exports = leb(2) + leb(6) + b"_start\x00" + leb(0) + leb(6) + b"memory\x02\x00"
    return b"".join([
        b"\0asm\x01\0\0\0",
        section(1, leb(1) + b"\x60\x00\x00"),  # one type: () -> ()
        section(3, leb(count) + b"\x00" * count),
        section(5, leb(1) + b"\x00\x01"),  # one page of memory
        section(7, exports),
        section(10, leb(count) + b"\x02\x00\x0b" * count),  # each body: no locals, end
    ])  # fmt: skip


def test_a_compile_that_needs_too_much_memory_fails_the_deploy(make_sandbox, store):
    """1.2 MB of 300,000 empty functions took 60 s and 1.7 GB to compile, in the gateway
    worker itself below 1 MiB, unbounded in the child above: a memory bound per compile
    (BUILD_MEMORY_MB) fails it instead, and small wasm still compiles at that bound."""
    sandbox = make_sandbox(child_compile_bytes=64 << 10, compile_memory_mb=200)
    key, sha = put_wasm(store, _empty_functions(40_000))  # 160 KB: a child's compile
    started = time.monotonic()
    with pytest.raises(errors.Invalid, match="needs more than 200 MB of memory"):
        sandbox.precompile(key, sha)
    assert time.monotonic() - started < 60
    key, sha = put_wasm(store, _empty_functions(20_000))  # 80 KB, under the bound
    sandbox.precompile(key, sha)
    assert sandbox.invoke(deployment(key, sha), b"{}", {}).error is None


def test_closing_the_sandbox_ends_a_compile_in_flight(make_sandbox, store):
    """A stopping worker closes its sandbox last: a build's compile still running in its
    child (minutes and gigabytes for some wasm) is killed, not left to outlive the worker
    (the child ran on after it, to its 600 s timeout); the build gets `Unavailable`."""
    sandbox = make_sandbox(child_compile_bytes=0)
    key, sha = put_wasm(store, _empty_functions(40_000))
    failed: list[BaseException] = []

    def precompile() -> None:
        try:
            sandbox.precompile(key, sha)
        except errors.NimbusError as exc:
            failed.append(exc)

    thread = threading.Thread(target=precompile, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not _compile._children:
        assert time.monotonic() < deadline and thread.is_alive(), failed
        time.sleep(0.01)
    (child,) = _compile._children
    started = time.monotonic()
    sandbox.close()
    thread.join(10)
    assert time.monotonic() - started < 5
    assert child.returncode == -9
    assert len(failed) == 1 and isinstance(failed[0], errors.Unavailable), failed
