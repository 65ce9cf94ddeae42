"""Run built WASI commands in tests of the builders.

`run`: plain wasmtime, the program-form contract (event on stdin, context in
NIMBUS_CONTEXT, argv[0] the function's name, stdout the result) — enough for
programs and Go's glue. `Sandboxed`: the real sandbox, as the gateway runs a
module, for glue that uses the sandbox's own channels (C and Rust handlers
write their result to fd 3, and their stdout is log).
"""

from __future__ import annotations

import functools
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import orjson
import wasmtime

from sandbox import Deployment, InvokeResult, Sandbox, SandboxConfig
from store import LocalStore


@functools.cache
def _engine() -> wasmtime.Engine:
    config = wasmtime.Config()
    config.cranelift_opt_level = "none"  # PERF(tests): Go's 4.5 MB module compiles 3x faster
    return wasmtime.Engine(config)


@functools.cache
def _module(sha256: str, path: str) -> wasmtime.Module:
    return wasmtime.Module.from_file(_engine(), path)


@dataclass
class Run:
    code: int
    stdout: str
    stderr: str

    def json(self):
        return json.loads(self.stdout)

    def record(self) -> dict:
        """The glue's error record: the last stderr line after the record separator."""
        assert self.code != 0
        return json.loads(self.stderr.rsplit("\x1e", 1)[1])


def run(artifact: Path, event: object, tmp_path: Path, context: dict | None = None) -> Run:
    engine = _engine()
    store = wasmtime.Store(engine)
    config = wasmtime.WasiConfig()
    (tmp_path / "stdin").write_text(json.dumps(event))
    config.stdin_file = str(tmp_path / "stdin")
    config.stdout_file = str(tmp_path / "stdout")
    config.stderr_file = str(tmp_path / "stderr")
    config.argv = ["fn-name"]
    context = {"function_name": "fn-name", "deadline_ms": 1, **(context or {})}
    config.env = [("NIMBUS_CONTEXT", json.dumps(context))]
    store.set_wasi(config)
    linker = wasmtime.Linker(engine)
    linker.define_wasi()
    module = _module(hashlib.sha256(artifact.read_bytes()).hexdigest(), str(artifact))
    instance = linker.instantiate(store, module)
    code = 0
    try:
        instance.exports(store)["_start"](store)
    except wasmtime.ExitTrap as exc:
        code = exc.code
    return Run(code, (tmp_path / "stdout").read_text(), (tmp_path / "stderr").read_text())


class Sandboxed:
    """Built modules run in the real sandbox, as the gateway would run them."""

    def __init__(self, root: Path) -> None:
        self._store = LocalStore(root / "store")
        self._sandbox = Sandbox(self._store, SandboxConfig(cache_dir=root / "sandbox-cache"))

    def __call__(
        self,
        artifact: Path,
        event: object = None,
        context: dict | None = None,
        name: str = "fn-name",
    ) -> InvokeResult:
        wasm = artifact.read_bytes()
        sha = hashlib.sha256(wasm).hexdigest()
        key = f"blobs/sha256/{sha}"
        self._store.put(key, wasm)
        self._sandbox.precompile(key, sha)
        dep = Deployment("fn_test", name, 3, key, sha, "module", memory_mb=64, timeout_sec=10)
        event = {} if event is None else event
        return self._sandbox.invoke(dep, orjson.dumps(event), context or {})

    def close(self) -> None:
        self._sandbox.close()


def custom_sections(artifact: Path) -> list[str]:
    data, names, pos = artifact.read_bytes(), [], 8
    while pos < len(data):
        section, pos = data[pos], pos + 1
        size, shift = 0, 0
        while True:
            byte, pos = data[pos], pos + 1
            size |= (byte & 0x7F) << shift
            shift += 7
            if byte < 0x80:
                break
        if section == 0:
            name_len = data[pos]  # names here are short (one LEB byte)
            names.append(data[pos + 1 : pos + 1 + name_len].decode())
        pos += size
    return names
