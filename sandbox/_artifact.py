"""Precompiled artifacts in the store: keys, the manifest beside each, verification.

A precompiled artifact is native code, so it is only ever made by the
platform from wasm whose sha256 it checked, and it is only loaded after its
own sha256 (and, with a signing key, an HMAC) matches the manifest written
beside it (store/precompiled.py keeps both, by wasm sha256 and engine tag).

The engine tag is `wasmtime-<version>-<config hash>-<cpu features hash>`,
so workers on another wasmtime, engine configuration or CPU class never see
an artifact they cannot run; wasmtime's own compatibility check at
deserialize time is the backstop, and a failure there rebuilds from the wasm.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import asdict, dataclass

from store import errors

from ._engine import Fingerprint

_WASM_MAGIC = b"\0asm"
_MANIFEST_LIMIT = 16 * 1024


def kind_of(wasm: bytes) -> str:
    """ "module" or "component", from the binary header; `Invalid` for anything else."""
    if len(wasm) < 8 or wasm[:4] != _WASM_MAGIC:
        raise errors.Invalid("not a WebAssembly binary (missing \\0asm header)")
    version, layer = int.from_bytes(wasm[4:6], "little"), int.from_bytes(wasm[6:8], "little")
    if layer == 0 and version == 1:
        return "module"
    if layer == 1:
        return "component"
    raise errors.Invalid(f"unsupported WebAssembly binary (version {version}, layer {layer})")


def sha256_hex(data: bytes | bytearray | memoryview) -> str:
    return hashlib.sha256(data).hexdigest()


def file_sha256(path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


@dataclass(frozen=True)
class Manifest:
    kind: str
    wasm_sha256: str
    cwasm_sha256: str
    size: int
    engine: str
    signature: str | None = None  # HMAC-SHA256 over the fields above, when signing

    def to_bytes(self) -> bytes:
        return json.dumps(asdict(self), sort_keys=True).encode()

    @classmethod
    def parse(cls, data: bytes) -> Manifest:
        if len(data) > _MANIFEST_LIMIT:
            raise ValueError("manifest too large")
        raw = json.loads(data)
        return cls(
            kind=str(raw["kind"]),
            wasm_sha256=str(raw["wasm_sha256"]),
            cwasm_sha256=str(raw["cwasm_sha256"]),
            size=int(raw["size"]),
            engine=str(raw["engine"]),
            signature=raw.get("signature"),
        )


def _signature(key: bytes, m: Manifest) -> str:
    message = f"{m.engine}\n{m.kind}\n{m.wasm_sha256}\n{m.cwasm_sha256}\n{m.size}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def make_manifest(
    kind: str, wasm_sha256: str, cwasm: bytes | bytearray, fp: Fingerprint, key: bytes | None
) -> Manifest:
    m = Manifest(kind, wasm_sha256, sha256_hex(cwasm), len(cwasm), fp.tag)
    if key is None:
        return m
    return Manifest(m.kind, m.wasm_sha256, m.cwasm_sha256, m.size, m.engine, _signature(key, m))


def manifest_problem(
    m: Manifest, wasm_sha256: str, fp: Fingerprint, key: bytes | None
) -> str | None:
    """Why this manifest must not be trusted for this wasm on this engine, or None."""
    if m.engine != fp.tag:
        return f"made for engine {m.engine}, this one is {fp.tag}"
    if m.wasm_sha256 != wasm_sha256:
        return "made from different wasm"
    if m.kind not in ("module", "component"):
        return f"unknown kind {m.kind!r}"
    if key is not None and not (
        m.signature and hmac.compare_digest(m.signature, _signature(key, m))
    ):
        return "missing or wrong signature"
    return None
