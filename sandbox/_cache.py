"""Precompiled artifacts at three levels: the store, the local disk, this process.

    store       precompiled/<wasm sha>/<engine tag>.cwasm + .json manifest (shared)
    local disk  <cache_dir>/<engine tag>/<wasm sha>/<cwasm sha>.<kind>.cwasm (per machine)
    memory      an LRU of deserialized modules/components, linked and ready (per process)

Loading walks down the levels and verifies at each step: a disk file must
hash to its own name, a store object to its manifest. What fails a check,
or fails wasmtime's own compatibility check at deserialize time, is thrown
away and rebuilt from the wasm, whose sha256 is checked before it is
compiled. Bytes from users are only ever compiled, never deserialized.
"""

from __future__ import annotations

import logging
import os
import secrets
import threading
from collections import OrderedDict
from pathlib import Path

import wasmtime
from wasmtime import component

from store import Store, errors
from store.precompiled import PrecompiledRepo

from ._artifact import (
    Manifest,
    file_sha256,
    kind_of,
    make_manifest,
    manifest_problem,
    sha256_hex,
)
from ._compile import compile_in_child
from ._component import LoadedComponent, check_imports
from ._engine import EngineHost, fingerprint
from ._module import LoadedModule
from ._pool import exceeds_pool_limits
from ._verified import VerifiedFiles

log = logging.getLogger("nimbus.sandbox")

_IN_MEMORY_FETCH = 4 << 20  # precompiled artifacts up to this size are fetched in one read

Loaded = LoadedModule | LoadedComponent


class ArtifactCache:
    def __init__(
        self,
        store: Store,
        host: EngineHost,
        cache_dir: Path,
        entries: int,
        signing_key: bytes | None,
        seed_dirs: tuple[Path, ...] = (),
        child_compile_bytes: int = 64 << 10,
        compile_memory_mb: int = 2048,
    ) -> None:
        self._store = store
        self._host = host
        # wasm at least this large compiles in a child process, on every core, bounded.
        self._child_compile_bytes = child_compile_bytes
        self._compile_memory_mb = compile_memory_mb
        self._fp = fingerprint()
        self._precompiled = PrecompiledRepo(store, self._fp.tag)
        self._dir = Path(cache_dir) / self._fp.tag
        self._seeds = [Path(d) / self._fp.tag for d in seed_dirs]
        self._verified = VerifiedFiles(self._dir / "verified")
        self._entries = entries
        self._signing_key = signing_key
        self._lru: OrderedDict[str, Loaded] = OrderedDict()
        self._lock = threading.Lock()
        self._loading: dict[str, threading.Lock] = {}
        # Loads answered from this process's memory vs. loaded from disk, store or wasm.
        self.hits = 0
        self.misses = 0

    @property
    def entries(self) -> int:
        return len(self._lru)

    # -- memory ---------------------------------------------------------------

    def cached(self, sha256: str) -> Loaded | None:
        with self._lock:
            loaded = self._lru.get(sha256)
            if loaded is not None:
                self._lru.move_to_end(sha256)
            return loaded

    def load(self, artifact_key: str, sha256: str, kind: str) -> tuple[Loaded, bool]:
        """The linked artifact and whether this process had to load it (a cold start)."""
        loaded = self.cached(sha256)
        if loaded is not None:
            with self._lock:
                self.hits += 1
            return loaded, False
        with self._lock:
            gate = self._loading.setdefault(sha256, threading.Lock())
        with gate:  # one load per artifact; concurrent callers wait for it
            loaded = self.cached(sha256)
            if loaded is not None:
                with self._lock:
                    self.hits += 1
                return loaded, False
            loaded = self._load_cold(artifact_key, sha256, kind)
            with self._lock:
                self.misses += 1
                self._lru[sha256] = loaded
                while len(self._lru) > self._entries:
                    self._lru.popitem(last=False)
            return loaded, True

    def _load_cold(self, artifact_key: str, sha256: str, kind: str) -> Loaded:
        for path in self._disk_files(sha256, kind):
            loaded = self._load_disk_file(kind, path)
            if loaded is not None:
                return loaded
        fetched = self._fetch(sha256, kind)
        if fetched is not None:
            loaded = self._deserialize(kind, fetched)
            if loaded is not None:
                return loaded
        built_kind, compiled, _ = self._build(artifact_key, sha256)
        _expect_kind(kind, built_kind)
        return self._link(compiled)

    # -- local disk -----------------------------------------------------------

    def _disk_files(self, sha256: str, kind: str) -> list[Path]:
        """Files named <cwasm sha256>.<kind>.cwasm, newest first; then the seed folders'."""
        found: list[Path] = []
        for base in (self._dir, *self._seeds):
            try:
                paths = [p for p in (base / sha256).iterdir() if p.name.endswith(f".{kind}.cwasm")]
            except (FileNotFoundError, NotADirectoryError):
                continue
            found += sorted(paths, key=_mtime, reverse=True)
        return found

    def _temp_path(self, sha256: str) -> Path:
        folder = self._dir / sha256
        folder.mkdir(parents=True, exist_ok=True)
        # Unique per process and thread; loads of one artifact are single-flight.
        return folder / f".tmp-{os.getpid()}-{threading.get_ident()}-{secrets.token_hex(4)}"

    def _write_disk(self, sha256: str, kind: str, payload: bytes | bytearray) -> Path:
        tmp = self._temp_path(sha256)
        try:
            tmp.write_bytes(payload)
            final = tmp.with_name(f"{sha256_hex(payload)}.{kind}.cwasm")
            os.replace(tmp, final)
        finally:
            tmp.unlink(missing_ok=True)
        return final

    def _load_disk_file(self, kind: str, path: Path) -> Loaded | None:
        """A file named <its sha256>.<kind>.cwasm, loaded if it still hashes to its name
        (PERF: known from a record in a later process); removed if it does not."""
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError:
            return None  # removed meanwhile (e.g. by another process that found it bad)
        try:
            if not self._verified.check(path, path.name.split(".")[0], fd):
                log.warning("precompiled %s on disk is corrupt; removing it", path)
                path.unlink(missing_ok=True)
                return None
            # NOTE(sandbox): wasmtime reads the very file that was checked, through
            # the open descriptor, so a rename over `path` meanwhile changes nothing.
            return self._deserialize(kind, path, opened=_fd_path(fd, path))
        finally:
            os.close(fd)

    def _deserialize(self, kind: str, path: Path, opened: str | None = None) -> Loaded | None:
        engine = self._host.engine
        source = opened or str(path)
        try:
            if kind == "module":
                compiled = wasmtime.Module.deserialize_file(engine, source)
            else:
                compiled = component.Component.deserialize_file(engine, source)
        except wasmtime.WasmtimeError as exc:
            if exceeds_pool_limits(str(exc)):  # a sound file this sandbox will not run
                raise errors.Invalid(str(exc).splitlines()[0]) from None
            # Incompatible (another wasmtime or engine set-up) or not of this kind.
            log.warning("cannot load precompiled %s (%s); rebuilding", path, str(exc)[:200])
            path.unlink(missing_ok=True)
            return None
        return self._link(compiled)

    def _link(self, compiled) -> Loaded:
        try:
            if isinstance(compiled, wasmtime.Module):
                return LoadedModule.link(compiled, self._host.module_linker(), self._host.native)
            return LoadedComponent.link(compiled, self._host.engine)
        except (ValueError, wasmtime.WasmtimeError) as exc:
            raise errors.Invalid(str(exc).splitlines()[0]) from None

    def _link_new(self, compiled) -> None:
        """The same checks as a load, linking included: a module importing what the host
        does not define was stored, and its every invoke answered 422 "unknown import".
        A component's imports are checked by instantiation, which a load leaves to
        the first call."""
        self._link(compiled)
        if isinstance(compiled, component.Component):
            try:
                check_imports(compiled, self._host.engine, self._host.component_linker())
            except ValueError as exc:
                raise errors.Invalid(str(exc)) from None

    # -- store ----------------------------------------------------------------

    def _fetch(self, sha256: str, kind: str) -> Path | None:
        """The verified precompiled artifact from the store on local disk, or None."""
        key = self._precompiled.key(sha256)
        data = self._precompiled.manifest(sha256)
        if data is None:
            return None
        try:
            manifest = Manifest.parse(data)
        except (ValueError, KeyError, TypeError) as exc:
            log.warning("precompiled manifest of %s is unreadable (%s); rebuilding", key, exc)
            return None
        problem = manifest_problem(manifest, sha256, self._fp, self._signing_key)
        if problem is not None:
            log.warning("precompiled %s not trusted: %s; rebuilding", key, problem)
            return None
        _expect_kind(kind, manifest.kind)
        try:
            if manifest.size <= _IN_MEMORY_FETCH:
                # PERF(sandbox): small artifacts: one read, hashed in memory.
                payload = self._precompiled.read(sha256)
                if len(payload) != manifest.size or sha256_hex(payload) != manifest.cwasm_sha256:
                    log.warning("precompiled %s does not match its manifest; rebuilding", key)
                    return None
                return self._write_disk(sha256, manifest.kind, payload)
            return self._fetch_file(key, sha256, manifest)
        except errors.NotFound:
            return None

    def _fetch_file(self, key: str, sha256: str, manifest: Manifest) -> Path | None:
        """Large artifacts stream to disk, then are hashed there."""
        tmp = self._temp_path(sha256)
        try:
            self._precompiled.read_to_file(sha256, tmp)
            actual = file_sha256(tmp)
            if actual != manifest.cwasm_sha256 or tmp.stat().st_size != manifest.size:
                log.warning("precompiled %s does not match its manifest; rebuilding", key)
                return None
            final = tmp.with_name(f"{actual}.{manifest.kind}.cwasm")
            os.replace(tmp, final)
            return final
        finally:
            tmp.unlink(missing_ok=True)

    def _build(self, artifact_key: str, sha256: str):
        """Compile the wasm (checked against its sha256), store it precompiled, keep it on disk."""
        wasm = self._store.get(artifact_key).data
        if sha256_hex(wasm) != sha256:
            raise errors.Invalid(f"{artifact_key} does not match its sha256 {sha256}")
        kind = kind_of(wasm)
        engine = self._host.engine
        # PERF(sandbox): a big component (a shared runtime) takes 10-30 s to
        # compile; one this machine already compiled (or the install script did,
        # into a seed folder) is verified and stored instead.
        for path in self._disk_files(sha256, kind):
            # One read: the bytes checked are the bytes loaded and stored.
            payload = path.read_bytes()
            if sha256_hex(payload) != path.name.split(".")[0]:
                continue
            try:
                compiled = _DESERIALIZE[kind](engine, payload)
            except wasmtime.WasmtimeError as exc:
                if exceeds_pool_limits(str(exc)):
                    raise errors.Invalid(str(exc).splitlines()[0]) from None
                continue  # made by another engine set-up: compile below
            self._link_new(compiled)
            return self._store_precompiled(kind, sha256, payload, compiled)
        payload = (
            compile_in_child(wasm, kind, self._compile_memory_mb)
            if len(wasm) >= self._child_compile_bytes
            else None
        )
        try:
            if payload is not None:  # made by the platform's own child, from checked wasm
                compiled = _DESERIALIZE[kind](engine, payload)
            elif kind == "module":
                compiled = wasmtime.Module(engine, wasm)
            else:
                compiled = component.Component(engine, wasm)
        except wasmtime.WasmtimeError as exc:
            raise errors.Invalid(f"invalid {kind}: {str(exc).splitlines()[0]}") from None
        self._link_new(compiled)
        payload = payload if payload is not None else compiled.serialize()
        return self._store_precompiled(kind, sha256, payload, compiled)

    def _store_precompiled(self, kind: str, sha256: str, payload: bytes, compiled):
        manifest = make_manifest(kind, sha256, payload, self._fp, self._signing_key)
        path = self._write_disk(sha256, kind, payload)
        key = self._precompiled.put(sha256, path, manifest.to_bytes())
        return kind, compiled, key

    def precompile(self, artifact_key: str, sha256: str) -> str:
        if self._precompiled.has(sha256):
            return self._precompiled.key(sha256)
        _, _, key = self._build(artifact_key, sha256)
        return key


_DESERIALIZE = {"module": wasmtime.Module.deserialize, "component": component.Component.deserialize}


def _fd_path(fd: int, path: Path) -> str:
    """A path that opens the file already open at `fd` (Linux), else `path` itself."""
    by_fd = f"/proc/self/fd/{fd}"
    return by_fd if os.path.exists(by_fd) else str(path)


def _expect_kind(expected: str, actual: str) -> None:
    if expected != actual:
        raise errors.Invalid(f"artifact is a {actual}, the deployment says {expected}")


def _mtime(path: Path) -> float:
    """When `path` was written; 0 for one another process removed meanwhile (tried last,
    it then fails to open and is passed over)."""
    try:
        return path.stat().st_mtime
    except FileNotFoundError:
        return 0.0
