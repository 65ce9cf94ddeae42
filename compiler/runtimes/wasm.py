"""`wasm`: a ready WebAssembly module (WASI command) or component, validated as uploaded."""

from __future__ import annotations

import functools
import shutil
from pathlib import Path

import wasmtime
import wasmtime.component

from .._base import BuildFailed, BuildLog, BuildRequest, BuildResult

_MODULE_HEADER = b"\0asm\x01\0\0\0"
_COMPONENT_HEADER = b"\0asm\x0d\0\x01\0"


@functools.cache
def _engine() -> wasmtime.Engine:
    # NOTE: made lazily in the worker process; an Engine made before fork() hangs.
    return wasmtime.Engine()


def wasm_kind(head: bytes) -> str:
    if head.startswith(_MODULE_HEADER):
        return "module"
    if head.startswith(_COMPONENT_HEADER):
        return "component"
    raise BuildFailed(
        "the upload is not a WebAssembly binary: expected a core module (\\0asm version 1) "
        "or a component (\\0asm layer 1)"
    )


class WasmBuilder:
    runtime = "wasm"

    def build(self, request: BuildRequest, workdir: Path, log: BuildLog) -> BuildResult:
        if request.binary is None:
            raise BuildFailed("a wasm function needs an uploaded artifact")
        data = request.binary.read_bytes()
        kind = wasm_kind(data[:8])
        log.write(f"uploaded {kind}, {len(data)} bytes")
        if kind == "module":
            try:
                wasmtime.Module.validate(_engine(), data)
            except wasmtime.WasmtimeError as exc:
                raise BuildFailed(f"invalid WebAssembly module: {exc}") from None
        else:
            try:
                wasmtime.component.Component(_engine(), data)
            except wasmtime.WasmtimeError as exc:
                raise BuildFailed(f"invalid WebAssembly component: {exc}") from None
        log.write("validated with wasmtime")
        artifact = workdir / "artifact.wasm"
        shutil.copyfile(request.binary, artifact)
        return BuildResult(artifact=artifact, kind=kind, runtime_version=f"wasm ({kind})")
