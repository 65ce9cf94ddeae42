"""Deployments of kind "runtime": a shared language runtime component plus the user's source.

The component (e.g. the Python runtime, CPython inside) exports the `runtime`
world of wit/handler.wit: `run(source, handler, event, context)` and
`check(source, handler)`. It is one artifact for every function of its
language, so it is loaded, precompiled and cached like any component; what
differs per function is read here once per worker and deployment:

- the source bundle (a store object, checked against its sha256), passed to
  every call;
- read-only mounts: platform-made archives in the store (the runtime's
  standard library, a function's bundled dependencies), unpacked once per
  machine into `<cache dir>/mounts/<archive sha256>/` and preopened at their
  guest path with no write access. A folder is complete once renamed into
  place; seed cache folders (filled at install time) are looked in first.
"""

from __future__ import annotations

import hashlib
import logging
import os
import secrets
import shutil
import tarfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import wasmtime

from store import Store, errors

from ._component import HandlerInstance, LoadedComponent
from ._outcome import trap_cause
from ._pool import busy, is_exhausted
from ._threads import Abandoned
from ._types import Deployment, MiB, Mount

if TYPE_CHECKING:
    from ._worker import Prepared, Worker

log = logging.getLogger("nimbus.sandbox")

RUN, CHECK = "run", "check"


@dataclass(frozen=True)
class RuntimeCode:
    """What one runtime deployment adds to the shared component, ready to pass."""

    source: str
    handler: str
    mounts: tuple[tuple[str, str], ...]  # (host folder, guest path), read-only


class MountCache:
    """Platform archives from the store, unpacked once per machine, never written after."""

    def __init__(self, store: Store, cache_dir: Path, seed_dirs: tuple[Path, ...]) -> None:
        self._store = store
        self._dir = Path(cache_dir) / "mounts"
        self._seeds = [Path(d) / "mounts" for d in seed_dirs]
        self._known: dict[str, Path] = {}
        self._lock = threading.Lock()
        self._gates: dict[str, threading.Lock] = {}

    def folder(self, mount: Mount) -> Path:
        sha = mount.archive_sha256
        found = self._known.get(sha)
        if found is not None:
            return found
        with self._lock:
            gate = self._gates.setdefault(sha, threading.Lock())
        with gate:
            found = self._known.get(sha) or self._find(sha) or self._unpack(mount)
            self._known[sha] = found
            return found

    def _find(self, sha: str) -> Path | None:
        for base in (self._dir, *self._seeds):
            if (base / sha).is_dir():
                return base / sha
        return None

    def _unpack(self, mount: Mount) -> Path:
        sha = mount.archive_sha256
        self._dir.mkdir(parents=True, exist_ok=True)
        tag = f"{os.getpid()}-{threading.get_ident()}-{secrets.token_hex(4)}"
        archive = self._dir / f".tmp-{tag}.tar"
        staging = self._dir / f".tmp-{tag}"
        try:
            self._store.get_file(mount.archive_key, archive)
            with open(archive, "rb") as f:
                if hashlib.file_digest(f, "sha256").hexdigest() != sha:
                    raise errors.Invalid(f"mount archive {mount.archive_key} does not match {sha}")
            with tarfile.open(archive) as tar:
                # The "data" filter refuses absolute paths, links out of the
                # folder, devices and set-id bits.
                tar.extractall(staging, filter="data")
            final = self._dir / sha
            try:
                os.rename(staging, final)
            except OSError:
                if not final.is_dir():  # otherwise another process won the race
                    raise
            return final
        finally:
            archive.unlink(missing_ok=True)
            shutil.rmtree(staging, ignore_errors=True)


def runtime_code(store: Store, mounts: MountCache, dep: Deployment) -> RuntimeCode:
    """Fetch the source bundle and make the mounts ready (once per deployment and worker)."""
    if not dep.source_key or not dep.source_sha256 or not dep.handler:
        raise errors.Invalid("a runtime deployment needs source_key, source_sha256 and handler")
    data = store.get(dep.source_key).data
    if hashlib.sha256(data).hexdigest() != dep.source_sha256:
        raise errors.Invalid(f"{dep.source_key} does not match its sha256")
    try:
        source = data.decode()
    except UnicodeDecodeError:
        raise errors.Invalid("the source bundle is not UTF-8 text") from None
    folders = tuple((str(mounts.folder(m)), m.guest_path) for m in dep.mounts)
    return RuntimeCode(source, dep.handler, folders)


def runtime_call(export: str, code: RuntimeCode | None) -> dict:
    """`HandlerInstance` arguments for a call into the runtime world ({} for `handler`)."""
    if code is None:
        return {}
    leading = (code.source, code.handler) if export == RUN else ()
    return {"export": export, "leading": leading, "mounts": code.mounts}


def check_source(worker: Worker, dep: Deployment, loaded: LoadedComponent, prep: Prepared) -> str:
    """Call the runtime's `check` once, in a fresh instance, under the usual limits."""
    code = prep.code
    assert code is not None
    ticks = worker.host.deadline_ticks(dep.timeout_sec)

    def call() -> object:
        inst = HandlerInstance(
            worker.host.engine,
            worker.host.component_linker(),
            loaded,
            prep.argv,
            {},
            dep.memory_mb * MiB,
            ticks,
            **runtime_call(CHECK, code),
        )
        try:
            return inst.call(code.source, code.handler, ticks)
        finally:
            inst.close()

    worker.threads.check_capacity()
    worker.gate.acquire(dep.memory_mb, dep.function_id)
    try:
        result = worker.threads.run(call, dep.timeout_sec + 0.25)
    except Abandoned:
        raise errors.Timeout(f"checking the source took over {dep.timeout_sec:g} s") from None
    except (wasmtime.WasmtimeError, wasmtime.Trap) as exc:
        if is_exhausted(str(exc)):
            raise busy() from None
        cause = trap_cause(str(exc))
        raise errors.Invalid(f"the runtime failed to check the source: {cause}") from None
    finally:
        worker.gate.release(dep.memory_mb, dep.function_id)
    if isinstance(result, str):
        return result
    kind = str(getattr(result, "type", "") or "Error")
    message = str(getattr(result, "message", "") or "")
    stack = str(getattr(result, "stack", "") or "")
    error = errors.Invalid(f"{kind}: {message}")
    error.stack = stack.splitlines()
    raise error
