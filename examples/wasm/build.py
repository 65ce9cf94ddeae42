"""Assemble the examples' WebAssembly text into binaries: `python3 examples/wasm/build.py`.

hello.wat → hello.wasm (a WASI command module) and echo-component.wat →
echo-component.wasm (a component of the `handler` world). Any toolchain that
targets wasm32-wasip1 (a command) or makes a component exporting
wit/handler.wit (`cargo component`, `componentize-py`, `jco`) gives the same
kinds of file; WebAssembly text keeps these two small, readable and buildable
with what the server already has (wasmtime's assembler).
"""

from pathlib import Path

import wasmtime

HERE = Path(__file__).resolve().parent

for source in sorted(HERE.glob("*.wat")):
    target = source.with_suffix(".wasm")
    target.write_bytes(bytes(wasmtime.wat2wasm(source.read_text())))
    print(f"{target.relative_to(Path.cwd()) if target.is_relative_to(Path.cwd()) else target}")
