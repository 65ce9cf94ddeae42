"""The reference: raw wasmtime-py, the least a Python host can do to run a WASI command.

A fresh instance per call from an `InstancePre`, stdin/stdout as files in
/dev/shm (faster than disk, per the field notes), no limits, no deadline, no
logs. This is the floor the sandbox is measured against.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import wasmtime


def shm_dir() -> Path:
    base = "/dev/shm" if os.path.isdir("/dev/shm") else None
    return Path(tempfile.mkdtemp(prefix="nimbus-bench-", dir=base))


class RawRunner:
    """Instantiate + `_start` of one module, one fresh `Store` per call."""

    def __init__(self, engine: wasmtime.Engine, module: wasmtime.Module, io_dir: Path) -> None:
        self.engine = engine
        linker = wasmtime.Linker(engine)
        linker.define_wasi()
        self.pre = linker.instantiate_pre(module)
        self.stdin = str(io_dir / "stdin")
        self.stdout = str(io_dir / "stdout")

    @classmethod
    def compile(cls, wasm: bytes, io_dir: Path) -> RawRunner:
        engine = wasmtime.Engine()
        return cls(engine, wasmtime.Module(engine, wasm), io_dir)

    @classmethod
    def deserialize_file(cls, engine: wasmtime.Engine, path: Path, io_dir: Path) -> RawRunner:
        return cls(engine, wasmtime.Module.deserialize_file(engine, str(path)), io_dir)

    def call(self, event: bytes) -> bytes:
        with open(self.stdin, "wb") as f:
            f.write(event)
        store = wasmtime.Store(self.engine)
        wasi = wasmtime.WasiConfig()
        wasi.stdin_file = self.stdin
        wasi.stdout_file = self.stdout
        store.set_wasi(wasi)
        instance = self.pre.instantiate(store)
        instance.exports(store)["_start"](store)
        with open(self.stdout, "rb") as f:
            return f.read()


def serialize(wasm: bytes) -> bytes:
    """The module precompiled for a default engine (what `deserialize_file` loads)."""
    engine = wasmtime.Engine()
    return wasmtime.Module(engine, wasm).serialize()
