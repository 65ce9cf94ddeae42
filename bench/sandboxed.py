"""The Nimbus side in-process: the real `Sandbox` over a local store holding the artifact."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class StoredArtifact:
    store_dir: Path
    key: str
    sha256: str


def put_artifact(store_dir: Path, wasm: bytes, *, precompile_cache: Path | None = None):
    """Put `wasm` in a fresh local store; with `precompile_cache`, precompile it there too."""
    from store import LocalStore
    from store.functions import FunctionRepo

    store = LocalStore(store_dir)
    key, sha256 = FunctionRepo(store).put_blob(wasm)
    if precompile_cache is not None:
        open_sandbox(store_dir, precompile_cache).precompile(key, sha256)
    return StoredArtifact(store_dir, key, sha256)


def open_sandbox(store_dir: Path, cache_dir: Path):
    from sandbox import Sandbox, SandboxConfig
    from store import LocalStore

    return Sandbox(LocalStore(store_dir), SandboxConfig(cache_dir=cache_dir))


def deployment(artifact: StoredArtifact, name: str = "bench-echo"):
    from sandbox import Deployment

    return Deployment(
        function_id="fn_bench0echo",
        function_name=name,
        version=1,
        artifact_key=artifact.key,
        artifact_sha256=artifact.sha256,
        kind="module",
        env_vars={},
        memory_mb=128,
        timeout_sec=30,
    )


def context(name: str = "bench-echo") -> dict:
    """The context the gateway would pass (DESIGN.md, handler conventions)."""
    return {
        "function_name": name,
        "version": 1,
        "invocation_id": "inv_bench",
        "deadline_ms": int((time.time() + 30) * 1000),
        "memory_limit_mb": 128,
    }
