"""Precompiled forms of wasm blobs (made and verified by the sandbox):

    precompiled/<wasm sha256>/<engine tag>.cwasm   the serialized module/component
    precompiled/<wasm sha256>/<engine tag>.json    its manifest (written after the .cwasm)

A wasm blob's precompiled forms go when the blob goes (store/blobs.py).
"""

from __future__ import annotations

from pathlib import Path

from . import errors
from ._base import Store
from .blobs import precompiled_prefix


class PrecompiledRepo:
    """One engine's precompiled artifacts (`engine_tag` names the engine set-up)."""

    def __init__(self, store: Store, engine_tag: str) -> None:
        self.store = store
        self.engine_tag = engine_tag

    def key(self, wasm_sha256: str) -> str:
        """The artifact's store key (it names the artifact in logs and build records)."""
        return f"{precompiled_prefix(wasm_sha256)}{self.engine_tag}.cwasm"

    def _manifest_key(self, wasm_sha256: str) -> str:
        return f"{precompiled_prefix(wasm_sha256)}{self.engine_tag}.json"

    def manifest(self, wasm_sha256: str) -> bytes | None:
        try:
            return self.store.get(self._manifest_key(wasm_sha256)).data
        except errors.NotFound:
            return None

    def has(self, wasm_sha256: str) -> bool:
        """Complete: the manifest is written last."""
        return self.store.exists(self._manifest_key(wasm_sha256))

    def read(self, wasm_sha256: str) -> bytes:
        return self.store.get(self.key(wasm_sha256)).data

    def read_to_file(self, wasm_sha256: str, path: Path) -> None:
        self.store.get_file(self.key(wasm_sha256), path)

    def put(self, wasm_sha256: str, artifact: Path, manifest: bytes) -> str:
        """Store the artifact, then its manifest (its presence says the artifact is whole)."""
        key = self.key(wasm_sha256)
        self.store.put_file(key, artifact)
        self.store.put(self._manifest_key(wasm_sha256), manifest)
        return key
