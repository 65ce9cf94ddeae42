"""Turning source into artifacts: one builder per runtime behind one protocol.

Adding a language is adding one module under `compiler/runtimes/` and one
line in `_BUILDERS`.
"""

from __future__ import annotations

from ._base import Builder, BuildFailed, BuildLog, BuildRequest, BuildResult
from .runtimes.native import NativeBuilder
from .runtimes.wasm import WasmBuilder

_BUILDERS: dict[str, Builder] = {b.runtime: b for b in (WasmBuilder(), NativeBuilder())}


def builder_for(runtime: str) -> Builder:
    try:
        return _BUILDERS[runtime]
    except KeyError:
        raise BuildFailed(
            f"the {runtime} runtime has no builder on this server yet; "
            "upload a ready WebAssembly artifact with runtime 'wasm' instead"
        ) from None


__all__ = ["BuildFailed", "BuildLog", "BuildRequest", "BuildResult", "Builder", "builder_for"]
