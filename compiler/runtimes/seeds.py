"""The shared runtimes precompiled into the seed cache folder, once per wasmtime engine.

A seed folder files each precompiled runtime under the sandbox's engine tag
(wasmtime version, engine settings, CPU features), and an engine never loads
another engine's artifact. After a wasmtime upgrade a runtime that is otherwise
up to date therefore has no seed for the new engine: without one, every server
and test sandbox would compile it on first use (SpiderMonkey and CPython take a
minute or more each). The install scripts call `ensure_seed` when they find the
runtime built, and `precompile_seed` when they build it.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from sandbox import Sandbox, SandboxConfig, engine_tag
from store import LocalStore, Store
from store.functions import FunctionRepo


def precompile_seed(store: Store, wasm: tuple[str, str], seed_dir: Path) -> None:
    """Precompile the stored runtime `wasm` (key, sha256) for this engine into `seed_dir`."""
    seed = Sandbox(store, SandboxConfig(cache_dir=seed_dir))
    try:
        seed.precompile(*wasm)
    finally:
        seed.close()


def has_seed(seed_dir: Path, wasm_sha256: str) -> bool:
    folder = seed_dir / engine_tag() / wasm_sha256
    return folder.is_dir() and any(folder.glob("*.component.cwasm"))


def ensure_seed(wasm_path: Path, wasm_sha256: str, seed_dir: Path) -> bool:
    """Precompile the built runtime at `wasm_path` (its manifest's sha256) unless this
    engine has its seed already; True if it had to."""
    if wasm_sha256 and has_seed(seed_dir, wasm_sha256):
        return False
    with tempfile.TemporaryDirectory(prefix="nimbus-seed-") as tmp:
        store = LocalStore(Path(tmp))
        precompile_seed(store, FunctionRepo(store).put_blob_file(wasm_path), seed_dir)
    return True
