"""A built runtime gets a precompiled seed for the engine that runs it (compiler/runtimes/seeds.py).

The seed folder files artifacts under the engine's tag (wasmtime version among it):
after a wasmtime upgrade the install scripts find the runtime built but no seed for
the new engine, and must precompile it rather than leave every server to compile it.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

from compiler.runtimes.seeds import ensure_seed, has_seed
from sandbox import Deployment, Sandbox, SandboxConfig, engine_tag
from store import LocalStore
from store.functions import FunctionRepo
from tests.sandbox.guests import wat_component


def _runtime(tmp_path: Path) -> tuple[Path, str]:
    wasm = tmp_path / "runtime.wasm"
    wasm.write_bytes(wat_component("C_ECHO"))
    return wasm, hashlib.sha256(wasm.read_bytes()).hexdigest()


def test_a_runtime_without_a_seed_for_this_engine_is_precompiled_once(tmp_path: Path) -> None:
    wasm, sha = _runtime(tmp_path)
    seeds = tmp_path / "seeds"
    # What an older wasmtime left: a seed under another engine's tag only.
    old = seeds / "wasmtime-0.0.1-0000000000000000-0000000000000000" / sha
    old.mkdir(parents=True)
    (old / f"{'0' * 64}.component.cwasm").write_bytes(b"another engine's code")
    assert not has_seed(seeds, sha)

    assert ensure_seed(wasm, sha, seeds) is True
    assert has_seed(seeds, sha)
    assert [p.name for p in (seeds / engine_tag()).iterdir()] == [sha]
    assert ensure_seed(wasm, sha, seeds) is False  # idempotent: nothing compiled again

    # A sandbox with the seed folder loads it: it never compiles the runtime itself.
    store = LocalStore(tmp_path / "store")
    key, _ = FunctionRepo(store).put_blob_file(wasm)
    sandbox = Sandbox(store, SandboxConfig(cache_dir=tmp_path / "cache", seed_cache_dirs=(seeds,)))
    try:
        dep = Deployment(function_id="fn_seed", function_name="seed", version=1,
                         artifact_key=key, artifact_sha256=sha, kind="component")  # fmt: skip
        result = sandbox.invoke(dep, b'{"seeded": true}', {})
        assert result.error is None and result.output == b'{"seeded": true}'
    finally:
        sandbox.close()
    assert not (tmp_path / "cache" / engine_tag() / sha).exists()  # not built locally


def test_a_seed_removed_is_made_again(tmp_path: Path) -> None:
    wasm, sha = _runtime(tmp_path)
    seeds = tmp_path / "seeds"
    assert ensure_seed(wasm, sha, seeds) is True
    shutil.rmtree(seeds / engine_tag())
    assert ensure_seed(wasm, sha, seeds) is True
    assert has_seed(seeds, sha)
